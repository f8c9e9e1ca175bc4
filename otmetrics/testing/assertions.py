"""Assertions about transport plans, dual potentials and distances.

Each assertion recomputes what it checks from the inputs (it never trusts a solver's own report),
raises ``AssertionError`` with the measured numbers when the check fails, and accepts numpy arrays,
torch tensors or lists. Tolerances are relative to the scale of the problem: the total mass and
``max |C|``.
"""

from __future__ import annotations

import itertools
from typing import Any, Callable, Sequence

import numpy as np

from .._core.arrays import to_numpy

__all__ = [
    "assert_marginals",
    "assert_dual_feasible",
    "assert_complementary_slackness",
    "assert_strong_duality",
    "assert_weak_duality",
    "assert_optimal",
    "assert_metric_axioms",
    "assert_bracket_contains",
    "assert_valid_bounds",
]


def _arrays(**named):
    return [to_numpy(value, name) for name, value in named.items()]


def _cost_scale(cost):
    return max(float(np.abs(cost).max()), np.finfo(np.float64).tiny)


def _dual_scale(a, b, cost, u, v):
    """The size of the numbers summed in a duality check: rounding errors are relative to it."""
    magnitude = (np.abs(a) * np.abs(u)).sum(-1) + (np.abs(b) * np.abs(v)).sum(-1)
    return np.maximum(np.maximum(a.sum(-1) * np.abs(cost).max((-2, -1)), magnitude), np.finfo(np.float64).tiny)


def assert_marginals(plan, a, b, *, rtol: float = 1e-9) -> None:
    """Assert that ``plan`` is a non-negative coupling of ``a`` and ``b``.

    Checks ``P >= 0``, ``|P 1 - a|_1 <= rtol * mass`` and ``|P^T 1 - b|_1 <= rtol * mass``
    (batched over a leading axis).

    Parameters
    ----------
    plan : array-like or tensor, shape ``(n, m)`` or ``(B, n, m)``
    a, b : array-like or tensor, shapes ``(n,)`` and ``(m,)`` (or batched)
    rtol : float, default 1e-9

    Raises
    ------
    AssertionError
        With the measured errors.

    References
    ----------
    Peyré & Cuturi, *Computational Optimal Transport*, 2019, Prop. 2.4 and Sec. 3.

    Examples
    --------
    >>> import numpy as np
    >>> assert_marginals(np.eye(2) / 2, [0.5, 0.5], [0.5, 0.5])
    """
    plan, a, b = _arrays(plan=plan, a=a, b=b)
    mass = float(np.max(a.sum(-1)))
    low = float(plan.min())
    if low < -rtol * mass:
        raise AssertionError(f"plan has a negative entry {low:.3g}")
    err_a = float(np.abs(plan.sum(-1) - a).sum(-1).max())
    err_b = float(np.abs(plan.sum(-2) - b).sum(-1).max())
    if err_a > rtol * mass or err_b > rtol * mass:
        raise AssertionError(
            f"plan marginals are off: |P1 - a|_1 = {err_a:.3g}, |P^T1 - b|_1 = {err_b:.3g} "
            f"(tolerance {rtol * mass:.3g})"
        )


def assert_dual_feasible(cost, u, v, *, rtol: float = 1e-9) -> None:
    """Assert that ``u_i + v_j <= C_ij`` for every pair, to ``rtol * max|C|``.

    Parameters
    ----------
    cost : array-like or tensor, shape ``(n, m)`` or ``(B, n, m)``
    u, v : array-like or tensor, shapes ``(n,)`` and ``(m,)`` (or batched)
    rtol : float, default 1e-9

    Raises
    ------
    AssertionError
        With the most negative reduced cost and where it is.

    Notes
    -----
    ``O(n m)``.

    References
    ----------
    Peyré & Cuturi, *Computational Optimal Transport*, 2019, Prop. 2.4 and Sec. 3.

    Examples
    --------
    >>> assert_dual_feasible([[0.0, 1.0], [1.0, 0.0]], [0.0, 0.0], [0.0, 0.0])
    """
    cost, u, v = _arrays(cost=cost, u=u, v=v)
    reduced = cost - u[..., :, None] - v[..., None, :]
    worst = float(reduced.min())
    if worst < -rtol * _cost_scale(cost):
        i = np.unravel_index(int(np.argmin(reduced)), reduced.shape)
        raise AssertionError(
            f"potentials are not dual feasible: C - u - v = {worst:.3g} at index {tuple(int(k) for k in i)}"
        )


def assert_complementary_slackness(plan, cost, u, v, *, rtol: float = 1e-9) -> None:
    """Assert that mass moves only along tight edges: ``P_ij > 0  =>  C_ij = u_i + v_j``.

    Entries of the plan below ``rtol * mass`` count as zero.

    Parameters
    ----------
    plan, cost : shapes ``(n, m)`` (or batched)
    u, v : shapes ``(n,)`` and ``(m,)`` (or batched)
    rtol : float, default 1e-9

    Notes
    -----
    ``O(n m)``. With primal and dual feasibility, slackness is equivalent to optimality.

    References
    ----------
    Peyré & Cuturi, *Computational Optimal Transport*, 2019, Prop. 2.4 and Sec. 3.

    Examples
    --------
    >>> import numpy as np
    >>> assert_complementary_slackness(np.eye(2) / 2, [[0.0, 1.0], [1.0, 0.0]], [0.0, 0.0], [0.0, 0.0])
    """
    plan, cost, u, v = _arrays(plan=plan, cost=cost, u=u, v=v)
    reduced = np.abs(cost - u[..., :, None] - v[..., None, :])
    mass = float(plan.sum((-2, -1)).max())
    support = plan > rtol * mass
    worst = float(np.where(support, reduced, 0.0).max())
    if worst > rtol * _cost_scale(cost):
        raise AssertionError(f"complementary slackness fails: |C - u - v| = {worst:.3g} on the plan's support")


def assert_strong_duality(a, b, cost, plan, u, v, *, rtol: float = 1e-9) -> None:
    """Assert ``<C, P> = <a, u> + <b, v>`` to ``rtol`` relative.

    Relative to the largest of ``|<C, P>|``, ``mass * max|C|`` and ``<|a|, |u|> + <|b|, |v|>`` (the size
    of the numbers summed, to which rounding errors are proportional).

    Together with :func:`assert_marginals` and :func:`assert_dual_feasible`, this proves optimality.

    Parameters
    ----------
    a, b : weights, shapes ``(n,)`` and ``(m,)`` (or batched)
    cost, plan : shapes ``(n, m)`` (or batched)
    u, v : potentials, shapes ``(n,)`` and ``(m,)`` (or batched)
    rtol : float, default 1e-9

    References
    ----------
    Peyré & Cuturi, *Computational Optimal Transport*, 2019, Prop. 2.4 and Sec. 3.

    Examples
    --------
    >>> import numpy as np
    >>> assert_strong_duality([1.0], [1.0], [[2.0]], np.ones((1, 1)), [1.0], [1.0])
    """
    a, b, cost, plan, u, v = _arrays(a=a, b=b, cost=cost, plan=plan, u=u, v=v)
    primal = (plan * cost).sum((-2, -1))
    dual = (a * u).sum(-1) + (b * v).sum(-1)
    scale = np.maximum(np.abs(primal), _dual_scale(a, b, cost, u, v))
    rel = np.abs(primal - dual) / np.maximum(scale, np.finfo(np.float64).tiny)
    if np.any(rel > rtol):
        k = int(np.argmax(rel))
        raise AssertionError(
            f"duality gap too large: primal {np.ravel(primal)[k]:.17g}, dual {np.ravel(dual)[k]:.17g}, "
            f"relative gap {np.ravel(rel)[k]:.3g} > {rtol:g}"
        )


def assert_weak_duality(a, b, cost, u, v, primal_value, *, rtol: float = 1e-9) -> None:
    """Assert that a dual-feasible pair is worth no more than the primal value.

    Checks that ``(u, v)`` is feasible and that ``<a, u> + <b, v> <= primal_value`` (to ``rtol``
    relative). Feed it any feasible pair — e.g. random ``u`` with ``v = c_transform(C, u)`` — and the
    optimal value of your solver.

    Parameters
    ----------
    a, b : weights, shapes ``(n,)`` and ``(m,)`` (or batched)
    cost : shape ``(n, m)`` (or batched)
    u, v : any dual-feasible potentials
    primal_value : float or array ``(B,)``, the value of any feasible plan (e.g. the optimum)
    rtol : float, default 1e-9

    References
    ----------
    Peyré & Cuturi, *Computational Optimal Transport*, 2019, Prop. 2.4 and Sec. 3.

    Examples
    --------
    >>> assert_weak_duality([1.0], [1.0], [[2.0]], [0.5], [1.0], 2.0)
    """
    a, b, cost, u, v = _arrays(a=a, b=b, cost=cost, u=u, v=v)
    assert_dual_feasible(cost, u, v, rtol=rtol)
    primal_value = to_numpy(primal_value, "primal_value")
    dual = (a * u).sum(-1) + (b * v).sum(-1)
    scale = np.maximum(np.abs(primal_value), _dual_scale(a, b, cost, u, v))
    excess = dual - primal_value
    if np.any(excess > rtol * scale):
        k = int(np.argmax(excess))
        raise AssertionError(
            f"weak duality fails: dual value {np.ravel(dual)[k]:.17g} exceeds primal "
            f"{np.ravel(primal_value)[k]:.17g}"
        )


def assert_optimal(result: Any, a, b, cost, *, rtol: float = 1e-9) -> None:
    """Assert that an exact OT result is optimal, recomputing every condition from the inputs.

    ``result`` needs ``plan``, ``potentials`` and ``cost`` attributes (an
    :class:`otmetrics.OTResult`); ``cost`` is the cost matrix (or a geometry with ``cost_matrix()``).
    Checks marginals, dual feasibility, complementary slackness, strong duality, and that the
    reported value equals ``<C, P>``.

    Parameters
    ----------
    result : OTResult (or anything with ``plan``, ``potentials`` and ``cost``)
    a, b : the weights the problem was solved with (``b`` is rescaled to the mass of ``a``)
    cost : the cost matrix, or a geometry with ``cost_matrix()``
    rtol : float, default 1e-9

    References
    ----------
    Peyré & Cuturi, *Computational Optimal Transport*, 2019, Prop. 2.4 and Sec. 3.

    Examples
    --------
    >>> import numpy as np, otmetrics
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> assert_optimal(otmetrics.emd([0.5, 0.5], [0.5, 0.5], C), [0.5, 0.5], [0.5, 0.5], C)
    """
    if hasattr(cost, "cost_matrix"):
        cost = cost.cost_matrix()
    cost = to_numpy(cost, "cost")
    plan = to_numpy(result.plan, "plan")
    u, v = (to_numpy(t, n) for t, n in zip(result.potentials, ("u", "v")))
    a = np.broadcast_to(to_numpy(a, "a"), u.shape)
    b = np.broadcast_to(to_numpy(b, "b"), v.shape)
    b = b * (a.sum(-1) / b.sum(-1))[..., None]
    assert_marginals(plan, a, b, rtol=rtol)
    assert_dual_feasible(cost, u, v, rtol=rtol)
    assert_complementary_slackness(plan, cost, u, v, rtol=rtol)
    assert_strong_duality(a, b, cost, plan, u, v, rtol=rtol)
    reported = to_numpy(result.cost, "result.cost")
    primal = (plan * cost).sum((-2, -1))
    scale = np.maximum(np.abs(primal), a.sum(-1) * _cost_scale(cost))
    if np.any(np.abs(reported - primal) > rtol * scale):
        raise AssertionError(f"reported cost {reported} differs from <C, P> = {primal}")


def assert_metric_axioms(distance: Callable[[Any, Any], float], points: Sequence[Any], *, rtol: float = 1e-9,
                         atol: float = 1e-12) -> None:
    """Assert the metric axioms of ``distance`` on every pair and triple of ``points``.

    Symmetry ``d(x, y) = d(y, x)``, identity ``d(x, x) = 0``, non-negativity, and the triangle
    inequality ``d(x, z) <= d(x, y) + d(y, z)`` (each to ``atol + rtol * scale``).

    Parameters
    ----------
    distance : callable ``(x, y) -> float``
    points : sequence of objects ``distance`` accepts (e.g. point clouds)
    rtol, atol : float
        Tolerance ``atol + rtol * max |d|``.

    Notes
    -----
    ``k^2`` calls of ``distance`` for ``k`` points, ``O(k^3)`` comparisons.

    References
    ----------
    Villani, *Optimal Transport: Old and New*, 2009, Def. 6.1 and Thm. 6.9 (W_p is a metric).

    Examples
    --------
    >>> import numpy as np, otmetrics
    >>> clouds = [np.random.default_rng(s).normal(size=(5, 2)) for s in range(3)]
    >>> assert_metric_axioms(lambda x, y: otmetrics.wasserstein(x, y, p=1), clouds)
    """
    k = len(points)
    d = np.zeros((k, k))
    for i, j in itertools.product(range(k), repeat=2):
        d[i, j] = float(distance(points[i], points[j]))
    scale = max(float(np.abs(d).max()), 1.0)
    tol = atol + rtol * scale
    if np.any(np.abs(np.diag(d)) > tol):
        raise AssertionError(f"identity fails: d(x, x) = {np.diag(d).tolist()}")
    if np.any(d < -tol):
        raise AssertionError(f"non-negativity fails: min distance {d.min():.3g}")
    if np.any(np.abs(d - d.T) > tol):
        i, j = np.unravel_index(int(np.argmax(np.abs(d - d.T))), d.shape)
        raise AssertionError(f"symmetry fails: d({i}, {j}) = {d[i, j]!r}, d({j}, {i}) = {d[j, i]!r}")
    # excess[i, j, k] = d(i, k) - d(i, j) - d(j, k)
    excess = d[:, None, :] - (d[:, :, None] + d[None, :, :])
    if np.any(excess > tol):
        i, j, kk = np.unravel_index(int(np.argmax(excess)), excess.shape)
        raise AssertionError(
            f"triangle inequality fails: d({i}, {kk}) = {d[i, kk]:.17g} > d({i}, {j}) + d({j}, {kk}) = "
            f"{d[i, j] + d[j, kk]:.17g}"
        )


def _bounds_of(bounds):
    """``(lower, upper)`` as float64 arrays from a result, a bracket, a certificate or a pair."""
    if hasattr(bounds, "lower") and hasattr(bounds, "upper"):
        lower, upper = bounds.lower, bounds.upper
    else:
        try:
            lower, upper = bounds
        except (TypeError, ValueError):
            raise TypeError(f"bounds: expected an object with lower and upper, or a pair, got "
                            f"{type(bounds).__name__}") from None
    return to_numpy(lower, "lower"), to_numpy(upper, "upper")


def assert_bracket_contains(bracket, value, *, rtol: float = 0.0, atol: float = 0.0) -> None:
    """Assert that a bracket contains a value: ``lower <= value <= upper``.

    Parameters
    ----------
    bracket : a :class:`otmetrics.Bracket`, a result or certificate with ``lower`` and ``upper``, or a pair
        ``(lower, upper)`` (floats, or arrays ``(B,)`` for a batch)
    value : float or array ``(B,)``
        E.g. the exact value from the LP, or an estimate that claims to be within the bracket.
    rtol, atol : float, default 0
        Slack ``atol + rtol |value|`` on each side (0: the bracket must contain the value as it is).

    Raises
    ------
    AssertionError
        With the bracket, the value and by how much it lies outside.

    Examples
    --------
    >>> import numpy as np, otmetrics
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> assert_bracket_contains(otmetrics.sinkhorn(None, None, C, eps=0.1), 0.0)
    >>> assert_bracket_contains((1.0, 2.0), 1.5)
    """
    lower, upper = _bounds_of(bracket)
    value = to_numpy(value, "value")
    slack = atol + rtol * np.abs(value)
    if np.any(lower > upper):
        k = int(np.argmax(lower - upper))
        shape = np.broadcast(lower, upper).shape
        lo, hi = (float(np.ravel(np.broadcast_to(t, shape))[k]) for t in (lower, upper))
        raise AssertionError(f"not a bracket: lower {lo!r} > upper {hi!r}")
    below, above = lower - slack - value, value - slack - upper
    if np.any(below > 0) or np.any(above > 0):
        k = int(np.argmax(np.maximum(below, above)))
        lo, hi = np.ravel(np.broadcast_to(lower, np.shape(below)))[k], np.ravel(np.broadcast_to(upper,
                                                                                                 np.shape(below)))[k]
        lo, hi, v = float(lo), float(hi), float(np.ravel(np.broadcast_to(value, np.shape(below)))[k])
        raise AssertionError(f"the bracket [{lo!r}, {hi!r}] does not contain {v!r} "
                             f"(outside by {max(np.ravel(below)[k], np.ravel(above)[k]):.3g})")


def assert_valid_bounds(bounds, a, b, cost, *, backend: str = "network_simplex") -> None:
    """Assert that claimed bounds on an optimal transport value are valid: ``lower <= OT(a, b; C) <= upper``.

    The exact value comes from otmetrics' LP (:func:`otmetrics.emd`), which proves its own interval
    ``[lo*, hi*]`` (tight to rounding): the bounds are invalid when ``lower > hi*`` or ``upper < lo*`` (the
    exact value is then certainly outside them). Rounding-level disagreements are therefore never reported,
    and a real violation always is.

    Parameters
    ----------
    bounds : a result, bracket or certificate with ``lower`` and ``upper``, or a pair (floats or arrays
        ``(B,)``)
    a, b : weights (``None``: uniform), as for :func:`otmetrics.emd` (``b`` rescaled to the mass of ``a``)
    cost : a cost matrix ``(n, m)`` / ``(B, n, m)`` or a :class:`otmetrics.PointCloud` (its exact distances)
    backend : the LP solver of the reference

    Raises
    ------
    AssertionError
        With the claimed bounds and the LP's interval; also when the LP itself is not certified optimal.

    Examples
    --------
    >>> import numpy as np, otmetrics
    >>> rng = np.random.default_rng(0)
    >>> C = rng.random((5, 4))
    >>> assert_valid_bounds(otmetrics.sinkhorn(None, None, C, eps=0.05), None, None, C)
    """
    import warnings

    from .._core.warnings import ConvergenceWarning
    from ..transport.exact import emd

    lower, upper = _bounds_of(bounds)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = emd(a, b, cost, backend=backend)
    if not np.all(reference.converged):
        raise AssertionError(f"the reference LP is not certified optimal ({reference.certificate.summary()})")
    lo_ref, hi_ref = to_numpy(reference.lower, "lower"), to_numpy(reference.upper, "upper")
    if np.any(lower > hi_ref) or np.any(upper < lo_ref):
        k = int(np.argmax(np.maximum(lower - hi_ref, lo_ref - upper)))
        pick = (lambda t: float(np.ravel(np.broadcast_to(t, np.broadcast(lower, hi_ref).shape))[k]))
        raise AssertionError(
            f"invalid bounds: [{pick(lower)!r}, {pick(upper)!r}] does not contain the exact value, which the "
            f"LP "
            f"proves to lie in [{pick(lo_ref)!r}, {pick(hi_ref)!r}]")
