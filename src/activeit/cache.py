"""Where activeit keeps derived files it can rebuild: converted GGUF models, task summaries."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """`cache_dir` if given, else `$ACTIVEIT_CACHE_DIR`, else `$XDG_CACHE_HOME/activeit` (~/.cache/activeit)."""
    if cache_dir:
        return Path(cache_dir).expanduser()
    env = os.environ.get("ACTIVEIT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "activeit"
