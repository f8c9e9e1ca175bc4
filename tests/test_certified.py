"""certified_wasserstein: a proven bracket of W_p^p from entropic solves (issue 12), and the testing kit's
assertions about brackets and bounds. The reference is the exact LP (HiGHS and the network simplex)."""

import math
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import otmetrics
from otmetrics import Bracket, ConvergenceWarning, PointCloud, certified_wasserstein, cost_matrix, emd
from otmetrics.testing import assert_bracket_contains, assert_valid_bounds
from otmetrics.transport.certified import root_bracket

torch = pytest.importorskip("torch")


def exact(x, y, a=None, b=None, p=2, metric="euclidean"):
    return float(emd(a, b, cost_matrix(x, y, p=p, metric=metric), backend="highs").cost)


def clouds(seed, n, m, d=3, shift=1.0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(m, d)) + shift


# ------------------------------------------------------------------------------------------------
# The bracket holds and reaches its width
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p, metric, rtol", [(2, "euclidean", 1e-2), (1, "euclidean", 2e-2),
                                             (1.5, "euclidean", 5e-2), (1, "cityblock", 2e-2),
                                             (2, "chebyshev", 5e-2)])
def test_bracket_contains_the_exact_value_and_reaches_rtol(p, metric, rtol):
    x, y = clouds(0, 60, 45)
    bracket = certified_wasserstein(x, y, p=p, metric=metric, rtol=rtol)
    value = exact(x, y, p=p, metric=metric)
    assert isinstance(bracket, Bracket) and isinstance(bracket.lower, float)
    assert bracket.converged and bracket.relative_width <= rtol
    assert bracket.lower <= value <= bracket.upper
    assert_bracket_contains(bracket, value)
    lo, hi = bracket.distance  # the bracket of W_p itself
    assert lo <= value ** (1 / p) <= hi
    # every stage is a proven bracket too, and the bracket is the best of them
    for stage in bracket.stages:
        assert stage.lower <= value <= stage.upper
    assert bracket.lower == max(s.lower for s in bracket.stages)
    assert bracket.upper == min(s.upper for s in bracket.stages)
    assert bracket.n_iter == sum(s.n_iter for s in bracket.stages) and bracket.eps == bracket.stages[-1].eps


def test_weights_with_zeros_and_a_rescaled_b():
    x, y = clouds(1, 40, 30, d=2)
    rng = np.random.default_rng(1)
    a, b = rng.random(40), rng.random(30)
    a[::5] = 0.0
    b[::7] = 0.0
    b = b * (a.sum() / b.sum()) * (1 + 1e-9)  # equal masses to the solvers' tolerance: rescaled exactly
    bracket = certified_wasserstein(x, y, a=a, b=b, rtol=1e-2)
    assert bracket.converged and bracket.lower <= exact(x, y, a, b) <= bracket.upper


def test_torch_input_float32_points_are_the_data():
    x, y = clouds(2, 50, 50)
    xt, yt = torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)
    bracket = certified_wasserstein(xt, yt, rtol=1e-2)
    assert isinstance(bracket.lower, float) and bracket.converged
    value = exact(xt.double().numpy(), yt.double().numpy())
    assert bracket.lower <= value <= bracket.upper


def test_points_on_a_line_against_the_closed_form():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=80), rng.normal(size=70) * 2 + 1
    bracket = certified_wasserstein(x, y, p=2, rtol=1e-2)
    value = float(otmetrics.wasserstein_1d(x, y, p=2)) ** 2
    assert bracket.lower <= value * (1 + 1e-12) and value * (1 - 1e-12) <= bracket.upper


def test_value_zero_needs_an_atol_and_the_bracket_stays_proven():
    x, _ = clouds(4, 30, 30)
    with pytest.warns(ConvergenceWarning, match=r"^certified_wasserstein: relative width .* is proven"):
        bracket = certified_wasserstein(x, x.copy(), rtol=1e-2, max_stages=3)
    assert not bracket.converged and bracket.lower <= 0.0 <= bracket.upper and len(bracket.stages) == 3
    bracket = certified_wasserstein(x, x.copy(), rtol=1e-2, atol=1e-2)
    assert bracket.converged and bracket.lower <= 0.0 <= bracket.upper <= 1e-2


@pytest.mark.parametrize("limit", [{"max_stages": 1}, {"max_iter": 2}, {"max_time": 1e-3}])
def test_limits_give_a_warning_and_a_proven_bracket(limit):
    x, y = clouds(5, 50, 40)
    with pytest.warns(ConvergenceWarning, match=r"rtol=1e-06"):
        bracket = certified_wasserstein(x, y, rtol=1e-6, **limit)
    assert not bracket.converged and bracket.lower <= exact(x, y) <= bracket.upper
    if "max_stages" in limit:
        assert len(bracket.stages) == 1


def test_eps_options_and_the_stopping_rule():
    x, y = clouds(6, 40, 40)
    bracket = certified_wasserstein(x, y, rtol=2e-2, eps_init=0.5, eps_scaling=0.3)
    assert bracket.stages[0].eps == 0.5
    for before, after in zip(bracket.stages, bracket.stages[1:]):
        assert 0.1 * before.eps * (1 - 1e-12) <= after.eps <= 0.3 * before.eps * (1 + 1e-12)
    # it stops at the first stage whose bracket is narrow enough
    for k in range(1, len(bracket.stages)):
        best_lo = max(s.lower for s in bracket.stages[:k])
        best_hi = min(s.upper for s in bracket.stages[:k])
        assert best_hi - best_lo > 2e-2 * best_lo


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 30), m=st.integers(1, 30), d=st.integers(1, 3), p=st.sampled_from([1.0, 2.0]),
       seed=st.integers(0, 2**32 - 1), spread=st.sampled_from([1e-3, 1.0, 1e3]),
       rtol=st.sampled_from([1e-1, 1e-2]), weighted=st.booleans())
def test_the_bracket_contains_the_lp_value_every_time(n, m, d, p, seed, spread, rtol, weighted):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * spread
    y = rng.normal(size=(m, d)) * spread + rng.normal(size=d) * spread
    if rng.random() < 0.2:  # ties: repeated points
        y[: m // 2] = x[0]
    a = b = None
    if weighted:
        a, b = rng.random(n) + 0.01, rng.random(m) + 0.01
        a, b = a / a.sum(), b / b.sum()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a bracket cut short must hold all the same
        bracket = certified_wasserstein(x, y, a=a, b=b, p=p, rtol=rtol, max_stages=8, max_iter=2000)
    C = cost_matrix(x, y, p=p)
    assert_bracket_contains(bracket, exact(x, y, a, b, p=p))
    assert_valid_bounds(bracket, a, b, C)
    if bracket.converged:
        assert bracket.upper - bracket.lower <= rtol * bracket.lower


def test_root_bracket_rounds_outwards():
    for p in (1.0, 2.0, 3.0, 1.5):
        for value in (1e-300, 1e-5, 0.7, 3.0, 1e200):
            lo, hi = root_bracket(value, value, p)
            assert lo <= value ** (1 / p) <= hi
            assert hi - lo <= 1e-15 * (20 + abs(math.log(value))) * value ** (1 / p)  # rounding of 1/p, pow
    assert root_bracket(-1.0, 4.0, 2) == (0.0, 2.0000000000000004)
    assert root_bracket(0.0, math.inf, 3) == (0.0, math.inf)


def test_online_cost_only():
    # the solver gets an online point cloud: the n x m cost is never formed (the memory is measured in
    # benchmarks/bench_certified.py)
    import otmetrics.transport.sinkhorn.api as api

    seen = []
    original = api.sinkhorn

    def spy(a, b, cost, **kwargs):
        seen.append(cost)
        return original(a, b, cost, **kwargs)

    x, y = clouds(7, 20, 20)
    api.sinkhorn = spy
    try:
        certified_wasserstein(x, y, rtol=5e-2)
    finally:
        api.sinkhorn = original
    assert seen and all(isinstance(c, PointCloud) and c.online for c in seen)


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------
X, Y = clouds(8, 5, 4, d=2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(x=np.array([[0.0, np.nan]]), y=Y), r"^x: "),
    (dict(x=X, y=np.array([[np.inf, 0.0]])), r"^y: "),
    (dict(x=X, y=np.ones((3, 3))), r"^y: expected points of dimension 2"),
    (dict(x=np.ones((0, 2)), y=Y), r"^x: must not be empty"),
    (dict(x=X, y=Y, rtol=0.0), r"^rtol: must be finite and > 0"),
    (dict(x=X, y=Y, rtol=-1e-3), r"^rtol: must be finite and > 0"),
    (dict(x=X, y=Y, rtol=float("nan")), r"^rtol: must be finite and > 0"),
    (dict(x=X, y=Y, atol=-1.0), r"^atol: must be finite and >= 0"),
    (dict(x=X, y=Y, p=0.5), r"^p: must be a finite number >= 1"),
    (dict(x=X, y=Y, metric="cosine"), r"^metric: must be one of"),
    (dict(x=X, y=Y, eps_scaling=1.0), r"^eps_scaling: must be a factor in \(0, 1\)"),
    (dict(x=X, y=Y, eps_scaling=True), r"^eps_scaling: must be a factor in \(0, 1\)"),
    (dict(x=X, y=Y, eps_init=0.0), r"^eps_init: must be finite and > 0"),
    (dict(x=X, y=Y, max_stages=0), r"^max_stages: must be finite and > 0"),
    (dict(x=X, y=Y, max_iter=1.5), r"^max_iter: must be an integer"),
    (dict(x=X, y=Y, max_time=-1.0), r"^max_time: must be finite and > 0"),
    (dict(x=X, y=Y, a=np.ones(4) / 4), r"^a: "),
    (dict(x=X, y=Y, a=np.array([0.5, 0.5, -0.1, 0.05, 0.05])), r"^a: "),
    (dict(x=X, y=Y, a=np.zeros(5), b=np.ones(4) / 4), r"^a: total mass must be positive"),
    (dict(x=X, y=Y, a=np.ones(5), b=np.ones(4)), r"^b: total mass must equal that of a"),
    (dict(x=X, y=Y, b=np.ones(4)), r"^b: total mass must be 1 when the other weights are omitted"),
])
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        certified_wasserstein(**kwargs)


# ------------------------------------------------------------------------------------------------
# The testing kit's assertions
# ------------------------------------------------------------------------------------------------
def test_assert_bracket_contains():
    assert_bracket_contains((1.0, 2.0), 1.0)
    assert_bracket_contains((1.0, 2.0), 2.0)
    assert_bracket_contains(Bracket(1.0, 2.0, 2.0, 1e-3, False, 0.1, 1, 0.0, ()), 1.5)
    assert_bracket_contains((np.array([0.0, 1.0]), np.array([1.0, 2.0])), np.array([0.5, 2.0]))
    assert_bracket_contains((1.0, 2.0), 2.1, atol=0.1 + 1e-12)
    with pytest.raises(AssertionError, match=r"the bracket \[1.0, 2.0\] does not contain 2.5 \(outside by 0.5"
                       ):
        assert_bracket_contains((1.0, 2.0), 2.5)
    with pytest.raises(AssertionError, match=r"does not contain 0.5"):
        assert_bracket_contains((1.0, 2.0), 0.5)
    with pytest.raises(AssertionError, match=r"the bracket \[1.0, 2.0\] does not contain 0.0"):
        assert_bracket_contains((np.array([0.0, 1.0]), np.array([1.0, 2.0])), np.array([0.5, 0.0]))
    with pytest.raises(AssertionError, match=r"^not a bracket: lower 3.0 > upper 2.0"):
        assert_bracket_contains((3.0, 2.0), 2.5)
    with pytest.raises(TypeError, match=r"^bounds: expected an object with lower and upper"):
        assert_bracket_contains(3.0, 2.5)
    t = otmetrics.sinkhorn(None, None, torch.tensor([[0.0, 1.0], [1.0, 0.0]]), eps=0.1)
    assert_bracket_contains(t, 0.0)  # tensors


def test_assert_valid_bounds():
    rng = np.random.default_rng(9)
    C = rng.random((6, 5))
    value = float(emd(None, None, C).cost)
    assert_valid_bounds(otmetrics.sinkhorn(None, None, C, eps=0.05), None, None, C)
    assert_valid_bounds((value, value), None, None, C)  # the exact value itself is a valid pair
    assert_valid_bounds((value - 1.0, math.inf), None, None, C)
    with pytest.raises(AssertionError, match=r"^invalid bounds: .* the LP proves to lie in"):
        assert_valid_bounds((value * (1 + 1e-6), math.inf), None, None, C)
    with pytest.raises(AssertionError, match=r"^invalid bounds"):
        assert_valid_bounds((0.0, value * (1 - 1e-6)), None, None, C)
    # a batch, and point clouds (the exact distances of the points)
    x, y = clouds(10, 7, 6, d=2)
    cloud = PointCloud(np.stack([x, x]), np.stack([y, y]), p=2)
    v = float(emd(None, None, cost_matrix(x, y, p=2)).cost)
    assert_valid_bounds((np.array([v, 0.0]), np.array([v, 10 * v])), None, None, cloud)
    with pytest.raises(AssertionError, match=r"^invalid bounds"):
        assert_valid_bounds((np.array([0.0, 1.01 * v]), np.array([v, 10 * v])), None, None, cloud)
