"""Proven bounds ``lower <= OT <= upper`` on every exact and Sinkhorn result (issue 12, certified values).

The references: the exact value of the LP from HiGHS (a different solver from the network simplex whose
bounds are checked), and closed forms (identical clouds, the issue's two-point example).
"""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import otmetrics
from otmetrics import ConvergenceWarning, PointCloud, certify, cost_matrix, emd, sinkhorn
from otmetrics.testing import assert_bracket_contains, assert_valid_bounds
from otmetrics.testing.strategies import OTProblem, ot_problems

torch = pytest.importorskip("torch")


def exact_value(a, b, cost):
    """The LP's value by HiGHS (not the network simplex whose bounds are under test)."""
    return float(emd(a, b, cost, backend="highs").cost)


def random_problem(seed, n, m, *, zeros=False):
    rng = np.random.default_rng(seed)
    a, b = rng.random(n) + 0.05, rng.random(m) + 0.05
    if zeros:
        a[rng.random(n) < 0.3] = 0.0
        b[rng.random(m) < 0.3] = 0.0
        a[0], b[-1] = max(a[0], 0.1), max(b[-1], 0.1)
    return a / a.sum(), b / b.sum(), rng.random((n, m))


# ------------------------------------------------------------------------------------------------
# The exact solver: tight to rounding
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed, n, m, zeros", [(0, 7, 5, False), (1, 30, 40, False), (2, 25, 25, True),
                                               (3, 1, 6, False), (4, 60, 3, True)])
def test_emd_interval_contains_the_exact_value_and_is_tight_to_rounding(seed, n, m, zeros):
    a, b, C = random_problem(seed, n, m, zeros=zeros)
    res = emd(a, b, C)
    exact = exact_value(a, b, C)
    assert isinstance(res.lower, float) and isinstance(res.upper, float)
    assert res.lower <= exact <= res.upper
    assert res.lower <= res.cost <= res.upper
    assert res.upper - res.lower <= 1e-13 * exact  # rounding, not a tolerance of the solver


def test_emd_bounds_of_a_batch_and_of_torch_input():
    problems = [random_problem(s, 8, 6) for s in range(3)]
    A, B, C = (np.stack([p[k] for p in problems]) for k in range(3))
    res = emd(A, B, C)
    assert res.lower.shape == (3,) and res.upper.shape == (3,)
    for k in range(3):
        assert res.lower[k] <= exact_value(A[k], B[k], C[k]) <= res.upper[k]
    for dtype in (torch.float64, torch.float32):
        t = emd(torch.tensor(A, dtype=dtype), torch.tensor(B, dtype=dtype), torch.tensor(C, dtype=dtype))
        assert t.lower.dtype == dtype and t.upper.dtype == dtype and not t.lower.requires_grad
        # float32 input is a different problem (its floats are the data): compare with its own exact value
        for k in range(3):
            a32, b32, c32 = (np.float64(x[k].to(dtype).numpy()) for x in (t_in for t_in in (
                torch.tensor(A, dtype=dtype), torch.tensor(B, dtype=dtype), torch.tensor(C, dtype=dtype))))
            assert float(t.lower[k]) <= exact_value(a32, b32, c32) <= float(t.upper[k])


def test_ties_identical_clouds_and_constant_costs():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(12, 2))
    for p in (1, 2):
        res = emd(None, None, PointCloud(x, x.copy(), p=p))
        # the value is exactly 0; the costs are computed from the points, within their proven error
        assert res.lower <= 0.0 <= res.upper <= 1e-13 * cost_matrix(x, x, p=p).max()
        # exact costs: the upper end is the rounding of the plan's marginals times the costs
        assert emd(None, None, cost_matrix(x, x, p=p)).upper <= 1e-14 * cost_matrix(x, x, p=p).max()
    # every plan is optimal when all costs are equal: the value is the cost times the mass
    res = emd(None, None, np.full((4, 6), 3.0))
    assert res.lower <= 3.0 <= res.upper and res.upper - res.lower <= 1e-14
    # duplicated points (ties in the cost) and repeated rows
    y = np.repeat(x[:4], 3, axis=0)
    C = cost_matrix(x, y, p=2)
    res = emd(None, None, C)
    assert res.lower <= exact_value(None, None, C) <= res.upper


def test_zero_weights_are_ignored_by_the_bounds():
    rng = np.random.default_rng(6)
    C = rng.random((5, 4))
    C[0, :] = 1e6  # a row of zero weight with huge costs: it must not loosen the bounds
    a = np.array([0.0, 0.25, 0.25, 0.25, 0.25])
    b = np.array([0.5, 0.0, 0.25, 0.25])
    res = emd(a, b, C)
    exact = exact_value(a, b, C)
    assert res.lower <= exact <= res.upper and res.upper - res.lower <= 1e-13 * exact
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the bounds hold whatever the iterations did
        sk = sinkhorn(a, b, C, eps=0.01, tol=1e-7, max_iter=2000)
    assert sk.lower <= exact <= sk.upper and sk.upper - sk.lower <= 0.1 * exact


@pytest.mark.parametrize("factor", [1e-250, 1e-8, 1.0, 1e8, 1e250])
def test_badly_scaled_costs(factor):
    a, b, C = random_problem(7, 9, 7)
    res = emd(a, b, C * factor)
    exact = exact_value(a, b, C) * factor  # scaling by a power of ten: exact up to one rounding per entry
    assert res.lower <= exact * (1 + 1e-15) and exact * (1 - 1e-15) <= res.upper
    assert res.upper - res.lower <= 1e-13 * exact
    assert res.converged and res.certificate.optimal


def test_mixed_scales_a_tiny_value_beside_huge_unused_costs():
    C = np.array([[0.0, 1e6, 3.0], [1e6, 1e-7, 2.0], [5.0, 4.0, 0.0]])
    res = emd(None, None, C)
    exact = 1e-7 / 3
    assert res.lower <= exact <= res.upper
    assert res.lower >= exact * (1 - 1e-15)  # the lower end is tight: the potentials are tight on the support
    # the upper end charges the rounding of the marginals (u / 3 per row) the costs between the rows and the
    # columns that lack mass, 1e6 here: tight to rounding relative to the mass times those costs
    assert res.upper - exact <= 1e-15 * 1e6


def test_the_issue_example_is_not_certified():
    C = np.array([[0.0, 1e6], [1e6, 0.0]])
    a = b = np.full(2, 0.5)
    plan = np.array([[0.5 - 1e-10, 1e-10], [1e-10, 0.5 - 1e-10]])
    cert = certify(a, b, C, plan, np.zeros(2), np.zeros(2))
    assert not cert.optimal
    assert cert.primal == pytest.approx(2e-4)
    assert cert.lower <= 0.0 <= cert.upper  # the interval holds the optimum 0 ...
    assert cert.upper >= cert.primal * (1 - 1e-12)  # ... and the plan's value is its honest upper end
    # the solver's own answer is certified, with an interval of width 0 around the optimum 0
    res = emd(a, b, C)
    assert res.converged and res.lower <= 0.0 <= res.upper and res.upper <= 1e-300


def test_garbage_potentials_give_valid_bounds():
    a, b, C = random_problem(8, 10, 9)
    exact = exact_value(a, b, C)
    rng = np.random.default_rng(8)
    for u, v in [(rng.normal(size=10) * 1e3, rng.normal(size=9) * 1e3), (np.zeros(10), np.zeros(9)),
                 (np.full(10, 1e300), np.full(9, -1e300))]:
        plan = np.abs(rng.normal(size=(10, 9)))  # not even close to the marginals
        cert = certify(a, b, C, plan, u, v)
        assert cert.lower <= exact <= cert.upper and not cert.optimal


# ------------------------------------------------------------------------------------------------
# Sinkhorn: the interval contains the exact value whatever the iterations did
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("eps", [1.0, 0.1, 0.01])
def test_sinkhorn_bounds_contain_the_exact_value_and_shrink_with_eps(eps):
    a, b, C = random_problem(9, 20, 15)
    exact = exact_value(a, b, C)
    res = sinkhorn(a, b, C, eps=eps, tol=1e-9, max_iter=100_000)
    assert res.lower <= exact <= res.upper
    assert res.upper - res.lower <= 10 * eps * math.log(20 * 15)  # the entropic bias, at most eps log(nm)
    if eps == 0.01:
        assert res.upper - res.lower <= 0.05 * exact


def test_sinkhorn_bounds_on_point_clouds_online_and_dense():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) + 0.5
    a = rng.random(40)
    b = rng.random(30)
    b = b * (a.sum() / b.sum()) * (1 + 1e-9)  # within mass_rtol: rescaled exactly to the mass of a
    for p in (1, 2, 1.5):
        exact = exact_value(a, b, cost_matrix(x, y, p=p))
        for online in (False, True):
            res = sinkhorn(a, b, PointCloud(x, y, p=p, online=online), eps=0.05, tol=1e-8)
            assert res.lower <= exact <= res.upper
            assert res.upper - res.lower <= 0.2 * exact


def test_sinkhorn_bounds_torch_batched_float32():
    rng = np.random.default_rng(11)
    X, Y = rng.normal(size=(3, 16, 2)), rng.normal(size=(3, 12, 2))
    Xt, Yt = torch.tensor(X, dtype=torch.float32), torch.tensor(Y, dtype=torch.float32)
    res = sinkhorn(None, None, PointCloud(Xt, Yt, p=2), eps=0.05, tol=1e-4)
    assert res.lower.shape == (3,) and res.lower.dtype == torch.float32 and res.upper.dtype == torch.float32
    for k in range(3):
        # the problem is that of the float32 points (converted exactly)
        C = cost_matrix(Xt[k].double().numpy(), Yt[k].double().numpy(), p=2)
        assert float(res.lower[k]) <= exact_value(None, None, C) <= float(res.upper[k])


def test_sinkhorn_stopped_after_one_iteration_or_from_garbage_is_still_valid():
    a, b, C = random_problem(12, 25, 20)
    exact = exact_value(a, b, C)
    rng = np.random.default_rng(12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        garbage = (rng.normal(size=25) * 50, rng.normal(size=20))
        for kwargs in ({"max_iter": 1}, {"max_iter": 2, "init": garbage}):
            res = sinkhorn(a, b, C, eps=0.001, **kwargs)
            assert res.lower <= exact <= res.upper
            assert math.isfinite(res.lower) and math.isfinite(res.upper)


def test_sinkhorn_bounds_with_the_issue_costs():
    C = np.array([[0.0, 1e6], [1e6, 0.0]])
    res = sinkhorn(None, None, C, eps=1.0)
    # the value is 0; the upper end carries the rounding of the marginals times the costs (u * 1e6)
    assert res.lower <= 0.0 <= res.upper <= 1e-9


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problem=ot_problems(max_n=8, p=2), eps=st.sampled_from([0.5, 0.05, 0.005]))
@example(problem=OTProblem(np.array([0.0, 8 / 9, 1 / 9]), np.full(6, 1 / 6),
                           np.array([[0.0] * 6, [1.0] + [0.0] * 5, [0.0] * 6])), eps=0.5)
def test_bounds_hold_on_drawn_problems(problem, eps):
    exact = exact_value(problem.a, problem.b, problem.cost)
    # the reference is HiGHS's plan summed in floating point: it is itself off by a few ulps of the
    # largest cost (seen: 1.9e-16 below the exact 1/18 on a 3 x 6 problem with costs 0 and 1)
    ref_error = 64 * np.finfo(float).eps * float(np.abs(problem.cost).max()) * float(np.sum(problem.a))
    res = emd(problem.a, problem.b, problem.cost)
    assert_bracket_contains(res, exact, atol=ref_error)
    scale = max(exact, float(np.abs(problem.cost).max()), 1e-300)
    assert res.upper - res.lower <= 1e-12 * scale
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sk = sinkhorn(problem.a, problem.b, problem.cost, eps=eps * scale, max_iter=2000)
    assert_bracket_contains(sk, exact, atol=ref_error)
    assert_valid_bounds(sk, problem.a, problem.b, problem.cost)


# ------------------------------------------------------------------------------------------------
# Weight gradients in unconstrained directions (the mass of a changes; b follows it)
# ------------------------------------------------------------------------------------------------
def _directions(n, m, seed):
    """Weights of equal mass and a direction that changes the mass (b's part moves with it)."""
    rng = np.random.default_rng(seed)
    a0 = torch.tensor(rng.random(n) + 0.1)
    b0 = torch.tensor(rng.random(m) + 0.1)
    b0 = b0 * a0.sum() / b0.sum()
    d = torch.tensor(rng.normal(size=n)) + 0.5  # its sum is far from 0
    z = torch.tensor(rng.normal(size=m))
    e = b0 * d.sum() / b0.sum() + (z - z.mean())
    return a0, b0, d, e


def _check_gradient(fn, a0, b0, d, e, rtol, homogeneous=False):
    a, b = a0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    ga, gb = torch.autograd.grad(fn(a, b), (a, b))
    h = 1e-6
    fd = float(fn(a0 + h * d, b0 + h * e) - fn(a0 - h * d, b0 - h * e)) / (2 * h)
    assert float(ga @ d + gb @ e) == pytest.approx(fd, rel=rtol)
    if homogeneous:  # scaling both weights by s scales the value by s: the derivative is the value
        value = float(fn(a0, b0))
        assert float(ga @ a0 + gb @ b0) == pytest.approx(value, rel=rtol)
    # scaling a alone: b is rescaled to it (within mass_rtol), so the value scales too
    s = 1 + 1e-7
    fd_a = float(fn(a0 * s, b0) - fn(a0 / s, b0)) / (s - 1 / s)
    assert float(ga @ a0) == pytest.approx(fd_a, rel=max(rtol, 1e-6))


def test_emd_weight_gradient_in_unconstrained_directions():
    a0, b0, d, e = _directions(6, 5, 0)
    C = torch.tensor(np.random.default_rng(0).random((6, 5)))
    _check_gradient(lambda a, b: emd(a, b, C).cost, a0, b0, d, e, 1e-7, homogeneous=True)
    # the issue's case: scaling the uniform weights (mass 1 -> 2 doubles the value)
    a = torch.full((6,), 1 / 6, dtype=torch.float64, requires_grad=True)
    b = torch.full((5,), 1 / 5, dtype=torch.float64)
    value = emd(a, b, C).cost
    (grad,) = torch.autograd.grad(value, a)
    assert float(grad @ a.detach()) == pytest.approx(float(value.detach()), rel=1e-12)


def test_sinkhorn_weight_gradient_in_unconstrained_directions():
    a0, b0, d, e = _directions(7, 6, 1)
    C = torch.tensor(np.random.default_rng(1).random((7, 6)))
    _check_gradient(lambda a, b: sinkhorn(a, b, C, eps=0.1, tol=1e-13, max_iter=100_000).objective,
                    a0, b0, d, e, 1e-6)


def test_sinkhorn_divergence_weight_gradient_in_unconstrained_directions():
    a0, b0, d, e = _directions(7, 6, 2)
    rng = np.random.default_rng(2)
    X, Y = torch.tensor(rng.random((7, 2))), torch.tensor(rng.random((6, 2)))
    _check_gradient(lambda a, b: otmetrics.sinkhorn_divergence(X, Y, a=a, b=b, eps=0.1, p=2, tol=1e-13,
                                                               max_iter=100_000), a0, b0, d, e, 1e-6)
