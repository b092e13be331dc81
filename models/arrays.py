"""Array code written once for numpy arrays and torch tensors (training pairs made on a GPU).

The limb features (models/features.py), the virtual cameras, the corruption model and the
pair generator (models/training/) use only what numpy and torch share: operators, indexing
(numpy index arrays index tensors too), methods with a positional axis (``x.sum(-1)``,
``x.any(-1)``), and the functions both modules have under one name and signature (``where``,
``stack``, ``concatenate``, ``einsum``, ``clip``, ``amax``, ``log``, ``deg2rad`` ...), reached
through ``namespace(x)``. The few operations that differ are here. So the torch pair generator
(models/training/pairs_torch.py) runs the numpy generator's own code on a device, and one
definition serves both. The runtime never imports torch: a tensor's module is found from
its type.
"""

from __future__ import annotations

import math
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import numpy as np

if TYPE_CHECKING:
    import torch

Array: TypeAlias = "np.ndarray | torch.Tensor"


def is_torch(x: Any) -> bool:
    return type(x).__module__.partition(".")[0] == "torch"


def namespace(x: Array) -> ModuleType:
    """The array's module: torch for a tensor, numpy for anything else (lists too)."""
    return sys.modules["torch"] if is_torch(x) else np


def asarray(value: Any, like: Array) -> Array:
    """``value`` (numbers, a numpy array) as an array of ``like``'s kind and device; numpy's
    dtype is kept (float64, int64)."""
    if is_torch(like):
        return namespace(like).as_tensor(np.asarray(value), device=like.device)
    return np.asarray(value)


def astype(x: Array, dtype: str) -> Array:
    """``x`` converted to the dtype named ``dtype`` ("float32", "float64", "int64", "bool")."""
    if is_torch(x):
        return x.to(getattr(namespace(x), dtype))
    return x.astype(dtype)


def zeros(shape: int | tuple[int, ...], dtype: str, like: Array) -> Array:
    if is_torch(like):
        torch = namespace(like)
        return torch.zeros(shape, dtype=getattr(torch, dtype), device=like.device)
    return np.zeros(shape, dtype)


def arange(n: int, like: Array) -> Array:
    """0 .. n-1 (int64) on ``like``'s device."""
    if is_torch(like):
        return namespace(like).arange(n, device=like.device)
    return np.arange(n)


def norm(x: Array, keepdims: bool = False) -> Array:
    """Euclidean length along the last axis."""
    if is_torch(x):
        return namespace(x).linalg.vector_norm(x, dim=-1, keepdim=keepdims)
    return np.linalg.norm(x, axis=-1, keepdims=keepdims)


def cross(a: Array, b: Array) -> Array:
    """Cross product along the last axis, broadcasting."""
    if is_torch(a):
        torch = namespace(a)
        return torch.linalg.cross(*torch.broadcast_tensors(a, b))
    return np.cross(a, b)


def clip_min(x: Array, low: float) -> Array:
    """``clip(x, low, None)``; numpy's is ``maximum`` behind ~2 us of dispatch: call that."""
    return x.clamp(min=low) if is_torch(x) else np.maximum(x, low)


def contiguous(x: Array) -> Array:
    return x.contiguous() if is_torch(x) else np.ascontiguousarray(x)


def vector_length(v: np.ndarray) -> float:
    """``float(np.linalg.norm(v))`` of a 1-D float vector by numpy's own arithmetic there
    (the square root of ``v.dot(v)``), without its ~2 us of checks (numpy only)."""
    return math.sqrt(v.dot(v))


def nan_to_num(x: np.ndarray) -> np.ndarray:
    """``np.nan_to_num(x)`` (numpy only), or ``x`` itself when it is all finite: the usual
    case per frame, where the check costs a fifth of numpy's copy-and-replace. Read-only use."""
    return x if np.isfinite(x).all() else np.nan_to_num(x)


class Random(Protocol):
    """The draws of numpy's ``Generator`` that the training-pair code makes; the torch pair
    generator's source (models/training/pairs_torch.py) has the same ones, as tensors."""

    def random(self, size: Any = None) -> Any: ...
    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None) -> Any: ...
    def normal(self, loc: float = 0.0, scale: float = 1.0, size: Any = None) -> Any: ...
    def integers(self, low: int, high: int | None = None, size: Any = None) -> Any: ...
