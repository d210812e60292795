"""Independent pieces of one engine call (prefix passes, micro-batches) run side by side on CPU.

One forward pass at a time on all cores leaves them idle while Python runs the model code
between kernels, and the many small element-wise ops scale poorly across threads. Two worker
threads with half the intra-op threads each overlap one pass's Python with the other's kernels
(`benchmarks/workers.py` measures it against one worker). Every worker has the same number of
intra-op threads, so which worker runs a piece does not change its numbers: results are the
same from run to run. A lone piece (a list of one) runs on the caller's thread with all of its
threads. Off CPU, or with a single intra-op thread, pieces run one after another.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import torch

from activeit.errors import ConfigError

T = TypeVar("T")
R = TypeVar("R")

MAX_AUTO_WORKERS = 2


@dataclass(frozen=True)
class Workers:
    """`map(fn, items)`: lazy results in item order, computed by `n` threads (worker threads enter
    `torch.inference_mode` themselves; a list of one item, and everything with `SERIAL`, runs in
    the caller's thread and mode)."""

    n: int
    map: Callable[[Callable[[T], R], Iterable[T]], Iterator[R]]


SERIAL = Workers(1, map)


def default_workers(device: torch.device | str) -> int:
    """Workers for an engine call: 2 on CPU with ≥ 2 intra-op threads (ACTIVEIT_WORKERS overrides), else 1."""
    if torch.device(device).type != "cpu":
        return 1
    env = os.environ.get("ACTIVEIT_WORKERS")
    if env:
        n = int(env) if env.strip().isdigit() else 0
        if n < 1:
            raise ConfigError(f"ACTIVEIT_WORKERS={env!r}: expected a whole number ≥ 1")
        return n
    return max(1, min(MAX_AUTO_WORKERS, torch.get_num_threads()))


@contextmanager
def worker_pool(workers: int | None, device: torch.device | str) -> Iterator[Workers]:
    """`workers` threads (None: `default_workers`) sharing this thread's intra-op threads; with one
    worker, or off CPU, `SERIAL` (the calling thread, the built-in `map`)."""
    n = default_workers(device) if workers is None else workers
    if n < 1:
        raise ValueError(f"workers must be ≥ 1, got {n}")
    total = torch.get_num_threads()
    if n == 1 or torch.device(device).type != "cpu":
        yield SERIAL
        return
    each = max(1, total // n)

    def pmap(fn: Callable[[T], R], items: Iterable[T]) -> Iterator[R]:
        def run(item: T) -> R:
            with torch.inference_mode():
                return fn(item)

        if isinstance(items, Sequence) and len(items) == 1:  # alone, a piece gets all the threads
            return map(fn, items)
        return pool.map(run, items)

    pool = ThreadPoolExecutor(n, thread_name_prefix="activeit-engine", initializer=torch.set_num_threads,
                              initargs=(each,))
    try:
        yield Workers(n, pmap)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(total)  # the workers changed the default that new threads start with
