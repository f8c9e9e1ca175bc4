"""Exact optimal transport (the earth mover's distance) with certified dual potentials.

``emd`` solves the Kantorovich linear program

.. math::

    \\mathrm{OT}(a, b; C) = \\min_{P \\ge 0,\\; P 1 = a,\\; P^T 1 = b} \\langle C, P \\rangle
    = \\max_{u_i + v_j \\le C_{ij}} \\langle a, u \\rangle + \\langle b, v \\rangle

with POT's network simplex (default) or scipy's HiGHS on the LP itself, and checks the answer:
every result carries a :class:`~otmetrics.Certificate` computed from the plan and the
potentials, and ``converged`` is true only when the solver said optimal *and* the certificate holds.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core.arrays import as_like, batch_size, first_tensor, is_tensor, pth_root, to_numpy, uniform_weights
from .._core.deprecation import changed_default
from .._core.validation import validate_cost, validate_positive, validate_same_mass, validate_weights
from .._core.warnings import ConvergenceWarning
from .bounds import bounds_output, dense_bounds, exact_weights, feasible_potentials, point_bounds
from .bounds import support_potentials
from .certificate import Certificate, certificate_from_bounds, stack_certificates
from .costs import PointCloud
from .results import TransportResult

__all__ = ["OTResult", "emd", "wasserstein", "BACKENDS"]

#: Exact solvers accepted by ``emd(backend=...)``.
BACKENDS = ("network_simplex", "highs")

_POT_STATUS = {0: "infeasible", 1: "optimal", 2: "unbounded", 3: "max_iter_reached"}
_HIGHS_STATUS = {0: "optimal", 1: "max_iter_reached", 2: "infeasible", 3: "unbounded", 4: "numerical_error"}


@dataclass(frozen=True)
class OTResult(TransportResult):
    """The solution of an exact optimal-transport problem, with its proof of optimality.

    Arrays are numpy ``float64`` for numpy input, tensors on the caller's device and dtype for torch
    input. For a batch, every field has the leading batch axis ``B``. The attributes shared with
    :class:`~otmetrics.SinkhornResult` (``cost``, ``plan``, ``potentials``, ``converged``,
    ``marginal_error``) come from :class:`~otmetrics.TransportResult`.

    Attributes
    ----------
    cost : float, ndarray ``(B,)`` or tensor
        The optimal value ``<C, P>``. For torch input it is differentiable:
        ``d cost / d C = P``, ``d cost / d a = u``, ``d cost / d b = (|a| / |b|) v`` (and, for a
        ``PointCloud`` of tensors, the gradient flows on to the points). The value is that of
        ``OT(a, b |a| / |b|)`` (``b`` rescaled to the mass of ``a``), and the gradients are those of this
        function in every direction, including those that change a total mass.
    plan : shape ``(n, m)`` or ``(B, n, m)``
        An optimal transport plan ``P``.
    potentials : tuple ``(u, v)``, shapes ``(n,)`` and ``(m,)`` (or batched)
        Optimal dual potentials in cost units, shifted so that ``<b, v> = 0`` (hence ``<a, u> = OT``): they
        are then the gradients of the value with respect to the weights (see ``cost``); zero-weight points
        get their c-transform value, so that ``u_i + v_j <= C_ij`` holds everywhere.
    certificate : Certificate
        Duality gap, minimal reduced cost, complementary slackness and marginal errors, as measured, and the
        proven interval of the cost matrix's optimal value that the verdict is judged against.
    lower, upper : float, ndarray ``(B,)`` or tensor
        Proven bounds on the exact optimal value of the problem as posed (for a ``PointCloud``, with the exact
        distances of the points, not the computed matrix): ``lower <= OT <= upper``, tight to rounding
        (a few units in the last place of the numbers involved). See :class:`~otmetrics.TransportResult`.
    converged : bool or ndarray of bool ``(B,)``
        The solver reported optimality and the certificate holds.
    marginal_error : float or ndarray ``(B,)``
        ``|P 1 - a|_1 + |P^T 1 - b|_1`` of the plan, measured (the certificate's two terms).
    status : str or ndarray of str ``(B,)``
        The solver's own status: ``"optimal"``, ``"max_iter_reached"``, ``"infeasible"``,
        ``"unbounded"`` or ``"numerical_error"``.
    backend : str
        ``"network_simplex"`` or ``"highs"``.

    Examples
    --------
    >>> res = emd([0.5, 0.5], [1.0], [[1.0], [3.0]])
    >>> res.cost, res.plan.tolist(), res.converged, res.status
    (2.0, [[0.5], [0.5]], True, 'optimal')
    >>> res.lower <= 2.0 <= res.upper, res.upper - res.lower < 1e-14
    (True, True)
    """

    plan: Any
    certificate: Certificate
    status: Any
    backend: str


# ----------------------------------------------------------------------------------------------
# One problem, one solver
# ----------------------------------------------------------------------------------------------
def _solve_network_simplex(a, b, cost, max_iter):
    import ot

    plan, log = ot.emd(a, b, cost, numItermax=max_iter, log=True, center_dual=False)
    return plan, np.asarray(log["u"]), np.asarray(log["v"]), _POT_STATUS.get(int(log["result_code"]), "unknown")


def _highs_constraints(n: int, m: int):
    from scipy.sparse import csr_array

    k = np.arange(n * m)
    rows = np.concatenate([k // m, n + k % m])
    cols = np.concatenate([k, k])
    return csr_array((np.ones(2 * n * m), (rows, cols)), shape=(n + m, n * m))


def _solve_highs(a, b, cost, max_iter, constraints=None):
    from scipy.optimize import linprog

    n, m = cost.shape
    constraints = _highs_constraints(n, m) if constraints is None else constraints
    res = linprog(
        cost.ravel(), A_eq=constraints, b_eq=np.concatenate([a, b]), bounds=(0, None), method="highs-ds",
        options={"maxiter": int(max_iter), "primal_feasibility_tolerance": 1e-10,
                 "dual_feasibility_tolerance": 1e-10, "presolve": True},
    )
    status = _HIGHS_STATUS.get(int(res.status), "unknown")
    if res.x is None:
        return np.zeros((n, m)), np.zeros(n), np.zeros(m), status
    marginals = np.asarray(res.eqlin.marginals)
    return np.asarray(res.x).reshape(n, m), marginals[:n], marginals[n:], status


def _repair_null_duals(a, b, cost, u, v):
    """Give zero-weight points the c-transform potential, so that the duals are feasible everywhere.

    Zero-weight rows/columns do not enter the dual objective, and solvers drop them; any value
    below the c-transform keeps feasibility, the c-transform is the tightest one.
    """
    zero_a, zero_b = a <= 0, b <= 0
    if zero_a.any():
        keep = ~zero_b
        u = u.copy()
        u[zero_a] = (cost[np.ix_(zero_a, keep)] - v[keep][None, :]).min(1)
    if zero_b.any():
        v = v.copy()
        v[zero_b] = (cost[:, zero_b] - u[:, None]).min(0)
    return u, v


def _centre(a, b, u, v):
    """``(u + K, v - K)`` with ``<b, v - K> = 0``: the potentials are then the gradients of the value with
    respect to the weights under the rescaling of ``b`` to the mass of ``a`` (see ``_torch_outputs``)."""
    shift = (b * v).sum() / b.sum()
    return u + shift, v - shift


def _solve_unit(a, b, cost, backend, max_iter, constraints):
    """The solver on ``cost / max|cost|`` (its tolerances are absolute), potentials back in cost units."""
    scale = float(np.abs(cost).max())
    unit_cost = cost / scale if scale > 0 and scale != 1.0 else cost
    if backend == "network_simplex":
        plan, u, v, status = _solve_network_simplex(a, b, unit_cost, max_iter)
    else:
        plan, u, v, status = _solve_highs(a, b, unit_cost, max_iter, constraints)
    if unit_cost is not cost:
        u, v = u * scale, v * scale
    return plan, u, v, status


def _finish(a, b, cost, plan, u, v, status, rtol, weights):
    """Potentials tight on the support, repaired, shifted; the proven bounds and the certificate."""
    if status == "optimal":
        # potentials recomputed along the plan's support from the unscaled costs: they carry the rounding
        # of the costs the plan uses, not that of the scale the solver worked at
        u, v = support_potentials(cost, plan, u, v)
    u, v = _repair_null_duals(a, b, cost, u, v)
    u, v = _centre(a, b, u, v)
    lower, upper = dense_bounds(weights, cost, plan, u, v)
    return plan, u, v, status, certificate_from_bounds(a, b, cost, plan, u, v, lower, upper, rtol=rtol)


def _refine(a, b, cost, first, backend, max_iter, rtol, weights, constraints):
    """A second solve on the reduced costs ``C - phi - psi >= 0`` of proven-feasible potentials, capped.

    The solvers compare reduced costs with absolute tolerances at the scale of the largest cost; costs
    much smaller than that (a value of ``1e-170`` next to a cost of 1) fall below them, and the plan can be
    far from optimal. The reduced costs have the same optimal plans; capped at a few times the gap (and
    the reduced costs the plan uses), their scale is that of the value. A plan that uses no capped entry
    is optimal for the original costs too; otherwise the cap grows.
    """
    plan, u, v = first[:3]
    gap = first[4].primal - first[4].lower
    _, phi, psi = feasible_potentials(weights, cost, u, v, plan)
    if phi is None or not (np.isfinite(phi).all() and np.isfinite(psi).all() and np.isfinite(gap)):
        return None
    reduced = np.maximum(cost - phi[:, None] - psi[None, :], 0.0)
    used = reduced[plan > 0]
    smallest = min(float(a[a > 0].min()), float(b[b > 0].min()))
    cap = 4.0 * (float(used.max()) if used.size else 0.0) + 4.0 * gap / smallest
    for _ in range(4):
        if not (np.isfinite(cap) and cap > 0):
            return None
        new_plan, new_u, new_v, status = _solve_unit(a, b, np.minimum(reduced, cap), backend, max_iter,
                                                     constraints)
        if status != "optimal":
            return None
        if not (new_plan[reduced > cap] > 0).any():
            return _finish(a, b, cost, new_plan, new_u + phi, new_v + psi, status, rtol, weights)
        cap *= 64.0
    return None


def _solve_one(a, b, cost, backend, max_iter, rtol, weights, constraints=None):
    """Solve one problem, bound and certify it (in the worker thread: numpy releases the GIL too).

    ``weights``: the :class:`~otmetrics.transport.bounds.ExactWeights` of the problem as posed (``b`` here is
    already rescaled to the mass of ``a`` in float64; the bounds use the exact rescaling). Costs of any
    magnitude (1e-200 or 1e200) are solved at unit scale, to the same relative accuracy; a plan the solver
    calls optimal but whose value the certificate does not prove is refined once (:func:`_refine`).
    """
    cost = np.ascontiguousarray(cost)
    result = _finish(a, b, cost, *_solve_unit(a, b, cost, backend, max_iter, constraints), rtol, weights)
    if result[3] == "optimal" and not result[4].optimal and result[4].primal > result[4].lower:
        refined = _refine(a, b, cost, result, backend, max_iter, rtol, weights, constraints)
        if refined is not None and (refined[4].optimal or refined[4].primal < result[4].primal):
            result = refined
    return result


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------
def emd(a, b, cost, *, backend: str = "network_simplex", max_iter: int | None = None, rtol: float = 1e-9,
        mass_rtol: float = 1e-6, n_threads: int | None = None) -> OTResult:
    """Exact optimal transport between two discrete measures, with a certificate of optimality.

    Solves

    .. math::

        \\min_{P \\in \\mathbb{R}_+^{n \\times m}} \\langle C, P \\rangle
        \\quad \\text{s.t.} \\quad P 1_m = a, \\; P^T 1_n = b,

    and its dual ``max <a, u> + <b, v>`` s.t. ``u_i + v_j <= C_ij``; the result holds both.

    Parameters
    ----------
    a : array-like or tensor, shape ``(n,)`` or ``(B, n)``, or None
        Non-negative source weights; ``None`` means uniform ``1/n``. Any total mass: unnormalised
        measures (e.g. box counts) are fine as long as ``a`` and ``b`` have the same total.
    b : array-like or tensor, shape ``(m,)`` or ``(B, m)``, or None
        Non-negative target weights, same total mass as ``a`` (to ``mass_rtol``; ``b`` is then
        rescaled to the mass of ``a``).
    cost : array-like or tensor ``(n, m)`` / ``(B, n, m)``, or a :class:`~otmetrics.PointCloud`
        Finite ground costs (any sign), or a geometry whose dense cost is used.
    backend : {"network_simplex", "highs"}
        ``"network_simplex"``: POT's C++ network simplex (fast, exact; the default).
        ``"highs"``: scipy's HiGHS dual simplex on the LP with a sparse constraint matrix
        (slower; an independent solver to cross-check against).
    max_iter : int, optional
        Iteration cap of the solver. Default: ``max(100_000, 1000 (n + m))``. A capped run is
        reported with ``converged=False``, ``status="max_iter_reached"`` and a
        :class:`~otmetrics.ConvergenceWarning`, never as optimal.
    rtol : float, default 1e-9
        Relative tolerance of the certificate's verdict (see :func:`~otmetrics.certify`).
    mass_rtol : float, default 1e-6
        Largest relative difference of total masses accepted (at least 4 machine epsilons of the
        tensors' dtype, for float16/bfloat16 weights).
    n_threads : int, optional
        Threads for a batch (the solvers release the GIL). Default: the number of CPUs for
        problems with ``n m >= 4096``, one thread for smaller ones (where starting threads costs
        more than it saves).

    Returns
    -------
    OTResult
        ``cost``, ``plan``, ``potentials``, ``certificate``, ``converged``, ``status``, ``backend``.

    Raises
    ------
    ValueError
        Negative, NaN or infinite weights; masses that differ by more than ``mass_rtol``; shapes that
        do not match ``cost``; empty measures; non-finite costs; an unknown backend.

    Warns
    -----
    ConvergenceWarning
        When a problem is not certified optimal (iteration cap, numerical failure).

    Notes
    -----
    The network simplex takes roughly ``O(n^2 m log n)`` time in the worst case (much less in
    practice); the certificate costs ``O(n m)``. A batch (a leading axis on ``a``, ``b`` or
    ``cost``; the others broadcast) is solved in parallel threads.

    References
    ----------
    Bonneel, van de Panne, Paris & Heidrich, "Displacement interpolation using Lagrangian mass
    transport", ACM TOG 30(6), 2011 (the network simplex in POT). Peyré & Cuturi, *Computational
    Optimal Transport*, 2019, Ch. 3.

    Examples
    --------
    Moving boxes: 3, 1 and 2 boxes at positions 1, 2, 3 go to positions 7, 8, 9, 10
    (1, 1, 2, 2 boxes); each box costs its distance.

    >>> import numpy as np
    >>> src, dst = np.array([1.0, 2.0, 3.0]), np.array([7.0, 8.0, 9.0, 10.0])
    >>> res = emd([3, 1, 2], [1, 1, 2, 2], np.abs(src[:, None] - dst[None, :]))
    >>> res.cost, bool(res.converged), bool(res.certificate.optimal)
    (42.0, True, True)
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend: must be one of {BACKENDS}, got {backend!r}")
    validate_positive(rtol, "rtol")
    validate_positive(mass_rtol, "mass_rtol", allow_zero=True)
    if n_threads is not None:
        validate_positive(n_threads, "n_threads", integer=True)

    # -- inputs in the caller's type (the differentiable path needs them) -----------------------
    cost_in = cost.cost_matrix() if isinstance(cost, PointCloud) else validate_cost(cost, "cost")
    if isinstance(cost, PointCloud):
        cost_in = validate_cost(cost_in, "cost")
    n, m = cost_in.shape[-2:]
    like = first_tensor(cost_in, a, b)
    a_in = uniform_weights(n, like) if a is None else validate_weights(a, "a")
    b_in = uniform_weights(m, like) if b is None else validate_weights(b, "b")
    if a_in.shape[-1] != n:
        raise ValueError(f"a: expected {n} weights (the rows of cost), got {a_in.shape[-1]}")
    if b_in.shape[-1] != m:
        raise ValueError(f"b: expected {m} weights (the columns of cost), got {b_in.shape[-1]}")
    sizes = {s for s in (batch_size("a", a_in, 1), batch_size("b", b_in, 1),
                         batch_size("cost", cost_in, 2)) if s is not None}
    if len(sizes) > 1:
        raise ValueError(f"cost: batch sizes of a, b and cost differ: {sorted(sizes)}")
    batch = sizes.pop() if sizes else None
    if max_iter is None:
        max_iter = max(100_000, 1000 * (n + m))
    else:
        validate_positive(max_iter, "max_iter", integer=True)

    # -- float64 numpy problems -------------------------------------------------------------------
    A, Bw, C = to_numpy(a_in, "a"), to_numpy(b_in, "b"), to_numpy(cost_in, "cost")
    if like is not None and like.is_floating_point():
        # weights stored in a low precision (float16, bfloat16) cannot sum to equal totals more
        # closely than a few units in the last place
        import torch

        mass_rtol = max(mass_rtol, 4 * torch.finfo(like.dtype).eps)
    mass_a, mass_b = validate_same_mass(A, Bw, rtol=mass_rtol)
    posed = [exact_weights(None if a is None else (A if A.ndim == 1 else A[k]),
                           None if b is None else (Bw if Bw.ndim == 1 else Bw[k]), n, m)
             for k in range(batch or 1)]  # the problem as posed, for its proven bounds
    Bw = Bw * (np.asarray(mass_a) / np.asarray(mass_b))[..., None]  # equal masses (to rounding)
    if batch is not None:
        A, Bw, C = (np.broadcast_to(A, (batch, n)), np.broadcast_to(Bw, (batch, m)),
                    np.broadcast_to(C, (batch, n, m)))

    with warnings.catch_warnings():
        # POT warns on its iteration cap; we report it ourselves, with the certificate.
        warnings.filterwarnings("ignore", message="numItermax reached", category=UserWarning)
        if batch is None:
            plan, u, v, status, certificate = _solve_one(A, Bw, C, backend, max_iter, rtol, posed[0])
        else:
            constraints = _highs_constraints(n, m) if backend == "highs" else None
            # threads pay off once a problem takes longer than starting one (~0.1 ms)
            auto = (os.cpu_count() or 1) if n * m >= 4096 else 1
            workers = min(batch, n_threads or auto)

            def job(k):
                return _solve_one(A[k], Bw[k], C[k], backend, max_iter, rtol, posed[k], constraints)

            if workers > 1:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    parts = list(pool.map(job, range(batch)))
            else:
                parts = [job(k) for k in range(batch)]
            plan, u, v, status = (np.stack([part[i] for part in parts]) for i in range(4))
            certificate = stack_certificates([part[4] for part in parts])

    converged = np.asarray(certificate.optimal) & (np.asarray(status) == "optimal")
    if not converged.all():
        warnings.warn(
            f"emd ({backend}): {int((~np.atleast_1d(converged)).sum())} problem(s) not certified optimal "
            f"(status {np.atleast_1d(status)[np.argmin(np.atleast_1d(converged))]}; "
            f"{certificate.summary()}); increase max_iter or check the inputs",
            ConvergenceWarning, stacklevel=2,
        )
    converged = bool(converged) if batch is None else converged

    if isinstance(cost, PointCloud):  # bounds for the exact distances of the points, not the computed matrix
        lower, upper = _point_cloud_bounds(cost, posed, plan, u, v, batch)
    else:
        lower, upper = np.atleast_1d(certificate.lower), np.atleast_1d(certificate.upper)
    bounds = bounds_output(lower, upper, like, batched=batch is not None)
    value = certificate.primal
    if like is not None:
        value, plan, u, v = _torch_outputs(a, b, a_in, b_in, cost_in, plan, u, v, like)
    marginal_error = certificate.marginal_error_a + certificate.marginal_error_b
    return OTResult(cost=value, plan=plan, potentials=(u, v), certificate=certificate, converged=converged,
                    marginal_error=marginal_error, status=status, backend=backend, _bounds=bounds)


def _point_cloud_bounds(geom: PointCloud, posed, plan, u, v, batch):
    """Proven bounds of each problem with the costs ``d(x_i, y_j)^p`` of the exact points (float64)."""
    import torch

    def f64(t):
        if hasattr(t, "detach"):
            return t.detach().to(torch.float64)
        return torch.as_tensor(np.ascontiguousarray(t, dtype=np.float64))

    xs, ys = f64(geom.x), f64(geom.y)
    plan, u, v = f64(plan).to(xs.device), f64(u).to(xs.device), f64(v).to(xs.device)
    lower, upper = [], []
    for k in range(batch or 1):
        pick = (lambda t: t) if batch is None else (lambda t: t[k])
        x_k = pick(xs) if xs.ndim == 3 else xs
        y_k = pick(ys) if ys.ndim == 3 else ys
        lo, hi = point_bounds(posed[k], x_k, y_k, geom.p, geom.metric, pick(plan), pick(u), pick(v))
        lower.append(lo)
        upper.append(hi)
    return lower, upper


def _torch_outputs(a, b, a_in, b_in, cost_in, plan, u, v, like):
    """Tensors on the caller's device, and a cost whose gradients are (P, u, v) by the envelope theorem.

    The problem solved is ``OT(a, b |a| / |b|)``: ``b`` is rescaled to the mass of ``a``, and the rescaling is
    part of the graph, so that the gradient is right in every direction (also those that change a mass):
    ``d/da_i = u_i + <b', v> / |a|`` and ``d/db_j = (|a| / |b|) (v_j - <b', v> / |a|)``.
    """
    plan_t, u_t, v_t = (as_like(t, like) for t in (plan, u, v))
    cost_t = cost_in if is_tensor(cost_in) else as_like(cost_in, like)
    value = (plan_t * cost_t.to(plan_t.dtype)).sum((-2, -1))
    a_g = a_in if (a is not None and is_tensor(a_in) and a_in.requires_grad) else None
    b_g = b_in if (b is not None and is_tensor(b_in) and b_in.requires_grad) else None
    if a_g is not None:
        # zero in value, gradient `u` with respect to a
        value = value + (u_t * (a_g - a_g.detach()).to(u_t.dtype)).sum(-1)
    if a_g is not None or b_g is not None:
        a_t = a_in if is_tensor(a_in) else as_like(a_in, like)
        b_t = b_in if is_tensor(b_in) else as_like(b_in, like)
        rescaled = b_t * (a_t.sum(-1, keepdim=True) / b_t.sum(-1, keepdim=True))  # b', in the graph
        value = value + (v_t * (rescaled - rescaled.detach()).to(v_t.dtype)).sum(-1)
    return value, plan_t.detach(), u_t.detach(), v_t.detach()


def wasserstein(x, y, *, a=None, b=None, p: float | None = None, metric: str = "euclidean", **emd_options):
    """The exact p-Wasserstein distance between two empirical measures.

    .. math::

        W_p(\\alpha, \\beta) = \\Big( \\min_{P \\in \\Pi(a, b)} \\sum_{ij} P_{ij}\\, d(x_i, y_j)^p \\Big)^{1/p},
        \\qquad \\alpha = \\sum_i a_i \\delta_{x_i},\\; \\beta = \\sum_j b_j \\delta_{y_j}.

    Parameters
    ----------
    x : array-like or tensor, shape ``(n, d)`` (or ``(n,)`` for points on a line, or ``(B, n, d)``)
    y : array-like or tensor, shape ``(m, d)`` (or ``(m,)``, or ``(B, m, d)``)
    a, b : optional weights, shapes ``(n,)`` and ``(m,)`` (uniform when omitted)
    p : float, default 2
        The order, ``>= 1``. The default was 1 before otmetrics 0.2: omitting ``p`` gives a
        ``FutureWarning`` until 0.3 (see ``docs/conventions.md``).
    metric : {"euclidean", "cityblock", "chebyshev"}
    **emd_options
        Passed to :func:`emd` (``backend``, ``max_iter``, ``rtol``, ...).

    Returns
    -------
    float (numpy input), ndarray ``(B,)`` (batched), or a 0-d tensor (torch input; differentiable
    with respect to the points and the weights).

    Notes
    -----
    This is ``emd(a, b, PointCloud(x, y, p=p, metric=metric)).cost ** (1 / p)``; call that to get the
    plan, the potentials and the certificate.

    References
    ----------
    Villani, *Optimal Transport: Old and New*, 2009, Def. 6.1.

    Examples
    --------
    Translating a point cloud by ``t`` moves it exactly ``|t|`` in W1:

    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(50, 2))
    >>> round(wasserstein(x, x + [3.0, 4.0], p=1), 12)
    5.0
    """
    p = changed_default(p, func="wasserstein", name="p", old=1, new=2)
    result = emd(a, b, PointCloud(x, y, p=p, metric=metric), **emd_options)
    return pth_root(result.cost, p)

