"""Closed forms of optimal transport on the real line, through quantile functions.

On the line, the optimal plan is the monotone rearrangement, and for every ``p >= 1``

.. math::

    W_p(\\mu, \\nu)^p = \\int_0^1 \\big| F_\\mu^{-1}(t) - F_\\nu^{-1}(t) \\big|^p \\, dt,

where ``F^{-1}`` are the (left-continuous) quantile functions. For discrete measures both quantile
functions are piecewise constant; merging their breakpoints gives the integral exactly.
"""

from __future__ import annotations

import numpy as np

from .._core.arrays import first_tensor, is_tensor, pth_root, to_numpy
from .._core.deprecation import changed_default, renamed_arguments
from .._core.validation import validate_array, validate_p, validate_weights

__all__ = ["wasserstein_1d", "wasserstein_1d_power", "monotone_coupling"]


def _check_values_and_weights(values, weights, name, wname):
    values = validate_array(values, name, what="values")
    if values.ndim == 0:
        raise ValueError(f"{name}: expected at least one dimension (the samples), got a scalar")
    if weights is None:
        return values, None
    weights = validate_weights(weights, wname, ndim=tuple(range(1, 33)))
    if tuple(weights.shape) != tuple(values.shape):
        raise ValueError(
            f"{wname}: shape {tuple(weights.shape)} does not match {name}'s shape {tuple(values.shape)}"
        )
    return values, weights


@renamed_arguments(u="x", v="y", u_weights="a", v_weights="b")
def wasserstein_1d(x, y, a=None, b=None, p: float | None = None):
    """Exact p-Wasserstein distance between discrete measures on the real line.

    .. math::

        W_p(\\mu, \\nu) = \\Big( \\int_0^1 |F_\\mu^{-1}(t) - F_\\nu^{-1}(t)|^p \\, dt \\Big)^{1/p},
        \\qquad \\mu = \\sum_i a_i \\delta_{x_i},\\; \\nu = \\sum_j b_j \\delta_{y_j}.

    Parameters
    ----------
    x : array-like or tensor, shape ``(..., n)``
        Sample positions of the first measure; leading axes are a batch.
    y : array-like or tensor, shape ``(..., m)``
        Sample positions of the second measure; its batch axes broadcast against those of ``x``.
    a, b : optional, same shapes as ``x`` and ``y``
        Non-negative weights (normalised internally); uniform when omitted. (Called ``u_weights``,
        ``v_weights`` before 0.2, as in scipy; those keywords, and ``u=``, ``v=``, work until 0.3 with a
        ``DeprecationWarning``.)
    p : float, default 2
        The order, ``>= 1`` (any real, not only integers). The default was 1 before otmetrics 0.2:
        omitting ``p`` gives a ``FutureWarning`` until 0.3 (see ``docs/conventions.md``).

    Returns
    -------
    float (1-D numpy input), ndarray of the batch shape, or a tensor (torch input; differentiable in
    the positions and the weights).

    Notes
    -----
    Equal sizes and uniform weights reduce to ``mean |sort(u) - sort(v)|^p``: two sorts,
    ``O(n log n)``. Otherwise the ``n + m`` cumulative weights are merged (one more sort of
    ``n + m`` levels) and the integral is summed exactly over the merged intervals. Unlike POT's
    ``wasserstein_1d`` (which returns ``W_p^p`` and batches along trailing axes) this returns
    ``W_p`` and batches along leading axes; for ``p = 1`` it equals
    ``scipy.stats.wasserstein_distance``.

    References
    ----------
    Santambrogio, *Optimal Transport for Applied Mathematicians*, 2015, Prop. 2.17.
    Peyré & Cuturi, *Computational Optimal Transport*, 2019, Remark 2.30.

    Examples
    --------
    >>> wasserstein_1d([0.0, 1.0, 3.0], [5.0, 6.0, 8.0], p=1)
    5.0
    >>> round(wasserstein_1d([0.0, 1.0], [0.0, 2.0], p=2), 12)  # sqrt((0 + 1) / 2)
    0.707106781187
    """
    p = validate_p(changed_default(p, func="wasserstein_1d", name="p", old=1, new=2, stacklevel=3))
    return pth_root(_power(x, y, a, b, p), p)


def wasserstein_1d_power(x, y, a=None, b=None, *, p: float = 2.0):
    """The ``p``-th power :math:`W_p^p` of :func:`wasserstein_1d`, without the root.

    The quantity POT's ``ot.wasserstein_1d`` returns (batched here along leading axes, with the
    weights normalised), and the one a sum or a mean over problems needs: the sliced distances
    average it over directions before taking the root. Same arguments, validation, batches and
    types as :func:`wasserstein_1d`; ``p`` is keyword-only, default 2.

    Examples
    --------
    >>> wasserstein_1d_power([0.0, 1.0], [0.0, 2.0], p=2)  # (0 + 1) / 2
    0.5
    """
    return _power(x, y, a, b, validate_p(p))


def monotone_coupling(x, y, a=None, b=None):
    """The optimal coupling on the line (the monotone rearrangement) in sparse form, numpy.

    For every ``p >= 1`` the plan ``sum_k mass_k delta_(x[i_k], y[j_k])`` is optimal, so that
    ``W_p^p = sum_k mass_k |x[i_k] - y[j_k]|^p`` and the gradient of ``W_p^p`` with respect to
    ``x[i]`` is ``sum_{k: i_k = i} mass_k p |d_k|^(p-1) sign(d_k)`` with ``d_k = x[i_k] - y[j_k]``
    (a subgradient where values tie).

    Parameters
    ----------
    x, y, a, b : as for :func:`wasserstein_1d` (arrays; tensors are read as arrays).

    Returns
    -------
    i, j : int arrays of the batch shape + ``(K,)``: indices into the last axis of ``x`` and ``y``.
    mass : float64 array of the batch shape + ``(K,)``, summing to 1 per problem (zero entries
        included). ``K = n`` for equal sizes and uniform weights (the sorted orders matched), else
        ``K = n + m`` (the merged cumulative weights).

    Examples
    --------
    >>> i, j, mass = monotone_coupling([2.0, 0.0], [5.0, 3.0])
    >>> i.tolist(), j.tolist(), mass.tolist()
    ([1, 0], [1, 0], [0.5, 0.5])
    """
    u, wu, v, wv = _validated(x, y, a, b)
    u, v = to_numpy(u), to_numpy(v)
    wu = None if wu is None else to_numpy(wu)
    wv = None if wv is None else to_numpy(wv)
    return _coupling_numpy(u, v, wu, wv)


def _validated(x, y, a, b):
    u, u_weights = _check_values_and_weights(x, a, "x", "a")
    v, v_weights = _check_values_and_weights(y, b, "y", "b")
    try:
        np.broadcast_shapes(tuple(u.shape[:-1]), tuple(v.shape[:-1]))
    except ValueError:
        raise ValueError(
            f"y: batch shape {tuple(v.shape[:-1])} does not broadcast with x's {tuple(u.shape[:-1])}"
        ) from None
    return u, u_weights, v, v_weights


def _power(x, y, a, b, p):
    """W_p^p of validated ``p``: a float, an array of the batch shape or a tensor."""
    u, u_weights, v, v_weights = _validated(x, y, a, b)
    like = first_tensor(u, v, u_weights, v_weights)
    if like is not None:
        return _power_torch(u, v, u_weights, v_weights, p, like)
    out = _power_numpy(u, v, u_weights, v_weights, p)
    return float(out) if np.ndim(out) == 0 else out


# ----------------------------------------------------------------------------------------------
# The two array libraries share the algorithm; the primitives differ.
# ----------------------------------------------------------------------------------------------
def _power_mean(diff_abs, dt, p):
    """sum dt * |diff|^p along the last axis, with the cheap cases special-cased."""
    if p == 1.0:
        powered = diff_abs
    elif p == 2.0:
        powered = diff_abs * diff_abs
    else:
        powered = diff_abs**p
    return (powered * dt).sum(-1) if dt is not None else powered.mean(-1)


def _power_numpy(u, v, wu, wv, p):
    batch = np.broadcast_shapes(u.shape[:-1], v.shape[:-1])
    if wu is None and wv is None and u.shape[-1] == v.shape[-1]:
        us, vs = np.sort(u, axis=-1), np.sort(v, axis=-1)
        return np.broadcast_to(_power_mean(np.abs(us - vs), None, p), batch)
    _, us, iu, _, vs, iv, dt = _merged_quantiles(u, v, wu, wv, with_order=False)
    diff = np.abs(np.take_along_axis(us, iu, -1) - np.take_along_axis(vs, iv, -1))
    return _power_mean(diff, dt, p)


def _coupling_numpy(u, v, wu, wv):
    batch = np.broadcast_shapes(u.shape[:-1], v.shape[:-1])
    n, m = u.shape[-1], v.shape[-1]
    if wu is None and wv is None and n == m:
        i = np.broadcast_to(np.argsort(u, axis=-1), batch + (n,))
        j = np.broadcast_to(np.argsort(v, axis=-1), batch + (n,))
        return i, j, np.full(batch + (n,), 1.0 / n)
    ou, _, iu, ov, _, iv, dt = _merged_quantiles(u, v, wu, wv, with_order=True)
    return np.take_along_axis(ou, iu, -1), np.take_along_axis(ov, iv, -1), dt


def _merged_quantiles(u, v, wu, wv, with_order):
    """Both quantile functions on the merged cumulative weights: ``(order_u, sorted_u, iu, order_v,
    sorted_v, iv, dt)``, broadcast to the batch; on the k-th interval (of length ``dt_k``) the
    quantiles are ``sorted_u[iu_k]`` and ``sorted_v[iv_k]``. The orders are ``None`` unless asked
    for (an unweighted sample is then sorted, not argsorted: several times faster)."""
    batch = np.broadcast_shapes(u.shape[:-1], v.shape[:-1])
    n, m = u.shape[-1], v.shape[-1]

    def sorted_cdf(values, weights, size):
        if weights is None:
            cdf = np.broadcast_to(np.arange(1, size + 1) / size, values.shape)
            if not with_order:
                return None, np.sort(values, axis=-1), cdf
        order = np.argsort(values, axis=-1)  # the order among ties changes no quantile
        if weights is not None:
            cdf = np.cumsum(np.take_along_axis(weights, order, -1), -1)
            cdf = cdf / cdf[..., -1:]
        return order, np.take_along_axis(values, order, -1), cdf

    full = [(batch + (n,)), (batch + (m,))]
    ou, us, cu = (None if t is None else np.broadcast_to(t, full[0]) for t in sorted_cdf(u, wu, n))
    ov, vs, cv = (None if t is None else np.broadcast_to(t, full[1]) for t in sorted_cdf(v, wv, m))
    levels = np.concatenate([cu, cv], -1)
    order = np.argsort(levels, axis=-1, kind="stable")
    t = np.take_along_axis(levels, order, -1)
    dt = np.diff(t, axis=-1, prepend=0.0)
    from_u = order < n
    # on (t_{k-1}, t_k] with dt > 0, the quantile index of u is the number of u-levels strictly
    # below t_k, i.e. the number of u-levels sorted before position k
    iu = np.minimum(np.cumsum(from_u, -1) - from_u, n - 1)
    iv = np.minimum(np.cumsum(~from_u, -1) - ~from_u, m - 1)
    return ou, us, iu, ov, vs, iv, dt


def _power_torch(u, v, wu, wv, p, like):
    import torch

    dtype = like.dtype if like.is_floating_point() else torch.float64

    def as_t(x):
        if x is None:
            return None
        return (x if is_tensor(x) else torch.as_tensor(np.asarray(x))).to(device=like.device, dtype=dtype)

    u, v, wu, wv = as_t(u), as_t(v), as_t(wu), as_t(wv)
    batch = torch.broadcast_shapes(u.shape[:-1], v.shape[:-1])
    n, m = u.shape[-1], v.shape[-1]
    if wu is None and wv is None and n == m:
        us, vs = torch.sort(u, dim=-1).values, torch.sort(v, dim=-1).values
        return _power_mean((us - vs).abs(), None, p).expand(batch)

    def sorted_cdf(values, weights, size):
        if weights is None:
            cdf = torch.arange(1, size + 1, device=values.device, dtype=dtype) / size
            return torch.sort(values, dim=-1).values, cdf.expand(values.shape)
        sorted_values, order = torch.sort(values, dim=-1, stable=True)
        cdf = torch.cumsum(torch.gather(weights, -1, order), -1)
        return sorted_values, cdf / cdf[..., -1:]

    us, cu = sorted_cdf(u, wu, n)
    vs, cv = sorted_cdf(v, wv, m)
    us, cu = us.expand(batch + (n,)), cu.expand(batch + (n,))
    vs, cv = vs.expand(batch + (m,)), cv.expand(batch + (m,))
    levels = torch.cat([cu, cv], -1)
    t, order = torch.sort(levels, dim=-1, stable=True)
    dt = torch.diff(t, dim=-1, prepend=torch.zeros_like(t[..., :1]))
    from_u = (order < n).long()
    iu = (torch.cumsum(from_u, -1) - from_u).clamp_max(n - 1)
    iv = (torch.cumsum(1 - from_u, -1) - (1 - from_u)).clamp_max(m - 1)
    diff = (torch.gather(us, -1, iu) - torch.gather(vs, -1, iv)).abs()
    return _power_mean(diff, dt, p)
