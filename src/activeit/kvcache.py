"""A KV cache for greedy decoding that writes each step into reserved room instead of re-concatenating.

transformers' `DynamicLayer` appends a step with `torch.cat`, copying the whole cache of every
layer on every decoding step: quadratic in the output length, and a fresh multi-MB allocation
per layer and step. Here the cache is allocated once with room for the prompt and all new
tokens, and each step writes its slots in place; attention reads a view. The saving grows
with the output length.
`aligned_cache` lays out prompts prefilled separately (without padding) as one batch would
hold them left-padded: every row's prefix and prompt ending at the same slot, the free slots
in front of them zero (and masked).
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

    def allocate(self, like_keys: torch.Tensor, like_values: torch.Tensor, rows: int, length: int) -> None:
        """Zeroed room for `rows` rows that holds `length` positions, to be filled in with `write`
        (zeros, not garbage, in slots never written: a masked slot's value still meets a zero weight)."""
        self.lazy_initialization(like_keys, like_values)
        room = max(self.capacity, length)
        self._keys = like_keys.new_zeros((rows, like_keys.shape[1], room, like_keys.shape[-1]))
        self._values = like_values.new_zeros((rows, like_values.shape[1], room, like_values.shape[-1]))
        self._length = length
        self._view()

    def write(self, row: int | slice, start: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Put keys/values (heads × positions × dim, or rows × ...) at positions `start`... of `row`."""
        end = start + keys.shape[-2]
        if end > self._length:
            raise ValueError(f"writing positions up to {end} into a layer that holds {self._length}")
        self._keys[row, :, start:end] = keys
        self._values[row, :, start:end] = values

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


def aligned_cache(config, capacity: int, like: list[tuple[torch.Tensor, torch.Tensor]], rows: int,
                  length: int) -> DynamicCache:
    """A cache of zeroed `GrowingLayer`s for `rows` rows that holds `length` positions (room for
    `capacity`), shaped like the per-layer `like` keys/values; fill it with `GrowingLayer.write`."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer(capacity) for _ in cache.layers]
    for layer, (k, v) in zip(cache.layers, like):
        layer.allocate(k, v, rows, length)
    return cache
