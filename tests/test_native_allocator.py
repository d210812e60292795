"""glibc allocator thresholds: applied once, and never against the user's own settings."""

from __future__ import annotations

import os
import platform

import pytest

import activeit.engine.native.allocator as allocator


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(allocator, "_done", None)
    for key in [k for k in os.environ if k.startswith("MALLOC_") or k == "GLIBC_TUNABLES"]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("ACTIVEIT_MALLOC_TUNING", raising=False)
    return monkeypatch


def test_opt_out_and_user_tunables_are_respected(fresh):
    fresh.setenv("ACTIVEIT_MALLOC_TUNING", "0")
    assert allocator.tune_allocator() is False
    fresh.setattr(allocator, "_done", None)
    fresh.delenv("ACTIVEIT_MALLOC_TUNING")
    fresh.setenv("MALLOC_ARENA_MAX", "2")
    assert allocator.tune_allocator() is False


def test_applied_once_per_process(fresh):
    calls = []
    fresh.setattr(allocator, "_apply", lambda: calls.append(1) or True)
    assert allocator.tune_allocator() and allocator.tune_allocator()
    assert calls == [1]


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_mallopt_accepts_the_thresholds_on_glibc(fresh):
    assert allocator.tune_allocator() is True
