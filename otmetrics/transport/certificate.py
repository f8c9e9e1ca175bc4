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
only a warning) is reported as not optimal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._core.arrays import to_numpy
from .._core.validation import validate_array, validate_positive

__all__ = ["Certificate", "certify", "stack_certificates", "c_transform", "dual_value"]

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
    relative_gap : ``|duality_gap| / max(|primal|, mass * max|C|, <|a|, |u|> + <|b|, |v|>)``: relative to
        the primal value, or to the size of the numbers summed when the primal value is small (the
        dual sum has rounding errors of that order even when the primal value is 0).
    min_reduced_cost : ``min_ij C_ij - u_i - v_j``; ``< 0`` means the potentials are infeasible.
    max_slackness : ``max |C_ij - u_i - v_j|`` over the support ``P_ij > 0`` (complementary slackness).
    marginal_error_a, marginal_error_b : L1 errors ``|P 1 - a|_1`` and ``|P^T 1 - b|_1``.
    min_plan : the smallest entry of the plan (negative means infeasible).
    rtol : the relative tolerance of the verdict.
    optimal : the verdict: every condition holds within ``rtol`` (see :func:`certify`).

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

    def summary(self) -> str:
        """One line with the measured conditions (the first failing problem of a batch)."""
        flat = {k: np.atleast_1d(np.asarray(getattr(self, k))) for k in (
            "relative_gap", "min_reduced_cost", "marginal_error_a", "marginal_error_b", "min_plan", "optimal")}
        i = int(np.argmin(flat["optimal"]))
        where = f"problem {i}: " if np.ndim(self.optimal) else ""
        return (f"{where}relative gap {flat['relative_gap'][i]:.3g}, min reduced cost "
                f"{flat['min_reduced_cost'][i]:.3g}, marginal errors {flat['marginal_error_a'][i]:.3g} / "
                f"{flat['marginal_error_b'][i]:.3g}, min plan entry {flat['min_plan'][i]:.3g}")


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


def certify(a, b, cost, plan, u, v, *, rtol: float = 1e-9) -> Certificate:
    """Check a transport plan and dual potentials for optimality, from the numbers alone.

    Parameters
    ----------
    a : array-like, shape ``(n,)`` or ``(B, n)``
    b : array-like, shape ``(m,)`` or ``(B, m)``
    cost : array-like, shape ``(n, m)`` or ``(B, n, m)``
    plan : array-like, shape ``(n, m)`` or ``(B, n, m)``
    u, v : array-like, shapes ``(n,)`` and ``(m,)`` (or batched)
    rtol : float
        Relative tolerance of the verdict. With ``mass = sum(a)`` and ``cmax = max|C|`` the verdict
        ``optimal`` requires ``relative_gap <= rtol``,
        ``min reduced cost >= -rtol * cmax``, marginal errors ``<= rtol * mass`` and
        ``min plan >= -rtol * mass``.

    Returns
    -------
    Certificate

    Notes
    -----
    ``O(n m)`` time and one temporary ``n x m`` array. Reference: Peyré & Cuturi,
    *Computational Optimal Transport* (2019), Prop. 2.4 and Sec. 3.

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> cert = certify([0.5, 0.5], [0.5, 0.5], C, np.eye(2) / 2, [0.0, 0.0], [0.0, 0.0])
    >>> bool(cert.optimal), cert.duality_gap
    (True, 0.0)
    """
    validate_positive(rtol, "rtol")
    cost = validate_array(cost, "cost", ndim=(2, 3), what="costs")
    cost = to_numpy(cost, "cost")
    lead, (n, m) = cost.shape[:-2], cost.shape[-2:]
    plan = _broadcast(plan, "plan", lead + (n, m))
    a, u = _broadcast(a, "a", lead + (n,)), _broadcast(u, "u", lead + (n,))
    b, v = _broadcast(b, "b", lead + (m,)), _broadcast(v, "v", lead + (m,))
    if cost.ndim == 3:
        return stack_certificates([certify(*args, rtol=rtol) for args in zip(a, b, cost, plan, u, v)])
    # One pass over the n x m arrays in blocks of rows that fit in cache: reduced costs, their
    # minimum, the slackness on the plan's support, the primal value and the extremes.
    rows = max(1, (1 << 15) // max(cost.shape[1], 1))
    primal, cmax, min_reduced, max_slack, min_plan = 0.0, 0.0, np.inf, 0.0, np.inf
    for start in range(0, cost.shape[0], rows):
        c_blk, p_blk = cost[start:start + rows], plan[start:start + rows]
        primal += float(np.einsum("ij,ij->", p_blk, c_blk))
        cmax = max(cmax, float(np.abs(c_blk).max()))
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
    magnitude = float((np.abs(a) * np.abs(u)).sum() + (np.abs(b) * np.abs(v)).sum())
    scale = max(abs(primal), mass * cmax, magnitude)
    relative_gap = abs(gap) / max(scale, _TINY)  # scale is 0 only when everything is 0
    err_a = float(np.abs(plan.sum(-1) - a).sum())
    err_b = float(np.abs(plan.sum(-2) - b).sum())
    optimal = (relative_gap <= rtol and min_reduced >= -rtol * cmax and err_a <= rtol * mass
               and err_b <= rtol * mass and min_plan >= -rtol * mass)
    return Certificate(primal=primal, dual=dual, duality_gap=gap, relative_gap=relative_gap,
                       min_reduced_cost=min_reduced, max_slackness=max_slack, marginal_error_a=err_a,
                       marginal_error_b=err_b, min_plan=min_plan, rtol=float(rtol), optimal=bool(optimal))


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
