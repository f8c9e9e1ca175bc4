"""Certificates of optimality for discrete optimal transport.

For the Kantorovich problem ``min <C, P>`` over plans ``P >= 0`` with ``P 1 = a`` and ``P^T 1 = b``,
the dual is ``max <a, u> + <b, v>`` subject to ``u_i + v_j <= C_ij``. A pair (plan, potentials) is
optimal exactly when

1. the plan is primal feasible (non-negative, marginals ``a`` and ``b``);
2. the potentials are dual feasible: every reduced cost ``R_ij = C_ij - u_i - v_j`` is ``>= 0``;
3. the duality gap ``<C, P> - <a, u> - <b, v>`` is zero; equivalently (given 1 and 2),
   complementary slackness holds: ``P_ij > 0`` implies ``R_ij = 0``.

:func:`certify` measures each condition from the numbers themselves, so that a solver which stopped
early (POT's network simplex at its iteration cap returns an infeasible plan and infeasible duals with
only a warning) is reported as not optimal. It also proves an interval ``[lower, upper]`` that contains the
exact optimal value (:mod:`.bounds`), and judges the value against it: every condition that bears on the
value is measured *relative to the value* (plus the rounding level of the numbers involved), never
relative to the largest cost, so that a plan far from optimal in value is not certified because the value
is small next to ``max |C|``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._core.arrays import to_numpy
from .._core.rounding import gamma
from .._core.validation import validate_array, validate_positive

__all__ = ["Certificate", "certify", "certificate_from_bounds", "stack_certificates", "c_transform",
           "dual_value", "potential_scale"]

_TINY = np.finfo(np.float64).tiny


@dataclass(frozen=True)
class Certificate:
    """What was checked about a transport plan and its dual potentials.

    Scalars for one problem; arrays of shape ``(B,)`` for a batch. All values are ``float64``
    and in cost units (times mass where they are totals).

    Attributes
    ----------
    primal : ``<C, P>``, the cost of the plan.
    dual : ``<a, u> + <b, v>``, the value of the potentials.
    duality_gap : ``primal - dual`` (signed; ``>= 0`` up to rounding when both are feasible).
    relative_gap : ``max(|duality_gap| - rounding_level - gamma mass max|C|, 0) / |primal|``: the part of the
        gap that rounding cannot explain, relative to the value (0 when the whole gap is at the rounding level
        of the numbers, including that of potentials computed at the scale of the largest cost).
    min_reduced_cost : ``min_ij C_ij - u_i - v_j``; ``< 0`` means the potentials are infeasible.
    max_slackness : ``max |C_ij - u_i - v_j|`` over the support ``P_ij > 0`` (complementary slackness).
    marginal_error_a, marginal_error_b : L1 errors ``|P 1 - a|_1`` and ``|P^T 1 - b|_1``.
    min_plan : the smallest entry of the plan (negative means infeasible).
    rtol : the relative tolerance of the verdict.
    optimal : the verdict: every condition holds within ``rtol`` (see :func:`certify`).
    lower, upper : proven bounds on the exact optimal value of the problem (``b`` rescaled exactly to the
        mass of ``a``): ``lower <= OT(a, b; C) <= upper`` under floating point
        (see :mod:`~otmetrics.transport.bounds`).
    rounding_level : the size of the rounding errors of the numbers that make the value,
        ``gamma_{4(n+m)+16} (<|C|, |P|> + min_K <a, |u + K|> + <b, |v - K|>) + 1e-300`` (the plan's costs and
        the potentials' weighted magnitude, blind to the shift ``(u + K, v - K)``); the conditions on the
        value are met up to it.

    References
    ----------
    Peyré & Cuturi, *Computational Optimal Transport*, 2019, Prop. 2.4 (duality) and Sec. 3.

    Examples
    --------
    >>> import otmetrics
    >>> cert = otmetrics.emd([0.5, 0.5], [0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]]).certificate
    >>> cert.optimal, cert.duality_gap, cert.min_reduced_cost >= 0
    (True, 0.0, True)
    """

    primal: np.ndarray | float
    dual: np.ndarray | float
    duality_gap: np.ndarray | float
    relative_gap: np.ndarray | float
    min_reduced_cost: np.ndarray | float
    max_slackness: np.ndarray | float
    marginal_error_a: np.ndarray | float
    marginal_error_b: np.ndarray | float
    min_plan: np.ndarray | float
    rtol: float
    optimal: np.ndarray | bool
    lower: np.ndarray | float = -np.inf
    upper: np.ndarray | float = np.inf
    rounding_level: np.ndarray | float = 0.0

    def summary(self) -> str:
        """One line with the measured conditions (the first failing problem of a batch)."""
        flat = {k: np.atleast_1d(np.asarray(getattr(self, k))) for k in (
            "relative_gap", "min_reduced_cost", "marginal_error_a", "marginal_error_b", "min_plan", "optimal",
            "primal", "lower", "upper")}
        i = int(np.argmin(flat["optimal"]))
        where = f"problem {i}: " if np.ndim(self.optimal) else ""
        return (f"{where}relative gap {flat['relative_gap'][i]:.3g}, min reduced cost "
                f"{flat['min_reduced_cost'][i]:.3g}, marginal errors {flat['marginal_error_a'][i]:.3g} / "
                f"{flat['marginal_error_b'][i]:.3g}, min plan entry {flat['min_plan'][i]:.3g}, value "
                f"{flat['primal'][i]:.17g} in [{flat['lower'][i]:.17g}, {flat['upper'][i]:.17g}]")


def _broadcast(x, name, shape):
    """``x`` as a finite float64 array broadcast to ``shape`` (a ValueError naming ``x`` otherwise)."""
    x = to_numpy(validate_array(x, name, allow_empty=True), name)
    try:
        return np.broadcast_to(x, shape)
    except ValueError:
        raise ValueError(f"{name}: shape {x.shape} does not match the problem's {shape}") from None


def dual_value(a, b, u, v):
    """The dual objective ``<a, u> + <b, v>`` (batched over leading axes), in ``float64``.

    Parameters
    ----------
    a, b : array-like, shapes ``(n,)`` and ``(m,)``, broadcast against ``u`` and ``v``
    u, v : array-like, shapes ``(n,)`` / ``(B, n)`` and ``(m,)`` / ``(B, m)``

    Returns
    -------
    float, or ndarray ``(B,)``.

    Notes
    -----
    ``O(n + m)``. When ``u_i + v_j <= C_ij`` for all pairs (e.g. ``v = c_transform(C, u)``), this
    value is a lower bound of the optimal transport cost (weak duality; Peyré & Cuturi 2019, Sec. 2.5).

    Examples
    --------
    >>> dual_value([0.5, 0.5], [1.0], [1.0, 2.0], [0.5])
    2.0
    """
    u = to_numpy(validate_array(u, "u"), "u")
    v = to_numpy(validate_array(v, "v"), "v")
    a, b = _broadcast(a, "a", u.shape), _broadcast(b, "b", v.shape)
    out = (a * u).sum(-1) + (b * v).sum(-1)
    return float(out) if np.ndim(out) == 0 else out


def c_transform(cost, u, axis: int = 0):
    """The c-transform of a potential: the best partner that keeps the pair dual feasible.

    For ``axis=0`` (transform a row potential ``u``) it returns ``v_j = min_i C_ij - u_i``; for
    ``axis=1`` (transform a column potential ``v``) it returns ``u_i = min_j C_ij - v_j``.
    Any ``(u, c_transform(C, u))`` satisfies ``u_i + v_j <= C_ij``, so by weak duality its dual
    value ``<a, u> + <b, v>`` is a lower bound on the optimal transport cost — whatever ``u`` is.

    Parameters
    ----------
    cost : array-like, shape ``(n, m)`` or ``(B, n, m)``
    u : array-like, shape ``(n,)`` / ``(B, n)`` for ``axis=0``, ``(m,)`` / ``(B, m)`` for ``axis=1``
    axis : 0 or 1, the axis of ``cost`` that ``u`` lives on.

    Returns
    -------
    numpy ``float64`` array of shape ``(m,)`` / ``(B, m)`` (``axis=0``) or ``(n,)`` / ``(B, n)``.

    Notes
    -----
    ``O(n m)`` time. Reference: Villani, *Optimal Transport: Old and New* (2009), Def. 5.2;
    Peyré & Cuturi, *Computational Optimal Transport* (2019), Sec. 3.1.

    Examples
    --------
    >>> c_transform([[0.0, 2.0], [1.0, 1.0]], [0.0, 0.5])
    array([0. , 0.5])
    """
    if axis not in (0, 1) or isinstance(axis, bool):
        raise ValueError(f"axis: must be 0 or 1, got {axis!r}")
    cost = to_numpy(validate_array(cost, "cost", ndim=(2, 3), what="costs"), "cost")
    u = _broadcast(u, "u", cost.shape[:-2] + (cost.shape[-2 + axis],))
    if axis == 0:
        return (cost - u[..., :, None]).min(-2)
    return (cost - u[..., None, :]).min(-1)


def potential_scale(u, v) -> float:
    """``min_K max(max_i |u_i + K|, max_j |v_j - K|)``: the size of the potentials, blind to the shift
    ``(u + K, v - K)`` that leaves every reduced cost and (for equal masses) the dual value unchanged.

    Examples
    --------
    >>> potential_scale([1e6 + 1.0, 1e6 - 1.0], [-1e6, -1e6])
    1.0
    """
    u, v = np.asarray(u, dtype=np.float64), np.asarray(v, dtype=np.float64)
    if u.size == 0 or v.size == 0:
        return float(np.abs(u).max(initial=0.0) + np.abs(v).max(initial=0.0))
    u_hi, u_lo, v_hi, v_lo = float(u.max()), float(u.min()), float(v.max()), float(v.min())
    # the larger of two increasing and two decreasing lines in K is smallest where two of them cross
    shifts = [-(u_hi + u_lo) / 2, (v_hi - u_hi) / 2, (v_lo - u_lo) / 2, (v_hi + v_lo) / 2]
    return min(max(u_hi + k, -(u_lo + k), v_hi - k, k - v_lo) for k in shifts)


def _weighted_magnitude(a, b, u, v) -> float:
    """``min_K <a, |u + K|> + <b, |v - K|>``: at ``K`` the weighted median of ``{-u_i}`` and ``{v_j}``."""
    points = np.concatenate([-u, v])
    weights = np.concatenate([np.abs(a), np.abs(b)])
    if points.size == 0 or weights.sum() <= 0:
        return 0.0
    order = np.argsort(points)
    cumulative = np.cumsum(weights[order])
    k = points[order][min(int(np.searchsorted(cumulative, 0.5 * cumulative[-1])), points.size - 1)]
    return float((np.abs(a) * np.abs(u + k)).sum() + (np.abs(b) * np.abs(v - k)).sum())


def certify(a, b, cost, plan, u, v, *, rtol: float = 1e-9) -> Certificate:
    """Check a transport plan and dual potentials for optimality, from the numbers alone.

    Measures the conditions of optimality (marginals, dual feasibility, duality gap, complementary
    slackness) and proves bounds ``lower <= OT <= upper`` on the exact optimal value (the potentials made
    feasible by c-transforms, the plan rounded onto the exact marginals; :mod:`~otmetrics.transport.bounds`).

    Parameters
    ----------
    a : array-like, shape ``(n,)`` or ``(B, n)``, non-negative
    b : array-like, shape ``(m,)`` or ``(B, m)``, non-negative (rescaled exactly to the mass of ``a`` for the
        bounds)
    cost : array-like, shape ``(n, m)`` or ``(B, n, m)``
    plan : array-like, shape ``(n, m)`` or ``(B, n, m)``
    u, v : array-like, shapes ``(n,)`` and ``(m,)`` (or batched)
    rtol : float
        Relative tolerance of the verdict. With ``mass = sum(a)``, the value ``V = |<C, P>|`` and the rounding
        level ``rho`` (:attr:`Certificate.rounding_level`), ``optimal`` requires

        - a feasible plan: marginal errors ``<= rtol * mass``, ``min plan >= -rtol * mass``;
        - the value proven: ``<C, P> - lower <= rtol V + rho``, so that ``<C, P> <= OT + rtol V + rho``
          (``lower`` comes from the potentials made exactly feasible, and ``rho`` involves only the plan's
          costs and the potentials' weighted magnitudes: a large cost the plan does not use cannot loosen it);
        - optimal potentials: ``|duality gap| <= rtol V + rho + gamma mass max|C|`` (the potentials of an LP
          solver carry the rounding of the scale it works at) and
          ``min reduced cost >= -rtol max(max|C|, s)``, with ``s`` the potentials' scale
          (:func:`potential_scale`).

        A small value is judged against itself: a plan that costs ``2e-4`` when the optimum is 0 is not
        certified, however large ``max |C|`` is. ``upper`` is reported, not judged: ``upper - <C, P>`` is what
        the plan's marginal errors (within ``rtol * mass``) could cost.

    Returns
    -------
    Certificate

    Raises
    ------
    ValueError
        Shapes that do not match, non-finite numbers, negative weights.

    Notes
    -----
    ``O(n m)`` time in blocks of rows. Reference: Peyré & Cuturi, *Computational Optimal Transport*
    (2019), Prop. 2.4 and Sec. 3; Altschuler, Weed & Rigollet, "Near-linear time approximation algorithms
    for optimal transport via Sinkhorn iteration", NeurIPS 2017 (the rounding of the plan).

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> cert = certify([0.5, 0.5], [0.5, 0.5], C, np.eye(2) / 2, [0.0, 0.0], [0.0, 0.0])
    >>> bool(cert.optimal), cert.duality_gap, cert.lower <= 0.0 <= cert.upper
    (True, 0.0, True)

    A plan that moves ``1e-10`` of mass across a cost of ``1e6`` costs ``2e-4``; the optimum is 0:

    >>> C = np.array([[0.0, 1e6], [1e6, 0.0]])
    >>> bad = np.array([[0.5 - 1e-10, 1e-10], [1e-10, 0.5 - 1e-10]])
    >>> bool(certify([0.5, 0.5], [0.5, 0.5], C, bad, [0.0, 0.0], [0.0, 0.0]).optimal)
    False
    """
    return _certify(a, b, cost, plan, u, v, rtol=rtol, bounds=None)


def certificate_from_bounds(a, b, cost, plan, u, v, lower: float, upper: float, *,
                            rtol: float = 1e-9) -> Certificate:
    """The :func:`certify` of one problem with the proven bounds already computed by the caller.

    :func:`~otmetrics.emd` uses it with the bounds of the problem as it was posed (the weights as given,
    ``b`` rescaled exactly), which it computes anyway for its result. Same parameters as :func:`certify`,
    for one problem (2-D ``cost``), plus ``lower`` and ``upper`` (floats).

    Examples
    --------
    >>> import numpy as np
    >>> cert = certificate_from_bounds([1.0], [1.0], [[2.0]], [[1.0]], [1.0], [1.0], 2.0, 2.0)
    >>> bool(cert.optimal), cert.lower, cert.upper
    (True, 2.0, 2.0)
    """
    return _certify(a, b, cost, plan, u, v, rtol=rtol, bounds=(float(lower), float(upper)))


def _certify(a, b, cost, plan, u, v, *, rtol, bounds):
    from .bounds import dense_bounds, exact_weights

    validate_positive(rtol, "rtol")
    cost = validate_array(cost, "cost", ndim=(2, 3), what="costs")
    cost = to_numpy(cost, "cost")
    lead, (n, m) = cost.shape[:-2], cost.shape[-2:]
    plan = _broadcast(plan, "plan", lead + (n, m))
    a, u = _broadcast(a, "a", lead + (n,)), _broadcast(u, "u", lead + (n,))
    b, v = _broadcast(b, "b", lead + (m,)), _broadcast(v, "v", lead + (m,))
    for name, w in (("a", a), ("b", b)):
        if w.size and float(w.min()) < 0:
            raise ValueError(f"{name}: weights must be non-negative, got min {float(w.min()):.3g}")
    if cost.ndim == 3:
        if bounds is not None:
            raise ValueError("certificate_from_bounds: one problem at a time (a 2-D cost)")
        return stack_certificates([_certify(*args, rtol=rtol, bounds=None)
                                   for args in zip(a, b, cost, plan, u, v)])
    # One pass over the n x m arrays in blocks of rows that fit in cache: reduced costs, their
    # minimum, the slackness on the plan's support, the primal value and the magnitudes.
    rows = max(1, (1 << 15) // max(cost.shape[1], 1))
    primal, abs_primal, cmax, min_reduced, max_slack, min_plan = 0.0, 0.0, 0.0, np.inf, 0.0, np.inf
    for start in range(0, cost.shape[0], rows):
        c_blk, p_blk = cost[start:start + rows], plan[start:start + rows]
        primal += float(np.einsum("ij,ij->", p_blk, c_blk))
        cmax = max(cmax, float(np.abs(c_blk).max()))
        abs_primal += float(np.einsum("ij,ij->", np.abs(p_blk), np.abs(c_blk)))
        reduced = c_blk - u[start:start + rows, None]
        reduced -= v[None, :]
        min_reduced = min(min_reduced, float(reduced.min()))
        on_support = reduced[p_blk > 0]
        if on_support.size:
            max_slack = max(max_slack, float(np.abs(on_support).max()))
        min_plan = min(min_plan, float(p_blk.min()))
    dual = float((a * u).sum() + (b * v).sum())
    gap = primal - dual
    mass = float(a.sum())
    err_a = float(np.abs(plan.sum(-1) - a).sum())
    err_b = float(np.abs(plan.sum(-2) - b).sum())
    if bounds is None:
        bounds = dense_bounds(exact_weights(a, b, n, m), cost, plan, u, v) if mass > 0 else (-np.inf, np.inf)
    lower, upper = bounds
    g = gamma(4 * (n + m) + 16)
    level = g * (abs_primal + _weighted_magnitude(a, b, u, v)) + 1e-300
    tol = rtol * abs(primal) + level
    dual_level = level + g * mass * cmax
    relative_gap = max(abs(gap) - dual_level, 0.0) / max(abs(primal), _TINY)
    optimal = (err_a <= rtol * mass and err_b <= rtol * mass and min_plan >= -rtol * mass
               and primal - lower <= tol and abs(gap) <= tol + g * mass * cmax
               and min_reduced >= -rtol * max(cmax, potential_scale(u, v), _TINY))
    return Certificate(primal=primal, dual=dual, duality_gap=gap, relative_gap=relative_gap,
                       min_reduced_cost=min_reduced, max_slackness=max_slack, marginal_error_a=err_a,
                       marginal_error_b=err_b, min_plan=min_plan, rtol=float(rtol), optimal=bool(optimal),
                       lower=float(lower), upper=float(upper), rounding_level=float(level))


def stack_certificates(certificates: list[Certificate]) -> Certificate:
    """Stack the certificates of single problems into the certificate of a batch.

    Parameters
    ----------
    certificates : list of Certificate
        One per problem, all with the same ``rtol``.

    Returns
    -------
    Certificate
        Every field an array of shape ``(B,)``; ``optimal`` a boolean array.

    Examples
    --------
    >>> import numpy as np
    >>> one = certify([1.0], [1.0], [[2.0]], [[1.0]], [1.0], [1.0])
    >>> stack_certificates([one, one]).optimal
    array([ True,  True])
    """
    names = [f for f in Certificate.__dataclass_fields__ if f != "rtol"]
    fields = {name: np.array([getattr(c, name) for c in certificates]) for name in names}
    return Certificate(**fields, rtol=certificates[0].rtol)
