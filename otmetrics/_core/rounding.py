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
  exact ``p``).

Everything works on numpy arrays and on torch tensors (on any device); the bounds are Python
floats.
"""

from __future__ import annotations

import numpy as np

__all__ = ["UNIT_ROUNDOFF", "TINY", "gamma", "next_up", "next_down", "weight_error", "lower_dot", "upper_dot"]

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
