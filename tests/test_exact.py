"""Exact EMD: optimality proven by duality, agreement of two solvers and with POT, batches, torch."""

import warnings

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import otmetrics
from otmetrics import ConvergenceWarning, PointCloud, c_transform, emd, wasserstein, wasserstein_1d
from otmetrics.testing import (
    assert_complementary_slackness,
    assert_dual_feasible,
    assert_marginals,
    assert_metric_axioms,
    assert_optimal,
    assert_strong_duality,
    assert_weak_duality,
    ot_problems,
    problem_batches,
    sample_pairs,
)

rng = np.random.default_rng(12345)


def _gaussian_problem(n, m, d=2, seed=0):
    r = np.random.default_rng(seed)
    x, y = r.normal(size=(n, d)), r.normal(size=(m, d)) + 1.0
    a, b = r.random(n) + 0.1, r.random(m) + 0.1
    return a / a.sum(), b / b.sum(), ot.dist(x, y, metric="euclidean")


# ---------------------------------------------------------------------------------------------
# Duality, as properties
# ---------------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(ot_problems(max_n=9, max_m=9, p=1))
def test_strong_duality_and_optimality_certificate(problem):
    res = emd(problem.a, problem.b, problem.cost)
    assert res.converged and res.certificate.optimal and res.status == "optimal"
    assert_optimal(res, problem.a, problem.b, problem.cost)
    assert res.certificate.relative_gap <= 1e-9


@settings(max_examples=40, deadline=None)
@given(ot_problems(max_n=8, max_m=8, p=1), st.integers(0, 2**32 - 1))
def test_weak_duality_for_any_c_transformed_potentials(problem, seed):
    res = emd(problem.a, problem.b, problem.cost)
    u = np.random.default_rng(seed).normal(scale=10.0, size=problem.a.shape)
    v = c_transform(problem.cost, u)
    assert_weak_duality(problem.a, problem.b, problem.cost, u, v, res.cost)
    # and the optimal potentials attain the primal: the bound is tight
    assert_strong_duality(problem.a, problem.b, problem.cost, res.plan, *res.potentials)


@settings(max_examples=30, deadline=None)
@given(ot_problems(max_n=8, max_m=8, kind="matrix", p=1))
def test_highs_agrees_with_network_simplex(problem):
    ns = emd(problem.a, problem.b, problem.cost)
    hi = emd(problem.a, problem.b, problem.cost, backend="highs")
    assert hi.converged and hi.backend == "highs"
    assert_optimal(hi, problem.a, problem.b, problem.cost)
    scale = max(abs(ns.cost), problem.a.sum() * problem.cost.max(), 1e-300)
    assert abs(hi.cost - ns.cost) <= 1e-9 * scale


def test_highs_agrees_on_larger_problems():
    for seed in range(3):
        a, b, C = _gaussian_problem(40, 33, seed=seed)
        ns, hi = emd(a, b, C), emd(a, b, C, backend="highs")
        assert hi.converged and ns.converged
        assert abs(hi.cost - ns.cost) <= 1e-9 * ns.cost


@settings(max_examples=30, deadline=None)
@given(ot_problems(max_n=8, max_m=8, p=1))
def test_matches_pot(problem):
    res = emd(problem.a, problem.b, problem.cost)
    ref = ot.emd2(problem.a, problem.b, problem.cost)
    assert res.cost == pytest.approx(ref, rel=1e-12, abs=1e-12 * problem.cost.max())


def test_zero_weights_get_feasible_potentials_everywhere():
    a, b, C = _gaussian_problem(12, 10, seed=3)
    a[[0, 5]] = 0
    b[[2]] = 0
    a, b = a / a.sum(), b / b.sum()
    res = emd(a, b, C)
    assert res.converged
    assert_dual_feasible(C, *res.potentials)
    assert_optimal(res, a, b, C)
    assert np.all(res.plan[[0, 5]] == 0) and np.all(res.plan[:, 2] == 0)


def test_iteration_cap_is_reported_never_optimal():
    a, b, C = _gaussian_problem(150, 150, seed=1)
    with pytest.warns(ConvergenceWarning, match="not certified optimal"):
        res = emd(a, b, C, max_iter=50)
    assert not res.converged
    assert res.status == "max_iter_reached"
    assert not res.certificate.optimal
    # what is wrong is measured, not assumed
    assert res.certificate.min_reduced_cost < 0 or res.certificate.marginal_error_a > 1e-9


def test_certificate_rejects_a_suboptimal_plan():
    from otmetrics import certify

    C = np.array([[0.0, 1.0], [1.0, 0.0]])
    a = b = np.array([0.5, 0.5])
    bad_plan = np.array([[0.0, 0.5], [0.5, 0.0]])
    cert = certify(a, b, C, bad_plan, np.zeros(2), np.zeros(2))
    assert not cert.optimal and cert.duality_gap == pytest.approx(1.0)
    with pytest.raises(AssertionError, match="complementary slackness"):
        assert_complementary_slackness(bad_plan, C, np.zeros(2), np.zeros(2))


# ---------------------------------------------------------------------------------------------
# Worked examples
# ---------------------------------------------------------------------------------------------
def test_moving_boxes():
    # 3, 1, 2 boxes at positions 1, 2, 3 move to 7, 8, 9, 10 (1, 1, 2, 2 boxes); cost = boxes x distance
    src, dst = np.array([1.0, 2.0, 3.0]), np.array([7.0, 8.0, 9.0, 10.0])
    a, b = np.array([3.0, 1.0, 2.0]), np.array([1.0, 1.0, 2.0, 2.0])
    C = np.abs(src[:, None] - dst[None, :])
    res = emd(a, b, C)
    assert res.cost == 42.0 and res.converged
    assert_optimal(res, a, b, C)
    # the two plans of the lecture notes are both feasible and both optimal (every box moves right)
    gamma1 = np.array([[1, 0, 0, 2], [0, 1, 0, 0], [0, 0, 2, 0]], dtype=float)
    gamma2 = np.array([[1, 0, 0, 2], [0, 0, 1, 0], [0, 1, 1, 0]], dtype=float)
    for gamma in (gamma1, gamma2):
        assert_marginals(gamma, a, b)
        assert (gamma * C).sum() == 42.0
    # moving box #1 from position 1 to 7 costs 6
    assert C[0, 0] == 6.0
    # the same with the HiGHS backend and through the 1-D closed form (W1 of the normalised measures)
    assert emd(a, b, C, backend="highs").cost == pytest.approx(42.0, rel=1e-12)
    assert wasserstein_1d(src, dst, a, b, p=1) * a.sum() == pytest.approx(42.0, rel=1e-12)


@pytest.mark.parametrize("theta", [-2.5, -0.1, 0.3, 1.0, 7.0])
def test_parallel_lines(theta):
    # P_0 = (0, Z), P_theta = (theta, Z), Z ~ U[0, 1]: W1 = |theta|
    z = np.random.default_rng(0).random(64)
    p0 = np.stack([np.zeros_like(z), z], 1)
    pt = np.stack([np.full_like(z, theta), z], 1)
    assert wasserstein(p0, pt, p=1) == pytest.approx(abs(theta), rel=1e-12)
    assert wasserstein(p0, pt, p=2) == pytest.approx(abs(theta), rel=1e-12)


# ---------------------------------------------------------------------------------------------
# Wasserstein on samples: metric axioms, invariances, 1-D agreement
# ---------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(st.integers(1, 3), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_w1_metric_axioms(dim, n, seed):
    r = np.random.default_rng(seed)
    clouds = [r.normal(size=(r.integers(1, 9), dim)) * r.uniform(0.1, 5) for _ in range(3)]
    clouds.append(clouds[0].copy())
    assert_metric_axioms(lambda u, v: wasserstein(u, v, p=1), clouds)


@settings(max_examples=25, deadline=None)
@given(sample_pairs(max_n=8), st.floats(-5, 5), st.floats(-5, 5), st.floats(-5, 5))
def test_translation(pair, t0, t1, t2):
    x, _ = pair
    t = np.array([t0, t1, t2])[: x.shape[1]]
    assert wasserstein(x, x + t, p=1) == pytest.approx(np.linalg.norm(t), rel=1e-9, abs=1e-12)


@settings(max_examples=30, deadline=None)
@given(sample_pairs(max_n=10, dim=1), st.sampled_from([1.0, 1.5, 2.0, 3.0]), st.integers(0, 2**32 - 1))
def test_points_on_a_line_match_the_closed_form(pair, p, seed):
    x, y = pair
    r = np.random.default_rng(seed)
    a, b = r.random(len(x)) + 0.05, r.random(len(y)) + 0.05
    a, b = a / a.sum(), b / b.sum()
    exact = wasserstein(x, y, a=a, b=b, p=p)
    closed = wasserstein_1d(x[:, 0], y[:, 0], a, b, p=p)
    assert exact == pytest.approx(closed, rel=1e-9, abs=1e-12)


def test_wasserstein_matches_pot_in_2d():
    r = np.random.default_rng(7)
    x, y = r.normal(size=(30, 2)), r.normal(size=(25, 2))
    assert wasserstein(x, y, p=2) ** 2 == pytest.approx(ot.emd2([], [], ot.dist(x, y)), rel=1e-12)
    assert wasserstein(x, y, metric="cityblock", p=1) == pytest.approx(
        ot.emd2([], [], ot.dist(x, y, metric="cityblock")), rel=1e-12)


def test_full_result_for_samples_through_a_point_cloud():
    r = np.random.default_rng(8)
    x, y = r.normal(size=(20, 3)), r.normal(size=(15, 3))
    res = emd(None, None, PointCloud(x, y, p=1))
    assert res.converged and res.plan.shape == (20, 15)
    assert res.cost == pytest.approx(wasserstein(x, y, p=1), rel=1e-15)


def test_unnormalised_measures_of_equal_mass_and_mass_tolerance():
    a, b, C = _gaussian_problem(10, 7, seed=5)
    res = emd(5 * a, 5 * b, C)
    assert res.cost == pytest.approx(5 * emd(a, b, C).cost, rel=1e-12)
    # within mass_rtol: b is rescaled to a's mass and the plan is exact for the rescaled problem
    res = emd(a, b * (1 + 1e-8), C)
    assert res.converged and res.plan.sum() == pytest.approx(1.0, rel=1e-14)
    with pytest.raises(ValueError, match=r"b: total mass must equal that of a"):
        emd(a, 1.01 * b, C)


# ---------------------------------------------------------------------------------------------
# Batches
# ---------------------------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(problem_batches(max_batch=5, max_n=7))
def test_batch_equals_loop(problem):
    res = emd(problem.a, problem.b, problem.cost)
    assert res.plan.shape == problem.cost.shape and res.converged.shape == (len(problem.a),)
    assert res.converged.all() and res.certificate.optimal.all()
    assert_optimal(res, problem.a, problem.b, problem.cost)
    for k in range(len(problem.a)):
        single = emd(problem.a[k], problem.b[k], problem.cost[k])
        assert res.cost[k] == pytest.approx(single.cost, rel=1e-12, abs=1e-12)


def test_batch_broadcasts_shared_weights_and_threads_agree():
    costs = np.stack([_gaussian_problem(30, 30, seed=s)[2] for s in range(6)])
    a = np.full(30, 1 / 30)
    threaded = emd(a, a, costs)
    serial = emd(a, a, costs, n_threads=1)
    np.testing.assert_array_equal(threaded.cost, serial.cost)
    highs = emd(a, a, costs[:2], backend="highs")
    np.testing.assert_allclose(highs.cost, threaded.cost[:2], rtol=1e-9)
    shared_cost = emd(np.stack([a, a]), a, costs[0])
    assert shared_cost.cost.shape == (2,) and shared_cost.cost[0] == threaded.cost[0]


# ---------------------------------------------------------------------------------------------
# torch
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_in_torch_out_and_gradients(dtype):
    a_np, b_np, C_np = _gaussian_problem(9, 6, seed=11)
    a = torch.tensor(a_np, dtype=dtype, requires_grad=True)
    b = torch.tensor(b_np, dtype=dtype, requires_grad=True)
    C = torch.tensor(C_np, dtype=dtype, requires_grad=True)
    res = emd(a, b, C)
    assert isinstance(res.cost, torch.Tensor) and res.cost.dtype == dtype
    assert res.plan.dtype == dtype and res.potentials[0].dtype == dtype
    assert res.cost.item() == pytest.approx(emd(a_np, b_np, C_np).cost, rel=1e-6 if dtype == torch.float32 else 1e-12)
    res.cost.backward()
    torch.testing.assert_close(C.grad, res.plan)
    torch.testing.assert_close(a.grad, res.potentials[0])
    torch.testing.assert_close(b.grad, res.potentials[1])


def test_torch_gradient_matches_finite_differences_of_the_value():
    # the optimal value is piecewise linear in the cost: away from ties, d OT / d C = P exactly
    a_np, b_np, C_np = _gaussian_problem(6, 5, seed=13)
    C = torch.tensor(C_np, requires_grad=True)
    res = emd(torch.tensor(a_np), torch.tensor(b_np), C)
    res.cost.backward()
    direction = np.random.default_rng(0).normal(size=C_np.shape)
    h = 1e-7
    fd = (emd(a_np, b_np, C_np + h * direction).cost - emd(a_np, b_np, C_np - h * direction).cost) / (2 * h)
    assert float((C.grad.numpy() * direction).sum()) == pytest.approx(fd, rel=1e-6)


def test_torch_gradient_with_respect_to_points():
    r = np.random.default_rng(2)
    x = torch.tensor(r.normal(size=(8, 2)), requires_grad=True)
    y = torch.tensor(r.normal(size=(8, 2)) + 3.0)
    w = wasserstein(x, y, p=2)
    w.backward()
    # for equal uniform sizes the plan is a permutation: grad of W2^2 is 2 (x_i - y_sigma(i)) / n
    res = emd(None, None, PointCloud(x.detach(), y, p=2))
    sigma = res.plan.argmax(1)
    expected = 2 * (x.detach() - y[sigma]) / 8 / (2 * w.detach())
    torch.testing.assert_close(x.grad, expected)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_inputs_stay_on_the_device():
    a_np, b_np, C_np = _gaussian_problem(9, 6, seed=11)
    C = torch.tensor(C_np, device="cuda", dtype=torch.float32)
    res = emd(None, None, C)
    assert res.plan.device.type == "cuda" and res.cost.device.type == "cuda"


# ---------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------
C3 = np.ones((3, 2))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(a=[0.5, 0.6, -0.1], b=[0.5, 0.5], cost=C3), r"^a: weights must be non-negative"),
        (dict(a=[0.5, np.nan, 0.5], b=[0.5, 0.5], cost=C3), r"^a: weights must be finite"),
        (dict(a=[1 / 3] * 3, b=[np.inf, 0.5], cost=C3), r"^b: weights must be finite"),
        (dict(a=[0.0, 0.0, 0.0], b=[0.5, 0.5], cost=C3), r"^a: total mass must be positive"),
        (dict(a=[0.5, 0.5], b=[0.5, 0.5], cost=C3), r"^a: expected 3 weights"),
        (dict(a=[1 / 3] * 3, b=[1.0], cost=C3), r"^b: expected 2 weights"),
        (dict(a=[1 / 3] * 3, b=[0.5, 0.6], cost=C3), r"^b: total mass must equal that of a"),
        (dict(a=[], b=[], cost=np.ones((0, 0))), r"^cost: must not be empty"),
        (dict(a=[1 / 3] * 3, b=[0.5, 0.5], cost=np.array([[1, 2], [np.inf, 1], [0, 0]])), r"^cost: costs must be finite"),
        (dict(a=[1 / 3] * 3, b=[0.5, 0.5], cost=np.ones(3)), r"^cost: expected 2 or 3 dimension"),
        (dict(a=[1 / 3] * 3, b=[0.5, 0.5], cost=C3, backend="simplex"), r"^backend: must be one of"),
        (dict(a=[1 / 3] * 3, b=[0.5, 0.5], cost=C3, max_iter=0), r"^max_iter: must be finite and > 0"),
        (dict(a=np.ones((2, 3)) / 3, b=np.ones((3, 2)) / 2, cost=C3), r"batch sizes of a, b and cost differ"),
    ],
)
def test_emd_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        emd(kwargs.pop("a"), kwargs.pop("b"), kwargs.pop("cost"), **kwargs)


@pytest.mark.parametrize(
    "x, y, kwargs, match",
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), {}, r"^y: points must have the dimension of x"),
        (np.zeros((0, 2)), np.zeros((3, 2)), {}, r"^x: must not be empty"),
        (np.array([[0.0, np.nan]]), np.zeros((3, 2)), {}, r"^x: coordinates must be finite"),
        (np.zeros((3, 2)), np.zeros((3, 2)), {"p": 0.5}, r"^p: must be a finite number >= 1"),
        (np.zeros((3, 2)), np.zeros((3, 2)), {"metric": "cosine"}, r"^metric: must be one of"),
        (np.zeros((3, 2)), np.zeros((3, 2)), {"a": [1.0, -1.0, 1.0]}, r"^a: weights must be non-negative"),
    ],
)
def test_wasserstein_bad_input(x, y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        wasserstein(x, y, **{"p": 1, **kwargs})


def test_public_names():
    for name in ["emd", "wasserstein", "wasserstein_1d", "OTResult", "Certificate", "c_transform", "certify",
                 "kl_divergence", "js_divergence", "js_distance", "total_variation", "entropy"]:
        assert name in otmetrics.__all__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert emd([1.0], [1.0], [[3.0]]).cost == 3.0  # a 1x1 problem: no warning, cost 3


@pytest.mark.parametrize("scale", [1e-250, 1e-8, 1e8, 1e250])
def test_any_cost_scale_is_solved_and_certified(scale):
    a, b, C = _gaussian_problem(20, 15, seed=21)
    base = emd(a, b, C)
    res = emd(a, b, C * scale)
    assert res.converged and res.certificate.relative_gap <= 1e-12
    assert res.cost == pytest.approx(base.cost * scale, rel=1e-12)
    assert_optimal(res, a, b, C * scale)


def test_certify_broadcasts_shared_weights_over_a_batch():
    from otmetrics import certify

    r = np.random.default_rng(4)
    a, b = r.random(4), r.random(5)
    a, b = a / a.sum(), b / b.sum()
    C = r.random((3, 4, 5))
    res = emd(a, b, C)
    assert res.certificate.optimal.all()
    again = certify(a, b, C, res.plan, *res.potentials)
    assert again.optimal.all()
    np.testing.assert_allclose(again.dual, res.certificate.dual, rtol=1e-15)


@pytest.mark.parametrize(
    "args, match",
    [
        (([], [], np.zeros((0, 0)), np.zeros((0, 0)), [], []), r"^cost: must not be empty"),
        (([1.0], [1.0], [[1.0]], [[1.0]], [0.0, 0.0], [1.0]), r"^u: shape \(2,\) does not match"),
        (([1.0], [1.0], [[np.nan]], [[1.0]], [0.0], [1.0]), r"^cost: costs must be finite"),
        (([1.0], [1.0], [[1.0]], np.ones((2, 2)), [0.0], [1.0]), r"^plan: shape \(2, 2\) does not match"),
    ],
)
def test_certify_bad_input(args, match):
    from otmetrics import certify

    with pytest.raises(ValueError, match=match):
        certify(*args)


def test_c_transform_and_dual_value_bad_input():
    with pytest.raises(ValueError, match=r"^u: shape \(3,\) does not match"):
        c_transform(np.ones((2, 4)), [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"^axis: must be 0 or 1"):
        c_transform(np.ones((2, 4)), [0.0, 1.0], axis=2)
    with pytest.raises(ValueError, match=r"^b: shape \(3,\) does not match"):
        otmetrics.dual_value([1.0], [0.5, 0.25, 0.25], [0.0], [1.0, 2.0])
    assert c_transform(np.ones((2, 4)), [0.0, 1.0], axis=0).shape == (4,)


def test_numeric_parameters_of_any_real_type_and_refusals():
    a, b, C = _gaussian_problem(6, 5, seed=2)
    assert emd(a, b, C, rtol=np.float32(1e-9), n_threads=np.int64(1)).converged
    with pytest.raises(ValueError, match=r"^rtol: must be finite"):
        emd(a, b, C, rtol=np.inf)
    with pytest.raises(ValueError, match=r"^n_threads: must be an integer"):
        emd(a, b, C, n_threads=1.5)


def test_gradients_are_finite_at_zero_distance():
    x = torch.tensor(np.random.default_rng(0).normal(size=(6, 2)), requires_grad=True)
    w = wasserstein(x, x.detach(), p=2)
    w.backward()
    assert w.item() == 0.0 and torch.isfinite(x.grad).all()
    u = torch.tensor([0.0, 1.0, 3.0], requires_grad=True, dtype=torch.float64)
    w1d = wasserstein_1d(u, u.detach(), p=2)
    w1d.backward()
    assert torch.isfinite(u.grad).all()


def test_bfloat16_and_float16_tensors():
    a, b, C = _gaussian_problem(5, 4, seed=3)
    res = emd(torch.tensor(a, dtype=torch.bfloat16), None, torch.tensor(C, dtype=torch.bfloat16))
    assert res.plan.dtype == torch.bfloat16
