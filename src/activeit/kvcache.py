"""A KV cache for greedy decoding that writes each step into reserved room instead of re-concatenating.

transformers' `DynamicLayer` appends a step with `torch.cat`, copying the whole cache of every
layer on every decoding step: quadratic in the output length, and a fresh multi-MB allocation
per layer and step. Here the cache is allocated once with room for the prompt and all new
tokens, and each step writes its slots in place; attention reads a view. On the scoring
benchmark's labels (SmolLM2, ≤ 64 new tokens) that is 2-4 % of generation time, more for longer outputs.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer


class GrowingLayer(DynamicLayer):
    """A `DynamicLayer` whose keys/values are views into buffers with spare room along the sequence.

    `capacity` is the number of positions expected in all; past it the buffers double.
    """

    def __init__(self, capacity: int):
        super().__init__()
        self.capacity = capacity
        self._keys: torch.Tensor | None = None
        self._values: torch.Tensor | None = None
        self._length = 0

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        end = self._length + key_states.shape[-2]
        if self._keys is None or end > self._keys.shape[-2]:
            self._reserve(key_states, value_states, max(self.capacity, end, 2 * self._length))
        self._keys[:, :, self._length:end] = key_states
        self._values[:, :, self._length:end] = value_states
        self._length = end
        self._view()
        return self.keys, self.values

    def _reserve(self, key_states: torch.Tensor, value_states: torch.Tensor, capacity: int) -> None:
        rows, heads, _, dim = key_states.shape
        keys = key_states.new_empty((rows, heads, capacity, dim))
        values = value_states.new_empty((rows, heads, capacity, value_states.shape[-1]))
        if self._length:
            keys[:, :, :self._length] = self.keys
            values[:, :, :self._length] = self.values
        self._keys, self._values = keys, values

    def _view(self) -> None:
        self.keys = self._keys[:, :, :self._length]
        self.values = self._values[:, :, :self._length]

    def get_seq_length(self) -> int:
        return self._length

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        if self._keys is not None:
            self._keys, self._values = self._keys[indices], self._values[indices]
            self._view()

    def batch_repeat_interleave(self, repeats: int) -> None:
        raise NotImplementedError("GrowingLayer is for activeit's own decoding loop")

    def crop(self, tokens_to_remove: int) -> None:
        raise NotImplementedError("GrowingLayer is for activeit's own decoding loop")

    def reset(self) -> None:
        self._keys = self._values = None
        self._length = 0
        super().reset()


def growing_cache(config, capacity: int, kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
                  rows: int = 1) -> DynamicCache:
    """A cache of `GrowingLayer`s with room for `capacity` positions in all, holding `kv` (a batch-1
    prefix, broadcast to `rows`) if given."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer(capacity) for _ in cache.layers]
    if kv is not None:
        for layer, (k, v) in zip(cache.layers, kv):
            layer.update(k.expand(rows, -1, -1, -1), v.expand(rows, -1, -1, -1))
    return cache
