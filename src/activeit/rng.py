"""Named random streams: every random choice is seeded from (run seed, purpose, ...).

No global RNG state is ever used, so scoring one task alone draws the same numbers as
scoring it with the whole pool, and a resumed run draws what an uninterrupted one did.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_int(value: object) -> int:
    """A process-independent 64-bit integer for a key (Python's ``hash`` is salted per process)."""
    digest = hashlib.sha256(repr(value).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little")


def make_rng(seed: int, *keys: object) -> np.random.Generator:
    """A generator that depends only on ``seed`` and the ``keys`` naming its purpose."""
    entropy = [int(seed) & 0xFFFFFFFFFFFFFFFF] + [stable_int(k) for k in keys]
    return np.random.default_rng(np.random.SeedSequence(entropy))
