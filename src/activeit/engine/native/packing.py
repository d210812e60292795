"""oneDNN-packed weights for the `nn.Linear` layers of a CPU model, used inside engine calls.

`F.linear` on CPU multiplies against the weight in its plain layout; oneDNN's blocked layout,
packed once, runs the same products faster, most of all the few-row products of a decoding
step (`activeit bench scoring` prints the ratios it measures on the machine at hand). The
packed copies are cached per layer and re-packed when the weight changes (training bumps its
version counter), so they cost one extra copy of the linear weights while the model lives;
`release` drops them. Off CPU, for other dtypes, where the ops are missing, or with
ACTIVEIT_PACKED_LINEAR=0, layers run as they are.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

_DTYPES = (torch.float32, torch.bfloat16)
_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""nn.Linear -> (weight data pointer, weight version, packed weight)."""
_checked: dict[torch.dtype, bool] = {}


def _ops_agree(dtype: torch.dtype) -> bool:
    """Whether the packed product matches `F.linear` on this build and CPU (checked once per dtype)."""
    if dtype not in _checked:
        ok = False
        try:
            gen = torch.Generator().manual_seed(0)
            w = torch.randn(48, 40, generator=gen).to(dtype)
            b = torch.randn(48, generator=gen).to(dtype)
            x = torch.randn(2, 5, 40, generator=gen).to(dtype)
            packed = torch.ops.mkldnn._reorder_linear_weight(w)
            y = torch.ops.mkldnn._linear_pointwise(x, packed, b, "none", [], "")
            ref = F.linear(x.float(), w.float(), b.float())
            tol = 1e-4 if dtype == torch.float32 else 5e-2
            ok = y.shape == ref.shape and torch.allclose(y.float(), ref, atol=tol, rtol=tol)
        except (AttributeError, RuntimeError, NotImplementedError):
            ok = False
        _checked[dtype] = ok
    return _checked[dtype]


def available(dtype: torch.dtype = torch.float32) -> bool:
    """Packing works for this dtype here: oneDNN present, products agree with `F.linear`, not switched off."""
    return (os.environ.get("ACTIVEIT_PACKED_LINEAR", "1") != "0" and torch.backends.mkldnn.is_available()
            and dtype in _DTYPES and _ops_agree(dtype))


def _packed(layer: torch.nn.Linear) -> torch.Tensor:
    weight = layer.weight
    key = (weight.data_ptr(), weight._version)
    hit = _cache.get(layer)
    if hit is not None and hit[:2] == key:
        return hit[2]
    with torch.no_grad():
        packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach())
    _cache[layer] = (*key, packed)
    return packed


def _packable(layer: Any) -> bool:
    if type(layer) is not torch.nn.Linear or "forward" in vars(layer):
        return False
    weight, bias = layer.weight, layer.bias
    return weight.device.type == "cpu" and available(weight.dtype) and (bias is None or bias.dtype == weight.dtype)


@contextmanager
def packed_linears(model: Any) -> Iterator[bool]:
    """Run the model's plain `nn.Linear` layers on packed weights for the duration (inference only:
    the packed product has no autograd). Yields whether packing is in effect."""
    layers = [m for m in model.modules() if _packable(m)]
    for layer in layers:
        weight, bias = _packed(layer), layer.bias
        layer.forward = lambda x, w=weight, b=bias: torch.ops.mkldnn._linear_pointwise(x, w, b, "none", [], "")
    try:
        yield bool(layers)
    finally:
        for layer in layers:
            del layer.forward


def release(model: Any) -> None:
    """Drop the cached packed weights of a model's layers (they are rebuilt on the next engine call)."""
    for m in model.modules():
        _cache.pop(m, None)
