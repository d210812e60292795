"""Packed linear weights give the layers' own outputs, follow weight updates and leave no trace."""

from __future__ import annotations

import pytest
import torch

from activeit.engine.native import packing
from activeit.models import load_model

pytestmark = pytest.mark.skipif(not packing.available(torch.float32),
                                reason="oneDNN weight packing is not available in this torch build")


@pytest.fixture()
def tiny(tiny_causal_dir):
    return load_model(str(tiny_causal_dir), dtype="float32", device="cpu").model


def _logits(model, ids):
    with torch.inference_mode():
        return model(input_ids=ids).logits


def test_packed_model_gives_the_plain_outputs_and_restores_layers(tiny):
    ids = torch.tensor([[5, 9, 30, 7, 12, 40], [3, 3, 8, 60, 2, 11]])
    plain = _logits(tiny, ids)
    with torch.inference_mode(), packing.packed_linears(tiny) as active:
        packed = tiny(input_ids=ids).logits
        layers = [m for m in tiny.modules() if type(m) is torch.nn.Linear]
        assert active and layers and all("forward" in vars(m) for m in layers)
    assert torch.allclose(packed, plain, atol=1e-5, rtol=1e-5)
    assert all("forward" not in vars(m) for m in tiny.modules())


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_packed_linear_matches_f_linear_for_any_rows(dtype):
    if not packing.available(dtype):
        pytest.skip(f"oneDNN packing of {dtype} is not available here")
    torch.manual_seed(0)
    layer = torch.nn.Linear(40, 24).to(dtype)
    tol = 1e-5 if dtype == torch.float32 else 2e-2
    with torch.inference_mode(), packing.packed_linears(layer):
        for shape in [(1, 40), (8, 40), (3, 7, 40), (130, 40)]:
            x = torch.randn(shape).to(dtype)
            ref = torch.nn.functional.linear(x.float(), layer.weight.float(), layer.bias.float())
            assert torch.allclose(layer(x).float(), ref, atol=tol, rtol=tol)
        x = torch.randn(6, 2, 40).to(dtype)[:, 1]  # a strided view, as `hidden[:, -1]` in decoding
        assert torch.allclose(layer(x).float(), torch.nn.functional.linear(x, layer.weight, layer.bias).float(),
                              atol=tol, rtol=tol)


def test_weight_updates_are_repacked(tiny):
    ids = torch.tensor([[5, 9, 30, 7]])
    with torch.inference_mode(), packing.packed_linears(tiny):
        before = tiny(input_ids=ids).logits
    with torch.no_grad():
        for p in tiny.parameters():
            p.mul_(1.5)  # an optimizer step updates weights in place, as this does
    plain = _logits(tiny, ids)
    with torch.inference_mode(), packing.packed_linears(tiny):
        after = tiny(input_ids=ids).logits
    assert not torch.allclose(before, after, atol=1e-3)
    assert torch.allclose(after, plain, atol=1e-4, rtol=1e-4)


def test_switched_off_and_released(tiny, monkeypatch):
    with torch.inference_mode(), packing.packed_linears(tiny):
        pass
    head = tiny.get_output_embeddings()
    assert head in packing._cache
    packing.release(tiny)
    assert head not in packing._cache
    monkeypatch.setenv("ACTIVEIT_PACKED_LINEAR", "0")
    with packing.packed_linears(tiny) as active:
        assert not active and all("forward" not in vars(m) for m in tiny.modules())


def test_linear_subclasses_are_left_alone():
    class Scaled(torch.nn.Linear):
        def forward(self, x):
            return 2 * super().forward(x)

    model = torch.nn.Sequential(torch.nn.Linear(4, 4), Scaled(4, 4))
    x = torch.randn(3, 4)
    plain = model(x)
    with torch.inference_mode(), packing.packed_linears(model):
        assert "forward" in vars(model[0]) and "forward" not in vars(model[1])
        assert torch.allclose(model(x), plain, atol=1e-5)
