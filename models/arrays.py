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

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import numpy as np

if TYPE_CHECKING:
    import torch

Array: TypeAlias = "np.ndarray | torch.Tensor"


def namespace(x: Array) -> ModuleType:
    """The array's module: numpy, or torch for a tensor."""
    return sys.modules[type(x).__module__.partition(".")[0]]


def is_numpy(x: Array) -> bool:
    return isinstance(x, np.ndarray | np.generic)


def asarray(value: Any, like: Array) -> Array:
    """``value`` (numbers, a numpy array) as an array of ``like``'s kind and device; numpy's
    dtype is kept (float64, int64)."""
    if is_numpy(like):
        return np.asarray(value)
    return namespace(like).as_tensor(np.asarray(value), device=like.device)


def astype(x: Array, dtype: str) -> Array:
    """``x`` converted to the dtype named ``dtype`` ("float32", "float64", "int64", "bool")."""
    if is_numpy(x):
        return x.astype(dtype)
    return x.to(getattr(namespace(x), dtype))


def zeros(shape: int | tuple[int, ...], dtype: str, like: Array) -> Array:
    if is_numpy(like):
        return np.zeros(shape, dtype)
    return namespace(like).zeros(shape, dtype=getattr(namespace(like), dtype), device=like.device)


def arange(n: int, like: Array) -> Array:
    """0 .. n-1 (int64) on ``like``'s device."""
    if is_numpy(like):
        return np.arange(n)
    return namespace(like).arange(n, device=like.device)


def norm(x: Array, keepdims: bool = False) -> Array:
    """Euclidean length along the last axis."""
    if is_numpy(x):
        return np.linalg.norm(x, axis=-1, keepdims=keepdims)
    return namespace(x).linalg.vector_norm(x, dim=-1, keepdim=keepdims)


def cross(a: Array, b: Array) -> Array:
    """Cross product along the last axis, broadcasting."""
    if is_numpy(a):
        return np.cross(a, b)
    torch = namespace(a)
    return torch.linalg.cross(*torch.broadcast_tensors(a, b))


def contiguous(x: Array) -> Array:
    return np.ascontiguousarray(x) if is_numpy(x) else x.contiguous()


class Random(Protocol):
    """The draws of numpy's ``Generator`` that the training-pair code makes; the torch pair
    generator's source (models/training/pairs_torch.py) has the same ones, as tensors."""

    def random(self, size: Any = None) -> Any: ...
    def uniform(self, low: float = 0.0, high: float = 1.0, size: Any = None) -> Any: ...
    def normal(self, loc: float = 0.0, scale: float = 1.0, size: Any = None) -> Any: ...
    def integers(self, low: int, high: int | None = None, size: Any = None) -> Any: ...
