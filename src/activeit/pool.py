"""Pool state: the five disjoint task lists (train, dev, test, remain, excluded) of a round.

Reads the reference split layout (`init/{train,dev,test,remain,excluded}_tasks.txt`) and the
plain NI layout (`splits/<name>/{train,test}_tasks.txt`, dev and initial train then drawn
from train with the run seed exactly as the reference's `write_TLAL_split` draws them).

The reference writes the same 187 tasks to `dev_tasks.txt` and `test_tasks.txt` (NI's 119
official test tasks + 68 validation tasks) and tells them apart by membership in NI's
official test list; `initial_pool` does the same.
"""

from __future__ import annotations

import os
import random as pyrandom
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from activeit import atomic
from activeit.config import AUTO_SPLIT
from activeit.errors import TaskFormatError
from activeit.rng import make_rng
from activeit.tasks import TaskLibrary, check_task_name

LISTS = ("train", "dev", "test", "remain", "excluded")
NI_TEST_LIST = Path("splits") / "default" / "test_tasks.txt"
REFERENCE_ROUNDS = 10
"""The reference's `chunks`: the pool is cut into rounds + 1 parts (one is the dev set)."""


def default_chunk(n_train: int) -> int:
    """Reference default: 756 NI train tasks // (10 + 1) = 68 tasks a round."""
    return max(1, n_train // (REFERENCE_ROUNDS + 1))


def read_task_list(path: str | os.PathLike, library: TaskLibrary | None = None) -> list[str]:
    """One task name a line; blank lines and `#` comments are skipped; names are checked."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TaskFormatError(f"{path}: task list not found") from None
    except UnicodeDecodeError:
        raise TaskFormatError(f"{path}: not valid UTF-8") from None
    names: list[str] = []
    seen: set[str] = set()
    for lineno, line in enumerate(lines, 1):
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        where = f"{path}:{lineno}"
        if library is not None:
            library.require(name, where)
        else:
            check_task_name(name, where)
        if name in seen:
            raise TaskFormatError(f"{where}: task {name!r} listed twice")
        seen.add(name)
        names.append(name)
    return names


def write_task_list(path: str | os.PathLike, names: Iterable[str]) -> None:
    atomic.write_lines(path, names)


@dataclass(frozen=True)
class PoolState:
    train: tuple[str, ...] = ()
    dev: tuple[str, ...] = ()
    test: tuple[str, ...] = ()
    remain: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        owner: dict[str, str] = {}
        for f in fields(self):
            for name in getattr(self, f.name):
                if name in owner:
                    raise TaskFormatError(f"task {name!r} is in both the {owner[name]} and the {f.name} list")
                owner[name] = f.name

    def lists(self) -> dict[str, tuple[str, ...]]:
        return {name: getattr(self, name) for name in LISTS}

    def pick(self, names: Sequence[str]) -> PoolState:
        """Move picked tasks from remain to train (the order of picking is kept)."""
        remain = set(self.remain)
        missing = [n for n in names if n not in remain]
        if missing:
            raise TaskFormatError(f"picked tasks are not in the remain pool: {', '.join(missing)}")
        if len(set(names)) != len(names):
            raise TaskFormatError("a task was picked twice")
        picked = set(names)
        return replace(self, train=self.train + tuple(names), remain=tuple(n for n in self.remain if n not in picked))

    def save(self, directory: str | os.PathLike) -> None:
        for name in LISTS:
            write_task_list(Path(directory) / f"{name}_tasks.txt", getattr(self, name))

    @classmethod
    def load(cls, directory: str | os.PathLike, library: TaskLibrary | None = None,
             official: tuple[Path, list[str]] | None = None) -> PoolState:
        return load_split_lists(Path(directory), library, official)


def resolve_split_dir(library: TaskLibrary, split: str | os.PathLike) -> Path:
    """`split` is a directory, or a split name under `<data>/splits/`."""
    candidate = Path(split).expanduser()
    if candidate.is_dir():
        return candidate
    text = str(split)
    if library.root.is_file():
        raise TaskFormatError(f"split {text!r}: {library.root} is an instruction dataset without split files; use "
                              f"data.split: {AUTO_SPLIT} (or a directory written by `activeit split`)")
    if not (library.root / "splits").is_dir():
        raise TaskFormatError(f"split {text!r}: not a directory, and {library.root} has no splits/; use "
                              f"data.split: {AUTO_SPLIT} (or a directory written by `activeit split`)")
    if "/" not in text and "\\" not in text and ".." not in text:
        under = library.root / "splits" / text
        if under.is_dir():
            return under
    raise TaskFormatError(f"split {text!r}: neither a directory nor a split under {library.root / 'splits'}")


def official_test_list(library: TaskLibrary, test_tasks: str | os.PathLike | None = None) -> Path | None:
    """The list that tells test tasks from dev tasks: `data.test_tasks`, else NI's own."""
    if test_tasks is not None:
        path = Path(test_tasks).expanduser()
        if not path.is_file():
            raise TaskFormatError(f"data.test_tasks {path}: file not found")
        return path
    path = library.root / NI_TEST_LIST
    return path if path.is_file() else None


def separate_dev_test(dev: Sequence[str], test: Sequence[str], official: Sequence[str],
                      where: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Reference split files list dev + test tasks in both files: test = the official test tasks
    among them (in the test file's order), dev = the rest of the dev file."""
    official_set = set(official)
    both = set(dev) | set(test)
    new_test = tuple(n for n in test if n in official_set)
    new_dev = tuple(n for n in dev if n not in official_set)
    lost = [n for n in [*dev, *test] if n in both - set(new_test) - set(new_dev)]
    if lost:
        why = ("is an official test task but only in the dev list" if lost[0] in official_set
               else "is in the test list but not an official test task, and not in the dev list")
        raise TaskFormatError(f"{where}: task {lost[0]!r} {why}")
    return new_dev, new_test


def load_split_lists(directory: Path, library: TaskLibrary | None,
                     official: tuple[Path, list[str]] | None) -> PoolState:
    """Read a reference-layout directory; dev/test overlap is resolved by the official test list."""
    lists = {
        name: tuple(read_task_list(directory / f"{name}_tasks.txt", library))
        if (directory / f"{name}_tasks.txt").exists() or name in ("train", "test") else ()
        for name in LISTS
    }
    overlap = [n for n in lists["dev"] if n in set(lists["test"])]
    if overlap:
        where = f"{directory / 'dev_tasks.txt'} and {directory / 'test_tasks.txt'}"
        if official is None:
            raise TaskFormatError(
                f"task {overlap[0]!r} is in both the dev and the test list ({where}); the reference tells them "
                f"apart by NI's official test list: use an NI checkout with {NI_TEST_LIST} or set data.test_tasks")
        lists["dev"], lists["test"] = separate_dev_test(lists["dev"], lists["test"], official[1],
                                                        f"{where} (official test list {official[0]})")
    return PoolState(**lists)


def draw_reference_split(train: Sequence[str], kinds: dict[str, str], seed: int, size: int,
                         balance_dev: bool = True) -> tuple[list[str], list[str], list[str]]:
    """(initial train, dev, remain) drawn as the reference's `write_TLAL_split` draws them.

    Python's `random` with the same seed and call order, so NI's default split with seed 10
    gives the paper's `TLAL_Exp0_all_10` lists. A balanced dev set takes size//2 cls tasks and
    the rest gen; where a kind runs short the other fills in (the reference would return a
    smaller dev set).
    """
    rng = pyrandom.Random(seed)
    shuffled = list(train)
    rng.shuffle(shuffled)
    if not balance_dev:
        return shuffled[:size], shuffled[size:2 * size], shuffled[2 * size:]
    cls = [n for n in shuffled if kinds[n] == "cls"]
    gen = [n for n in shuffled if kinds[n] != "cls"]
    n_cls = size // 2
    n_gen = size - n_cls
    if len(cls) < n_cls:
        n_cls, n_gen = len(cls), size - len(cls)
    elif len(gen) < n_gen:
        n_cls, n_gen = size - len(gen), len(gen)
    dev = cls[:n_cls] + gen[:n_gen]
    rest = cls[n_cls:] + gen[n_gen:]
    rng.shuffle(rest)
    return rest[:size], dev, rest[size:]


def _read_optional(path: Path, library: TaskLibrary) -> list[str]:
    return read_task_list(path, library) if path.exists() else []


def _ni_split_lists(split_dir: Path, library: TaskLibrary) -> tuple[list[str], list[str], list[str]]:
    """(train, test, excluded) of a plain NI split directory."""
    if not (split_dir / "train_tasks.txt").exists():
        raise TaskFormatError(f"{split_dir}: no train_tasks.txt (expected an NI split or a reference init/ directory)")
    return (read_task_list(split_dir / "train_tasks.txt", library), _read_optional(split_dir / "test_tasks.txt", library),
            _read_optional(split_dir / "excluded_tasks.txt", library))


def _drawn_pool(library: TaskLibrary, lists: tuple[list[str], list[str], list[str]], seed: int, size: int,
                balance_dev: bool = True) -> PoolState:
    train, test, excluded = lists
    kinds = {n: library.kind(n) for n in train} if balance_dev else {}
    init_train, dev, remain = draw_reference_split(train, kinds, seed, size, balance_dev)
    return PoolState(tuple(init_train), tuple(dev), tuple(test), tuple(remain), tuple(excluded))


def draw_auto_split(names: Sequence[str], seed: int, initial: int, held_out: int = 0, dev: int = 0) -> PoolState:
    """`data.split: auto`: held-out test, dev and initial train tasks drawn, in that order, from a seeded
    permutation of the sorted names; the rest is the pool. Sorting first makes the draw independent of
    the order of the data, and drawing test first keeps the test set when `initial` changes."""
    ordered = sorted(names)
    need = held_out + dev + initial
    if need > len(ordered):
        raise TaskFormatError(f"data.split: {AUTO_SPLIT}: {len(ordered)} tasks cannot give {held_out} held-out, {dev} dev "
                              f"and {initial} initial train tasks; lower data.held_out, data.dev or rounds.initial")
    shuffled = [ordered[i] for i in make_rng(seed, "auto-split").permutation(len(ordered))]
    cut = (held_out, held_out + dev, need)
    return PoolState(train=tuple(shuffled[cut[1]:cut[2]]), dev=tuple(shuffled[cut[0]:cut[1]]),
                     test=tuple(shuffled[:cut[0]]), remain=tuple(shuffled[cut[2]:]))


def auto_pool(library: TaskLibrary, seed: int, initial: int | None, held_out: int = 0, dev: int = 0) -> PoolState:
    if initial is None:
        raise TaskFormatError(f"data.split: {AUTO_SPLIT} needs the initial train size: set rounds.initial, "
                              f"rounds.sizes or rounds.chunk")
    return draw_auto_split(library.names(), seed, initial, held_out, dev)


def initial_pool(library: TaskLibrary, split: str | os.PathLike, seed: int, chunk: int | None = None,
                 test_tasks: str | os.PathLike | None = None, held_out: int = 0, dev: int = 0) -> PoolState:
    """The round-0 pool of a split: read as is (reference layout), drawn from NI train/test lists, or
    drawn from all tasks (`auto`). `chunk`: the initial train size to draw (NI: the dev size too);
    `held_out` and `dev`: the test and dev sizes of an `auto` draw."""
    if str(split) == AUTO_SPLIT:
        return auto_pool(library, seed, chunk, held_out, dev)
    split_dir = resolve_split_dir(library, split)
    ref_dir = split_dir / "init" if (split_dir / "init").is_dir() else split_dir
    if (ref_dir / "remain_tasks.txt").exists() or (ref_dir / "dev_tasks.txt").exists():
        official_path = official_test_list(library, test_tasks)
        official = (official_path, read_task_list(official_path)) if official_path else None
        state = load_split_lists(ref_dir, library, official)
        if not state.train:
            raise TaskFormatError(f"{ref_dir / 'train_tasks.txt'}: the initial train list is empty")
        return state
    lists = _ni_split_lists(split_dir, library)
    n_train = len(lists[0])
    size = chunk if chunk is not None else default_chunk(n_train)
    if 2 * size >= n_train:
        raise TaskFormatError(
            f"{split_dir / 'train_tasks.txt'}: {n_train} train tasks cannot give a dev list and an "
            f"initial train list of {size} each and leave a pool to select from; lower rounds.chunk")
    return _drawn_pool(library, lists, seed, size)


def pool_lines(state: PoolState, library: TaskLibrary) -> list[str]:
    """`train: 68 tasks (24 cls, 44 gen)`, one line per list. Excluded tasks are never used, so a
    kind a metadata file lacks is counted as unknown there instead of failing."""
    lines = []
    for name, names in state.lists().items():
        counts = {"cls": 0, "gen": 0, "unknown": 0}
        for task in names:
            try:
                counts[library.kind(task)] += 1
            except TaskFormatError:
                if name != "excluded":
                    raise
                counts["unknown"] += 1
        unknown = f", {counts['unknown']} unknown" if counts["unknown"] else ""
        lines.append(f"{name}: {len(names)} tasks ({counts['cls']} cls, {counts['gen']} gen{unknown})")
    return lines


def config_pool(library: TaskLibrary, cfg: Any, seed: int | None = None) -> PoolState:
    """The round-0 pool a run config describes (for `seed`, default the config's)."""
    return initial_pool(library, cfg.data.split, cfg.seed if seed is None else seed, cfg.rounds.initial_size(),
                        cfg.data.test_tasks, held_out=cfg.data.held_out, dev=cfg.data.dev)


def write_reference_split(out: Path, library: TaskLibrary, split: str | os.PathLike, seed: int,
                          rounds: int = REFERENCE_ROUNDS, balance_dev: bool = True) -> PoolState:
    """Write `out/init/*_tasks.txt` exactly as the reference's notebook does (dev = test = official
    test + dev tasks), so the files replay here and in the reference code alike."""
    split_dir = resolve_split_dir(library, split)
    lists = _ni_split_lists(split_dir, library)
    size = len(lists[0]) // (rounds + 1)
    if size < 1:
        raise TaskFormatError(f"{split_dir / 'train_tasks.txt'}: {len(lists[0])} train tasks are too few for {rounds} rounds")
    state = _drawn_pool(library, lists, seed, size, balance_dev)
    both = state.test + state.dev
    listed = {"train": state.train, "dev": both, "test": both, "remain": state.remain, "excluded": state.excluded}
    for name, names in listed.items():
        write_task_list(Path(out) / "init" / f"{name}_tasks.txt", names)
    return state
