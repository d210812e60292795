"""Keep glibc from returning and re-faulting the engine's large temporary buffers.

A forward pass allocates and frees activations of tens of MB per layer. With glibc's default
(dynamic) thresholds such blocks are mmapped, or trimmed off the heap top as soon as they are
freed, so every layer page-faults them in again, and the faults cost more than the kernels
they feed on small models. Fixing the mmap threshold at 32 MB and keeping up to 64 MB of free
heap makes the blocks reusable (docs/performance.md).
Process-wide and idempotent; skipped off glibc, when the user set MALLOC_* tunables, or with
ACTIVEIT_MALLOC_TUNING=0.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
"""glibc's largest allowed mmap threshold on 64-bit systems."""
TRIM_THRESHOLD = 64 << 20

_done: bool | None = None


def tune_allocator() -> bool:
    """Apply the thresholds once per process; True if they are in effect."""
    global _done
    if _done is None:
        _done = _apply()
    return _done


def _apply() -> bool:
    if os.environ.get("ACTIVEIT_MALLOC_TUNING", "1") == "0":
        return False
    if any(k.startswith("MALLOC_") for k in os.environ) or "GLIBC_TUNABLES" in os.environ:
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD,
                                                                                            TRIM_THRESHOLD))
    except (OSError, AttributeError):
        return False
