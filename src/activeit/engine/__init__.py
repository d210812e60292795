"""The inference seam: every score and greedy label the method computes goes through an `Engine`.

`get_engine(name, lm)` binds a backend to a loaded model. Backends: `hf` (plain transformers,
the oracle and baseline), `native` (the CPU-optimised engine: shared-prefix KV reuse, length
planning, packed weights, worker threads). `auto` picks `native`. New backends register with
`@register_engine(name)`; modules outside this package use only what is exported here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from activeit.engine.base import Engine, Finish, Generation, Target, TargetScore, Work, target_ids
from activeit.models import LoadedModel

__all__ = ["ENGINES", "Engine", "Finish", "Generation", "Target", "TargetScore", "Work", "configure_process",
           "engine_names", "get_engine", "register_engine", "target_ids"]

ENGINES: dict[str, Callable[..., Engine]] = {}
_MODULES = {"hf": "activeit.engine.hf", "native": "activeit.engine.native"}
"""Built-in backends, imported when first asked for."""


def register_engine(name: str) -> Callable[[Callable[..., Engine]], Callable[..., Engine]]:
    def wrap(factory: Callable[..., Engine]) -> Callable[..., Engine]:
        if name in ENGINES:
            raise ValueError(f"engine {name!r} is already registered")
        ENGINES[name] = factory
        return factory
    return wrap


def engine_names() -> list[str]:
    return sorted({*ENGINES, *_MODULES, "auto"})


def resolve_engine_name(name: str) -> str:
    return "native" if name == "auto" else name


def get_engine(name: str, lm: LoadedModel, **options: Any) -> Engine:
    """The backend `name` bound to `lm`; options go to the backend (e.g. `workers` for native)."""
    name = resolve_engine_name(name)
    if name not in ENGINES and name in _MODULES:
        importlib.import_module(_MODULES[name])
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; one of {', '.join(engine_names())}")
    return ENGINES[name](lm, **options)


def configure_process() -> None:
    """Process-wide tuning the native engine benefits from (glibc allocator thresholds); the CLI
    calls it once at start-up, a library user may or may not."""
    from activeit.engine.native import configure_process as native_configure

    native_configure()
