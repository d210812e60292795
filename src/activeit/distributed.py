"""Several processes of one launch (`accelerate launch -m activeit ...`, `torchrun`): who writes, who waits.

Training runs on every process (the Trainer's data parallelism). Evaluation and scoring split
their prompts or tasks over the processes and the main process gathers the results; every file
is written by the main process only, and everyone waits at a barrier after each step. With one
process every function here is a no-op, so nothing changes for a plain `activeit` call.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def is_main() -> bool:
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


@functools.cache
def _state() -> Any:
    """accelerate's process state; it sets up the process group (gloo on CPU, nccl on GPUs) once.

    Without `cpu=True` on a machine without CUDA it would see one process and never wait.
    """
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    if state.num_processes != world_size():
        raise RuntimeError(f"accelerate sees {state.num_processes} processes but WORLD_SIZE is {world_size()}")
    return state


def barrier() -> None:
    if world_size() > 1:
        _state().wait_for_everyone()


def shard(items: Sequence[T]) -> list[T]:
    """This process's share: every `world_size`-th item from its rank on."""
    return list(items[rank()::world_size()])


def gather(mine: list[T]) -> list[T]:
    """Every process's `shard` results put back in the order of the sharded sequence."""
    size = world_size()
    if size == 1:
        return list(mine)
    import torch.distributed as dist

    _state()
    parts: list[list[T]] = [[] for _ in range(size)]
    dist.all_gather_object(parts, mine)
    return interleave(parts)


def interleave(parts: Sequence[Sequence[T]]) -> list[T]:
    """Undo `shard`: part r holds items r, r + n, r + 2n, ... of the original sequence."""
    n = len(parts)
    out: list[T] = [None] * sum(len(p) for p in parts)  # type: ignore[list-item]
    for r, part in enumerate(parts):
        out[r::n] = part
    return out
