"""Conversion between user arrays and otmetrics' internal types: the one small layer behind
"numpy in, numpy out; torch in, torch out".

- numpy (or anything array-like: lists, scalars) in -> numpy ``float64`` out;
- torch in -> torch out, on the same device and in the same floating dtype
  (integer tensors are promoted to ``float64``).

torch is imported lazily: if the caller never imported it, nothing here is a tensor, and
``import otmetrics`` stays cheap for numpy-only users. Validation (bad input raises
``ValueError("<argument>: <what is wrong>, got <value>")``) lives in :mod:`.validation`.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

__all__ = [
    "is_tensor",
    "first_tensor",
    "to_numpy",
    "as_like",
    "as_float_tensor",
    "as_float64_tensor",
    "describe",
    "batch_size",
    "uniform_weights",
    "pth_root",
    "exact_scale",
]


# ----------------------------------------------------------------------------------------------
# Type tests and conversions
# ----------------------------------------------------------------------------------------------
def _torch():
    return sys.modules.get("torch")


def is_tensor(x: Any) -> bool:
    """True when ``x`` is a ``torch.Tensor`` (without importing torch)."""
    torch = _torch()
    return torch is not None and isinstance(x, torch.Tensor)


def first_tensor(*xs: Any):
    """The first argument that is a ``torch.Tensor``, or ``None``: it decides the output type."""
    for x in xs:
        if is_tensor(x):
            return x
    return None


def to_numpy(x: Any, name: str = "x", dtype=np.float64) -> np.ndarray:
    """Convert an array-like or a tensor to a numpy array of ``dtype`` (detached, on the CPU).

    Raises ``ValueError`` naming ``name`` when the values are not numeric.
    """
    if is_tensor(x):
        x = x.detach()
        if x.is_complex():
            raise ValueError(f"{name}: complex values are not supported, got dtype {x.dtype}")
        x = x.to("cpu")
        if x.dtype == _torch().bfloat16:  # numpy has no bfloat16
            x = x.float()
        return x.numpy().astype(dtype, copy=False)
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name}: could not be read as a numeric array ({exc})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise ValueError(f"{name}: expected numeric values, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise ValueError(f"{name}: complex values are not supported, got dtype {arr.dtype}")
    return arr.astype(dtype, copy=False)


def as_float_tensor(x: Any, name: str = "x", like=None):
    """Return ``x`` as a floating torch tensor.

    Tensors keep their device and floating dtype (integer/bool tensors become ``float64``);
    arrays become tensors with the dtype and device of ``like`` if given, else ``float64`` on the CPU.
    """
    import torch

    if is_tensor(x):
        return x if x.is_floating_point() else x.to(torch.float64)
    arr = to_numpy(x, name)
    if like is not None:
        return torch.as_tensor(arr, dtype=like.dtype, device=like.device)
    return torch.from_numpy(np.ascontiguousarray(arr))


def as_float64_tensor(x: Any, name: str = "x", device=None):
    """Return ``x`` as a detached ``float64`` torch tensor on ``device``.

    For values that are data, not a graph (moments, accumulated statistics): tensors are detached
    and converted (on their own device when ``device`` is ``None``); arrays and array-likes become
    tensors on ``device`` (the CPU when ``None``). Complex or non-numeric values raise
    ``ValueError`` naming ``name``.

    Examples
    --------
    >>> import torch
    >>> t = as_float64_tensor([1, 2], "mean")
    >>> t.dtype, t.device.type
    (torch.float64, 'cpu')
    >>> as_float64_tensor(torch.ones(2, requires_grad=True)).requires_grad
    False
    """
    import torch

    if is_tensor(x):
        if x.is_complex():
            raise ValueError(f"{name}: complex values are not supported, got dtype {x.dtype}")
        return x.detach().to(device=device, dtype=torch.float64)
    return torch.as_tensor(to_numpy(x, name), dtype=torch.float64, device=device)


def as_like(value: Any, like):
    """Return ``value`` (numpy/scalar) in the caller's type.

    ``like`` is a tensor -> a tensor on ``like``'s device with ``like``'s floating dtype
    (``float64`` if ``like`` is not floating); otherwise a numpy ``float64`` array, or a
    Python ``float`` when ``value`` is a 0-d scalar.
    """
    if like is not None and is_tensor(like):
        import torch

        dtype = like.dtype if like.is_floating_point() else torch.float64
        if is_tensor(value):
            return value.to(device=like.device, dtype=dtype)
        return torch.as_tensor(np.asarray(value), dtype=dtype, device=like.device)
    arr = np.asarray(value, dtype=np.float64)
    return float(arr) if arr.ndim == 0 else arr


def describe(x: Any) -> str:
    """A short human description of a value for error messages: its shape or its repr."""
    shape = getattr(x, "shape", None)
    if shape is not None:
        return f"shape {tuple(shape)}"
    return repr(x)


def batch_size(name: str, x, core_ndim: int):
    """The size of ``x``'s one optional leading batch axis: ``None`` when ``x`` has ``core_ndim``
    dimensions, ``x.shape[0]`` with one more, a ``ValueError`` naming ``name`` with more than one."""
    extra = x.ndim - core_ndim
    if extra == 0:
        return None
    if extra == 1:
        return x.shape[0]
    raise ValueError(f"{name}: at most one leading batch axis is supported, got shape {tuple(x.shape)}")




def uniform_weights(n: int, like=None):
    """Uniform weights ``1/n`` as numpy ``float64``, or as a tensor matching ``like``."""
    if like is not None and is_tensor(like):
        import torch

        dtype = like.dtype if like.is_floating_point() else torch.float64
        return torch.full((n,), 1.0 / n, dtype=dtype, device=like.device)
    return np.full(n, 1.0 / n)




def pth_root(value, p: float):
    """``max(value, 0) ** (1 / p)`` for floats, arrays and tensors; for tensors the gradient at 0 is 0
    (a subgradient) rather than the ``inf * 0 = nan`` of the plain power."""
    if is_tensor(value):
        import torch

        positive = value > 0
        safe = torch.where(positive, value, torch.ones_like(value))
        return torch.where(positive, safe ** (1.0 / p), torch.zeros_like(value))
    root = np.maximum(value, 0.0) ** (1.0 / p)
    return float(root) if np.ndim(root) == 0 else root


def exact_scale(*xs, low: float = 1e-100, high: float = 1e100) -> float:
    """A power of two ``s`` to divide ``xs`` by before squaring or powering them, or ``1.0``.

    ``1.0`` when the largest ``|x|`` lies in ``[low, high]`` (nothing to fear); otherwise ``2**k``
    with the largest ``|x / s|`` in ``[1, 2)``, so that powers neither overflow nor underflow.
    Dividing by a power of two is exact (barring subnormals), so ``f(x) = s f(x / s)`` holds to the
    last bit for positively homogeneous ``f`` (distances). ``None`` entries are skipped; all zeros
    give ``1.0``.

    Examples
    --------
    >>> exact_scale(np.array([3.0, -1e300])) == 2.0**996
    True
    >>> exact_scale([1.0, 2.0])
    1.0
    """
    largest = 0.0
    for x in xs:
        if x is None:
            continue
        if is_tensor(x):
            largest = max(largest, float(x.detach().abs().max())) if x.numel() else largest
        else:
            arr = np.asarray(x)
            largest = max(largest, float(np.abs(arr).max())) if arr.size else largest
    if largest == 0.0 or low <= largest <= high:
        return 1.0
    return float(np.ldexp(1.0, int(np.frexp(largest)[1]) - 1))
