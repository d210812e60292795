"""The growing KV cache holds what transformers' concatenating cache holds, without re-allocating per step."""

from __future__ import annotations

import pytest
import torch
from transformers import DynamicCache

from activeit.kvcache import GrowingLayer, aligned_cache
from activeit.models import load_model


def _steps(rows: int, lengths: list[int], seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(rows, 2, n, 4, generator=gen), torch.randn(rows, 2, n, 4, generator=gen)) for n in lengths]


def test_updates_equal_concatenation_and_write_in_place_within_room():
    layer = GrowingLayer(capacity=9)
    steps = _steps(3, [5, 1, 1, 2])
    keys, values = layer.update(*steps[0])
    buffer = keys.data_ptr()
    for k, v in steps[1:]:
        keys, values = layer.update(k, v)
    assert keys.data_ptr() == buffer  # no new allocation while the room lasts
    assert torch.equal(keys, torch.cat([k for k, _ in steps], dim=2))
    assert torch.equal(values, torch.cat([v for _, v in steps], dim=2))
    assert layer.get_seq_length() == 9


def test_grows_past_its_capacity_and_keeps_the_contents():
    layer = GrowingLayer(capacity=4)
    steps = _steps(2, [3, 1, 1, 4, 1])
    for k, v in steps:
        keys, _ = layer.update(k, v)
    assert keys.shape[2] == 10 and torch.equal(keys, torch.cat([k for k, _ in steps], dim=2))


def test_batch_select_keeps_the_chosen_rows_and_their_room():
    layer = GrowingLayer(capacity=5)
    steps = _steps(4, [3, 1])
    for k, v in steps:
        layer.update(k, v)
    layer.batch_select_indices(torch.tensor([0, 2]))
    k3, v3 = _steps(2, [1], seed=1)[0]
    keys, values = layer.update(k3, v3)
    want = torch.cat([steps[0][0][[0, 2]], steps[1][0][[0, 2]], k3], dim=2)
    assert torch.equal(keys, want) and keys.shape[0] == 2 and layer.get_seq_length() == 5


def test_aligned_cache_holds_what_is_written_and_zeros_elsewhere(tiny_causal_dir):
    """A prefix broadcast to every row, rows of different lengths right-aligned after it."""
    config = load_model(str(tiny_causal_dir), dtype="float32", device="cpu").model.config
    prefix = _steps(1, [3] * config.num_hidden_layers)
    rows = _steps(2, [4] * config.num_hidden_layers, seed=1)
    cache = aligned_cache(config, capacity=10, like=prefix, rows=2, length=7)
    assert cache.get_seq_length() == 7 and all(type(layer) is GrowingLayer for layer in cache.layers)
    for layer, (pk, pv), (rk, rv) in zip(cache.layers, prefix, rows):
        layer.write(slice(None), 0, pk, pv)
        layer.write(0, 3, rk[0], rv[0])  # 4 positions
        layer.write(1, 5, rk[1, :, :2], rv[1, :, :2])  # 2 positions, after 2 empty slots
        assert torch.equal(layer.keys[:, :, :3], pk.expand(2, -1, -1, -1))
        assert torch.equal(layer.values[0, :, 3:], rv[0]) and torch.equal(layer.keys[1, :, 5:], rk[1, :, :2])
        assert not layer.keys[1, :, 3:5].any() and not layer.values[1, :, 3:5].any()
        with pytest.raises(ValueError):
            layer.write(0, 6, rk[0], rv[0])  # past the positions the layer holds
    k, v = _steps(2, [1], seed=2)[0]
    keys, _ = cache.layers[0].update(k, v)  # decoding goes on in the room after them
    assert keys.shape[2] == 8 and torch.equal(keys[:, :, 7:], k)


def test_a_model_decodes_the_same_with_either_cache(tiny_causal_dir):
    model = load_model(str(tiny_causal_dir), dtype="float32", device="cpu").model
    ids = torch.tensor([[5, 9, 30, 7, 12, 40], [3, 3, 8, 60, 2, 11]])

    def decode(cache):
        out, step = [], ids
        with torch.inference_mode():
            for _ in range(5):
                logits = model(input_ids=step, cache=cache, use_cache=True).logits[:, -1]
                step = logits.argmax(-1, keepdim=True)
                out.append(logits)
        return torch.stack(out)

    plain = decode(DynamicCache(config=model.config))
    growing = DynamicCache(config=model.config)
    growing.layers = [GrowingLayer(capacity=3) for _ in growing.layers]  # too little room: it must grow on the way
    growing = decode(growing)
    assert torch.allclose(plain, growing, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("method", ["crop", "batch_repeat_interleave"])
def test_unsupported_cache_edits_fail_loudly(method):
    with pytest.raises(NotImplementedError):
        getattr(GrowingLayer(capacity=1), method)(1)
