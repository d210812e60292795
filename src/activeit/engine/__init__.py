"""The inference seam: every score and greedy label the method computes goes through an `Engine`.

`get_engine(name, lm)` binds a backend to a loaded model. Backends: `hf` (plain transformers,
the oracle and baseline), `native` (the CPU-optimised engine: shared-prefix KV reuse, length
planning, packed weights, worker threads), `vllm` (vLLM, an optional install, for GPUs). `auto`
picks `vllm` on a CUDA machine where vLLM is installed, `native` otherwise. New backends register
with `@register_engine(name)`; modules outside this package use only what is exported here.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable
from typing import Any

import torch

from activeit.engine.base import Engine, Finish, Generation, Target, TargetScore, Work, target_ids
from activeit.config import Config
from activeit.errors import ConfigError
from activeit.models import LoadedModel

__all__ = ["ENGINES", "Engine", "Finish", "Generation", "Target", "TargetScore", "Work", "configure_process",
           "engine_for", "engine_names", "get_engine", "register_engine", "resolve_engine_name", "target_ids"]

ENGINES: dict[str, Callable[..., Engine]] = {}
_MODULES = {"hf": "activeit.engine.hf", "native": "activeit.engine.native", "vllm": "activeit.engine.vllm"}
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
    """`auto`: vLLM where it is installed and a CUDA device is there to run it; native otherwise (on CPU
    native is the faster one: docs/engine.md)."""
    if name != "auto":
        return name
    return "vllm" if torch.cuda.is_available() and importlib.util.find_spec("vllm") is not None else "native"


def get_engine(name: str, lm: LoadedModel, **options: Any) -> Engine:
    """The backend `name` bound to `lm`. Options (e.g. `workers`) go to backends that take them;
    they decide how results are computed, never what they are."""
    name = resolve_engine_name(name)
    if name not in ENGINES and name in _MODULES:
        importlib.import_module(_MODULES[name])
    if name not in ENGINES:
        raise ConfigError(f"unknown engine {name!r}; one of {', '.join(engine_names())}")
    factory = ENGINES[name]
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is p.VAR_KEYWORD for p in params.values())
    return factory(lm, **{k: v for k, v in options.items() if takes_any or k in params})


def engine_for(cfg: Config, lm: LoadedModel) -> Engine:
    """The backend a run config names (`engine.name`, `engine.workers`, `engine.vllm`), bound to `lm`."""
    return get_engine(cfg.engine.name, lm, workers=cfg.engine.workers, vllm=cfg.engine.vllm)


def configure_process() -> bool:
    """Process-wide tuning the native engine benefits from (glibc allocator thresholds). A global
    side effect, so the CLI decides: it calls this once at start-up; a library user may or may not.
    Returns whether anything was changed."""
    return bool(importlib.import_module(_MODULES["native"]).configure_process())
