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
import numbers
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..._core.arrays import batch_size, is_tensor, to_numpy
from ..._core.validation import validate_cost, validate_positive, validate_same_mass, validate_weights
from ..._core.warnings import ConvergenceWarning, NumericalWarning
from ..costs import PointCloud

__all__ = ["SinkhornResult", "sinkhorn", "sinkhorn_divergence"]


# ------------------------------------------------------------------------------------------------
# The result
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SinkhornResult:
    """The solution of an entropic optimal-transport problem, with per-problem diagnostics.

    Values are numpy ``float64`` (Python floats for one problem) for numpy input, tensors on the caller's
    device and dtype for torch input; a batch keeps its leading axis ``B`` everywhere.

    Attributes
    ----------
    f, g : shapes ``(n,)``, ``(m,)`` (or ``(B, n)``, ``(B, m)``)
        Dual potentials, in cost units: the plan is ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)``.
        Detached (no gradient). Points of zero weight get their soft c-transform value.
    cost : float, ndarray ``(B,)`` or tensor
        The transport cost ``<C, P>`` of the returned plan (no entropy). Detached: its gradient is not given
        by the envelope theorem; differentiate ``objective``.
    objective : float, ndarray ``(B,)`` or tensor
        ``OT_eps = <C, P> + eps KL(P | a x b)``, evaluated as the dual value
        ``<a, f> + <b, g> - eps (sum(P) - |a| |b|)`` at the returned potentials: a lower bound of ``OT_eps``
        for any potentials (weak duality), equal to it up to the marginal error. For torch input it is
        differentiable with respect to ``a``, ``b`` and the cost (or the points of a ``PointCloud``) by the
        envelope theorem: ``d/dC = P``, ``d/da = f - eps (P 1 / a - |b|)``.
    converged : bool or ndarray of bool ``(B,)``
        ``marginal_error <= tol * |a|``.
    n_iter : int or ndarray of int ``(B,)``
        Iterations run on each problem, epsilon-scaling stages included (one iteration = one update of
        each potential).
    marginal_error : float or ndarray ``(B,)``
        The L1 violation of the marginals of the returned plan, ``|P 1 - a|_1 + |P^T 1 - b|_1``, measured
        (the column term is zero by construction, up to rounding).
    eps, tol : float
        The regularisation and the tolerance that were used.

    Methods
    -------
    plan()
        The transport plan ``(n, m)`` (or ``(B, n, m)``), computed on demand (for an online point cloud this
        materialises the ``n x m`` matrix).
    """

    f: Any
    g: Any
    cost: Any
    objective: Any
    converged: Any
    n_iter: Any
    marginal_error: Any
    eps: float
    tol: float
    _plan_fn: Any = field(default=None, repr=False, compare=False)

    def plan(self):
        """The plan ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)``, ``(n, m)`` or ``(B, n, m)``."""
        return self._plan_fn()


# ------------------------------------------------------------------------------------------------
# Input handling
# ------------------------------------------------------------------------------------------------
@dataclass
class _Problem:
    """A validated problem as torch tensors with a batch axis, and how to give results back."""

    op: Any            # SoftMin
    a: Any             # (B, n), in the graph of the caller's a (if any)
    b: Any             # (B, m), rescaled to the mass of a
    mass_a: np.ndarray  # (B,)
    mass_b: np.ndarray
    batched: bool
    like: Any          # a tensor for torch output, None for numpy output


def _torch():
    import torch

    return torch


def _reference(**values):
    """The tensor that decides the output type, device and dtype, or None (numpy)."""
    torch = _torch()
    named = [(name, v) for name, v in values.items() if is_tensor(v)]
    tensors = [v for _, v in named]
    if not tensors:
        return None
    device = tensors[0].device
    for name, t in named[1:]:
        if t.device != device:
            raise ValueError(f"{name}: must be on the device of {named[0][0]} ({device}), got {t.device}")
    dtype = None
    for t in tensors:
        if t.is_floating_point():
            dtype = t.dtype if dtype is None else torch.promote_types(dtype, t.dtype)
    dtype = dtype or torch.float64
    return torch.empty(0, dtype=dtype, device=device)


def _as_tensor(x, ref, name):
    torch = _torch()
    if is_tensor(x):
        return x.to(ref.dtype) if x.dtype != ref.dtype else x
    return torch.as_tensor(to_numpy(x, name), dtype=ref.dtype, device=ref.device)


def _prepare(a, b, cost, *, online=None, mass_rtol=1e-6) -> _Problem:
    """Validate ``a``, ``b``, ``cost`` and build the soft-min operator (the shared front of both solvers)."""
    from .softmin import DenseSoftMin, PointCloudSoftMin

    torch = _torch()
    geom = cost if isinstance(cost, PointCloud) else None
    if geom is None:
        cost = validate_cost(cost, "cost")
        n, m = cost.shape[-2:]
        cost_batch = batch_size("cost", cost, 2)
        ref = _reference(cost=cost, a=a, b=b)
    else:
        n, m = geom.shape[-2:]
        cost_batch = geom.x.shape[0] if geom.batched else None
        ref = _reference(x=geom.x, y=geom.y, a=a, b=b)
    like = ref
    if ref is None:
        ref = torch.empty(0, dtype=torch.float64)

    def weights(w, name, size, what):
        if w is None:
            return torch.full((size,), 1.0 / size, dtype=ref.dtype, device=ref.device)
        w = validate_weights(w, name)
        if w.shape[-1] != size:
            raise ValueError(f"{name}: expected {size} weights (the {what} of cost), got {w.shape[-1]}")
        return _as_tensor(w, ref, name)

    a_t = weights(a, "a", n, "rows")
    b_t = weights(b, "b", m, "columns")
    sizes = {s for s in (batch_size("a", a_t, 1), batch_size("b", b_t, 1), cost_batch) if s is not None}
    if len(sizes) > 1:
        raise ValueError(f"cost: batch sizes of a, b and cost differ: {sorted(sizes)}")
    batch = sizes.pop() if sizes else None
    rtol = max(float(mass_rtol), 100 * float(torch.finfo(ref.dtype).eps))
    mass_a, mass_b = validate_same_mass(a_t.detach(), b_t.detach(), rtol=rtol)
    B = batch or 1
    mass_a = np.broadcast_to(np.asarray(mass_a, dtype=np.float64), (B,)).copy()
    mass_b = np.broadcast_to(np.asarray(mass_b, dtype=np.float64), (B,)).copy()
    a_t = a_t.expand(B, n) if a_t.ndim == 1 else a_t
    b_t = b_t.expand(B, m) if b_t.ndim == 1 else b_t
    scale = torch.as_tensor(mass_a / mass_b, dtype=ref.dtype, device=ref.device)
    b_t = b_t * scale[:, None]  # exactly balanced masses (the factor is a constant for autograd)
    mass_b = mass_a.copy()

    if geom is None:
        c = _as_tensor(cost, ref, "cost")
        c = c.expand(B, n, m) if c.ndim == 2 else c
        op = DenseSoftMin(c)
    else:
        x, y = _as_tensor(geom.x, ref, "x"), _as_tensor(geom.y, ref, "y")
        if x.ndim == 2:
            x, y = x.expand(B, *x.shape), y.expand(B, *y.shape)
        use_online = geom.online if online is None else online
        if use_online:
            op = PointCloudSoftMin(x, y, geom.p, geom.metric, rows=geom.chunk_size)
        else:
            from ..costs import cost_matrix

            op = DenseSoftMin(cost_matrix(x, y, geom.p, geom.metric))
    return _Problem(op, a_t, b_t, mass_a, mass_b, batch is not None, like)


def _check_options(eps, tol, max_iter, eps_scaling, eps_init):
    eps = float(validate_positive(eps, "eps"))
    tol = float(validate_positive(tol, "tol"))
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter: must be a positive integer, got {max_iter!r}")
    if eps_scaling is not None:
        if isinstance(eps_scaling, bool) or not isinstance(eps_scaling, numbers.Real) \
                or not 0 < eps_scaling < 1:
            raise ValueError(f"eps_scaling: must be a factor in (0, 1) or None, got {eps_scaling!r}")
        eps_scaling = float(eps_scaling)
    if eps_init is not None:
        eps_init = float(validate_positive(eps_init, "eps_init"))
    return eps, tol, int(max_iter), eps_scaling, eps_init


def _output(value, prob: _Problem, *, scalar_ok=True):
    """A ``(B, ...)`` tensor in the caller's type, with the batch axis dropped for one problem."""
    if not prob.batched:
        value = value[0]
    if prob.like is not None:
        return value.to(prob.like.dtype) if value.is_floating_point() else value
    arr = value.detach().cpu().numpy().astype(np.float64)
    return float(arr) if (arr.ndim == 0 and scalar_ok) else arr


def _diag(values, prob: _Problem, kind):
    values = np.asarray(values)
    if prob.batched:
        return values.astype(kind)
    return kind(values[0]) if kind is not bool else bool(values[0])


# ------------------------------------------------------------------------------------------------
# The differentiable objective (envelope theorem)
# ------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=None)
def _objective_function():
    torch = _torch()
    from .softmin import soft_c_transform

    class EntropicObjective(torch.autograd.Function):
        """``OT_eps`` as a function of ``(a, b, cost leaves)`` with the optimal potentials held fixed.

        The value is the dual
        ``D(f, g) = <a, f> + <b, g> - eps <a x b, exp((f + g - C) / eps)> + eps |a||b|``;
        at the optimum its partial derivatives are those of ``OT_eps`` (envelope theorem):
        ``dD/dC = P``, ``dD/da_i = f_i - eps (P 1)_i / a_i + eps |b|`` and symmetrically for ``b``.
        """

        @staticmethod
        def forward(ctx, value, state, a, b, *leaves):
            ctx.state = state
            return value.detach().clone()

        @staticmethod
        def backward(ctx, grad):
            op, f, g, loga, logb, eps, mass_a, mass_b = ctx.state
            grad = grad.reshape(-1)
            needs = ctx.needs_input_grad
            grad_a = grad_b = None
            if needs[2]:
                f_next = soft_c_transform(op, g, logb, eps, to="rows")
                grad_a = f - eps * torch.exp((f - f_next) / eps) + eps * mass_b[:, None]
                grad_a = grad_a * grad[:, None].to(f.dtype)
            if needs[3]:
                g_next = soft_c_transform(op, f, loga, eps, to="cols")
                grad_b = g - eps * torch.exp((g - g_next) / eps) + eps * mass_a[:, None]
                grad_b = grad_b * grad[:, None].to(g.dtype)
            leaf_grads = op.leaf_grads(f, g, loga, logb, eps, grad, needs[4:])
            return (None, None, grad_a, grad_b, *leaf_grads)

    return EntropicObjective


def _dual_value(prob_a, prob_b, f, g, plan_mass, eps, mass_a, mass_b):
    """``<a, f> + <b, g> - eps sum(P) + eps |a||b|`` per problem, in float64."""
    torch = _torch()
    f64 = torch.float64
    value = (prob_a.detach().to(f64) * f.to(f64)).nansum(1) + (prob_b.detach().to(f64) * g.to(f64)).nansum(1)
    extra = eps * (torch.as_tensor(mass_a * mass_b - plan_mass, dtype=f64, device=f.device))
    return value + extra


def _attach_gradient(value, op, f, g, a, b, eps, mass_a, mass_b):
    """``value`` (B,) carrying envelope-theorem gradients to ``a``, ``b`` and the cost's leaves."""
    torch = _torch()
    leaves = op.leaves()
    tracked = [t for t in (a, b, *leaves) if is_tensor(t) and t.requires_grad]
    if not tracked or not torch.is_grad_enabled():
        return value
    loga, logb = torch.log(a.detach()), torch.log(b.detach())
    dev = f.device
    state = (op, f, g, loga, logb, eps, torch.as_tensor(mass_a, dtype=f.dtype, device=dev),
             torch.as_tensor(mass_b, dtype=f.dtype, device=dev))
    return _objective_function().apply(value, state, a, b, *leaves)


# ------------------------------------------------------------------------------------------------
# sinkhorn
# ------------------------------------------------------------------------------------------------
def sinkhorn(a, b, cost, eps: float, *, tol: float = 1e-6, max_iter: int = 10_000,
             eps_scaling: float | None = None, eps_init: float | None = None, init=None,
             mass_rtol: float = 1e-6) -> SinkhornResult:
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
    under- or overflows. Each problem stops as soon as the L1 error of its marginals is ``<= tol |a|``;
    converged problems stop changing while the others go on.

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
        Iterations per problem, epsilon-scaling stages included. A problem that reaches it unconverged is
        flagged ``converged=False`` and a :class:`~otmetrics.ConvergenceWarning` is raised.
    eps_scaling : float in (0, 1), optional
        Epsilon-scaling: run one iteration at each of ``eps_init, eps_init * s, eps_init * s^2, ...`` while
        above ``eps``, then iterate at ``eps`` until ``tol`` holds. Speeds up small ``eps`` a lot; the
        answer is the same (the final iterations always run at the target ``eps``).
    eps_init : float, optional
        The first eps of the schedule; default: an upper bound of the largest cost.
    init : tuple ``(f, g)``, optional
        Initial potentials (warm start), shapes as the returned ``f``, ``g``. Default: zeros.
    mass_rtol : float, default 1e-6
        Largest accepted relative difference of the masses of ``a`` and ``b`` (at least 100 machine
        epsilons of the dtype).

    Returns
    -------
    SinkhornResult
        ``f``, ``g``, ``cost`` (``<C, P>``), ``objective`` (``OT_eps``, differentiable), ``converged``,
        ``n_iter``, ``marginal_error`` per problem, and ``plan()`` on demand.

    Raises
    ------
    ValueError
        ``eps <= 0``; non-finite or negative weights; masses that differ; shapes that do not match the cost;
        non-finite costs; bad options. The message names the argument.

    Warns
    -----
    ConvergenceWarning
        When a problem reaches ``max_iter`` with its marginal error above ``tol``.

    Notes
    -----
    Cost: ``O(n m)`` per iteration and problem. On dense costs the iterations at the target ``eps`` run
    in the equivalent *scaling* form (matrix-vector products with a kernel into which the potentials are
    absorbed, re-absorbed whenever the scalings drift; Schmitzer 2019), which is several times faster than
    one log-sum-exp per entry and equally safe; online point clouds use blocked log-sum-exp reductions.
    The number of iterations grows like ``1 / eps``; use ``eps_scaling`` for small ``eps``.
    Computations stay in the caller's dtype; sums reported in the result are accumulated in float64.

    As ``eps -> 0``, ``EMD <= cost <= objective <= EMD + eps * min(H(a), H(b))`` (``H`` the entropy of
    the normalised weights), up to the marginal error.

    References
    ----------
    Cuturi, "Sinkhorn distances: lightspeed computation of optimal transport", NeurIPS 2013.
    Peyré & Cuturi, *Computational Optimal Transport*, 2019, Ch. 4.
    Schmitzer, "Stabilized sparse scaling algorithms for entropy regularized transport problems",
    SIAM J. Sci. Comput. 41(3), 2019.

    Examples
    --------
    Two points that stay put (the exact cost is 0); the entropy spreads a little mass across:

    >>> import numpy as np
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> res = sinkhorn([0.5, 0.5], [0.5, 0.5], C, eps=0.25)
    >>> bool(res.converged), round(res.cost, 6), round(res.objective, 6)
    (True, 0.017986, 0.168749)
    >>> res.plan().round(3)
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
    from . import loop

    eps, tol, max_iter, eps_scaling, eps_init = _check_options(eps, tol, max_iter, eps_scaling, eps_init)
    prob = _prepare(a, b, cost, mass_rtol=mass_rtol)
    op = prob.op
    a_t, b_t = prob.a, prob.b
    a_d, b_d = a_t.detach(), b_t.detach()
    loga, logb = torch.log(a_d), torch.log(b_d)
    f0 = g0 = None
    if init is not None:
        f0, g0 = _initial_potentials(init, prob)
    schedule = loop.eps_schedule(eps, eps_init, eps_scaling, op.max_cost() if eps_scaling else 0.0)
    with torch.no_grad():
        out = loop.alternating(op, a_d, b_d, loga, logb, eps, tol=tol * prob.mass_a, max_iter=max_iter,
                               schedule=schedule, f0=f0, g0=g0)
        transport = op.transport_cost(out.f, out.g, loga, logb, eps)
    value = _dual_value(a_d, b_d, out.f, out.g, out.plan_mass, eps, prob.mass_a, prob.mass_b)
    objective = _attach_gradient(value.to(out.f.dtype), op, out.f, out.g, a_t, b_t, eps,
                                 prob.mass_a, prob.mass_b)
    _warn_unconverged("sinkhorn", out, tol, max_iter)

    def plan():
        with torch.no_grad():
            return _output(op.plan(out.f, out.g, loga, logb, eps), prob)

    return SinkhornResult(
        f=_output(out.f, prob), g=_output(out.g, prob), cost=_output(transport.to(out.f.dtype), prob),
        objective=_output(objective, prob), converged=_diag(out.converged, prob, bool),
        n_iter=_diag(out.n_iter, prob, int), marginal_error=_diag(out.error, prob, float),
        eps=eps, tol=tol, _plan_fn=plan,
    )


def _initial_potentials(init, prob):
    torch = _torch()
    if not isinstance(init, (tuple, list)) or len(init) != 2:
        raise ValueError(f"init: expected a pair of potentials (f, g), got {type(init).__name__}")
    ref = prob.a
    out = []
    for name, pot, size in (("init[0]", init[0], prob.op.n), ("init[1]", init[1], prob.op.m)):
        t = torch.as_tensor(to_numpy(pot, name), dtype=ref.dtype, device=ref.device) if not is_tensor(pot) \
            else pot.detach().to(ref.dtype)
        if t.shape[-1] != size or t.ndim > 2:
            raise ValueError(f"{name}: expected shape ({size},) or (B, {size}), got {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}: potentials must be finite")
        out.append(t.expand(prob.op.batch, size).clone() if t.ndim == 1 else t.clone())
        if out[-1].shape[0] != prob.op.batch:
            raise ValueError(f"{name}: batch size {out[-1].shape[0]} differs from {prob.op.batch}")
    return out


def _warn_unconverged(name, out, tol, max_iter):
    bad = ~out.converged
    if bad.any():
        worst = float(np.max(out.error[bad]))
        warnings.warn(
            f"{name}: {int(bad.sum())} of {bad.size} problem(s) reached max_iter={max_iter} with a marginal "
            f"error above tol={tol:g} (largest {worst:.3g}); increase max_iter, use eps_scaling, or a "
            f"larger eps",
            ConvergenceWarning, stacklevel=3,
        )


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
                        max_iter: int = 10_000, eps_scaling: float | None = None,
                        eps_init: float | None = None, mass_rtol: float = 1e-6):
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
    tol, max_iter, eps_scaling, eps_init, mass_rtol
        As in :func:`sinkhorn`, for each of the three problems.

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
    from . import loop

    eps, tol, max_iter, eps_scaling, eps_init = _check_options(eps, tol, max_iter, eps_scaling, eps_init)
    geom_xy = PointCloud(x, y, p=p, metric=metric, online=online, chunk_size=chunk_size)
    prob = _prepare(a, b, geom_xy, mass_rtol=mass_rtol)
    schedule = loop.eps_schedule(eps, eps_init, eps_scaling, prob.op.max_cost() if eps_scaling else 0.0)
    a_t, b_t = prob.a, prob.b
    a_d, b_d = a_t.detach(), b_t.detach()
    loga, logb = torch.log(a_d), torch.log(b_d)
    tol_abs = tol * prob.mass_a
    mass = prob.mass_a

    def self_op(points, w):
        geom = PointCloud(points, p=p, metric=metric, online=online, chunk_size=chunk_size)
        return _prepare(w, w, geom, mass_rtol=np.inf).op

    def objective(op, res, w1, w2):
        value = _dual_value(w1.detach(), w2.detach(), res.f, res.g, res.plan_mass, eps, mass, mass)
        return _attach_gradient(value.to(res.f.dtype), op, res.f, res.g, w1, w2, eps, mass, mass)

    op_xx = self_op(geom_xy.x, a_t)
    with torch.no_grad():
        res_xx = loop.symmetric(op_xx, a_d, loga, eps, tol=tol_abs, max_iter=max_iter, schedule=schedule)
    d_xx = objective(op_xx, res_xx, a_t, a_t)
    if _same_points(geom_xy) and _same(a_d, b_d):
        # one measure: the three problems share the solution of OT(alpha, alpha); the value is exactly 0
        # and the gradients cancel, as they should at the minimum
        op_yy = self_op(geom_xy.y, b_t)
        res_xy = res_yy = res_xx
        d_yy = objective(op_yy, res_xx, b_t, b_t)
        d_xy = objective(prob.op, res_xx, a_t, b_t)
    else:
        op_yy = self_op(geom_xy.y, b_t)
        with torch.no_grad():
            res_yy = loop.symmetric(op_yy, b_d, logb, eps, tol=tol_abs, max_iter=max_iter, schedule=schedule)
            # warm start from the self-transport potentials: much faster when the measures are close
            # (e.g. late in a training loop), and no slower than a cold start or the schedule otherwise
            res_xy = loop.alternating(prob.op, a_d, b_d, loga, logb, eps, tol=tol_abs, max_iter=max_iter,
                                      schedule=[], f0=res_xx.f, g0=res_yy.f)
        d_yy = objective(op_yy, res_yy, b_t, b_t)
        d_xy = objective(prob.op, res_xy, a_t, b_t)
    for name, res in (("OT(x, y)", res_xy), ("OT(x, x)", res_xx), ("OT(y, y)", res_yy)):
        _warn_unconverged(f"sinkhorn_divergence, {name}", res, tol, max_iter)

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
    return _output(raw.clamp_min(0.0), prob)


def _same_points(geom: PointCloud) -> bool:
    x, y = geom.x, geom.y
    if x is y:
        return True
    if tuple(x.shape) != tuple(y.shape):
        return False
    if is_tensor(x):
        return bool(_torch().equal(x.detach(), y.detach()))
    return bool(np.array_equal(x, y))
