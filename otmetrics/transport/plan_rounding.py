"""Upper bounds on the exact optimal transport value from any non-negative matrix, by rounding it onto the
exact marginals (Altschuler, Weed & Rigollet 2017, Algorithm 2), with rounding margins.

Let ``P >= 0`` be any matrix (a solver's plan, or an entropic plan computed block by block), with exact
row sums ``r`` and column sums ``c``, and ``a``, ``b`` the exact marginals (``|a| = |b|``). Scale the rows
down to ``min(a_i, r_i)`` (factors ``s_i = min(1, a_i / r_i)``), then the columns down to
``min(b_j, (X^T 1)_j)`` (factors ``t_j``), and send the missing mass ``D`` along the product of the
deficits ``da = a - X'1``, ``db = b - X'^T 1``:

.. math::

    P'' = X' + \\frac{d_a d_b^T}{D}, \\qquad X' = \\operatorname{diag}(s)\\, P \\operatorname{diag}(t),

a plan with exactly the marginals ``a`` and ``b``, so ``OT(a, b) <= <C, P''>``. Its cost is bounded
without forming it (``C >= 0``):

.. math::

    \\langle C, P'' \\rangle \\le \\langle C, P \\rangle
    + \\min\\Big( D\\, C_{\\max},\\;
    \\frac{\\alpha^T C \\beta}{|\\alpha|_1} + E_c\\, C_{\\max} \\Big),

with ``alpha_i = (a_i - r_i)^+`` (``<= da_i``, so ``|alpha| <= D``),
``beta_j = (b_j - c_j)^+ + sum_i (1 - s_i) P_ij`` (``>= db_j``), ``E_c = sum_j (c_j - b_j)^+`` (the mass
the column scaling removes, which bounds the rest of ``da``) and ``D <= sum_i (a_i - r_i)^+ + E_c``.
The second form charges the missing mass
the average cost between the rows that lack mass and the columns that lost some, instead of the
largest cost: much smaller for a nearly balanced plan. Costs of any sign use the first form plus
``(E_r + E_c) max(-C_min, 0)`` for the mass removed.

Every sum is bounded with directed rounding: a sum of ``k`` non-negative computed terms is within
``gamma_k`` of the exact one, ``math.fsum`` is exactly rounded, and the costs, when computed from points,
are within their proven error (:class:`~otmetrics.transport.feasible.PointCost`). The plan's entries are
whatever floats were computed: the bound holds for them, exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._core.rounding import add_down, add_interval, add_up, mul_down, mul_interval, mul_up, next_up
from .._core.rounding import sum_interval

__all__ = ["PlanSums", "plan_sums_dense", "plan_sums_blocks", "rounding_upper_bound"]


@dataclass
class PlanSums:
    """What one pass over a non-negative matrix ``P`` and its cost measured (float64, computed).

    Attributes
    ----------
    rows, cols : ndarray ``(n,)``, ``(m,)``
        Row and column sums of ``P``.
    cost_rows : ndarray ``(n,)``
        ``sum_j c^_ij P_ij`` per row.
    abs_cost_rows : ndarray ``(n,)`` or None
        ``sum_j |c^_ij| P_ij`` per row (None: the costs are non-negative, it equals ``cost_rows``).
    lost : ndarray ``(m,)``
        ``sum_i q_i P_ij`` with ``q_i >= 1 - min(1, a_i / r_i)``: the mass the row scaling removes from each
        column (before its own rounding error).
    cmax, cmin : float
        The largest and smallest computed costs (``cmax``: between the rows and columns of positive exact
        weight when they are given, the only ones the rounding sends mass between).
    row_terms, col_terms : ndarray ``(n,)``, ``(m,)`` or None
        The number of positive entries of each row and column (the terms whose rounding counts: a sum of
        ``k`` positive terms and any number of zeros is within ``gamma_k`` of the exact one); None: all.
    """

    rows: np.ndarray
    cols: np.ndarray
    cost_rows: np.ndarray
    abs_cost_rows: Any
    lost: np.ndarray
    cmax: float
    cmin: float
    row_terms: Any = None
    col_terms: Any = None


def _row_gamma(m):
    """``gamma_{2k-2}`` for sums of ``k`` terms (an int or an array): the exact sum ``s`` of ``k >= 1``
    non-negative terms and the computed one satisfy ``|s - s^| <= gamma_{k-1} s``, hence
    ``s^ (1 - gamma_{2k-2}) <= s <= s^ (1 + gamma_{2k-2})`` (0 for a single term: exact)."""
    k = np.maximum(np.asarray(m, dtype=np.float64), 1.0)
    u = 2.0**-53
    out = (2 * k - 2) * u / (1 - (2 * k - 2) * u)
    return float(out) if out.ndim == 0 else out


def _removed_fraction(xp, rows, a, terms):
    """``q_i >= (r_i - a_i)^+ / r_i``: an upper bound of the fraction of row ``i`` the scaling removes
    (``terms``: the number of terms of each row sum, an int or an array like ``rows``)."""
    big = xp.inf
    g = _row_gamma(terms)
    if not isinstance(g, float):
        g = xp.asarray(g) if xp is np else xp.as_tensor(g, dtype=rows.dtype, device=rows.device)
    r_hi = xp.nextafter(rows * (1.0 + g), rows * 0 + big)
    excess = xp.nextafter(r_hi - a, r_hi * 0 + big)
    excess = xp.where(excess > 0, excess, excess * 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = xp.nextafter(excess / r_hi, r_hi * 0 + big)
    q = xp.where(r_hi > 0, q, q * 0)
    return xp.where(q < 1, q, q * 0 + 1)


def _support_max(cost, support):
    """The largest entry of ``cost`` between the rows and columns marked in ``support`` (all when None)."""
    if support is not None and not (support[0].all() and support[1].all()):
        rows, cols = support
        cost = cost[rows][:, cols]
    return float(cost.max()) if cost.size else 0.0


def plan_sums_dense(a: np.ndarray, cost: np.ndarray, plan: np.ndarray, *, support=None) -> PlanSums:
    """:class:`PlanSums` of a dense float64 plan against an exact dense cost (numpy), in blocks of rows.

    ``a``: a lower bound of the exact row marginal (for the removed fractions ``q``). ``support``: optional
    boolean masks ``(rows, cols)`` of the points of positive exact weight (``cmax`` is taken between them).

    Negative entries of ``plan`` count as 0 (the bound is for ``max(P, 0)``).

    Examples
    --------
    >>> import numpy as np
    >>> s = plan_sums_dense(np.array([0.5, 0.5]), np.array([[0.0, 1.0], [1.0, 0.0]]), np.eye(2) / 2)
    >>> s.rows.tolist(), s.cost_rows.tolist(), s.cmax
    ([0.5, 0.5], [0.0, 0.0], 1.0)
    """
    n, m = cost.shape
    rows, cost_rows, abs_rows = np.empty(n), np.empty(n), np.empty(n)
    cols, lost = np.zeros(m), np.zeros(m)
    row_terms, col_terms = np.empty(n), np.zeros(m)
    step = max(1, (1 << 16) // max(1, m))
    for start in range(0, n, step):
        sl = slice(start, start + step)
        p = np.maximum(plan[sl], 0.0)
        c = cost[sl]
        r = p.sum(1)
        rows[sl] = r
        cols += p.sum(0)
        positive = p > 0
        row_terms[sl] = positive.sum(1)
        col_terms += positive.sum(0)
        prod = c * p
        cost_rows[sl] = prod.sum(1)
        abs_rows[sl] = np.abs(prod).sum(1)
        lost += (_removed_fraction(np, r, a[sl], row_terms[sl])[:, None] * p).sum(0)
    cmin, cmax = (float(cost.min()), _support_max(cost, support)) if cost.size else (0.0, 0.0)
    return PlanSums(rows, cols, cost_rows, None if cmin >= 0 else abs_rows, lost, cmax, cmin, row_terms,
                    col_terms)


def plan_sums_blocks(a, blocks, n: int, m: int, *, count_terms: bool = False, support=None) -> PlanSums:
    """:class:`PlanSums` accumulated over blocks of rows (torch, float64, any device).

    Parameters
    ----------
    a : tensor ``(n,)``, float64: a lower bound of the exact row marginal.
    blocks : iterable of ``(rows, plan_block, cost_block)``, blocks ``(len(rows), m)`` of ``P >= 0`` and of
        the computed non-negative costs, covering every row once.
    n, m : int
    count_terms : bool, default False
        Count the positive entries of each row and column (for sparse plans, whose sums then get tighter
        bounds); otherwise every entry counts.
    support : pair of boolean tensors ``(n,)``, ``(m,)``, optional
        The points of positive exact weight: ``cmax`` is taken between them.
    """
    import torch

    device = a.device
    rows = torch.empty(n, dtype=torch.float64, device=device)
    cost_rows = torch.empty(n, dtype=torch.float64, device=device)
    cols = torch.zeros(m, dtype=torch.float64, device=device)
    lost = torch.zeros(m, dtype=torch.float64, device=device)
    row_terms = torch.empty(n, dtype=torch.float64, device=device)
    col_terms = torch.zeros(m, dtype=torch.float64, device=device)
    cmax = torch.zeros((), dtype=torch.float64, device=device)
    for sl, p, c in blocks:
        r = p.sum(1)
        rows[sl] = r
        cols += p.sum(0)
        if count_terms:
            positive = (p > 0).to(torch.float64)
            row_terms[sl] = positive.sum(1)
            col_terms += positive.sum(0)
        cost_rows[sl] = (p * c).sum(1)
        lost += (_removed_fraction(torch, r, a[sl], row_terms[sl] if count_terms else m)[:, None] * p).sum(0)
        if support is None:
            cmax = torch.maximum(cmax, c.max())
        elif bool(support[0][sl].any()) and bool(support[1].any()):
            cmax = torch.maximum(cmax, c[support[0][sl]][:, support[1]].max())
    out = [t.to("cpu").numpy() for t in (rows, cols, cost_rows, lost, row_terms, col_terms)]
    terms = (out[4], out[5]) if count_terms else (None, None)
    return PlanSums(out[0], out[1], out[2], None, out[3], float(cmax), 0.0, *terms)


def _excess_up(x, y):
    """``(x - y)^+`` rounded up, elementwise."""
    return np.maximum(add_up(x, -y), 0.0)


def _excess_down(x, y):
    """``(x - y)^+`` rounded down, elementwise."""
    return np.maximum(add_down(x, -y), 0.0)


def rounding_upper_bound(sums: PlanSums, a: tuple, b: tuple, *, cost_rel: float = 0.0, cost_abs: float = 0.0,
                         bilinear: Callable[[np.ndarray, np.ndarray], float] | None = None) -> float:
    """An upper bound on ``OT(a, b)`` (exact) from the sums of one pass over a plan (see the module).

    Parameters
    ----------
    sums : PlanSums
    a, b : pairs ``(lo, hi)`` of float64 arrays ``(n,)``, ``(m,)``
        Componentwise enclosures of the exact marginals (of equal total mass).
    cost_rel, cost_abs : float
        The error of the computed costs: ``|c^ - c| <= cost_rel c + cost_abs`` (0 for exact costs).
    bilinear : callable ``(alpha, beta) -> float``, optional
        An upper bound of ``sum_ij alpha_i c_ij beta_j`` for the exact costs and non-negative vectors; enables
        the second (average-cost) form of the bound.

    Returns
    -------
    float
        ``+inf`` when the plan or its sums are not finite.
    """
    (a_lo, a_hi), (b_lo, b_hi) = a, b
    n, m = len(a_lo), len(b_lo)
    parts = (sums.rows, sums.cols, sums.cost_rows, sums.lost)
    if not all(np.isfinite(x).all() for x in parts) or not math.isfinite(sums.cmax):
        return math.inf
    g_r = _row_gamma(m if sums.row_terms is None else sums.row_terms)
    g_c = _row_gamma(n if sums.col_terms is None else sums.col_terms)
    r_hi, r_lo = mul_up(sums.rows, 1.0 + g_r), mul_down(sums.rows, 1.0 - g_r)
    c_hi, c_lo = mul_up(sums.cols, 1.0 + g_c), mul_down(sums.cols, 1.0 - g_c)
    alpha_hi = _excess_up(a_hi, r_lo)
    alpha_lo = _excess_down(a_lo, r_hi)
    e_cols = sum_interval(_excess_up(c_hi, b_lo))[1]
    deficit = add_interval((0.0, sum_interval(alpha_hi)[1]), (0.0, e_cols))[1]

    # <c, P>: the computed sum, its rounding, then the error of the computed costs
    # the products and the sum of each row
    g_cost = _row_gamma(1 + (m if sums.row_terms is None else sums.row_terms))
    magnitude = sums.cost_rows if sums.abs_cost_rows is None else sums.abs_cost_rows
    rounding = sum_interval(mul_up(g_cost, np.abs(magnitude)))[1]
    cost = add_interval(sum_interval(sums.cost_rows), (0.0, rounding))[1]
    cmax = sums.cmax
    if cost_rel or cost_abs:
        mass = sum_interval(r_hi)[1]
        cost = next_up((cost + next_up(cost_abs * mass)) * (1.0 + 2.0 * cost_rel))
        cmax = next_up((cmax + cost_abs) * (1.0 + 2.0 * cost_rel))

    if sums.cmin < 0:  # costs of any sign: the first form, plus what removing mass may have saved
        e_rows = sum_interval(_excess_up(r_hi, a_lo))[1]
        removed = add_interval((0.0, e_rows), (0.0, e_cols))[1]
        extra = add_interval(mul_interval((0.0, deficit), (0.0, max(cmax, 0.0))),
                             mul_interval((0.0, removed), (0.0, -sums.cmin)))[1]
        return add_interval((cost, cost), (0.0, extra))[1]

    crude = mul_interval((0.0, deficit), (0.0, cmax))[1]
    extra = crude
    alpha_mass = sum_interval(alpha_lo)[0]
    if bilinear is not None and alpha_mass > 0:
        lost_hi = mul_up(sums.lost, 1.0 + g_c)
        beta_hi = add_up(_excess_up(b_hi, c_lo), lost_hi)
        spread = bilinear(alpha_hi, beta_hi)
        if math.isfinite(spread):
            refined = add_interval((0.0, next_up(spread / alpha_mass)),
                                   mul_interval((0.0, e_cols), (0.0, cmax)))[1]
            extra = min(crude, refined)
    return add_interval((cost, cost), (0.0, extra))[1]
