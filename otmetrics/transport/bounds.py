"""Proven bounds ``lower <= OT <= upper`` on the exact optimal transport value, from any potentials and plan.

The problem bounded is the one the solvers are given: weights ``a`` (the floats given, or exactly
``1/n`` when omitted), weights ``b`` rescaled *exactly* to the mass of ``a`` (``b |a| / |b|`` in real
arithmetic), and the cost: a dense matrix (its floats are the exact costs) or ``d(x_i, y_j)^p`` of the
exact points of a :class:`~otmetrics.PointCloud`, computed here with a proven error bound.

- ``lower``: the potentials are made feasible by two c-transforms with rounding margins
  (:mod:`.feasible`), from each side (``u -> u^c -> u^cc`` and ``v -> v^c -> v^cc``), and the larger dual
  value ``<a, phi> + <b, psi>`` is enclosed within an ulp (:func:`~otmetrics._core.rounding.dot_interval`):
  a lower bound by weak duality, whatever the potentials are.
- ``upper``: the cost of a feasible plan: the given plan (or the entropic plan of the potentials, with
  its columns balanced by one more soft c-transform) rounded onto the exact marginals
  (:mod:`.plan_rounding`), with every sum bounded with directed rounding.

Both are valid for any input (garbage potentials give a poor bound, never a wrong one); they are ``-inf``
/ ``+inf`` when a computation overflows. Everything runs in float64; the bounds of a problem given in a
shorter float are rounded outwards to it (:func:`bounds_output`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._core.arrays import is_tensor, to_numpy
from .._core.rounding import add_interval, cast_down, cast_up, div_interval, dot_interval, gamma, mul_down
from .._core.rounding import mul_interval, mul_up, next_up, sum_interval
from .costs import PointCloud
from .feasible import PointCost, feasible_c_transform_dense
from .plan_rounding import plan_sums_blocks, plan_sums_dense, rounding_upper_bound

__all__ = ["ExactWeights", "exact_weights", "dense_bounds", "point_bounds", "entropic_bounds",
           "bounds_output", "support_potentials", "feasible_potentials", "sinkhorn_bounds", "problem_cost"]


@dataclass(frozen=True)
class ExactWeights:
    """The exact marginals of a problem: ``a = lam * ra`` and ``b = lam * rho * rb`` (real arithmetic).

    ``ra``, ``rb`` are float64 arrays (the weights as given, or ones for uniform weights); ``lam`` encloses
    the common factor (``1/n`` for uniform ``a``, else 1) and ``rho`` the rescaling ``|ra| / |rb|``.
    """

    ra: np.ndarray
    rb: np.ndarray
    lam: tuple[float, float]
    rho: tuple[float, float]

    def scale(self, interval: tuple[float, float]) -> tuple[float, float]:
        """A bound on ``OT(ra, rho rb)`` turned into one on ``OT(a, b) = lam OT(ra, rho rb)``."""
        return mul_interval(self.lam, interval)

    def unit(self) -> "ExactWeights":
        """The problem ``(ra, rho rb)`` without the common factor ``lam``."""
        return ExactWeights(self.ra, self.rb, (1.0, 1.0), self.rho)

    def a_bounds(self):
        """Componentwise enclosures ``(lo, hi)`` of the exact ``a`` (float64 arrays)."""
        return mul_down(self.ra, self.lam[0]), mul_up(self.ra, self.lam[1])

    def b_bounds(self):
        """Componentwise enclosures ``(lo, hi)`` of the exact ``b`` (rescaled to the mass of ``a``)."""
        factor = mul_interval(self.lam, self.rho)
        return mul_down(self.rb, factor[0]), mul_up(self.rb, factor[1])


def exact_weights(a, b, n: int, m: int) -> ExactWeights:
    """:class:`ExactWeights` of ``(a, b)`` as given to a solver (None: uniform), for one problem.

    Examples
    --------
    >>> w = exact_weights(None, [1.0, 3.0], 3, 2)
    >>> w.ra.tolist(), w.lam[0] <= 1 / 3 <= w.lam[1], w.rho[0] <= 0.75 <= w.rho[1]
    ([1.0, 1.0, 1.0], True, True)
    """
    ra = np.ones(n) if a is None else to_numpy(a, "a").reshape(-1)
    rb = np.ones(m) if b is None else to_numpy(b, "b").reshape(-1)
    lam = div_interval((1.0, 1.0), (float(n), float(n))) if a is None else (1.0, 1.0)
    rho = div_interval(sum_interval(ra), sum_interval(rb))
    return ExactWeights(ra, rb, lam, rho)


def _dual_value(w: ExactWeights, phi, psi) -> tuple[float, float]:
    """An enclosure of ``<a, phi> + <b, psi>`` for the exact weights (``phi``, ``psi`` float64)."""
    rows, cols = dot_interval(w.ra, phi), dot_interval(w.rb, psi)
    return w.scale(add_interval(rows, mul_interval(w.rho, cols)))


# ------------------------------------------------------------------------------------------------
# Dense costs (exact data): the LP's plans and potentials, certify
# ------------------------------------------------------------------------------------------------
def support_potentials(cost: np.ndarray, plan: np.ndarray, u: np.ndarray, v: np.ndarray):
    """Potentials tight on the plan's support: ``u_i + v_j = C_ij`` (to rounding) wherever ``P_ij > 0``.

    The support of a basic solution (the network simplex's) is a forest; from one point of each of its
    trees, which keeps its given potential, ``v_j = C_ij - u_i`` and ``u_i = C_ij - v_j`` are propagated
    along the support. The potentials then carry the rounding of the costs on the support only (not of the
    scale the solver worked at), which makes the c-transform bound tight to rounding even when the value
    is tiny next to the largest cost. Points off the support keep their given potentials; a support with
    more than ``2 (n + m)`` entries (not a basic solution) is left alone.

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[1e-7, 1.0], [0.0, 0.0]])
    >>> u, v = support_potentials(C, np.array([[0.5, 0.0], [0.0, 0.5]]), np.array([3e-15, 0.0]), np.zeros(2))
    >>> float(u[0] + v[0]) == 1e-7, float(u[1] + v[1]) == 0.0
    (True, True)
    """
    from collections import deque

    n, m = cost.shape
    rows, cols = np.nonzero(plan > 0)
    if rows.size > 2 * (n + m):
        return u, v
    # plain Python floats and lists: the same IEEE subtractions as on numpy scalars, several times faster
    uu = np.array(u, dtype=np.float64).tolist()
    vv = np.array(v, dtype=np.float64).tolist()
    costs = cost[rows, cols].astype(np.float64).tolist()
    row_adj, col_adj = [[] for _ in range(n)], [[] for _ in range(m)]
    for i, j, c in zip(rows.tolist(), cols.tolist(), costs):
        row_adj[i].append((j, c))
        col_adj[j].append((i, c))
    seen_r, seen_c = [False] * n, [False] * m
    for root in range(n):
        if seen_r[root] or not row_adj[root]:
            continue
        seen_r[root] = True
        queue = deque([(0, root)])
        while queue:
            side, k = queue.popleft()
            if side == 0:
                for j, c in row_adj[k]:
                    if not seen_c[j]:
                        seen_c[j] = True
                        vv[j] = c - uu[k]
                        queue.append((1, j))
            else:
                for i, c in col_adj[k]:
                    if not seen_r[i]:
                        seen_r[i] = True
                        uu[i] = c - vv[k]
                        queue.append((0, i))
    u, v = np.array(uu, dtype=np.float64), np.array(vv, dtype=np.float64)
    return u, v


def feasible_potentials(w: ExactWeights, cost: np.ndarray, u, v, plan=None):
    """The best of the feasible pairs ``(u^cc, u^c)``, ``(v^c, v^cc)`` (and from the potentials made tight
    on ``plan``'s support): ``(lower, phi, psi)`` with ``phi_i + psi_j <= C_ij`` exactly on the points of
    positive weight (0 elsewhere) and ``lower`` a lower bound of their dual value for the exact weights."""
    rows, cols = np.flatnonzero(w.ra > 0), np.flatnonzero(w.rb > 0)
    best = (-math.inf, None, None)
    starts = [(u, 0), (v, 1)]
    if plan is not None:  # the potentials made tight on the plan's support (a basic solution's): they carry
        # the rounding of the costs on the support only, and replace the solver's (two transforms fewer)
        u_s, v_s = support_potentials(cost, plan, u, v)
        if u_s is not u:
            starts = [(u_s, 0), (v_s, 1)]
    for start, axis in starts:
        first = feasible_c_transform_dense(cost, start, axis, rows=rows, cols=cols)
        second = feasible_c_transform_dense(cost, first, 1 - axis, rows=rows, cols=cols)
        phi, psi = (second, first) if axis == 0 else (first, second)
        value = _dual_value(w, phi, psi)[0]
        if value > best[0] or best[1] is None:
            best = (value, phi, psi)
    return best


def _dense_lower(w: ExactWeights, cost: np.ndarray, u, v, plan=None) -> float:
    return feasible_potentials(w, cost, u, v, plan)[0]


def _dense_bilinear(cost: np.ndarray):
    n, m = cost.shape

    def bilinear(alpha, beta):
        value = float(alpha @ (cost @ beta))
        return next_up(value * (1.0 + gamma(n + m + 3)))
    return bilinear


def dense_bounds(w: ExactWeights, cost, plan, u, v) -> tuple[float, float]:
    """``(lower, upper)`` of one problem with an exact dense cost, from a plan and potentials (float64).

    Parameters
    ----------
    w : ExactWeights
    cost, plan : ndarray ``(n, m)``
    u, v : ndarray ``(n,)``, ``(m,)``

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> lo, hi = dense_bounds(exact_weights(None, None, 2, 2), C, np.eye(2) / 2, np.zeros(2), np.zeros(2))
    >>> lo <= 0.0 <= hi, abs(lo) < 1e-300, hi < 1e-300
    (True, True, True)
    """
    cost, plan = np.asarray(cost, dtype=np.float64), np.asarray(plan, dtype=np.float64)
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    lower = _dense_lower(w, cost, u, v, plan) if np.isfinite(u).all() and np.isfinite(v).all() else -math.inf
    a_lo, a_hi = w.a_bounds()
    sums = plan_sums_dense(a_lo, cost, plan, support=(w.ra > 0, w.rb > 0))
    upper = rounding_upper_bound(sums, (a_lo, a_hi), w.b_bounds(), bilinear=_dense_bilinear(cost))
    return lower, upper


# ------------------------------------------------------------------------------------------------
# Point clouds (computed costs) and entropic plans (torch, float64, on the points' device)
# ------------------------------------------------------------------------------------------------
def _torch():
    import torch

    return torch


def _points_lower(w: ExactWeights, x, y, p, metric, u, v) -> float:
    torch = _torch()
    keep_x = torch.as_tensor(np.flatnonzero(w.ra > 0), device=x.device)
    keep_y = torch.as_tensor(np.flatnonzero(w.rb > 0), device=x.device)
    xs, ys = x.index_select(0, keep_x), y.index_select(0, keep_y)
    forward, backward = PointCost(xs, ys, p, metric), PointCost(ys, xs, p, metric)
    best = -math.inf
    for start, there, back in ((u.index_select(0, keep_x), forward, backward),
                               (v.index_select(0, keep_y), backward, forward)):
        vmax = float(start.abs().max())
        first, cmax = there.c_transform(start)
        first = first - there.margin(cmax, vmax)
        second, cmax = back.c_transform(first)
        second = second - back.margin(cmax, float(first.abs().max()))
        phi, psi = (second, first) if there is forward else (first, second)
        ra, rb = w.ra[w.ra > 0], w.rb[w.rb > 0]
        sub = ExactWeights(ra, rb, w.lam, w.rho)
        best = max(best, _dual_value(sub, phi.to("cpu").numpy(), psi.to("cpu").numpy())[0])
    return best


def _cost_blocks(cost):
    """``(rows, block)`` of a dense float64 tensor cost or a :class:`PointCost`, and its error."""
    if isinstance(cost, PointCost):
        return cost.row_blocks(), gamma(cost.rel_ops), cost.abs_error
    step = max(1, (1 << 20) // max(1, cost.shape[1]))
    return ((slice(s, s + step), cost[s:s + step]) for s in range(0, cost.shape[0], step)), 0.0, 0.0


def _transposed(cost):
    return cost.transposed() if isinstance(cost, PointCost) else cost.T


def _bilinear(cost):
    torch = _torch()

    def bilinear(alpha, beta):
        al = torch.as_tensor(alpha, dtype=torch.float64, device=_device(cost))
        be = torch.as_tensor(beta, dtype=torch.float64, device=_device(cost))
        blocks, rel, err = _cost_blocks(cost)
        total = 0.0
        for rows, block in blocks:
            total += float(al[rows] @ (block @ be))
        n, m = al.numel(), be.numel()
        spread = total * (1.0 + gamma(n + m + 3)) + err * sum_interval(alpha)[1] * sum_interval(beta)[1]
        return next_up(spread * (1.0 + 2.0 * rel))
    return bilinear


def _device(cost):
    return cost.src.device if isinstance(cost, PointCost) else cost.device


def _upper_from_blocks(w: ExactWeights, cost, plan_blocks, *, sparse: bool = False) -> float:
    """The upper bound of a plan whose marginals should be those of ``w`` (given in blocks of rows)."""
    torch = _torch()
    a_lo, a_hi = w.a_bounds()
    a_t = torch.as_tensor(a_lo, dtype=torch.float64, device=_device(cost))
    _, rel, err = _cost_blocks(cost)
    n, m = len(w.ra), len(w.rb)
    support = tuple(torch.as_tensor(r > 0, device=_device(cost)) for r in (w.ra, w.rb))
    sums = plan_sums_blocks(a_t, plan_blocks, n, m, count_terms=sparse, support=support)
    return rounding_upper_bound(sums, (a_lo, a_hi), w.b_bounds(), cost_rel=rel, cost_abs=err,
                                bilinear=_bilinear(cost))


def point_bounds(w: ExactWeights, x, y, p: float, metric: str, plan, u, v) -> tuple[float, float]:
    """``(lower, upper)`` of one problem between point clouds (exact points), from a plan and potentials.

    ``x``, ``y``: float64 tensors ``(n, d)``, ``(m, d)``; ``plan`` a float64 tensor ``(n, m)`` on their
    device; ``u``, ``v`` float64 tensors. The costs are recomputed here with their error bound.
    """
    lower = _points_lower(w, x, y, p, metric, u, v) if bool(_finite(u, v)) else -math.inf
    cost = PointCost(x, y, p, metric)
    blocks = ((rows, plan[rows].clamp_min(0.0), block) for rows, block in cost.row_blocks())
    return lower, _upper_from_blocks(w, cost, blocks, sparse=True)


def _finite(*tensors):
    return all(bool(_torch().isfinite(t).all()) for t in tensors)


def _column_balance(cost, f, log_a, eps):
    """``g_j = -eps log sum_i exp(log a_i + (f_i - c_ij) / eps)``: the soft c-transform balancing columns."""
    torch = _torch()
    h = log_a + f / eps
    t_cost = _transposed(cost)
    blocks, _, _ = _cost_blocks(t_cost)
    out = torch.empty(t_cost.n if isinstance(t_cost, PointCost) else t_cost.shape[0], dtype=torch.float64,
                      device=f.device)
    for rows, block in blocks:
        out[rows] = torch.logsumexp(h.unsqueeze(0) - block / eps, dim=1)
    return -eps * out


def entropic_bounds(w: ExactWeights, cost, f, g, eps: float) -> tuple[float, float]:
    """``(lower, upper)`` for one problem from entropic potentials ``(f, g)`` (any values) at ``eps``.

    ``cost``: a dense float64 tensor ``(n, m)`` (exact) or a :class:`PointCost` of the exact points;
    ``f``, ``g``: float64 tensors. ``lower`` from the c-transforms of ``f`` and ``g``; ``upper`` from the
    plan ``P_ij = a_i b_j exp((f_i + g'_j - c_ij) / eps)`` with ``g'`` the soft c-transform of ``f`` (exact
    column sums), rounded onto the exact marginals.
    """
    torch = _torch()
    if not _finite(f, g):
        return -math.inf, math.inf
    if isinstance(cost, PointCost):
        lower = _points_lower(w, cost.src, cost.dst, cost.p, cost.metric, f, g)
    else:
        lower = _dense_lower(w, cost.to("cpu").numpy(), f.to("cpu").numpy(), g.to("cpu").numpy())
    dev = f.device
    with np.errstate(divide="ignore"):
        log_a = torch.as_tensor(np.log(w.ra), dtype=torch.float64, device=dev)
        b_mid = w.rb * (0.5 * (w.rho[0] + w.rho[1]))
        log_b = torch.as_tensor(np.log(b_mid), dtype=torch.float64, device=dev)
    g_bal = _column_balance(cost, f, log_a, eps)
    row_term = (log_a + f / eps).unsqueeze(1)
    col_term = (log_b + g_bal / eps).unsqueeze(0)
    blocks, _, _ = _cost_blocks(cost)
    plan_blocks = ((rows, torch.exp(row_term[rows] + col_term - block / eps), block)
                   for rows, block in blocks)
    upper = _upper_from_blocks(w.unit(), cost, plan_blocks)  # the plan is in the units of (ra, rho rb)
    return lower, w.scale((upper, upper))[1]


def _float64(x, device):
    torch = _torch()
    if is_tensor(x):
        return x.detach().to(device=device, dtype=torch.float64)
    return torch.as_tensor(np.ascontiguousarray(to_numpy(x, "x")), dtype=torch.float64, device=device)


def _pick(x, k: int, core_ndim: int):
    """Problem ``k`` of a batched array (or the array itself when it has no batch axis)."""
    return x[k] if x is not None and x.ndim > core_ndim else x


def problem_cost(cost, k: int, device):
    """The cost of problem ``k`` in float64 on ``device``: a dense tensor, or a :class:`PointCost` of the
    exact points of a :class:`~otmetrics.PointCloud` (whatever ``online`` says: the bounds never store it)."""
    if isinstance(cost, PointCloud):
        x, y = _float64(cost.x, device), _float64(cost.y, device)
        return PointCost(_pick(x, k, 2), _pick(y, k, 2), cost.p, cost.metric)
    return _pick(_float64(cost, device), k, 2)


def sinkhorn_bounds(a, b, cost, f, g, eps: float, *, like=None, batched: bool = False):
    """``(lower, upper)`` of every problem of a Sinkhorn solve, in the caller's type (:func:`bounds_output`).

    ``a``, ``b``, ``cost``: the arguments as given to :func:`~otmetrics.sinkhorn` (validated); ``f``, ``g``:
    the
    potentials ``(B, n)``, ``(B, m)``.
    """
    torch = _torch()
    batch, n = f.shape
    m = g.shape[1]
    a_np = None if a is None else to_numpy(a, "a")
    b_np = None if b is None else to_numpy(b, "b")
    lower, upper = [], []
    with torch.no_grad():
        for k in range(batch):
            w = exact_weights(_pick(a_np, k, 1), _pick(b_np, k, 1), n, m)
            lo, hi = entropic_bounds(w, problem_cost(cost, k, f.device), f[k].to(torch.float64),
                                     g[k].to(torch.float64), eps)
            lower.append(lo)
            upper.append(hi)
    return bounds_output(lower, upper, like, batched)


# ------------------------------------------------------------------------------------------------
# Output: the caller's type, rounded outwards
# ------------------------------------------------------------------------------------------------
def bounds_output(lower, upper, like=None, batched: bool = False):
    """``(lower, upper)`` (sequences of floats, one per problem) in the caller's type.

    numpy: Python floats for one problem, float64 arrays ``(B,)`` for a batch. torch (``like`` a tensor):
    detached tensors on ``like``'s device in its floating dtype, ``lower`` rounded down and ``upper`` up.
    """
    lo, hi = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
    if like is None:
        return (lo, hi) if batched else (float(lo[0]), float(hi[0]))
    torch = _torch()
    dtype = like.dtype if like.is_floating_point() else torch.float64
    lo_t = cast_down(torch.as_tensor(lo, dtype=torch.float64), dtype).to(like.device)
    hi_t = cast_up(torch.as_tensor(hi, dtype=torch.float64), dtype).to(like.device)
    return (lo_t, hi_t) if batched else (lo_t[0], hi_t[0])
