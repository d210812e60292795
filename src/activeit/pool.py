"""Pool state: the five disjoint task lists (train, dev, test, remain, excluded) of a round.

Reads the reference split layout (`init/{train,dev,test,remain,excluded}_tasks.txt`) and the
plain NI layout (`splits/<name>/{train,test}_tasks.txt`, dev and initial train then drawn
from train with the run seed).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path

from activeit import atomic
from activeit.errors import TaskFormatError
from activeit.rng import make_rng
from activeit.tasks import TaskLibrary, check_task_name

LISTS = ("train", "dev", "test", "remain", "excluded")


def default_chunk(n_train: int) -> int:
    """Reference default: 756 NI train tasks // 11 = 68 tasks a round."""
    return max(1, n_train // 11)


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
    def load(cls, directory: str | os.PathLike, library: TaskLibrary | None = None) -> PoolState:
        directory = Path(directory)
        return cls(**{
            name: tuple(read_task_list(directory / f"{name}_tasks.txt", library))
            if (directory / f"{name}_tasks.txt").exists() or name in ("train", "test") else ()
            for name in LISTS
        })


def resolve_split_dir(library: TaskLibrary, split: str | os.PathLike) -> Path:
    """`split` is a directory, or a split name under `<data>/splits/`."""
    candidate = Path(split).expanduser()
    if candidate.is_dir():
        return candidate
    text = str(split)
    if "/" not in text and "\\" not in text and ".." not in text:
        under = library.root / "splits" / text
        if under.is_dir():
            return under
    raise TaskFormatError(f"split {text!r}: neither a directory nor a split under {library.root / 'splits'}")


def _balanced_sample(names: list[str], kinds: dict[str, str], size: int, rng) -> list[str]:
    """`size` tasks, half cls and half gen where the pool allows, the rest filled from the other kind."""
    by_kind = {k: [n for n in names if kinds[n] == k] for k in ("cls", "gen")}
    for group in by_kind.values():
        rng.shuffle(group)
    want_cls = min(len(by_kind["cls"]), size - min(len(by_kind["gen"]), size // 2))
    picked = by_kind["cls"][:want_cls] + by_kind["gen"][: size - want_cls]
    return sorted(picked)


def initial_pool(library: TaskLibrary, split: str | os.PathLike, seed: int, chunk: int | None = None) -> PoolState:
    """The round-0 pool of a split: read as is (reference layout) or drawn from NI train/test lists."""
    split_dir = resolve_split_dir(library, split)
    ref_dir = split_dir / "init" if (split_dir / "init").is_dir() else split_dir
    if (ref_dir / "remain_tasks.txt").exists() or (ref_dir / "dev_tasks.txt").exists():
        state = PoolState.load(ref_dir, library)
        if not state.train:
            raise TaskFormatError(f"{ref_dir / 'train_tasks.txt'}: the initial train list is empty")
        return state
    if not (split_dir / "train_tasks.txt").exists():
        raise TaskFormatError(f"{split_dir}: no train_tasks.txt (expected an NI split or a reference init/ directory)")
    train = read_task_list(split_dir / "train_tasks.txt", library)
    test = read_task_list(split_dir / "test_tasks.txt", library) if (split_dir / "test_tasks.txt").exists() else []
    excluded = read_task_list(split_dir / "excluded_tasks.txt", library) if (split_dir / "excluded_tasks.txt").exists() else []
    size = chunk if chunk is not None else default_chunk(len(train))
    if 2 * size >= len(train):
        raise TaskFormatError(
            f"{split_dir / 'train_tasks.txt'}: {len(train)} train tasks cannot give a dev list and an "
            f"initial train list of {size} each and leave a pool to select from; lower rounds.chunk")
    kinds = {n: library.kind(n) for n in train}
    dev = _balanced_sample(train, kinds, size, make_rng(seed, "pool", "dev"))
    rest = [n for n in train if n not in set(dev)]
    rng = make_rng(seed, "pool", "init-train")
    init_train = sorted(rest[i] for i in rng.permutation(len(rest))[:size])
    remain = [n for n in rest if n not in set(init_train)]
    return PoolState(tuple(init_train), tuple(dev), tuple(test), tuple(remain), tuple(excluded))
