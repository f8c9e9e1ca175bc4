"""Directed rounding: bounds that hold for the exact numbers, not only for their float64 images.

The certified values of otmetrics (the proven interval of an optimal transport value, the lower
bound of a trained critic) are computed in float64 and then widened by a bound on every rounding
error that went into them. This module holds the error model and the few operations every such
computation shares (Higham, *Accuracy and Stability of Numerical Algorithms*, 2nd ed., 2002,
Sec. 2.2 and 3.1):

- every float64 operation is exact up to a relative error ``u = 2^-53`` (the unit roundoff), plus
  an absolute error of at most :data:`TINY` where results are subnormal;
- ``k`` successive roundings stay within ``gamma_k = k u / (1 - k u)`` (:func:`gamma`);
- :func:`next_up` / :func:`next_down` step to the neighbouring float, which turns a computed value
  into an upper / lower bound of the exact one when its error is below half an ulp;
- :func:`lower_dot` / :func:`upper_dot` bound the exact weighted sum ``sum_i p_i v_i`` from float64
  weights ``w`` that went through at most two normalisations (within :func:`weight_error` of the
  exact ``p``);
- :func:`dot_interval` and :func:`sum_interval` enclose the exact ``sum_i w_i v_i`` and ``sum_i x_i``
  of float64 numbers within one unit in the last place (error-free products and ``math.fsum``:
  Ogita, Rump & Oishi, "Accurate sum and dot product", SIAM J. Sci. Comput. 26(6), 2005), and
  :func:`add_interval`, :func:`mul_interval`, :func:`div_interval` combine such enclosures (interval
  arithmetic with outward rounding);
- :func:`cast_down` / :func:`cast_up` convert float64 bounds to a shorter floating dtype without
  losing their direction.

Everything works on numpy arrays and on torch tensors (on any device); the bounds are Python
floats.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["UNIT_ROUNDOFF", "TINY", "gamma", "next_up", "next_down", "weight_error", "lower_dot", "upper_dot",
           "two_product", "two_sum", "add_down", "add_up", "mul_down", "mul_up", "dot_interval",
           "sum_interval", "add_interval", "mul_interval", "div_interval", "cast_down", "cast_up"]

#: The unit roundoff of float64, ``2^-53``.
UNIT_ROUNDOFF = 2.0**-53
#: Absolute slack for the subnormal rounding of products and sums.
TINY = 1e-300


def gamma(k: int) -> float:
    """``gamma_k = k u / (1 - k u)``: the relative error bound of ``k`` rounded operations.

    Examples
    --------
    >>> gamma(1) > 2.0**-53, gamma(1000) > 1000 * 2.0**-53
    (True, True)
    """
    return k * UNIT_ROUNDOFF / (1.0 - k * UNIT_ROUNDOFF)


def next_up(value: float) -> float:
    """The next float64 above ``value``: an upper bound of the exact result of one rounded operation.

    Examples
    --------
    >>> next_up(1.0) - 1.0 == 2.0**-52
    True
    """
    return float(np.nextafter(value, np.inf))


def next_down(value: float) -> float:
    """The next float64 below ``value``: a lower bound of the exact result of one rounded operation.

    Examples
    --------
    >>> 1.0 - next_down(1.0) == 2.0**-53
    True
    """
    return float(np.nextafter(value, -np.inf))


def weight_error(k: int) -> float:
    """Relative error of float64 weights ``w_i`` against the exact normalised weights ``p_i``.

    ``w = fl(a / fl(sum a))`` is ``p (1 + theta_k)`` (a sum of ``k`` terms and a division), and a
    second normalisation of ``w`` gives ``p (1 + theta_{3k})`` (Higham 2002, Lemma 3.3); ``fl(1 / k)``
    is within ``u``. Weights that went through at most two normalisations are within ``gamma_{3k}``
    of the exact ones.

    Examples
    --------
    >>> weight_error(10) == gamma(30)
    True
    """
    return gamma(3 * k)


def _abs(v):
    return v.abs() if hasattr(v, "abs") else np.abs(v)


def _size(w) -> int:
    return int(w.numel()) if hasattr(w, "numel") else int(np.size(w))


def lower_dot(w, v) -> float:
    """A lower bound on the exact ``sum_i p_i v_i`` from float64 weights ``w`` and values ``v``.

    ``w >= 0`` are float64 images of the exact weights ``p`` (within :func:`weight_error`); ``v`` are
    exact. The computed sum is within ``gamma_{k+2} sum w |v|`` of ``sum w v``, which is within
    ``gamma_{3k} sum w |v|`` of ``sum p v``; 1% more covers the rounding of the magnitude and of the
    margin.

    Parameters
    ----------
    w, v : float64 arrays or tensors of the same shape ``(k,)``

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> w, v = np.full(3, 1 / 3), np.array([0.1, 0.2, 0.3])
    >>> lower_dot(w, v) <= 0.2 <= upper_dot(w, v)
    True
    """
    k = _size(w)
    total = float((w * v).sum())
    magnitude = float((w * _abs(v)).sum())
    return next_down(total - (gamma(k + 2) + weight_error(k)) * magnitude * 1.01 - TINY)


def upper_dot(w, v) -> float:
    """An upper bound on the exact ``sum_i p_i v_i`` for ``v >= 0`` (weights as in :func:`lower_dot`).

    Examples
    --------
    >>> import numpy as np
    >>> upper_dot(np.array([0.5, 0.5]), np.array([1.0, 3.0])) >= 2.0
    True
    """
    k = _size(w)
    return next_up(float((w * v).sum()) * (1 + (gamma(k + 2) + weight_error(k)) * 1.01) + TINY)


# ------------------------------------------------------------------------------------------------
# Enclosures within an ulp: error-free products, exactly rounded sums, interval arithmetic
# ------------------------------------------------------------------------------------------------
_SPLITTER = 134217729.0  # 2^27 + 1: Veltkamp's split of a float64 into two 26-bit halves
_SPLIT_MAX = 2.0**995     # below this magnitude the split cannot overflow
_UNDERFLOW = 2.0**-960    # products above this magnitude have an exactly representable error term
_ETA = 2.0**-1074         # the smallest subnormal float64


def _numpy64(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().to("cpu").double().numpy()
    return np.asarray(x, dtype=np.float64).ravel()


def two_product(a, b):
    """``(p, e)`` with ``p = fl(a b)`` and ``p + e = a b`` exactly, elementwise (Dekker 1971).

    Exact when ``|a|, |b| < 2^995`` and no product is below ``2^-960`` in magnitude (where the error
    term can underflow: it is then within ``5 * 2^-1074`` of the truth, Ogita, Rump & Oishi 2005).

    Examples
    --------
    >>> import numpy as np
    >>> p, e = two_product(np.array([0.1]), np.array([0.3]))
    >>> float(p[0]) == 0.1 * 0.3, float(e[0]) != 0.0
    (True, True)
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    p = a * b
    c = _SPLITTER * a
    a_hi = c - (c - a)
    a_lo = a - a_hi
    c = _SPLITTER * b
    b_hi = c - (c - b)
    b_lo = b - b_hi
    e = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    return p, e


def two_sum(a, b):
    """``(s, e)`` with ``s = fl(a + b)`` and ``s + e = a + b`` exactly, elementwise (Knuth; no overflow).

    Examples
    --------
    >>> s, e = two_sum(1.0, 1e-17)
    >>> s, e
    (1.0, 1e-17)
    """
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _directed(value, error, towards: float):
    """``value`` moved one float towards ``towards`` where the exact result lies beyond it (``error`` its
    sign), unchanged where it is exact."""
    step = np.nextafter(value, towards)
    beyond = error < 0 if towards < 0 else error > 0
    out = np.where(beyond, step, value)
    return out if np.ndim(out) else float(out)


def add_down(x, y):
    """``x + y`` rounded down (numpy arrays or floats): exact results are kept, others step down.

    Examples
    --------
    >>> add_down(0.1, 0.2) < 0.1 + 0.2, add_down(0.5, 0.25)
    (True, 0.75)
    """
    s, e = two_sum(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return _directed(s, np.where(np.isfinite(s), e, 0.0), -np.inf)


def add_up(x, y):
    """``x + y`` rounded up (see :func:`add_down`)."""
    s, e = two_sum(np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64))
    return _directed(s, np.where(np.isfinite(s), e, 0.0), np.inf)


def _product_error(x, y):
    with np.errstate(over="ignore", invalid="ignore"):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        p, e = two_product(x, y)
        # where the split may overflow or the error term underflow, assume an inexact product
        unsure = ~np.isfinite(e) | (np.abs(x) >= _SPLIT_MAX) | (np.abs(y) >= _SPLIT_MAX) | (
            (np.abs(p) < _UNDERFLOW) & (x != 0) & (y != 0))
    return p, e, unsure


def mul_down(x, y):
    """``x * y`` rounded down (numpy arrays or floats): exact products are kept, others step down.

    Examples
    --------
    >>> mul_down(0.1, 3.0) < 0.1 * 3.0, mul_down(0.5, 3.0)
    (True, 1.5)
    """
    p, e, unsure = _product_error(x, y)
    out = _directed(p, np.where(unsure, -1.0, np.where(np.isfinite(p), e, 0.0)), -np.inf)
    return out


def mul_up(x, y):
    """``x * y`` rounded up (see :func:`mul_down`)."""
    p, e, unsure = _product_error(x, y)
    return _directed(p, np.where(unsure, 1.0, np.where(np.isfinite(p), e, 0.0)), np.inf)


def _fsum(values: np.ndarray) -> float:
    try:
        return math.fsum(values.tolist())
    except OverflowError:
        return math.nan


def dot_interval(w, v) -> tuple[float, float]:
    """``(lo, hi)`` enclosing the exact ``sum_i w_i v_i`` of two float64 vectors, about an ulp apart.

    The products are split error-free (:func:`two_product`) and their parts summed by
    ``math.fsum`` (exactly rounded), so the result is the exact dot product rounded once, widened
    by an ulp each way (plus ``8 * 2^-1074`` per product that may underflow). Outside the range
    where the split is exact (entries above ``2^995``) the classical bound ``gamma_{k+1} sum |w_i v_i|``
    is used instead. ``(-inf, inf)`` when the sum overflows.

    Parameters
    ----------
    w, v : array-like or tensors of ``k`` float64 numbers (flattened)

    Returns
    -------
    tuple of two floats

    Examples
    --------
    >>> import numpy as np
    >>> lo, hi = dot_interval(np.full(10, 0.1), np.full(10, 0.1))
    >>> lo < 0.1 < hi, hi - lo < 1e-16
    (True, True)
    """
    w, v = _numpy64(w), _numpy64(v)
    if w.size == 0:
        return 0.0, 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        big = max(float(np.abs(w).max()), float(np.abs(v).max()))
        if big < _SPLIT_MAX:
            p, e = two_product(w, v)
            if np.isfinite(p).all() and np.isfinite(e).all():
                total = _fsum(np.concatenate([p, e]))
                if math.isfinite(total):
                    tiny = np.abs(p)
                    slack = 8.0 * _ETA * float(np.count_nonzero((tiny < _UNDERFLOW) & (w != 0) & (v != 0)))
                    return next_down(next_down(total) - slack), next_up(next_up(total) + slack)
        products = w * v
        total = float(products.sum())
        error = gamma(w.size + 1) * float(np.abs(products).sum()) * 1.01 + TINY
    if not (math.isfinite(total) and math.isfinite(error)):
        return -math.inf, math.inf
    return next_down(total - error), next_up(total + error)


def sum_interval(x) -> tuple[float, float]:
    """``(lo, hi)`` enclosing the exact sum of float64 numbers (``math.fsum``; one ulp wide unless exact).

    Examples
    --------
    >>> lo, hi = sum_interval([0.1] * 10)
    >>> lo <= 1.0 <= hi, sum_interval([0.5, 0.25])
    (True, (0.75, 0.75))
    """
    x = _numpy64(x)
    if not x.any():
        return 0.0, 0.0
    values = x.tolist()
    try:
        total = math.fsum(values)
        residual = math.fsum(values + [-total]) if math.isfinite(total) else math.nan
    except OverflowError:
        return -math.inf, math.inf
    if not math.isfinite(total):
        return -math.inf, math.inf
    if residual == 0.0:
        return total, total
    return (total, next_up(total)) if residual > 0 else (next_down(total), total)


def _interval(lo: float, hi: float) -> tuple[float, float]:
    if math.isnan(lo) or math.isnan(hi):
        return -math.inf, math.inf
    return lo, hi


def add_interval(x: tuple[float, float], y: tuple[float, float]) -> tuple[float, float]:
    """The enclosure of ``x + y`` for enclosures ``x = (lo, hi)`` and ``y``, rounded outwards.

    Examples
    --------
    >>> lo, hi = add_interval((0.1, 0.1), (0.2, 0.2))
    >>> lo < 0.30000000000000004 <= hi
    True
    """
    return _interval(add_down(x[0], y[0]), add_up(x[1], y[1]))


def mul_interval(x: tuple[float, float], y: tuple[float, float]) -> tuple[float, float]:
    """The enclosure of ``x * y`` (any signs), rounded outwards.

    Examples
    --------
    >>> lo, hi = mul_interval((-1.0, 2.0), (3.0, 3.0))
    >>> lo <= -3.0 and hi >= 6.0
    True
    """
    with np.errstate(invalid="ignore", over="ignore"):
        pairs = [(x[0], y[0]), (x[0], y[1]), (x[1], y[0]), (x[1], y[1])]
        low = [mul_down(p, q) for p, q in pairs]
        high = [mul_up(p, q) for p, q in pairs]
    if any(math.isnan(t) for t in low + high):
        return -math.inf, math.inf
    return min(low), max(high)


def div_interval(x: tuple[float, float], y: tuple[float, float]) -> tuple[float, float]:
    """The enclosure of ``x / y`` for a denominator enclosure ``y`` of one sign, rounded outwards.

    ``(-inf, inf)`` when ``y`` contains 0.

    Examples
    --------
    >>> lo, hi = div_interval((1.0, 1.0), (3.0, 3.0))
    >>> lo < 1 / 3 < hi
    True
    """
    if y[0] <= 0.0 <= y[1]:
        return -math.inf, math.inf
    low, high = [], []
    for p, q in ((x[0], y[0]), (x[0], y[1]), (x[1], y[0]), (x[1], y[1])):
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            quotient = p / q
        if math.isnan(quotient):
            return -math.inf, math.inf
        exact = math.isfinite(quotient) and quotient * q == p and mul_down(quotient, q) == mul_up(quotient, q)
        low.append(quotient if exact else next_down(quotient))
        high.append(quotient if exact else next_up(quotient))
    return min(low), max(high)


def _cast(values, dtype, towards: float):
    import torch

    out = values.to(dtype)
    if dtype == torch.float64:
        return out
    back = out.to(torch.float64)
    wrong = back > values if towards < 0 else back < values
    if bool(wrong.any()):
        step = torch.nextafter(out, torch.full_like(out, towards))
        out = torch.where(wrong, step, out)
    return out


def cast_down(values, dtype):
    """A float64 tensor of lower bounds in ``dtype``, rounded down (never above the float64 values).

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([0.1], dtype=torch.float64)
    >>> bool(cast_down(x, torch.float32).double() <= x), bool(cast_up(x, torch.float32).double() >= x)
    (True, True)
    """
    return _cast(values, dtype, -math.inf)


def cast_up(values, dtype):
    """A float64 tensor of upper bounds in ``dtype``, rounded up (never below the float64 values)."""
    return _cast(values, dtype, math.inf)
