"""Engine workers: results in item order, inference mode and a fair share of intra-op threads in
each worker, the caller's thread count restored, errors raised to the caller."""

from __future__ import annotations

import threading

import pytest
import torch

from activeit.errors import ConfigError
from activeit.engine.native.workers import SERIAL, default_workers, worker_pool


def test_default_workers(monkeypatch):
    monkeypatch.delenv("ACTIVEIT_WORKERS", raising=False)
    assert default_workers("cuda") == 1
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert default_workers("cpu") == 1
        torch.set_num_threads(4)
        assert default_workers("cpu") == 2
        monkeypatch.setenv("ACTIVEIT_WORKERS", "3")
        assert default_workers("cpu") == 3
        for bad in ("two", "0", "-1"):
            monkeypatch.setenv("ACTIVEIT_WORKERS", bad)
            with pytest.raises(ConfigError, match="ACTIVEIT_WORKERS"):
                default_workers("cpu")
    finally:
        torch.set_num_threads(threads)


def test_worker_pool_runs_in_order_on_worker_threads():
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        seen = []

        def piece(i: int) -> tuple[int, int, bool]:
            seen.append(threading.current_thread().name)
            return i * i, torch.get_num_threads(), torch.is_inference_mode_enabled()

        with worker_pool(2, "cpu") as pool:
            assert pool.n == 2
            out = list(pool.map(piece, range(20)))
        assert [o[0] for o in out] == [i * i for i in range(20)]
        assert {o[1] for o in out} == {2} and all(o[2] for o in out)
        assert all(name.startswith("activeit-engine") for name in seen)
        assert torch.get_num_threads() == 4
        with worker_pool(2, "cpu") as pool:  # a lone piece keeps the caller's thread and all its threads
            seen.clear()
            assert list(pool.map(piece, [3])) == [(9, 4, False)]
            assert seen == [threading.current_thread().name]
        with worker_pool(1, "cpu") as pool:
            assert pool is SERIAL and pool.map is map
        with worker_pool(2, "meta") as pool:
            assert pool is SERIAL
    finally:
        torch.set_num_threads(threads)


def test_worker_pool_raises_errors_and_rejects_zero():
    def piece(i: int) -> int:
        if i == 3:
            raise RuntimeError("piece 3 failed")
        return i

    with pytest.raises(RuntimeError, match="piece 3"), worker_pool(2, "cpu") as pool:
        list(pool.map(piece, range(6)))
    with pytest.raises(ValueError, match="workers"), worker_pool(0, "cpu"):
        pass
