"""The debiased Sinkhorn divergence :func:`sinkhorn_divergence`, built on the loops of :mod:`.loop`.

``OT_eps(x, y)`` by the alternating loop, the two self-transport terms by the symmetric one, gradients by the
envelope theorem (:mod:`.envelope`), and the sharded variant of :mod:`.sharded` for ``process_group=``.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from ..._core.arrays import is_tensor
from ..._core.warnings import NumericalWarning
from ..costs import PointCloud
from .envelope import attach_gradient, dual_value
from .options import check_solver_options, scaling_factor, schedule
from .problem import check_options, prepare, to_output

__all__ = ["sinkhorn_divergence"]


def _torch():
    import torch

    return torch


# ------------------------------------------------------------------------------------------------
# The Sinkhorn divergence
# ------------------------------------------------------------------------------------------------
def _same(u, v) -> bool:
    torch = _torch()
    if u is v:
        return True
    if u.shape != v.shape:
        return False
    return bool(torch.equal(u.detach(), v.detach()))


def sinkhorn_divergence(x, y, eps: float, *, a=None, b=None, p: float = 2, metric: str = "euclidean",
                        online: bool = False, chunk_size: int | None = None, tol: float = 1e-6,
                        max_iter: int = 10_000, eps_scaling: float | str | None = "auto",
                        eps_init: float | None = None, mass_rtol: float = 1e-6,
                        acceleration: float | str | None = "auto", check_every: int = 10,
                        stage_tol: float | None = None, process_group=None):
    """The debiased Sinkhorn divergence between two point clouds.

    .. math::

        S_\\varepsilon(\\alpha, \\beta) = \\mathrm{OT}_\\varepsilon(\\alpha, \\beta)
        - \\tfrac12 \\mathrm{OT}_\\varepsilon(\\alpha, \\alpha)
        - \\tfrac12 \\mathrm{OT}_\\varepsilon(\\beta, \\beta),
        \\qquad \\alpha = \\sum_i a_i \\delta_{x_i}, \\; \\beta = \\sum_j b_j \\delta_{y_j},

    with the cost ``c(x, y) = d(x, y)^p`` and ``OT_eps`` as in :func:`sinkhorn`. It is symmetric,
    non-negative, zero if and only if ``alpha = beta``, and interpolates between ``OT`` (``eps -> 0``) and
    an MMD (``eps -> inf``).

    Parameters
    ----------
    x : array-like or tensor, shape ``(n, d)`` (or ``(n,)``, or a batch ``(B, n, d)``)
    y : array-like or tensor, shape ``(m, d)`` (or ``(m,)``, or ``(B, m, d)``)
    eps : float
        Regularisation ``> 0`` in cost units. GeomLoss's ``blur`` with its cost ``|x - y|^2 / 2``
        corresponds to ``eps = 2 blur^2`` here for ``p=2`` (and our value is twice GeomLoss's).
    a, b : optional weights ``(n,)``, ``(m,)`` (or batched), uniform when omitted; equal masses.
    p : float, default 2
        Power of the distance, ``>= 1``.
    metric : {"euclidean", "cityblock", "chebyshev"}
    online : bool, default False
        Compute the costs in blocks, never storing them (see :class:`~otmetrics.PointCloud`).
    chunk_size : int, optional
        Points per block in online mode.
    tol, max_iter, eps_scaling, eps_init, mass_rtol, acceleration, check_every, stage_tol
        As in :func:`sinkhorn`, for each of the three problems (the self-transport problems use the
        symmetric iteration, which needs no acceleration).
    process_group : torch.distributed process group, optional
        Shard ``x`` (and ``a``) over the ranks, as in :func:`sinkhorn`: each rank passes its shard of ``x``
        and the same ``y`` (and ``b``); the cost is computed online. ``OT(x, y)`` and ``OT(x, x)`` are
        sharded, ``OT(y, y)`` is solved on every rank. Every rank gets the same value; ``backward`` is a
        collective (see :func:`sinkhorn`).

    Returns
    -------
    float (numpy input), ndarray ``(B,)`` (batch), or a tensor (torch input), differentiable with respect
    to ``x``, ``y``, ``a`` and ``b`` (envelope theorem: no back-propagation through the iterations).

    Warns
    -----
    ConvergenceWarning
        When one of the three problems does not reach ``tol``.
    NumericalWarning
        When the combination is negative by more than the solvers' tolerance explains (values within it
        are reported as 0).

    Notes
    -----
    ``OT_eps(alpha, alpha)`` and ``OT_eps(beta, beta)`` are solved with the symmetric iteration
    ``f <- (f + T(f)) / 2``, which converges in a few steps (with the epsilon schedule, if one is given).
    ``OT_eps(alpha, beta)`` then starts from their potentials, at the target eps: when the measures are
    close (late in a training loop) this saves most of the iterations. When ``x == y`` and ``a == b`` the
    three terms share one solution and the value is exactly 0. Cost: three Sinkhorn solves,
    ``O((n + m)^2)`` per iteration.

    References
    ----------
    Feydy, Séjourné, Vialard, Amari, Trouvé & Peyré, "Interpolating between optimal transport and MMD
    using Sinkhorn divergences", AISTATS 2019.
    Genevay, Peyré & Cuturi, "Learning generative models with Sinkhorn divergences", AISTATS 2018.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(50, 2)), rng.normal(size=(60, 2)) + 1.0
    >>> s = sinkhorn_divergence(x, y, eps=0.1)
    >>> s > 0, sinkhorn_divergence(x, x, eps=0.1)
    (True, 0.0)
    """
    torch = _torch()
    from . import loop, sharded

    opts = check_solver_options(eps_scaling, stage_tol, acceleration, check_every)
    eps, tol, max_iter, _, eps_init = check_options(eps, tol, max_iter, scaling_factor(eps_scaling), eps_init)
    group = None if process_group is None else sharded.check_group(process_group)
    geom_xy = PointCloud(x, y, p=p, metric=metric, online=online or group is not None, chunk_size=chunk_size)
    if group is None:
        prob = prepare(a, b, geom_xy, mass_rtol=mass_rtol)
    else:
        prob = sharded.prepare_sharded(a, b, geom_xy, group, mass_rtol)
        sharded.check_replicated(group, eps=eps, tol=tol, max_iter=max_iter)
    a_t, b_t = prob.a, prob.b
    a_d, b_d = a_t.detach(), b_t.detach()
    loga, logb = torch.log(a_d), torch.log(b_d)
    tol_abs = tol * prob.mass_a
    mass = prob.mass_a
    kw = dict(max_iter=max_iter, check_every=opts.check_every, stage_tol=opts.stage_tolerance(tol) * mass)

    def self_op(points, w):
        geom = PointCloud(points, p=p, metric=metric, online=online, chunk_size=chunk_size)
        return prepare(w, w, geom, mass_rtol=np.inf).op

    def self_solve(op, w, logw):
        stages = schedule(eps, eps_init, opts.eps_scaling, op.max_costs, False)
        return loop.symmetric(op, w, logw, eps, tol=tol_abs, schedule=stages, **kw)

    def objective(op, res, w1, w2, spread=None):
        if spread is None:
            value = dual_value(w1.detach(), w2.detach(), res.f, res.g, res.plan_mass, eps, mass, mass)
        else:
            value = sharded.dual_value_sharded(group, w1, res.f, w2, res.g, res.plan_mass, eps, mass, mass,
                                               cols_sharded=spread)
        return attach_gradient(value.to(res.f.dtype), op, res.f, res.g, w1, w2, eps, mass, mass)

    if group is None:
        op_xx, same = self_op(geom_xy.x, a_t), _same_points(geom_xy) and _same(a_d, b_d)
    else:
        op_xx = sharded.ShardedSelfSoftMin(prob.op.x, p, metric, chunk_size, group=group,
                                           leaf=prob.op.leaves()[0])
        same = sharded.same_global_points(prob.op.x, prob.op.y, group) \
            and sharded.same_global_points(a_d[..., None], b_d[..., None], group)
    spread_xx, spread_xy = (None, None) if group is None else (True, False)
    with torch.no_grad():
        res_xx = self_solve(op_xx, a_d, loga)
    d_xx = objective(op_xx, res_xx, a_t, a_t, spread_xx)
    op_yy = self_op(prob.op.leaves()[1] if group is not None else geom_xy.y, b_t)
    if same:
        # one measure: the three problems share the solution of OT(alpha, alpha); the value is exactly 0
        # and the gradients cancel, as they should at the minimum
        res_xy = res_yy = res_xx
        if group is not None:  # OT(y, y) needs the potential on all of y
            res_yy = _gathered(res_xx, group)
        d_yy = objective(op_yy, res_yy, b_t, b_t)
        d_xy = objective(prob.op, _paired(res_xx, res_yy), a_t, b_t, spread_xy)
    else:
        with torch.no_grad():
            res_yy = self_solve(op_yy, b_d, logb)
            # warm start from the self-transport potentials: much faster when the measures are close
            # (e.g. late in a training loop), and no slower than a cold start or the schedule otherwise
            res_xy = loop.alternating(prob.op, a_d, b_d, loga, logb, eps, tol=tol_abs, schedule=[],
                                      f0=res_xx.f, g0=res_yy.f, acceleration=opts.acceleration, **kw)
        d_yy = objective(op_yy, res_yy, b_t, b_t)
        d_xy = objective(prob.op, res_xy, a_t, b_t, spread_xy)
    for name, res in (("OT(x, y)", res_xy), ("OT(x, x)", res_xx), ("OT(y, y)", res_yy)):
        loop.warn_unconverged(f"sinkhorn_divergence, {name}", res, tol, max_iter)

    raw = d_xy - 0.5 * (d_xx + d_yy)
    # |D(f, g) - OT_eps| is at most about (marginal error) x (largest cost)
    slack = (res_xy.error + 0.5 * (res_xx.error + res_yy.error)) * prob.op.max_cost()
    low = raw.detach().to("cpu", torch.float64).numpy()
    floor = 10 * float(torch.finfo(raw.dtype).eps) * np.abs(d_xy.detach().to("cpu", torch.float64).numpy())
    if np.any(low < -(slack + floor)):
        warnings.warn(
            f"sinkhorn_divergence: negative value {low.min():.3g} beyond what the solver tolerance explains "
            f"({slack.max():.3g}); reported as 0", NumericalWarning, stacklevel=2,
        )
    return to_output(raw.clamp_min(0.0), prob)


def _gathered(res, group):
    """The symmetric solution ``res`` of the sharded ``OT(x, x)`` with its potential on all the points."""
    from ..._core.distributed import all_gather_rows

    full = all_gather_rows(res.f.T.contiguous(), group).T.contiguous()
    return dataclasses.replace(res, f=full, g=full)


def _paired(res_xx, res_yy):
    """The pair ``(f on x, g on y)`` of one measure's self-transport solution, for ``OT(x, y)`` with x = y."""
    return dataclasses.replace(res_xx, g=res_yy.g)


def _same_points(geom: PointCloud) -> bool:
    x, y = geom.x, geom.y
    if x is y:
        return True
    if tuple(x.shape) != tuple(y.shape):
        return False
    if is_tensor(x):
        return bool(_torch().equal(x.detach(), y.detach()))
    return bool(np.array_equal(x, y))
