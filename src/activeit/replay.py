"""Replaying given per-round train lists (`activeit run --task-lists DIR`) instead of selecting.

DIR holds `<name>_<round>/train_tasks.txt`, where `<name>` is the strategy's own name or the
name the reference's `reproduce_splits` use for it (`Random`, `HighPerplexity`,
`LowPerplexity`, `FCGRatioPI-NL-I10-TDTE-High-0.2-Mean-abs-bald` for prompt uncertainty). Every
list is checked before any work: round 0 is the split's initial train list, and each later
round adds exactly the round's pick (`rounds.chunk` or the step of `rounds.sizes`) of the pool to the one before.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from activeit.errors import RunStateError
from activeit.pool import PoolState, read_task_list
from activeit.tasks import TaskLibrary

REFERENCE_NAMES = {"random": "Random", "high_perplexity": "HighPerplexity", "low_perplexity": "LowPerplexity"}
"""activeit strategy → the reference's directory name (`<name>_<round>`)."""
PROMPT_UNCERTAINTY = {"high_prompt_uncertainty": "High", "low_prompt_uncertainty": "Low"}
"""The reference names prompt-uncertainty runs `<X>PI-<label>-I<n>-<target>-<High|Low>-<rate>-...`."""


@dataclass(frozen=True)
class Replay:
    strategy: str
    name: str
    """The directory-name prefix replayed."""
    lists: tuple[tuple[str, ...], ...]
    """The train list of each round, round 0 first."""

    def picked(self, i: int) -> tuple[str, ...]:
        """Tasks added after round i (the 'selection' of round i)."""
        before = set(self.lists[i])
        return tuple(n for n in self.lists[i + 1] if n not in before)


def _prompt_uncertainty_names(directory: Path, direction: str) -> list[str]:
    names = set()
    for path in directory.iterdir():
        prefix, _, index = path.name.rpartition("_")
        fields = prefix.split("-")
        if path.is_dir() and index.isdigit() and len(fields) > 4 and fields[0].endswith("PI") and fields[4] == direction:
            names.add(prefix)
    return sorted(names)


def replay_name(directory: Path, strategy: str) -> str:
    """The directory-name prefix that holds `strategy`'s lists: its own name first, then the reference's."""
    if any(directory.glob(f"{strategy}_[0-9]*")):
        return strategy
    if strategy in REFERENCE_NAMES and any(directory.glob(f"{REFERENCE_NAMES[strategy]}_[0-9]*")):
        return REFERENCE_NAMES[strategy]
    if strategy in PROMPT_UNCERTAINTY:
        found = _prompt_uncertainty_names(directory, PROMPT_UNCERTAINTY[strategy])
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise RunStateError(f"--task-lists {directory}: several prompt-uncertainty runs could be {strategy}: "
                                f"{', '.join(found)}; copy the one to replay to {strategy}_<round>/")
    expected = [strategy] + ([REFERENCE_NAMES[strategy]] if strategy in REFERENCE_NAMES else []) + \
        (["<X>PI-...-" + PROMPT_UNCERTAINTY[strategy] + "-..."] if strategy in PROMPT_UNCERTAINTY else [])
    raise RunStateError(f"--task-lists {directory}: no lists for strategy {strategy!r} "
                        f"(looked for {' or '.join(e + '_<round>/' for e in expected)})")


def plan_replay(directory: Path, strategy: str, rounds: int, pool: PoolState, picks: Sequence[int],
                library: TaskLibrary) -> Replay:
    """Read and check every round's list for one strategy (round i adds `picks[i - 1]` tasks)."""
    name = replay_name(directory, strategy)
    lists = [tuple(pool.train)]
    first = directory / f"{name}_0" / "train_tasks.txt"
    if first.exists() and set(read_task_list(first, library)) != set(pool.train):
        raise RunStateError(f"{first}: round 0 must be the split's initial train list ({len(pool.train)} tasks)")
    remain = set(pool.remain)
    for i in range(1, rounds):
        path = directory / f"{name}_{i}" / "train_tasks.txt"
        if not path.exists():
            raise RunStateError(f"{path}: no task list to replay for round {i} of {strategy}")
        names = tuple(read_task_list(path, library))
        prev = lists[-1]
        dropped = [n for n in prev if n not in set(names)]
        added = [n for n in names if n not in set(prev)]
        if dropped or len(added) != picks[i - 1]:
            why = f"drops {dropped[0]!r} of round {i - 1}" if dropped else f"adds {len(added)} tasks"
            raise RunStateError(f"{path}: round {i} must extend round {i - 1}'s {len(prev)} tasks by {picks[i - 1]} "
                                f"(rounds.chunk or rounds.sizes), but it has {len(names)} and {why}")
        outside = [n for n in added if n not in remain]
        if outside:
            raise RunStateError(f"{path}: task {outside[0]!r} is not in the split's remain pool")
        lists.append(names)
    return Replay(strategy, name, tuple(lists))
