r"""The max-sliced Wasserstein distance: the direction along which two measures differ most.

.. math::

    \max SW_p(\mu, \nu) = \max_{\theta \in S^{d-1}} W_p(\theta_\#\mu, \theta_\#\nu)

The objective :math:`f(\theta) = W_p^p(\theta_\#\mu, \theta_\#\nu)` is a minimum over couplings of
convex functions of :math:`\theta`: not concave, so only a local maximum can be certified. We draw
``n_projections`` random directions (the best of them is the value POT's
``ot.max_sliced_wasserstein_distance`` returns) and climb from the ``n_starts`` best by projected
gradient ascent on the sphere: the gradient comes from the optimal coupling on the line (the
monotone rearrangement), a step follows the great circle along the tangent gradient, and it is
accepted only if it increases :math:`f` enough (Armijo); the angle doubles after a success and
halves after a failure. The highest end point wins; the result is never below the best random
start.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core.arrays import exact_scale, first_tensor, is_tensor, pth_root
from .._core.validation import validate_p, validate_positive, validate_weighted_clouds
from .._core.warnings import ConvergenceWarning
from .oned import monotone_coupling, wasserstein_1d_power
from .sliced import directions, projected_powers

__all__ = ["MaxSlicedResult", "max_sliced_wasserstein"]

_FIRST_STEP = 0.1  # radians
_LARGEST_STEP = 0.5
_ARMIJO = 1e-4


@dataclass(frozen=True)
class MaxSlicedResult:
    """The max-sliced distance, its direction and how the ascent went.

    Attributes
    ----------
    value : float, ndarray or tensor (batch shape)
        :math:`W_p(\\theta^*_\\#\\mu, \\theta^*_\\#\\nu)` at the direction found; for torch input a
        tensor in the points' dtype, differentiable in the points and weights (envelope theorem:
        the gradient at the fixed optimal direction).
    direction : ndarray or tensor, shape ``batch + (d,)``
        The unit direction :math:`\\theta^*` (detached).
    start_value : float, ndarray or tensor (batch shape)
        The best value among the random starts (what POT's ``max_sliced_wasserstein_distance``
        returns for the same directions); ``value >= start_value`` always, both evaluated by the
        same code (detached).
    n_iter : int or ndarray (batch shape)
        The iterations of the ascent that won (one objective evaluation each).
    converged : bool or ndarray (batch shape)
        For the ascent that won, a local stationarity test passed: the Riemannian gradient is at
        most ``tol`` relative to ``p f`` (the size of the radial gradient), or no step of angle
        ``>= tol`` along it gives an Armijo increase. A local maximum, not necessarily the global
        one.
    gradient_norm : float or ndarray (batch shape)
        The Riemannian gradient norm at the winning ascent's last iterate divided by ``p f`` (``0`` where
        ``f = 0``): small at a smooth maximum, larger at a kink.
    """

    value: Any
    direction: Any
    start_value: Any
    n_iter: Any
    converged: Any
    gradient_norm: Any


def _numpy_objective(x, y, a, b, p):
    """``theta (k, d), rows (k,) -> f, grad`` for the problems ``rows`` of ``x (B, n, d)``, ...,
    from the monotone coupling of the projections (numpy, float64)."""
    n, m = x.shape[1], y.shape[1]

    def objective(theta, rows):
        xs, ys = x[rows], y[rows]
        u, v = np.einsum("knd,kd->kn", xs, theta), np.einsum("kmd,kd->km", ys, theta)
        i, j, mass = monotone_coupling(u, v, None if a is None else a[rows], None if b is None else b[rows])
        diff = np.take_along_axis(u, i, -1) - np.take_along_axis(v, j, -1)
        size = np.abs(diff)
        f = (mass * (size if p == 1.0 else size**p)).sum(-1)
        slope = mass * np.sign(diff) * (1.0 if p == 1.0 else p * size ** (p - 1.0))
        k = len(rows)
        offsets = np.arange(k)[:, None]
        gu = np.bincount((i + offsets * n).ravel(), slope.ravel(), minlength=k * n).reshape(k, n)
        gv = np.bincount((j + offsets * m).ravel(), slope.ravel(), minlength=k * m).reshape(k, m)
        return f, np.einsum("kn,knd->kd", gu, xs) - np.einsum("km,kmd->kd", gv, ys)

    return objective


def _torch_objective(x, y, a, b, p):
    """The same objective on tensors (float64, detached, on their device), by autograd."""
    import torch

    def objective(theta, rows):
        index = torch.as_tensor(rows, device=x.device)
        t = torch.as_tensor(theta, dtype=torch.float64, device=x.device).requires_grad_(True)
        with torch.enable_grad():
            xs, ys = x[index], y[index]
            u, v = torch.einsum("knd,kd->kn", xs, t), torch.einsum("kmd,kd->km", ys, t)
            wa, wb = (None if w is None else w[index] for w in (a, b))
            f = wasserstein_1d_power(u, v, wa, wb, p=p)
            (grad,) = torch.autograd.grad(f.sum(), t)
        return f.detach().cpu().numpy(), grad.cpu().numpy()

    return objective


def _ascend(objective, theta, owner, p, tol, max_iter):
    """Projected gradient ascent on the sphere for every row of ``theta (k, d)`` (numpy), row ``r``
    on problem ``owner[r]``: ``(theta, f, n_iter, converged, relative gradient)`` per row."""
    count = theta.shape[0]
    f, g = objective(theta, owner)
    step = np.full(count, _FIRST_STEP)
    done = np.zeros(count, bool)
    converged = np.zeros(count, bool)
    n_iter = np.zeros(count, int)
    relative = np.zeros(count)
    for _ in range(max_iter + 1):
        tangent = g - (g * theta).sum(-1, keepdims=True) * theta
        gnorm = np.linalg.norm(tangent, axis=-1)
        scale = p * f
        relative = np.where(scale > 0, gnorm / np.where(scale > 0, scale, 1.0), 0.0)
        stationary = ~done & (relative <= tol)
        converged |= stationary
        done |= stationary
        active = np.flatnonzero(~done & (n_iter < max_iter))
        if active.size == 0:
            break
        n_iter[active] += 1
        angle = step[active][:, None]
        heading = tangent[active] / gnorm[active][:, None]
        candidate = theta[active] * np.cos(angle) + heading * np.sin(angle)
        candidate /= np.linalg.norm(candidate, axis=-1, keepdims=True)
        fc, gc = objective(candidate, owner[active])
        gain = fc - f[active]
        accept = gain >= _ARMIJO * np.sin(angle[:, 0]) * gnorm[active]
        accept &= gain > 0
        up, down = active[accept], active[~accept]
        theta[up], f[up], g[up] = candidate[accept], fc[accept], gc[accept]
        step[up] = np.minimum(2 * step[up], _LARGEST_STEP)
        step[down] /= 2
        flat = down[step[down] < tol]  # no ascent along the gradient at angles >= tol: a local max
        converged[flat] = True
        done[flat] = True
    return theta, f, n_iter, converged, relative


def max_sliced_wasserstein(x, y, *, a=None, b=None, p: float = 2.0, n_projections: int | None = None,
                           seed: int = 0, projections=None, n_starts: int = 5, tol: float = 1e-7,
                           max_iter: int = 500) -> MaxSlicedResult:
    r"""The max-sliced Wasserstein distance: the direction of largest transport cost, by ascent.

    .. math::

        \max SW_p(\mu, \nu) = \max_{\|\theta\| = 1} W_p(\theta_\#\mu, \theta_\#\nu)
        \;\ge\; \max_{l \le L} W_p(\theta_{l\#}\mu, \theta_{l\#}\nu).

    The ascent starts from the best of the ``L`` random directions (the right-hand side, POT's
    ``max_sliced_wasserstein_distance``), and from the next ``n_starts - 1`` best, and follows the
    Riemannian gradient of
    :math:`f(\theta) = W_p^p(\theta_\#\mu, \theta_\#\nu)`, which is
    :math:`\sum_k \pi_k\, p\, |d_k|^{p-1} \operatorname{sign}(d_k)\, (x_{i_k} - y_{j_k})` for the
    monotone coupling :math:`\pi` of the projections, :math:`d_k = \langle\theta, x_{i_k} - y_{j_k}\rangle`.
    The highest end point is returned, never below the best random start.

    Parameters
    ----------
    x, y, a, b, p, n_projections, seed, projections
        As for :func:`otmetrics.sliced_wasserstein` (points ``(..., n, d)`` and ``(..., m, d)`` with
        leading batch axes, weights, order ``p >= 1``, the ``L`` starting directions: 50 random ones
        by default, drawn as POT draws them, or ``projections`` of shape ``(L, d)``).
    n_starts : int, default 5
        Ascents per problem, from the ``n_starts`` best random directions (all ``L`` if fewer);
        ``1`` climbs from the best one only. Several starts guard against the local maxima of
        the objective: in 100 dimensions a single ascent can stop at a third of the maximum that
        others reach. They run together, vectorised.
    tol : float, default 1e-7
        Stop when the Riemannian gradient is at most ``tol`` times ``p f(theta)`` or when no step of
        angle ``>= tol`` (radians) along it increases ``f``.
    max_iter : int, default 500
        The most iterations per ascent (one evaluation of ``f`` each).

    Returns
    -------
    MaxSlicedResult
        ``value``, ``direction``, ``start_value``, ``n_iter``, ``converged``, ``gradient_norm``, each
        of the batch shape (``direction``: batch + ``(d,)``); tensors for torch input (``value``
        differentiable in the points and the weights, at the fixed optimal direction).

    Raises
    ------
    ValueError
        As :func:`otmetrics.sliced_wasserstein`, and for ``n_starts < 1``, ``tol <= 0`` or
        ``max_iter < 0``.

    Warns
    -----
    ConvergenceWarning
        When an ascent stops at ``max_iter`` before its stationarity test holds (``converged`` is
        then ``False`` for that problem; its value is still at least the best random start).

    Notes
    -----
    The objective is not concave (it is a minimum over couplings of convex functions of
    :math:`\theta`), so the result is a local maximum, certified by the stationarity test; more
    random directions and more starts make the global one likelier. Batches: every problem has
    its own direction; all ascents of all problems run together, each stopping on its own. The
    search runs in ``float64`` on detached copies (numpy, or tensors on their device for torch
    input); the value is then evaluated once more in the caller's dtype, on the autograd graph.

    Cost: the random directions as :func:`otmetrics.sliced_wasserstein`; then per iteration of
    each ascent one projection ``O((n + m) d)`` and one problem on the line,
    ``O((n + m) log(n + m))``; typically 50 to 300 iterations.

    Always ``SW_p <= max SW_p <= W_p`` (each projection is 1-Lipschitz); for two measures that
    differ by a translation :math:`t`, :math:`\max SW_p = W_p = |t|`, attained at :math:`t / |t|`.

    References
    ----------
    Deshpande, Hu, Sun, Pyrros, Siddiqui, Koyejo, Zhao, Forsyth & Schwing, *Max-sliced
    Wasserstein distance and its use for GANs*, CVPR 2019.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(200, 3))
    >>> result = max_sliced_wasserstein(x, x + [3.0, 4.0, 0.0])   # a translation by 5
    >>> round(result.value, 9), (np.round(result.direction, 6) + 0.0).tolist(), bool(result.converged)
    (5.0, [0.6, 0.8, 0.0], True)
    >>> result.value >= result.start_value
    True
    """
    p = validate_p(p)
    n_starts = int(validate_positive(n_starts, "n_starts", integer=True))
    tol = float(validate_positive(tol, "tol"))
    max_iter = int(validate_positive(max_iter, "max_iter", allow_zero=True, integer=True))
    x, y, a, b, batch = validate_weighted_clouds(x, y, a, b)
    like = first_tensor(x, y, a, b)
    theta = directions(x.shape[-1], n_projections, seed, projections, like=like)
    if is_tensor(theta):
        theta = theta.detach()
    d = x.shape[-1]
    count = int(np.prod(batch, dtype=np.int64))
    scale = exact_scale(x, y)  # a power of two: |x|^p neither overflows nor underflows
    if scale != 1.0:
        x, y = x / scale, y / scale

    starts = projected_powers(x, y, a, b, theta, p)  # batch + (L,)
    if is_tensor(starts):
        starts = starts.detach().cpu().double().numpy()
        theta_np = theta.detach().cpu().double().numpy()
    else:
        theta_np = np.asarray(theta, dtype=np.float64)
    starts = np.broadcast_to(starts, batch + starts.shape[-1:]).reshape(count, -1)
    k = min(n_starts, starts.shape[-1])
    ranked = np.argsort(-starts, axis=-1, kind="stable")[:, :k]  # the k best starts, the best first
    start = theta_np[ranked[:, 0]]  # (count, d)

    def flat(t, core):
        if t is None:
            return None
        if is_tensor(t):
            import torch

            return t.detach().to(torch.float64).expand(batch + core).reshape((count,) + core)
        return np.broadcast_to(t, batch + core).reshape((count,) + core)

    args = (flat(x, x.shape[-2:]), flat(y, y.shape[-2:]), flat(a, a.shape[-1:] if a is not None else None),
            flat(b, b.shape[-1:] if b is not None else None), p)
    objective = _torch_objective(*args) if like is not None else _numpy_objective(*args)
    owner = np.repeat(np.arange(count), k)
    ends, heights, n_iter, converged, relative = _ascend(objective, theta_np[ranked.ravel()], owner, p, tol,
                                                         max_iter)
    chosen = np.arange(count) * k + heights.reshape(count, k).argmax(-1)  # each problem's best ascent
    found, n_iter, converged, relative = ends[chosen], n_iter[chosen], converged[chosen], relative[chosen]

    # the value at the direction found and at the start, by the same code, in the caller's type: the
    # larger is returned, so that value >= start_value holds exactly even where rounding differs
    both = np.stack([found, start], 1).reshape(batch + (2, d))
    if like is not None:
        import torch

        both = torch.as_tensor(both, dtype=theta.dtype, device=theta.device)
    powers = projected_powers(x, y, a, b, both, p)  # batch + (2,): one problem per direction
    if is_tensor(powers):
        import torch

        keep_start = (powers[..., 1] > powers[..., 0]).detach()
        value = pth_root(torch.where(keep_start, powers[..., 1], powers[..., 0]), p)
        start_value = pth_root(powers[..., 1].detach(), p)
        direction = torch.where(keep_start[..., None], both[..., 1, :], both[..., 0, :])
    else:
        powers = np.broadcast_to(powers, batch + (2,))
        keep_start = powers[..., 1] > powers[..., 0]
        value = pth_root(np.maximum(powers[..., 0], powers[..., 1]), p)
        start_value = pth_root(powers[..., 1], p)
        direction = np.where(keep_start[..., None], both[..., 1, :], both[..., 0, :])
    if not converged.all():
        warnings.warn(
            f"max_sliced_wasserstein: the best ascent of {int((~converged).sum())} of {count} "
            f"problem(s) stopped at max_iter={max_iter} before the stationarity test held (relative "
            f"gradient up to {float(relative[~converged].max()):.3g}, tol={tol:g}); the value is still "
            "at least the best random start. Raise max_iter.", ConvergenceWarning, stacklevel=2)

    def shaped(arr):
        arr = np.asarray(arr).reshape(batch)
        return arr.item() if arr.ndim == 0 else arr

    if scale != 1.0:
        value, start_value = value * scale, start_value * scale
    return MaxSlicedResult(value=value, direction=direction, start_value=start_value, n_iter=shaped(n_iter),
                           converged=shaped(converged), gradient_norm=shaped(relative))
