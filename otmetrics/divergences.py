"""Divergences between histograms: KL, Jensen-Shannon, total variation, and entropy.

All functions reduce along ``axis`` (default: the last) and broadcast over the others, take numpy
arrays or torch tensors, and follow the information-theory conventions ``0 log 0 = 0`` and
``p log(p / 0) = +inf`` for ``p > 0``. Histograms are normalised to sum to one unless
``normalize=False``, in which case they must already sum to one.

Note the default axis: scipy reduces along ``axis=0``; otmetrics, like the rest of its API,
treats leading axes as a batch and reduces along the last one.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._core.arrays import first_tensor, is_tensor, pth_root, to_numpy
from ._core.validation import validate_array

__all__ = ["entropy", "kl_divergence", "js_divergence", "js_distance", "total_variation"]


def _histogram(p, name, axis, normalize):
    """Validate a histogram and return it normalised along ``axis`` (numpy float64 or a tensor)."""
    p = validate_array(p, name, what="probabilities")
    if p.ndim == 0:
        raise ValueError(f"{name}: expected at least one dimension, got a scalar")
    if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
        raise ValueError(f"axis: must be an integer, got {axis!r}")
    if not -p.ndim <= axis < p.ndim:
        raise ValueError(f"axis: {axis} is out of range for {name} with {p.ndim} dimension(s)")
    low = float(p.detach().min()) if is_tensor(p) else float(p.min())
    if low < 0:
        raise ValueError(f"{name}: probabilities must be non-negative, got min {low:.6g}")
    total = p.sum(axis, keepdims=True) if not is_tensor(p) else p.sum(axis, keepdim=True)
    low_total = float(to_numpy(total).min())
    if low_total <= 0:
        raise ValueError(f"{name}: every histogram must have positive mass, got a total of {low_total:.6g}")
    if normalize:
        return p / total
    worst = float(abs(to_numpy(total) - 1.0).max())
    if worst > 1e-6:
        raise ValueError(
            f"{name}: must sum to 1 along axis {axis} when normalize=False, got a total off by {worst:.3g}"
        )
    return p


def _pair(p, q, axis, normalize):
    p = _histogram(p, "p", axis, normalize)
    q = _histogram(q, "q", axis, normalize)
    if p.shape[axis] != q.shape[axis]:
        raise ValueError(f"q: has {q.shape[axis]} bins along axis {axis}, p has {p.shape[axis]}")
    try:
        np.broadcast_shapes(tuple(p.shape), tuple(q.shape))
    except ValueError:
        raise ValueError(f"q: shape {tuple(q.shape)} does not broadcast with p's {tuple(p.shape)}") from None
    like = first_tensor(p, q)
    if like is not None:
        import torch

        p, q = (t if is_tensor(t) else torch.as_tensor(t) for t in (p, q))
        dtype = torch.promote_types(p.dtype, q.dtype)
        p, q = p.to(device=like.device, dtype=dtype), q.to(device=like.device, dtype=dtype)
    return p, q


def _log_base(base):
    if base is None:
        return 1.0
    if isinstance(base, bool) or not isinstance(base, numbers.Real) or not 0 < base < math.inf or base == 1:
        raise ValueError(f"base: must be a finite positive number other than 1, got {base!r}")
    return math.log(base)


def _rel_entr(p, q):
    """Elementwise ``p log(p / q)`` with ``0 log(0 / q) = 0`` and ``p log(p / 0) = inf``."""
    if is_tensor(p):
        import torch

        safe_q = torch.where(q > 0, q, torch.ones_like(q))
        safe_p = torch.where(p > 0, p, torch.ones_like(p))
        value = p * (torch.log(safe_p) - torch.log(safe_q))
        value = torch.where(q > 0, value, torch.full_like(value, math.inf))
        return torch.where(p > 0, value, torch.zeros_like(value))
    from scipy.special import rel_entr

    return rel_entr(p, q)


def _finish(value, like):
    if like is not None:
        return value
    return float(value) if np.ndim(value) == 0 else np.asarray(value, dtype=np.float64)


def entropy(p, *, base: float | None = None, axis: int = -1, normalize: bool = True):
    """Shannon entropy of a histogram.

    .. math:: H(p) = -\\sum_i p_i \\log p_i \\qquad (0 \\log 0 = 0)

    Parameters
    ----------
    p : array-like or tensor, shape ``(..., k, ...)``
        Non-negative weights; normalised along ``axis`` unless ``normalize=False``.
    base : float, optional
        Base of the logarithm (natural log by default: nats).
    axis : int, default -1
        The axis of the bins.
    normalize : bool, default True
        Divide by the sum; with ``False`` the input must already sum to one (to 1e-6).

    Returns
    -------
    float, ndarray of the remaining shape, or a tensor.

    Notes
    -----
    ``O(k)`` per histogram. Equals ``scipy.stats.entropy(p, base=base, axis=axis)``.

    References
    ----------
    Cover & Thomas, *Elements of Information Theory*, 2nd ed., 2006, Eq. 2.1.

    Examples
    --------
    >>> entropy([0.5, 0.5], base=2)
    1.0
    """
    scale = _log_base(base)
    p = _histogram(p, "p", axis, normalize)
    like = first_tensor(p)
    if like is not None:
        import torch

        # -p log p with 0 log 0 = 0 and a finite gradient at p = 0 (xlogy's would be -inf)
        safe = torch.where(p > 0, p, torch.ones_like(p))
        value = -torch.where(p > 0, p * torch.log(safe), torch.zeros_like(p)).sum(axis) / scale
    else:
        from scipy.special import entr

        value = entr(p).sum(axis) / scale
    return _finish(value, like)


def kl_divergence(p, q, *, base: float | None = None, axis: int = -1, normalize: bool = True):
    """Kullback-Leibler divergence ``KL(p || q)`` between histograms.

    .. math:: \\mathrm{KL}(p \\,\\|\\, q) = \\sum_i p_i \\log \\frac{p_i}{q_i}

    with ``0 log(0/q) = 0`` and ``+inf`` wherever ``q_i = 0 < p_i`` (``p`` is not absolutely
    continuous with respect to ``q``) — the case of distributions with disjoint supports.

    Parameters
    ----------
    p, q : array-like or tensor, shapes that broadcast, with the same number of bins along ``axis``
    base : float, optional
        Base of the logarithm (nats by default).
    axis : int, default -1
    normalize : bool, default True

    Returns
    -------
    float, ndarray or tensor; ``>= 0``, possibly ``inf``.

    Notes
    -----
    ``O(k)``. Equals ``scipy.stats.entropy(p, q, base=base, axis=axis)``, except that rounding
    errors below zero are clamped (KL is never negative). Not symmetric, not a metric.

    References
    ----------
    Kullback & Leibler, "On information and sufficiency", Ann. Math. Statist. 22(1), 1951.

    Examples
    --------
    >>> round(kl_divergence([0.5, 0.5], [0.25, 0.75]), 6)
    0.143841
    >>> kl_divergence([1.0, 0.0], [0.0, 1.0])
    inf
    """
    scale = _log_base(base)
    p, q = _pair(p, q, axis, normalize)
    value = _rel_entr(p, q).sum(axis) / scale
    like = first_tensor(p, q)
    # KL >= 0 (Gibbs); rounding can give -1e-16 for nearly equal histograms
    value = value.clamp_min(0) if like is not None else np.maximum(value, 0.0)
    return _finish(value, like)


def js_divergence(p, q, *, base: float | None = None, axis: int = -1, normalize: bool = True):
    """Jensen-Shannon divergence between histograms.

    .. math::

        \\mathrm{JS}(p, q) = \\tfrac12 \\mathrm{KL}(p \\,\\|\\, m) + \\tfrac12 \\mathrm{KL}(q \\,\\|\\, m),
        \\qquad m = \\tfrac12 (p + q).

    Symmetric, always finite, between 0 and ``log 2`` (1 in base 2); it equals ``log 2`` exactly when
    the supports are disjoint, however far apart they are — which is why it gives no gradient to a
    generator whose samples miss the data manifold.

    Parameters
    ----------
    p, q : array-like or tensor
    base : float, optional
    axis : int, default -1
    normalize : bool, default True

    Returns
    -------
    float, ndarray or tensor in ``[0, log 2]`` (in the chosen base).

    Notes
    -----
    ``O(k)``. Its square root is :func:`js_distance` (``scipy.spatial.distance.jensenshannon``).

    References
    ----------
    Lin, "Divergence measures based on the Shannon entropy", IEEE Trans. Inf. Theory 37(1), 1991.

    Examples
    --------
    >>> import math
    >>> js_divergence([1.0, 0.0], [0.0, 1.0]) == math.log(2)
    True
    """
    scale = _log_base(base)
    p, q = _pair(p, q, axis, normalize)
    m = (p + q) / 2
    value = (_rel_entr(p, m).sum(axis) + _rel_entr(q, m).sum(axis)) / (2 * scale)
    like = first_tensor(p, q)
    value = value.clamp_min(0) if like is not None else np.maximum(value, 0.0)
    return _finish(value, like)


def js_distance(p, q, *, base: float | None = None, axis: int = -1, normalize: bool = True):
    """Jensen-Shannon distance: the square root of :func:`js_divergence`, a metric on histograms.

    .. math:: d_{\\mathrm{JS}}(p, q) = \\sqrt{\\mathrm{JS}(p, q)}

    Parameters
    ----------
    p, q : array-like or tensor
    base : float, optional
    axis : int, default -1
    normalize : bool, default True

    Returns
    -------
    float, ndarray or tensor in ``[0, sqrt(log 2)]``.

    Notes
    -----
    ``O(k)``. Equals ``scipy.spatial.distance.jensenshannon(p, q, base, axis=axis)``.

    References
    ----------
    Endres & Schindelin, "A new metric for probability distributions", IEEE Trans. Inf. Theory
    49(7), 2003.

    Examples
    --------
    >>> js_distance([0.5, 0.5], [0.5, 0.5])
    0.0
    """
    return pth_root(js_divergence(p, q, base=base, axis=axis, normalize=normalize), 2)


def total_variation(p, q, *, axis: int = -1, normalize: bool = True):
    """Total variation distance between histograms.

    .. math:: \\delta(p, q) = \\sup_A |p(A) - q(A)| = \\tfrac12 \\sum_i |p_i - q_i|

    Parameters
    ----------
    p, q : array-like or tensor
    axis : int, default -1
    normalize : bool, default True

    Returns
    -------
    float, ndarray or tensor in ``[0, 1]``; 1 exactly for disjoint supports.

    Notes
    -----
    ``O(k)``.

    References
    ----------
    Arjovsky, Chintala & Bottou, "Wasserstein GAN", ICML 2017, Sec. 2 (the four distances compared).

    Examples
    --------
    >>> total_variation([1.0, 0.0], [0.5, 0.5])
    0.5
    """
    p, q = _pair(p, q, axis, normalize)
    value = (p - q).abs().sum(axis) / 2 if is_tensor(p) else np.abs(p - q).sum(axis) / 2
    return _finish(value, first_tensor(p, q))
