"""otmetrics.critic: Lipschitz critics, proven bounds, estimate_w1 and validate."""

from __future__ import annotations

import dataclasses
import inspect
import warnings

import numpy as np
import ot
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist

import otmetrics
from otmetrics import ConvergenceWarning
from otmetrics.critic import (
    METHODS,
    CriticEstimate,
    FrozenCritic,
    GroupSortCritic,
    MLPCritic,
    bjorck_orthonormalize,
    clip_weights_,
    critic_loss,
    dual_lower_bound,
    estimate_w1,
    gradient_penalty,
    group_sort,
    lipschitz_bound,
    make_critic,
    make_optimizer,
    spectral_norm_bound,
    torch_threads,
    validate,
)
from otmetrics.testing import sample_pairs

FAST = dict(steps=30, width=16, depth=2)  # small and quick: for properties, not accuracy




def distances(x, y):
    """Euclidean distances from differences (``ot.dist`` expands |x|^2 + |y|^2 - 2 x.y: 3e-8 at 0)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return cdist(x.reshape(len(x), -1), y.reshape(len(y), -1))


def exact_w1(x, y, a=None, b=None):
    """POT's network simplex on exact distances: an independent reference."""
    a = np.full(len(x), 1 / len(x)) if a is None else np.asarray(a, float) / np.sum(a)
    b = np.full(len(y), 1 / len(y)) if b is None else np.asarray(b, float) / np.sum(b)
    return float(ot.emd2(a, b, distances(x, y)))


def quiet(fn, *args, **kwargs):
    """Call ``fn`` ignoring ConvergenceWarning (short runs on purpose)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


# ----------------------------------------------------------------------------------------------
# Building blocks: GroupSort, Björck, spectral norms
# ----------------------------------------------------------------------------------------------
def test_group_sort_pairs_and_groups():
    h = torch.tensor([[1.0, 5.0, 3.0, 2.0]])
    assert group_sort(h).tolist() == [[3.0, 5.0, 1.0, 2.0]]
    h = torch.tensor([[1.0, 5.0, 3.0, 2.0, 0.0, 4.0]])
    assert group_sort(h, 3).tolist() == [[5.0, 3.0, 1.0, 4.0, 2.0, 0.0]]
    assert torch.equal(group_sort(h, 1), h)
    with pytest.raises(ValueError, match="group_size"):
        group_sort(h, 4)


@pytest.mark.parametrize("group_size", [2, 4])
def test_group_sort_is_one_lipschitz_and_norm_preserving(group_size):
    g = torch.Generator().manual_seed(0)
    u, v = torch.randn(200, 8, generator=g, dtype=torch.float64), torch.randn(200, 8, generator=g,
                                                                                dtype=torch.float64)
    gu, gv = group_sort(u, group_size), group_sort(v, group_size)
    assert torch.all((gu - gv).norm(dim=1) <= (u - v).norm(dim=1) + 1e-12)
    assert torch.allclose(gu.norm(dim=1), u.norm(dim=1))  # a permutation of the coordinates
    assert torch.equal(gu.sort(dim=1).values, u.sort(dim=1).values)


@pytest.mark.parametrize("shape", [(6, 6), (9, 3), (3, 9), (1, 7)])
def test_bjorck_orthonormalises(shape):
    w = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    q = bjorck_orthonormalize(w, 60, tol=1e-14)
    gram = q.T @ q if shape[0] >= shape[1] else q @ q.T
    assert torch.allclose(gram, torch.eye(min(shape), dtype=torch.float64), atol=1e-12)
    # it is the orthogonal polar factor: for a square matrix, U V^T of the SVD
    if shape[0] == shape[1]:
        u, _, vt = torch.linalg.svd(w)
        assert torch.allclose(q, u @ vt, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 3), st.integers(0, 2**31 - 1))
def test_bjorck_never_exceeds_norm_one(rows, cols, iters, seed):
    w = torch.randn(rows, cols, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    q = bjorck_orthonormalize(w * 100.0, iters)
    assert torch.linalg.matrix_norm(q, 2) <= 1.0 + 1e-12


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(1, 12), st.floats(1e-6, 1e6), st.integers(0, 2**31 - 1))
def test_spectral_norm_bound_is_an_upper_bound_and_tight(rows, cols, scale, seed):
    w = np.random.default_rng(seed).normal(size=(rows, cols)) * scale
    exact = np.linalg.norm(w, 2)
    bound = spectral_norm_bound(w)
    assert exact <= bound <= exact * (1 + 1e-10)
    # and the norm is attained: the top right singular vector is stretched by ~bound
    v = np.linalg.svd(w)[2][0]
    assert np.linalg.norm(w @ v) <= bound


def test_lipschitz_bound_is_the_product_and_bad_weights():
    layers = [(np.diag([3.0, 1.0]), np.zeros(2)), (np.array([[0.0, 2.0]]), np.zeros(1))]
    assert lipschitz_bound(layers) == pytest.approx(6.0, rel=1e-12) and lipschitz_bound(layers) >= 6.0
    with pytest.raises(ValueError, match="weight"):
        spectral_norm_bound(np.array([[np.nan]]))
    with pytest.raises(ValueError, match="weight"):
        spectral_norm_bound(np.zeros(3))


# ----------------------------------------------------------------------------------------------
# Networks and their frozen float64 form
# ----------------------------------------------------------------------------------------------
def test_groupsort_critic_is_one_lipschitz_with_normalisation():
    net = make_critic("groupsort", 3, width=16, depth=3, seed=0, dtype=torch.float64)
    net.set_normalisation(torch.tensor([5.0, -2.0, 1.0]), 7.5)
    frozen = FrozenCritic(net.affine_layers(), "groupsort")
    assert frozen.lipschitz_bound <= 1.0 + 1e-9
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 3, generator=g, dtype=torch.float64) * 10
    # the frozen layers compute the same function as the module (normalisation folded in)
    with torch.no_grad():
        assert torch.allclose(frozen.evaluate(x), net(x), atol=1e-6 * 10)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_trained_critic_respects_its_lipschitz_bound(method):
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(30, 2)) + 1.0
    est = quiet(estimate_w1, x, y, method=method, **FAST)
    u, v = rng.normal(size=(500, 2)) * 3, rng.normal(size=(500, 2)) * 3
    ratio = np.abs(est.critic(u) - est.critic(v)) / np.linalg.norm(u - v, axis=1)
    assert ratio.max() <= est.lipschitz_bound
    if method == "groupsort":
        assert est.lipschitz_bound <= 1.0 + 1e-9


@pytest.mark.parametrize("activation", ["groupsort", "relu"])
def test_forward_error_bound_covers_the_rounding(activation):
    """float64 values are within the reported error of an extended-precision evaluation."""
    rng = np.random.default_rng(7)
    sizes = [3, 32, 32, 32, 1]
    layers = [(rng.normal(size=(o, i)) * 3, rng.normal(size=o) * 100) for i, o in zip(sizes[:-1], sizes[1:])]
    critic = FrozenCritic([(torch.from_numpy(w), torch.from_numpy(b)) for w, b in layers], activation)
    x = rng.normal(size=(300, 3)) * 1e3
    values, err = critic.evaluate(x, with_error=True)
    h = x.astype(np.longdouble)
    for k, (w, b) in enumerate(layers):
        h = h @ w.astype(np.longdouble).T + b.astype(np.longdouble)
        if k < len(layers) - 1:
            if activation == "relu":
                h = np.maximum(h, 0)
            else:
                half = h.shape[1] // 2
                first, second = h[:, :half], h[:, half:]
                h = np.concatenate([np.maximum(first, second), np.minimum(first, second)], 1)
    reference = h[:, 0]
    actual = np.abs(values.numpy().astype(np.longdouble) - reference)
    assert np.all(actual <= err.numpy())
    assert np.all(err.numpy() < 1e-9 * np.abs(reference).max())  # and the bound is not vacuous


def test_frozen_critic_types_and_shapes():
    est = quiet(estimate_w1, np.arange(6.0), np.arange(6.0) + 2, **FAST)
    out = est.critic(np.array([[0.0], [1.0]]))
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (2,)
    t = est.critic(torch.tensor([[0.0], [1.0]], dtype=torch.float32))
    assert torch.is_tensor(t) and t.dtype == torch.float32
    assert est.critic(np.array([0.0, 1.0])).shape == (2,)  # 1-D input for a 1-D critic
    with pytest.raises(ValueError, match="x: expected points of dimension 1, got 3"):
        est.critic(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="x: coordinates must be finite"):
        est.critic(np.array([0.0, np.nan]))  # no NaN values out of NaN points
    with pytest.raises(ValueError, match="x: expected 1 or 2 dimension"):
        est.critic(np.zeros((2, 1, 1)))
    assert "FrozenCritic(1 -> 16 -> 16 -> 1" in repr(est.critic)


# ----------------------------------------------------------------------------------------------
# Certified dual values
# ----------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample_pairs(max_n=8, min_n=1, dim=st.integers(1, 3)), st.integers(0, 2**31 - 1),
       st.floats(1e-3, 1e6), st.sampled_from(["x", "y"]))
def test_any_potential_gives_a_lower_bound(pair, seed, magnitude, side):
    x, y = pair
    rng = np.random.default_rng(seed)
    values = rng.normal(size=len(x) if side == "x" else len(y)) * magnitude
    bound = dual_lower_bound(x, y, values, side=side)
    assert bound.value <= exact_w1(x, y) + 1e-12 * max(1.0, exact_w1(x, y))


@settings(max_examples=30, deadline=None)
@given(sample_pairs(max_n=9, min_n=1, dim=st.integers(1, 3)))
def test_optimal_potential_gives_the_exact_value(pair):
    x, y = pair
    a, b = np.full(len(x), 1 / len(x)), np.full(len(y), 1 / len(y))
    exact, log = ot.emd2(a, b, distances(x, y), log=True)
    bound = dual_lower_bound(x, y, log["u"]).value
    assert bound <= exact + 1e-12 * max(1.0, exact)
    assert bound >= exact - 1e-9 * max(1.0, exact)


def test_dual_lower_bound_weighted_and_worked_example():
    # moving boxes: 3, 1, 2 boxes at 1, 2, 3 to 1, 1, 2, 2 boxes at 7, 8, 9, 10: cost 42 (per box: 7)
    x, y = np.array([1.0, 2.0, 3.0]), np.array([7.0, 8.0, 9.0, 10.0])
    a, b = np.array([3, 1, 2]) / 6, np.array([1, 1, 2, 2]) / 6
    bound = dual_lower_bound(x, y, -x, a=a, b=b)  # f(x) = -x is an optimal 1-D potential
    assert bound.value == pytest.approx(7.0, rel=1e-12) and bound.value <= 7.0
    with pytest.raises(ValueError, match="side"):
        dual_lower_bound(x, y, -x, side="z")
    with pytest.raises(ValueError, match="values"):
        dual_lower_bound(x, y, np.zeros(4))
    with pytest.raises(ValueError, match="values"):
        dual_lower_bound(x, y, [0.0, np.nan, 1.0])


def test_dual_lower_bound_normalises_the_weights():
    """Unnormalised weights are read as the probability measures a / sum(a), b / sum(b)."""
    x, y = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])  # exact W1 = 1 for uniform weights
    # the reviewer's case: mass 10 against mass 1 once certified 95.5 > W1 = 1
    bound = dual_lower_bound(x, y, [10.0, 10.0], a=[5.0, 5.0], b=[0.5, 0.5]).value
    assert bound <= 1.0
    assert bound == dual_lower_bound(x, y, [10.0, 10.0]).value
    # masses 3/4, 1/4 against 1/4, 3/4: W1 = 3/4 (on [0, 1)) + 3/4 (on [1, 2)) = 1.5, and the
    # optimal potential -x certifies it from the unnormalised weights
    bound = dual_lower_bound(x, y, [0.0, -1.0], a=[30.0, 10.0], b=[7.0, 21.0]).value
    assert bound <= 1.5 and bound == pytest.approx(1.5, rel=1e-12)


@pytest.mark.parametrize("kwargs, match", [
    (dict(a=[-1.0, 2.0]), "a: weights must be non-negative"),
    (dict(b=[0.5, -0.5]), "b: weights must be non-negative"),
    (dict(a=[0.0, 0.0]), "a: total mass must be positive"),
    (dict(b=[np.nan, 1.0]), "b: weights must be finite"),
    (dict(a=[np.inf, 1.0]), "a: weights must be finite"),
    (dict(a=[1.0, 1.0, 1.0]), "a: expected 2 weights"),
    (dict(b=np.ones((1, 2))), "b: expected 1 dimension"),
    (dict(a=["x", "y"]), "a: expected numeric values"),
    (dict(chunk_size=0), "chunk_size"),
    (dict(y=np.zeros((2, 2))), "y: expected points of dimension 1, got 2"),
    (dict(x=np.zeros((0, 1))), "x: must not be empty"),
    (dict(values=np.zeros((2, 1))), "values: expected 1 dimension"),
    (dict(values=np.zeros(3)), "values: expected 2 values"),
])
def test_dual_lower_bound_bad_input(kwargs, match):
    args = dict(x=np.array([[0.0], [1.0]]), y=np.array([[1.0], [2.0]]), values=np.zeros(2))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        dual_lower_bound(args.pop("x"), args.pop("y"), args.pop("values"), **args)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sample_pairs(max_n=8, min_n=1, dim=st.integers(1, 3)), st.integers(0, 2**31 - 1),
       st.sampled_from([1e-6, 1.0, 1e6]), st.sampled_from(["x", "y"]))
def test_any_potential_and_any_weights_give_a_lower_bound(pair, seed, mass, side):
    """Arbitrary valid weights (any total mass, some zero): the bound stays below the exact value."""
    x, y = pair
    rng = np.random.default_rng(seed)
    a, b = rng.random(len(x)) * mass, rng.random(len(y)) * mass * rng.uniform(0.1, 10)
    a[rng.random(len(x)) < 0.3] = 0.0
    b[rng.random(len(y)) < 0.3] = 0.0
    a[rng.integers(len(x))] += mass  # a positive total
    b[rng.integers(len(y))] += mass
    exact = exact_w1(x, y, a, b)
    values = rng.normal(size=len(x) if side == "x" else len(y)) * rng.choice([1e-2, 1.0, 1e3])
    bound = dual_lower_bound(x, y, values, a=a, b=b, side=side).value
    assert bound <= exact + 1e-12 * exact + 1e-300
    # and the weights are used: the optimal potential of the weighted problem certifies its value
    pa, pb = a / a.sum(), b / b.sum()
    cost, log = ot.emd2(pa, pb, distances(x, y), log=True)
    tight = dual_lower_bound(x, y, log["u"], a=a, b=b).value
    assert exact - 1e-9 * max(1.0, exact) <= tight <= exact + 1e-12 * exact + 1e-300


def test_dual_lower_bound_survives_rounding_at_large_offsets():
    """Points far from the origin with unit separations: the bound stays below the exact value."""
    rng = np.random.default_rng(0)
    x = 1e8 + rng.normal(size=(20, 2))
    y = x + np.array([0.3, 0.4])  # exact W1 = 0.5 (a translation)
    values = -(x @ np.array([0.6, 0.8]))  # the optimal potential, huge values ~ -1.4e8
    bound = dual_lower_bound(x, y, values).value
    assert bound <= 0.5 and bound >= 0.5 - 1e-5


# ----------------------------------------------------------------------------------------------
# estimate_w1: the certified bound holds, for every method
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", sorted(METHODS))
@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pair=sample_pairs(max_n=10, min_n=2, dim=st.integers(1, 3)), seed=st.integers(0, 1000),
       batch_size=st.sampled_from([None, 8]))
def test_certified_never_exceeds_exact(method, pair, seed, batch_size):
    x, y = pair
    est = quiet(estimate_w1, x, y, method=method, seed=seed, steps=5, width=8, depth=2, batch_size=batch_size)
    exact = exact_w1(x, y)
    assert est.certified <= exact + 1e-4
    assert est.certified <= exact + 1e-12 * max(1.0, exact)  # in fact to rounding
    assert 0.0 <= est.certified_lipschitz <= est.certified and est.certified_c_transform <= est.certified


def test_c_transform_dominates_the_lipschitz_bound_for_groupsort():
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(60, 2)), rng.normal(size=(50, 2)) * 0.5 + 1
    est = quiet(estimate_w1, x, y, **FAST)
    assert est.certified_c_transform >= est.certified_lipschitz - 1e-12
    assert est.certified_lipschitz <= est.value / est.lipschitz_bound + 1e-12


def test_default_critic_reaches_the_exact_value_on_a_translation():
    """Translating a cloud by t moves it exactly |t|; the default critic gets >= 0.99 of it."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(150, 2))
    t = np.array([0.5, -0.3])
    report = validate(x, x + t, steps=150)
    assert report.exact == pytest.approx(np.linalg.norm(t), rel=1e-9)
    assert report.bound_held
    assert report.certified_ratio >= 0.99 and report.ratio >= 0.99
    assert report.certified_ratio <= 1 + 1e-12


def gaussians_1d(n, rng):
    return rng.normal(0.0, 1.0, (n, 1)), rng.normal(1.0, 2.0, (n, 1))


def parallel_lines(n, rng, theta=1.0):
    """{0} x U[0, 1] against {theta} x U[0, 1]: W1 = |theta| for the distributions."""
    return (np.column_stack([np.zeros(n), rng.uniform(size=n)]),
            np.column_stack([np.full(n, theta), rng.uniform(size=n)]))


def ring_vs_gaussian(n, rng):
    """A ring of 8 Gaussians (radius 2, std 0.1) against N(0, 0.5^2 I): the multimodal pair."""
    angles = 2 * np.pi * rng.integers(0, 8, n) / 8
    ring = 2.0 * np.column_stack([np.cos(angles), np.sin(angles)]) + 0.1 * rng.normal(size=(n, 2))
    return ring, 0.5 * rng.normal(size=(n, 2))


@pytest.mark.parametrize("case, threshold", [(gaussians_1d, 0.99), (parallel_lines, 0.99),
                                             (ring_vs_gaussian, 0.95)])
def test_default_critic_accuracy_targets(case, threshold):
    """The issue's targets at n = 500 per side: >= 0.99 of the exact EMD on the simple pairs, >= 0.95
    on the ring. Asserted on the critic's own value and on what it proves by itself (value / L):
    the c-transform alone (f = 0) already certifies 0.9995 of the parallel lines and 0.96 of the
    ring, so ``certified`` would pass with any critic. 150 of the default 500 steps (1.5-2.5 CPU s
    each); the benchmark runs the full default."""
    x, y = case(500, np.random.default_rng(0))
    report = validate(x, y, steps=150)
    est = report.estimate
    assert report.bound_held and est.converged and est.method == "groupsort"
    assert report.ratio >= threshold
    assert est.certified_lipschitz / report.exact >= threshold
    assert report.certified_ratio <= 1 + 1e-12


@pytest.mark.parametrize("unit, offset", [(1e-12, 0.0), (1.0, 1e9), (1e9, -1e12)])
def test_units_and_offsets_do_not_matter(unit, offset):
    """Tiny units (Adam's eps) and large offsets (a float32 cast) would break a naive trainer."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 2))
    t = np.array([0.6, 0.8])
    est = estimate_w1(unit * x + offset, unit * (x + t) + offset, steps=100)
    exact = exact_w1(unit * x + offset, unit * (x + t) + offset)
    assert exact == pytest.approx(unit, rel=1e-6)
    assert est.value >= 0.99 * exact and 0.99 * exact <= est.certified <= exact * (1 + 1e-12)


def test_clipping_value_is_not_w1_but_its_certificate_is_a_bound():
    """The clipped critic's objective is tiny (K-Lipschitz, K unknown); the c-transform fixes it."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(80, 1))
    report = quiet(validate, x, x + 2.0, method="clipping", steps=200)
    assert report.ratio < 0.1
    assert report.bound_held and report.certified_ratio > 0.5
    assert report.estimate.lipschitz_bound < 1.0


def test_weights_are_used():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(20, 2)) + [2.0, 0.0]
    a, b = rng.random(30), rng.random(20)
    est = quiet(estimate_w1, x, y, a=a, b=b, **FAST)
    exact = exact_w1(x, y, a, b)
    assert est.certified <= exact + 1e-12
    report = validate(x, y, a=a, b=b, estimate=est)
    assert report.exact == pytest.approx(exact, rel=1e-9)
    # weighted minibatches are drawn in proportion to the weights
    est_mb = quiet(estimate_w1, x, y, a=a, b=b, batch_size=16, **FAST)
    assert est_mb.certified <= exact + 1e-12


def test_result_fields_history_and_heldout():
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(50, 2)), rng.normal(size=(40, 2)) + 1
    est = quiet(estimate_w1, x, y, x_test=rng.normal(size=(30, 2)), y_test=rng.normal(size=(30, 2)) + 1,
                method="gp", log_every=7, **FAST)
    assert isinstance(est, CriticEstimate) and est.method == "gp" and est.n_iter == 30
    h = est.history
    assert h.step.tolist() == [7, 14, 21, 28, 30]
    assert h.objective.shape == h.value.shape == h.penalty.shape == h.lr.shape == (5,)
    assert np.all(h.penalty >= 0) and np.any(h.penalty > 0)
    assert np.all(h.lr == METHODS["gp"].lr)
    assert isinstance(est.heldout_value, float) and np.isfinite(est.heldout_value)
    assert est.value == pytest.approx(float(est.critic(x).mean() - est.critic(y).mean()), rel=1e-12)
    for name in ("value", "certified", "lipschitz_bound", "certified_lipschitz", "certified_c_transform"):
        assert isinstance(getattr(est, name), float)
    with pytest.raises(AttributeError):
        est.value = 0.0  # frozen


def test_groupsort_learning_rate_is_annealed():
    est = estimate_w1(np.arange(5.0), np.arange(5.0) + 3, steps=40, log_every=10)
    assert est.history.lr[0] > est.history.lr[-1] > 0
    assert est.converged


def test_seed_reproducibility():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) + 1
    first = quiet(estimate_w1, x, y, seed=3, method="clipping", **FAST)
    again = quiet(estimate_w1, x, y, seed=3, method="clipping", **FAST)
    other = quiet(estimate_w1, x, y, seed=4, method="clipping", **FAST)
    assert first.value == again.value and first.certified == again.certified
    assert first.value != other.value
    state = torch.get_rng_state()
    quiet(estimate_w1, x, y, seed=3, **FAST)
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is untouched


def test_convergence_warning_on_a_short_run():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(40, 2)), rng.normal(size=(40, 2)) + 3
    with pytest.warns(ConvergenceWarning, match="increase steps") as caught:
        est = estimate_w1(x, y, steps=4, width=16, depth=1)
    assert caught[0].filename == __file__  # the warning points at the caller's line
    assert not est.converged
    assert est.certified <= exact_w1(x, y) + 1e-12


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    with torch_threads(2):
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError, match="inside"):
        with torch_threads(3):
            raise RuntimeError("inside")
    assert torch.get_num_threads() == before  # restored on an exception too
    with torch_threads(None):
        assert torch.get_num_threads() == before
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="n_threads"):
            with torch_threads(bad):
                pass


def test_demo_restores_the_thread_count(monkeypatch):
    """otmetrics.demo.main runs on one thread and gives the caller its setting back (also on errors)."""
    from otmetrics import demo

    seen = []

    def run(args):
        seen.append(torch.get_num_threads())
        raise RuntimeError("stop")

    monkeypatch.setattr(demo, "_run", run)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="stop"):
            demo.main(["--quick"])
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_n_threads_is_restored():
    before = torch.get_num_threads()
    quiet(estimate_w1, np.arange(4.0), np.arange(4.0) + 1, n_threads=2, steps=1, depth=0, certify=False)
    assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="n_threads"):
        estimate_w1(np.arange(4.0), np.arange(4.0) + 1, n_threads=0)


def test_num_threads_is_a_deprecated_spelling_of_n_threads():
    """The old keyword keeps working for one release: a DeprecationWarning, the same result."""
    x, y = np.arange(6.0), np.arange(6.0) + 2
    new = quiet(estimate_w1, x, y, n_threads=1, **FAST)
    message = r"estimate_w1\(num_threads=\.\.\.\) is deprecated; use n_threads=\.\.\. \(removed in otmetrics"
    with pytest.warns(DeprecationWarning, match=message):
        old = quiet(estimate_w1, x, y, num_threads=1, **FAST)
    assert old.value == new.value and old.certified == new.certified
    assert np.array_equal(old.history.value, new.history.value)
    with pytest.warns(DeprecationWarning, match=r"validate\(num_threads=\.\.\.\) is deprecated"):
        report = quiet(validate, x, y, num_threads=1, **FAST)
    assert report.estimate.value == new.value
    before = torch.get_num_threads()
    with pytest.warns(DeprecationWarning, match=r"torch_threads\(num_threads=\.\.\.\) is deprecated"):
        with torch_threads(num_threads=2):
            assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("call", [
    lambda: estimate_w1(np.arange(4.0), np.arange(4.0) + 1, n_threads=1, num_threads=1, steps=1),
    lambda: validate(np.arange(4.0), np.arange(4.0) + 1, n_threads=1, num_threads=1, steps=1),
    lambda: torch_threads(n_threads=1, num_threads=1).__enter__(),
])
def test_n_threads_and_num_threads_together_is_an_error(call):
    before = torch.get_num_threads()
    with pytest.raises(ValueError, match="num_threads: deprecated alias of n_threads; pass only n_threads"):
        call()
    assert torch.get_num_threads() == before


def test_certify_false_uses_the_lipschitz_bound_only():
    x = np.random.default_rng(9).normal(size=(40, 1))
    est = quiet(estimate_w1, x, x + 1.0, certify=False, **FAST)
    assert est.certified_c_transform == 0.0 and est.certified == est.certified_lipschitz > 0


def test_torch_input():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(40, 2, generator=g)
    y = x + torch.tensor([1.0, 0.0])
    est = quiet(estimate_w1, x, y, **FAST)
    exact = exact_w1(x.double().numpy(), y.double().numpy())
    assert est.certified <= exact + 1e-12 and est.certified > 0.9
    assert est.critic(x).dtype == torch.float32
    report = validate(x, y, estimate=est)
    assert report.exact == pytest.approx(1.0, rel=1e-6)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_input():
    x = torch.randn(300, 2, device="cuda")
    y = x + torch.tensor([0.6, 0.8], device="cuda")
    est = estimate_w1(x, y, steps=200)
    assert est.critic.device.type == "cuda"
    assert est.critic(x).device.type == "cuda"
    exact = exact_w1(x.double().cpu().numpy(), y.double().cpu().numpy())
    assert est.certified <= exact + 1e-12 and est.certified >= 0.99 * exact


# ----------------------------------------------------------------------------------------------
# validate
# ----------------------------------------------------------------------------------------------
def test_validate_fields_and_identical_samples():
    x = np.random.default_rng(10).normal(size=(20, 2))
    report = quiet(validate, x, x.copy(), **FAST)
    assert report.exact == 0.0 and report.ratio is None and report.certified_ratio is None
    assert report.bound_held and report.estimate.certified <= 1e-12
    assert "bound held: True" in report.summary()
    with pytest.raises(ValueError, match="options"):
        validate(x, x, estimate=report.estimate, steps=3)
    with pytest.raises(ValueError, match="estimate"):
        validate(x, x, estimate=1.0)


def test_bound_held_is_relative_in_every_unit():
    """A certified value 500 times the exact one must not 'hold' because the data are in 1e-12 units."""
    rng = np.random.default_rng(12)
    x = rng.normal(size=(40, 2)) * 1e-12
    y = x + np.array([0.6e-12, 0.8e-12])  # exact W1 = 1e-12
    est = quiet(estimate_w1, x, y, **FAST)
    report = validate(x, y, estimate=est)
    assert report.exact == pytest.approx(1e-12, rel=1e-9) and report.bound_held
    fake = dataclasses.replace(est, certified=5e-10)
    assert not validate(x, y, estimate=fake).bound_held
    above = dataclasses.replace(est, certified=report.exact * (1 + 1e-6))
    assert not validate(x, y, estimate=above).bound_held
    # exact == 0: only a certified value of 0 holds
    same = quiet(estimate_w1, x, x[::-1].copy(), **FAST)
    zero = validate(x, x[::-1].copy(), estimate=same)
    assert zero.exact == 0.0 and zero.bound_held and same.certified == 0.0
    assert not validate(x, x[::-1].copy(), estimate=dataclasses.replace(same, certified=1e-300)).bound_held


def test_validate_checks_the_weights_and_refuses_an_estimate_of_other_samples():
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(20, 2)) + 1.0
    a = rng.random(30)
    est = quiet(estimate_w1, x, y, a=a, **FAST)
    # the same measures: permuted samples, rescaled weights
    order = rng.permutation(30)
    same = validate(x[order], y[::-1], a=3.0 * a[order], estimate=est)
    assert same.exact == pytest.approx(exact_w1(x, y, a), rel=1e-9) and same.bound_held
    with pytest.raises(ValueError, match="a: weights must be non-negative"):
        validate(x, y, a=-a, estimate=est)
    with pytest.raises(ValueError, match="b: expected 20 weights"):
        validate(x, y, a=a, b=np.ones(3), estimate=est)
    with pytest.raises(ValueError, match="a: total mass must be positive"):
        validate(x, y, a=np.zeros(30), estimate=est)
    with pytest.raises(ValueError, match="estimate: its value"):
        validate(x, y, estimate=est)  # uniform weights: another measure
    with pytest.raises(ValueError, match="estimate: its value"):
        validate(x + 0.5, y, a=a, estimate=est)  # other samples of the same sizes
    with pytest.raises(ValueError, match="estimate: computed on 30 and 20 samples, got 29 and 20"):
        validate(x[1:], y, a=a[1:], estimate=est)
    with pytest.raises(ValueError, match="estimate: its critic takes points of dimension 2"):
        validate(x[:, :1], y[:, :1], a=a, estimate=est)
    assert est.n_samples == (30, 20)


def test_validate_uses_the_package_exact_solver():
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(25, 3)), rng.normal(size=(35, 3))
    report = quiet(validate, x, y, **FAST)
    assert report.exact == pytest.approx(otmetrics.wasserstein(x, y, p=1), rel=1e-12)
    assert report.ratio == pytest.approx(report.estimate.value / report.exact)


# ----------------------------------------------------------------------------------------------
# Building blocks of a WGAN loop
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, match", [
    (lambda: make_optimizer("gp", [torch.zeros(1, requires_grad=True)], lr=-1.0), "lr"),
    (lambda: clip_weights_(make_critic("gp", 2), -0.1), "clip_value"),
    (lambda: critic_loss(make_critic("gp", 2), torch.zeros(2, 2), torch.ones(2, 2), gp_weight=-1.0),
     "gp_weight"),
    (lambda: group_sort(torch.zeros(1, 4), 0), "group_size"),
    (lambda: make_critic("gp", 0), "dim"),
    (lambda: make_critic("gp", 2.0), "dim"),
    (lambda: make_critic("groupsort", 2, depth=-1), "depth"),
    (lambda: make_critic("groupsort", 2, group_size=0), "group_size"),
])
def test_building_blocks_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_public_names_are_documented():
    """numpydoc sections of the public API (the examples themselves run under --doctest-modules)."""
    import otmetrics.critic as critic

    for name in critic.__all__:
        if name == "METHODS":
            continue
        doc = inspect.getdoc(getattr(critic, name)) or ""
        assert "Examples\n--------" in doc, name
    for name in ("make_optimizer", "critic_loss", "clip_weights_", "lipschitz_bound", "group_sort",
                 "dual_lower_bound", "estimate_w1", "torch_threads"):
        doc = inspect.getdoc(getattr(critic, name))
        for section in ("Parameters", "Notes"):
            assert f"{section}\n----" in doc, (name, section)
    for name in ("make_optimizer", "critic_loss", "clip_weights_", "lipschitz_bound", "group_sort"):
        assert "References\n----" in inspect.getdoc(getattr(critic, name)), name


def test_clip_weights_and_optimizers():
    net = make_critic("clipping", 2, seed=0)
    assert max(float(p.detach().abs().max()) for p in net.parameters()) <= METHODS["clipping"].clip_value
    with torch.no_grad():
        next(net.parameters()).fill_(5.0)
    clip_weights_(net, 0.02)
    assert max(float(p.detach().abs().max()) for p in net.parameters()) == pytest.approx(0.02)
    opt = make_optimizer("gp", net.parameters())
    assert isinstance(opt, torch.optim.Adam)
    assert opt.defaults["betas"] == (0.0, 0.9) and opt.defaults["lr"] == 1e-4
    assert make_optimizer("clipping", net.parameters()).defaults["lr"] == 5e-5
    assert isinstance(make_critic("groupsort", 2), GroupSortCritic)
    assert isinstance(make_critic("gp", 2), MLPCritic)


def test_gradient_penalty_is_zero_for_a_unit_slope_linear_critic():
    net = MLPCritic(2, width=4, depth=0).double()
    with torch.no_grad():
        net.linears[0].weight.copy_(torch.tensor([[0.6, 0.8]]))
    real, fake = torch.randn(16, 2, dtype=torch.float64), torch.randn(16, 2, dtype=torch.float64)
    assert float(gradient_penalty(net, real, fake).detach()) == pytest.approx(0.0, abs=1e-12)
    with torch.no_grad():
        net.linears[0].weight.mul_(2.0)  # slope 2: penalty (2 - 1)^2 = 1
    assert float(gradient_penalty(net, real, fake).detach()) == pytest.approx(1.0)
    loss, objective, penalty = critic_loss(net, real, fake, gp_weight=10.0)
    assert float(penalty) == pytest.approx(1.0)
    assert float(loss.detach()) == pytest.approx(-float(objective) + 10.0)


# ----------------------------------------------------------------------------------------------
# Bad input
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    (dict(y=np.zeros((5, 3))), "y: points must have the dimension of x"),
    (dict(x=np.zeros((1, 2))), "x: need at least 2 samples"),
    (dict(y=np.zeros((1, 2))), "y: need at least 2 samples"),
    (dict(x=np.array([[0.0, np.nan], [1.0, 1.0]])), "x: coordinates must be finite"),
    (dict(y=np.array([[0.0, np.inf], [1.0, 1.0]])), "y: coordinates must be finite"),
    (dict(x=np.zeros((2, 2, 2))), "x: expected 1 or 2 dimension"),
    (dict(method="sinkhorn"), "method: must be one of"),
    (dict(steps=0), "steps"),
    (dict(steps=2.5), "steps"),
    (dict(batch_size=0), "batch_size"),
    (dict(a=-np.ones(4)), "a: weights must be non-negative"),
    (dict(b=np.ones(3)), "b: expected 4 weights"),
    (dict(x_test=np.zeros((3, 2))), "y_test: give both"),
    (dict(x_test=np.zeros((3, 1)), y_test=np.zeros((3, 2))), "x_test: expected points of dimension 2"),
    (dict(lr=-1.0), "lr"),
    (dict(seed=-1), "seed"),
    (dict(width=0), "width"),
    (dict(depth=-1), "depth"),
    (dict(width=15), "group_size: must divide"),
    (dict(dtype=torch.int32), "dtype"),
    (dict(certify="yes"), "certify"),
    (dict(tol=float("nan")), "tol"),
    (dict(clip_value=0.1), "clip_value: only used by method='clipping'"),
    (dict(method="clipping", clip_value=-0.1), "clip_value"),
    (dict(gp_weight=1.0, method="clipping"), "gp_weight: only used by method='gp'"),
])
def test_bad_input(kwargs, match):
    args = dict(x=np.zeros((4, 2)), y=np.ones((4, 2)))
    args.update(kwargs)
    x, y = args.pop("x"), args.pop("y")
    with pytest.raises(ValueError, match=match):
        estimate_w1(x, y, steps=args.pop("steps", 2), **args)


def test_bad_input_for_validate_is_checked_before_training():
    with pytest.raises(ValueError, match="y: points must have the dimension of x"):
        validate(np.zeros((4, 2)), np.zeros((4, 1)))


# ----------------------------------------------------------------------------------------------
# Module layout: one concept per module, the old paths still work
# ----------------------------------------------------------------------------------------------
# the public names of the critic's modules before the split, and the module that holds each now
OLD_PATHS = {
    "bounds": {"spectral_norm_bound": "lipschitz", "lipschitz_bound": "lipschitz",
               "FrozenCritic": "lipschitz", "dual_lower_bound": "dual", "DualBound": "dual",
               "best_scale": "dual", "as_float64": "samples"},
    "estimate": {"estimate_w1": "estimate", "CriticEstimate": "estimate", "CriticHistory": "loop",
                 "validate": "validation", "CriticValidation": "validation"},
    "training": {name: "training" for name in ("METHODS", "MethodConfig", "method_config", "make_critic",
                                               "make_optimizer", "clip_weights_", "gradient_penalty",
                                               "critic_loss")},
    "networks": {name: "networks" for name in ("GroupSortCritic", "MLPCritic", "group_sort",
                                               "bjorck_orthonormalize", "ACTIVATIONS")},
    "threads": {"torch_threads": "threads"},
}
# what an old module provides only for old imports, with a DeprecationWarning naming the new module
DEPRECATED_PATHS = {("bounds", name) for name in OLD_PATHS["bounds"]} | {
    ("estimate", "validate"), ("estimate", "CriticValidation")}


@pytest.mark.parametrize("old", sorted(OLD_PATHS))
def test_old_module_paths_still_provide_their_names(old):
    import importlib

    import otmetrics.critic as critic

    module = importlib.import_module(f"otmetrics.critic.{old}")
    for name, home in OLD_PATHS[old].items():
        expected = getattr(importlib.import_module(f"otmetrics.critic.{home}"), name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert getattr(module, name) is expected, (old, name)
        moved = [str(w.message) for w in caught if issubclass(w.category, DeprecationWarning)]
        if (old, name) in DEPRECATED_PATHS:
            assert len(moved) == 1 and f"otmetrics.critic.{home}" in moved[0], (old, name, moved)
        else:
            assert not moved, (old, name, moved)
        if name in critic.__all__:
            assert getattr(critic, name) is expected
    with pytest.raises(AttributeError):
        getattr(module, "no_such_name")


def test_deprecated_module_paths_work_with_from_imports():
    with pytest.warns(DeprecationWarning, match="otmetrics.critic.bounds is deprecated"):
        from otmetrics.critic.bounds import dual_lower_bound as old_dual_lower_bound
    assert old_dual_lower_bound is dual_lower_bound
    with pytest.warns(DeprecationWarning, match="otmetrics.critic.estimate.validate moved"):
        from otmetrics.critic.estimate import validate as old_validate
    assert old_validate is validate


def test_no_private_name_crosses_a_module_border():
    """Modules of otmetrics.critic import only public names (what two modules share is public)."""
    import ast
    from pathlib import Path

    import otmetrics.critic as critic

    for path in sorted(Path(critic.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                private = [alias.name for alias in node.names if alias.name.startswith("_")]
                private += [node.module] if node.module and any(
                    part.startswith("_") and part not in ("_core", "__future__")
                    for part in node.module.split(".")) else []
                assert not private, f"{path.name}: imports {private} from {node.module}"
