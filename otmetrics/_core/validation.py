"""Validation of user input, shared by every public function.

Bad input raises ``ValueError("<argument>: <what is wrong>, got <value>")``, naming the argument.
Works on numpy arrays and on torch tensors without moving tensors to the host (only scalar
reductions are read back).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .arrays import describe, is_tensor, to_numpy

__all__ = [
    "all_finite",
    "validate_array",
    "validate_weights",
    "validate_cost",
    "validate_samples",
    "validate_p",
    "validate_positive",
    "validate_same_mass",
    "validate_weighted_clouds",
]


def _reduce(x, op: str) -> float:
    if is_tensor(x):
        return float(getattr(x.detach(), op)())
    return float(getattr(np, op)(x))


def all_finite(x) -> bool:
    """True when every entry of ``x`` (array or tensor, on any device) is finite.

    Floating inputs are checked through their minimum and maximum (which propagate NaN and are infinite
    when an entry is): one reduction, about 15 times faster than an element-wise test on large inputs.
    """
    if is_tensor(x):
        import torch

        if x.is_floating_point() and x.numel():
            return all(bool(torch.isfinite(t)) for t in torch.aminmax(x))
        return bool(torch.isfinite(x).all())
    if isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.size:
        return bool(np.isfinite(x.min()) and np.isfinite(x.max()))
    return bool(np.isfinite(x).all())


def _first_nonfinite(x) -> str:
    flat = to_numpy(x).ravel()
    bad = flat[~np.isfinite(flat)]
    return repr(float(bad[0])) if bad.size else "?"


def validate_array(x: Any, name: str, *, ndim: int | tuple[int, ...] | None = None, what: str = "values",
                   allow_empty: bool = False):
    """Check that ``x`` is numeric, finite, of an accepted number of dimensions and not empty.

    Returns ``x`` as a numpy ``float64`` array, or unchanged (promoted to floating) if it is a tensor.
    """
    if is_tensor(x):
        if x.is_complex():
            raise ValueError(f"{name}: complex values are not supported, got dtype {x.dtype}")
        if not x.is_floating_point():
            import torch

            x = x.to(torch.float64)
    else:
        x = to_numpy(x, name)
    if ndim is not None:
        accepted = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in accepted:
            dims = " or ".join(str(d) for d in accepted)
            raise ValueError(f"{name}: expected {dims} dimension(s), got {x.ndim} ({describe(x)})")
    if not allow_empty and any(s == 0 for s in x.shape):
        raise ValueError(f"{name}: must not be empty, got {describe(x)}")
    if not all_finite(x):
        raise ValueError(f"{name}: {what} must be finite, got {_first_nonfinite(x)}")
    return x


def validate_weights(a: Any, name: str, *, ndim: int | tuple[int, ...] = (1, 2), size: int | None = None):
    """Validate non-negative finite weights with positive total mass along the last axis.

    Parameters
    ----------
    a : array-like or tensor, shape ``(n,)`` or ``(..., n)``
    name : the argument's name, used in error messages.
    ndim : accepted numbers of dimensions.
    size : if given, the required length of the last axis.
    """
    a = validate_array(a, name, ndim=ndim, what="weights")
    if size is not None and a.shape[-1] != size:
        raise ValueError(f"{name}: expected {size} weights along the last axis, got {a.shape[-1]}")
    low = _reduce(a, "min")
    if low < 0:
        raise ValueError(f"{name}: weights must be non-negative, got min {low:.6g}")
    total = a.sum(-1)
    low_total = _reduce(total, "min")
    if low_total <= 0:
        raise ValueError(f"{name}: total mass must be positive, got {low_total:.6g}")
    return a


def validate_cost(cost: Any, name: str = "cost", *, ndim: int | tuple[int, ...] = (2, 3)):
    """Validate a finite cost matrix ``(n, m)`` or a batch ``(B, n, m)``."""
    return validate_array(cost, name, ndim=ndim, what="costs")


def validate_samples(x: Any, name: str, *, min_samples: int = 1, dim: int | None = None):
    """Validate samples as a 2-D ``(n, d)`` array; a 1-D input is read as ``n`` points in 1-D.

    Raises when there are fewer than ``min_samples`` points, non-finite coordinates or,
    when ``dim`` is given, a different number of coordinates.
    """
    x = validate_array(x, name, ndim=(1, 2), what="coordinates")
    if x.ndim == 1:
        x = x[:, None]
    if x.shape[0] < min_samples:
        raise ValueError(f"{name}: need at least {min_samples} samples, got {x.shape[0]}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name}: expected points of dimension {dim}, got {x.shape[1]}")
    return x


def validate_p(p: Any, name: str = "p") -> float:
    """The order of a Wasserstein distance / the power of a cost: a finite real ``>= 1``."""
    if isinstance(p, bool) or not isinstance(p, numbers.Real):
        raise ValueError(f"{name}: must be a real number >= 1, got {p!r}")
    p = float(p)
    if not np.isfinite(p) or p < 1:
        raise ValueError(f"{name}: must be a finite number >= 1, got {p!r}")
    return p


def validate_positive(value: Any, name: str, *, allow_zero: bool = False, integer: bool = False):
    """A finite positive scalar (``> 0``, or ``>= 0`` with ``allow_zero``); optionally an integer."""
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        what = "an integer" if integer else "a real number"
        raise ValueError(f"{name}: must be {what}, got {value!r}")
    if not np.isfinite(float(value)) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: must be finite and {bound}, got {value!r}")
    return value


def validate_same_mass(a, b, names: tuple[str, str] = ("a", "b"), rtol: float = 1e-6):
    """Check that the total masses of ``a`` and ``b`` agree per problem to ``rtol`` (relative).

    Returns the totals ``(mass_a, mass_b)`` as numpy arrays (shape ``()`` or ``(B,)``).
    """
    ma = to_numpy(a.sum(-1))
    mb = to_numpy(b.sum(-1))
    diff = np.abs(ma - mb)
    scale = np.maximum(np.abs(ma), np.abs(mb))
    bad = diff > rtol * scale
    if np.any(bad):
        i = int(np.flatnonzero(np.atleast_1d(bad))[0])
        ta, tb = np.atleast_1d(ma)[i], np.atleast_1d(mb)[i]
        where = f" (problem {i})" if np.ndim(ma) else ""
        raise ValueError(
            f"{names[1]}: total mass must equal that of {names[0]} (relative tolerance {rtol:g}), "
            f"got {tb:.12g} vs {ta:.12g}{where}"
        )
    return ma, mb


def _as_clouds(x, name):
    x = validate_array(x, name, what="coordinates")
    if x.ndim == 0:
        raise ValueError(f"{name}: expected points of shape (n, d) or (..., n, d), got a scalar")
    return x[:, None] if x.ndim == 1 else x


def _batch_of(shape, name, batch, against):
    try:
        return tuple(np.broadcast_shapes(tuple(batch), tuple(shape)))
    except ValueError:
        raise ValueError(
            f"{name}: batch shape {tuple(shape)} does not broadcast with {against}'s {tuple(batch)}"
        ) from None


def validate_weighted_clouds(x: Any, y: Any, a: Any = None, b: Any = None,
                             names: tuple[str, str, str, str] = ("x", "y", "a", "b")):
    """Validate two weighted point clouds with leading batch axes and bring them to one type.

    Parameters
    ----------
    x : shape ``(..., n, d)``; a 1-D input is ``n`` points on the line, shape ``(n, 1)``.
    y : shape ``(..., m, d)``: the same ``d``; its batch axes broadcast against ``x``'s.
    a, b : shapes ``(..., n)`` and ``(..., m)``, or ``None`` (uniform): non-negative, finite, with
        positive total mass per problem; their batch axes broadcast too.
    names : the four arguments' names, used in the error messages.

    Returns
    -------
    ``(x, y, a, b, batch)``: numpy ``float64`` arrays, or tensors when any input is a tensor (every
    tensor on one device; the points' floating dtypes promoted together; arrays and the weights
    converted to it), and ``batch``, the broadcast batch shape (a tuple). Nothing is broadcast.

    Raises ``ValueError`` naming the argument for non-finite or empty input, points of different
    dimensions, batch shapes that do not broadcast, bad weights, or tensors on different devices.
    """
    nx, ny, na, nb = names
    x, y = _as_clouds(x, nx), _as_clouds(y, ny)
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"{ny}: points must have the dimension of {nx} ({x.shape[-1]}), got {y.shape[-1]}")
    batch = _batch_of(y.shape[:-2], ny, x.shape[:-2], nx)
    weights = []
    for w, wname, pts, pname in ((a, na, x, nx), (b, nb, y, ny)):
        if w is not None:
            w = validate_weights(w, wname, ndim=tuple(range(1, 33)), size=pts.shape[-2])
            batch = _batch_of(w.shape[:-1], wname, batch, pname)
        weights.append(w)
    a, b = weights
    tensors = [t for t in (x, y, a, b) if is_tensor(t)]
    if tensors:
        import torch

        device = tensors[0].device
        for t, name in zip((x, y, a, b), names):
            if is_tensor(t) and t.device != device:
                raise ValueError(f"{name}: on device {t.device}, but the other inputs are on {device}")
        points = [t for t in (x, y) if is_tensor(t)]
        dtype = points[0].dtype if points else tensors[0].dtype
        for t in points[1:]:
            dtype = torch.promote_types(dtype, t.dtype)

        def convert(t):
            if t is None:
                return None
            if is_tensor(t):
                return t.to(dtype)
            return torch.as_tensor(t, dtype=dtype, device=device)

        x, y, a, b = (convert(t) for t in (x, y, a, b))
    return x, y, a, b, batch
