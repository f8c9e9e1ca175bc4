"""Entropic optimal transport: batched log-domain Sinkhorn, and the debiased Sinkhorn divergence.

For weights ``a`` (n,), ``b`` (m,) of equal mass and a cost ``C`` (n, m), the entropic problem is

.. math::

    \\mathrm{OT}_\\varepsilon(a, b) = \\min_{P \\in \\Pi(a, b)} \\langle C, P \\rangle
    + \\varepsilon\\, \\mathrm{KL}(P \\,|\\, a \\otimes b), \\qquad
    \\mathrm{KL}(P | Q) = \\sum_{ij} P_{ij} \\log \\frac{P_{ij}}{Q_{ij}} - P_{ij} + Q_{ij},

whose solution is ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)`` for the dual potentials ``f``, ``g``.
:func:`sinkhorn` finds them with Sinkhorn-Knopp iterations in the log domain (:mod:`.loop`) over a
soft-min operator (:mod:`.softmin`): a dense matrix, a batch, or a point cloud whose cost is computed online.
:func:`sinkhorn_divergence` debiases ``OT_eps`` into a non-negative divergence.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from ..._core.deprecation import warn_deprecated
from ..bounds import sinkhorn_bounds
from ..results import TransportResult, callable_plan
from .envelope import attach_gradient, dual_value
from .divergence import sinkhorn_divergence
from .options import check_solver_options, scaling_factor, schedule
from .problem import check_options, diagnostic, initial_potentials, prepare, to_output

__all__ = ["SinkhornResult", "sinkhorn", "sinkhorn_divergence"]


# ------------------------------------------------------------------------------------------------
# The result
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SinkhornResult(TransportResult):
    """The solution of an entropic optimal-transport problem, with per-problem diagnostics.

    Values are numpy ``float64`` (Python floats for one problem) for numpy input, tensors on the caller's
    device and dtype for torch input; a batch keeps its leading axis ``B`` everywhere. The attributes
    shared with :class:`~otmetrics.OTResult` (``cost``, ``plan``, ``potentials``, ``converged``,
    ``marginal_error``) come from :class:`~otmetrics.TransportResult`.

    Attributes
    ----------
    cost : float, ndarray ``(B,)`` or tensor
        The transport cost ``<C, P>`` of the returned plan (no entropy). Detached: its gradient is not given
        by the envelope theorem; differentiate ``objective``.
    potentials : tuple ``(f, g)``, shapes ``(n,)``, ``(m,)`` (or ``(B, n)``, ``(B, m)``)
        Dual potentials, in cost units: the plan is ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)``.
        Detached (no gradient). Points of zero weight get their soft c-transform value.
    plan : shape ``(n, m)`` or ``(B, n, m)``
        The transport plan of the potentials, computed on first access and kept (for an online point
        cloud this materialises the ``n x m`` matrix).
    converged : bool or ndarray of bool ``(B,)``
        ``marginal_error <= tol * |a|``.
    marginal_error : float or ndarray ``(B,)``
        The L1 violation of the marginals of the returned plan, ``|P 1 - a|_1 + |P^T 1 - b|_1``, measured
        (the column term is zero by construction, up to rounding).
    objective : float, ndarray ``(B,)`` or tensor
        ``OT_eps = <C, P> + eps KL(P | a x b)``, evaluated as the dual value
        ``<a, f> + <b, g> - eps (sum(P) - |a| |b|)`` at the returned potentials: a lower bound of ``OT_eps``
        for any potentials (weak duality), equal to it up to the marginal error. For torch input it is
        differentiable with respect to ``a``, ``b`` and the cost (or the points of a ``PointCloud``) by the
        envelope theorem: ``d/dC = P``, ``d/da = f - eps (P 1 / a - |b|)``.
    n_iter : int or ndarray of int ``(B,)``
        Iterations run on each problem, epsilon-scaling stages included (one iteration = one update of
        each potential).
    eps, tol : float
        The regularisation and the tolerance that were used.
    lower, upper : float, ndarray ``(B,)`` or tensor
        Proven bounds on the exact *unregularised* optimal transport value (computed on first access, in
        float64, never storing more than a block of the cost): ``lower`` from the c-transforms of the
        potentials, ``upper`` from the plan of the potentials rounded onto the exact marginals. See
        :class:`~otmetrics.TransportResult`. A sharded solve (``process_group``) does not bound the global
        problem on a rank: there ``lower = -inf`` and ``upper = inf`` (floats).
    """

    objective: Any = None
    n_iter: Any = None
    eps: float = float("nan")
    tol: float = float("nan")
    _plan_fn: Any = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def plan(self):
        """The plan ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)``, ``(n, m)`` or ``(B, n, m)``."""
        return callable_plan(self._plan_fn())

    @property
    def f(self):
        """Deprecated (removed in 0.3): the row potential, ``potentials[0]``."""
        warn_deprecated("SinkhornResult.f is deprecated: use result.potentials[0]")
        return self.potentials[0]

    @property
    def g(self):
        """Deprecated (removed in 0.3): the column potential, ``potentials[1]``."""
        warn_deprecated("SinkhornResult.g is deprecated: use result.potentials[1]")
        return self.potentials[1]


def _torch():
    import torch

    return torch


# ------------------------------------------------------------------------------------------------
# sinkhorn
# ------------------------------------------------------------------------------------------------
def sinkhorn(a, b, cost, eps: float, *, tol: float = 1e-6, max_iter: int = 10_000,
             eps_scaling: float | str | None = "auto", eps_init: float | None = None, init=None,
             mass_rtol: float = 1e-6, acceleration: float | str | None = "auto", check_every: int = 10,
             stage_tol: float | None = None, process_group=None) -> SinkhornResult:
    """Entropic optimal transport by log-domain Sinkhorn iterations, batched, with diagnostics.

    Solves

    .. math::

        \\mathrm{OT}_\\varepsilon(a, b) = \\min_{P 1 = a,\\; P^T 1 = b} \\langle C, P \\rangle
        + \\varepsilon\\, \\mathrm{KL}(P \\,|\\, a \\otimes b)

    by alternating the updates of the dual potentials (soft c-transforms)

    .. math::

        g_j \\leftarrow -\\varepsilon \\log \\sum_i a_i e^{(f_i - C_{ij})/\\varepsilon}, \\qquad
        f_i \\leftarrow -\\varepsilon \\log \\sum_j b_j e^{(g_j - C_{ij})/\\varepsilon},

    i.e. Sinkhorn-Knopp scaling of ``K = exp(-C / eps)`` written in the log domain, so that no ``eps``
    under- or overflows. By default the updates are over-relaxed (``acceleration``) and small ``eps`` is
    reached by annealing (``eps_scaling``); both converge to the same answer as the plain iteration. Each
    problem stops at the first check (every ``check_every`` iterations) where the L1 error of its marginals
    is ``<= tol |a|``; converged problems stop changing while the others go on.

    Parameters
    ----------
    a : array-like or tensor, shape ``(n,)`` or ``(B, n)``, or None
        Non-negative source weights (``None``: uniform ``1/n``). Any total mass, equal to that of ``b``.
    b : array-like or tensor, shape ``(m,)`` or ``(B, m)``, or None
        Non-negative target weights, same mass as ``a`` to ``mass_rtol`` (then rescaled to it exactly).
    cost : array-like or tensor ``(n, m)`` / ``(B, n, m)``, or a :class:`~otmetrics.PointCloud`
        Finite ground costs, or a point-cloud geometry ``|x - y|^p``. With ``PointCloud(..., online=True)``
        the ``n x m`` cost is never stored: every reduction is computed in blocks of rows.
        A leading batch axis on ``a``, ``b`` or ``cost`` means independent problems (the others broadcast).
    eps : float
        The regularisation ``> 0``, in cost units (e.g. a fraction of the median cost).
    tol : float, default 1e-6
        Stop a problem when ``|P 1 - a|_1 + |P^T 1 - b|_1 <= tol * |a|``. float32 reaches about 1e-5.
    max_iter : int, default 10000
        Iterations per problem, annealing stages included. A problem that reaches it unconverged is
        flagged ``converged=False`` and a :class:`~otmetrics.ConvergenceWarning` is raised.
    eps_scaling : float in (0, 1), ``"auto"`` or None, default ``"auto"``
        Epsilon annealing: solve at ``eps / s^K, ..., eps / s^2, eps / s`` (from the first value at or above
        ``eps_init``) until the marginal error is ``<= stage_tol`` at each, each stage warm-starting the
        next, then at ``eps`` until ``tol`` holds. The answer is the same (the last stage runs at ``eps``).
        ``"auto"``: ``s = 0.5`` for the problems whose ``eps`` is below ``3e-4`` times their largest cost,
        and no annealing with ``init``; None: no annealing. Each problem of a batch has its own schedule.
    eps_init : float, optional
        Where the schedule starts; default: an upper bound of each problem's largest cost.
    init : tuple ``(f, g)``, optional
        Initial potentials (warm start), shapes as the returned ``f``, ``g``. Default: zeros.
    mass_rtol : float, default 1e-6
        Largest accepted relative difference of the masses of ``a`` and ``b`` (at least 100 machine
        epsilons of the dtype).
    acceleration : ``"auto"``, float in ``[1, 2)`` or None, default ``"auto"``
        Over-relaxation ``f <- f + w (T(g) - f)`` (Thibault et al. 2017), safeguarded per coordinate so that
        every step raises the dual objective by a fixed fraction of what the plain step would: it converges
        whenever plain Sinkhorn does. ``"auto"``: ``w`` estimated from the observed convergence rate
        (Lehmann et al. 2021); a float: that ``w``; None or ``1.0``: the plain iteration.
    check_every : int, default 10
        Iterations between two convergence checks (also at the first iteration of each stage and at
        ``max_iter``). A check copies a few numbers per problem to the host: the only synchronisation with
        a GPU. The iterates do not depend on it; a problem may run up to ``check_every - 1`` iterations past
        the point where it first met ``tol``.
    stage_tol : float in (0, 1), optional
        The relative tolerance of the annealing stages; default ``max(tol, 1e-2)``.
    process_group : torch.distributed process group, optional
        Shard the points over the ranks of the group: each rank passes its shard of the source points
        (``PointCloud(x_shard, y)``, computed online) and of ``a``, and the same ``y`` and ``b``. Every rank
        returns its rows of ``f`` and of the plan, the whole ``g``, and the global ``cost``, ``objective``
        and diagnostics. ``backward`` of the objective is then a collective (every rank calls it); each rank
        gets the gradient for its points and the full gradient for ``y``. Ranks that pass different ``y``,
        ``b``, ``eps``, ``tol`` or ``max_iter`` raise a ValueError naming it.

    Returns
    -------
    SinkhornResult
        ``cost`` (``<C, P>``), ``potentials`` ``(f, g)``, ``objective`` (``OT_eps``, differentiable),
        ``converged``, ``n_iter``, ``marginal_error`` per problem, and ``plan`` (computed on first access).

    Raises
    ------
    ValueError
        ``eps <= 0``; non-finite or negative weights; masses that differ; shapes that do not match the cost;
        non-finite costs; bad options (``check_every < 1``, ``acceleration`` outside ``[1, 2)``, ...); a
        ``process_group`` without ``torch.distributed``, or whose ranks disagree. The message names the
        argument.

    Warns
    -----
    ConvergenceWarning
        When a problem reaches ``max_iter`` with its marginal error above ``tol``.

    Notes
    -----
    Cost: ``O(n m)`` per iteration and problem. On dense costs the iterations run in the equivalent
    *scaling* form (matrix-vector products with a kernel into which the potentials are absorbed,
    re-absorbed whenever the scalings drift; Schmitzer 2019), which is several times faster than one
    log-sum-exp per entry and equally safe; at small ``eps`` (float64, CPU) the kernel is truncated to its
    non-negligible entries and stored sparse, and the final marginal error is measured on the exact cost.
    Online point clouds use blocked log-sum-exp reductions; memory per rank with ``process_group`` is
    ``O((n_r + m) d)`` plus one block. Plain iterations grow like ``1 / eps``; over-relaxation needs
    roughly their square root. Computations stay in the caller's dtype; sums reported in the result are
    accumulated in float64.

    As ``eps -> 0``, ``EMD <= cost <= objective <= EMD + eps * min(H(a), H(b))`` (``H`` the entropy of
    the normalised weights), up to the marginal error.

    References
    ----------
    Cuturi, "Sinkhorn distances: lightspeed computation of optimal transport", NeurIPS 2013.
    Peyré & Cuturi, *Computational Optimal Transport*, 2019, Ch. 4.
    Schmitzer, "Stabilized sparse scaling algorithms for entropy regularized transport problems",
    SIAM J. Sci. Comput. 41(3), 2019.
    Thibault, Chizat, Dossal & Papadakis, "Overrelaxed Sinkhorn-Knopp algorithm for regularized optimal
    transport", Algorithms 14(5), 2021 (arXiv 2017).
    Lehmann, von Renesse, Sambale & Uschmajew, "A note on overrelaxation in the Sinkhorn algorithm",
    Optimization Letters, 2022 (arXiv 2021).

    Examples
    --------
    Two points that stay put (the exact cost is 0); the entropy spreads a little mass across:

    >>> import numpy as np
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> res = sinkhorn([0.5, 0.5], [0.5, 0.5], C, eps=0.25)
    >>> bool(res.converged), round(res.cost, 6), round(res.objective, 6)
    (True, 0.017986, 0.168749)
    >>> res.plan.round(3)
    array([[0.491, 0.009],
           [0.009, 0.491]])

A batch of 8 problems between point clouds, in torch, with a differentiable objective:

    >>> import torch
    >>> from otmetrics import PointCloud
    >>> gen = torch.Generator().manual_seed(0)
    >>> x = torch.randn(8, 100, 2, generator=gen, requires_grad=True)
    >>> y = torch.randn(8, 120, 2, generator=gen) + 1.0
    >>> res = sinkhorn(None, None, PointCloud(x, y), eps=0.5)
    >>> res.cost.shape, bool(res.converged.all())
    (torch.Size([8]), True)
    >>> res.objective.sum().backward()  # envelope theorem: no back-propagation through iterations
    >>> x.grad.shape
    torch.Size([8, 100, 2])
    """
    torch = _torch()
    from . import loop, sharded

    opts = check_solver_options(eps_scaling, stage_tol, acceleration, check_every)
    eps, tol, max_iter, _, eps_init = check_options(eps, tol, max_iter, scaling_factor(eps_scaling), eps_init)
    group = None if process_group is None else sharded.check_group(process_group)
    if group is None:
        prob = prepare(a, b, cost, mass_rtol=mass_rtol)
    else:
        prob = sharded.prepare_sharded(a, b, cost, group, mass_rtol)
        sharded.check_replicated(group, eps=eps, tol=tol, max_iter=max_iter)
    op = prob.op
    a_t, b_t = prob.a, prob.b
    a_d, b_d = a_t.detach(), b_t.detach()
    loga, logb = torch.log(a_d), torch.log(b_d)
    f0 = g0 = None
    if init is not None:
        f0, g0 = initial_potentials(init, prob)
    stages = schedule(eps, eps_init, opts.eps_scaling, op.max_costs, init is not None)
    with torch.no_grad():
        out = loop.alternating(op, a_d, b_d, loga, logb, eps, tol=tol * prob.mass_a, max_iter=max_iter,
                               schedule=stages, f0=f0, g0=g0, acceleration=opts.acceleration,
                               check_every=opts.check_every,
                               stage_tol=opts.stage_tolerance(tol) * prob.mass_a)
        transport = op.transport_cost(out.f, out.g, loga, logb, eps)
    if group is None:
        value = dual_value(a_d, b_d, out.f, out.g, out.plan_mass, eps, prob.mass_a, prob.mass_b)
    else:
        value = sharded.dual_value_sharded(group, a_d, out.f, b_d, out.g, out.plan_mass, eps, prob.mass_a,
                                           prob.mass_b)
    objective = attach_gradient(value.to(out.f.dtype), op, out.f, out.g, a_t, b_t, eps,
                                 prob.mass_a, prob.mass_b)
    loop.warn_unconverged("sinkhorn", out, tol, max_iter)

    def plan():
        with torch.no_grad():
            return to_output(op.plan(out.f, out.g, loga, logb, eps), prob)

    def bounds():  # proven bounds on the exact (unregularised) value, computed on first access
        if group is not None:  # this rank holds a shard of the rows: no bound of the global problem here
            return None
        return sinkhorn_bounds(a, b, cost, out.f, out.g, eps, like=prob.like, batched=prob.batched)

    return SinkhornResult(
        cost=to_output(transport.to(out.f.dtype), prob),
        potentials=(to_output(out.f, prob), to_output(out.g, prob)),
        objective=to_output(objective, prob), converged=diagnostic(out.converged, prob, bool),
        n_iter=diagnostic(out.n_iter, prob, int), marginal_error=diagnostic(out.error, prob, float),
        eps=eps, tol=tol, _plan_fn=plan, _bounds=bounds,
    )
