"""Tests of otmetrics.sinkhorn / sinkhorn_divergence (entropic OT) and the soft-min operators."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import otmetrics
from otmetrics import (
    ConvergenceWarning,
    PointCloud,
    SinkhornResult,
    cost_matrix,
    emd,
    sinkhorn,
    sinkhorn_divergence,
)
from otmetrics.transport.sinkhorn import kernel, loop
from otmetrics.transport.sinkhorn.softmin import DenseSoftMin, PointCloudSoftMin
from otmetrics.testing import ot_problems

FAST = settings(max_examples=25, deadline=None)


def _problem(seed, n=30, m=40, d=2, shift=1.0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = rng.normal(size=(m, d)) * 0.7 + shift
    a = rng.random(n) + 0.1
    b = rng.random(m) + 0.1
    return x, y, a / a.sum(), b / b.sum()


def _pot_reference(a, b, C, eps):
    """POT's log-domain Sinkhorn run to convergence: (plan, <C, P>, OT_eps)."""
    ot = pytest.importorskip("ot")  # a dependency, but the GPU test machine may lack it
    with np.errstate(divide="ignore", invalid="ignore"):  # log 0 for zero weights, in POT and below
        plan = ot.sinkhorn(a, b, C, eps, method="sinkhorn_log", stopThr=1e-15, numItermax=200_000)
        ratio = np.where(plan > 0, plan / np.outer(a, b), 1.0)
    kl = (plan * np.log(ratio) - plan + np.outer(a, b)).sum()
    return plan, float((plan * C).sum()), float((plan * C).sum() + eps * kl)


def _entropy(w):
    w = np.asarray(w) / np.sum(w)
    w = w[w > 0]
    return float(-(w * np.log(w)).sum())


# ------------------------------------------------------------------------------------------------
# Agreement with POT
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("rel_eps", [0.02, 0.3])
def test_cost_matches_pot_sinkhorn_log_at_tight_tolerance(seed, rel_eps):
    x, y, a, b = _problem(seed, n=25 + seed, m=35 - seed)
    C = cost_matrix(x, y, p=2)
    eps = rel_eps * float(np.median(C))
    plan_ref, cost_ref, obj_ref = _pot_reference(a, b, C, eps)
    res = sinkhorn(a, b, C, eps, tol=1e-12, max_iter=100_000)
    assert res.converged and res.marginal_error <= 1e-12
    assert abs(res.cost - cost_ref) <= 1e-7 * abs(cost_ref)
    assert abs(res.objective - obj_ref) <= 1e-7 * abs(obj_ref)
    np.testing.assert_allclose(res.plan, plan_ref, atol=1e-10)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("tol", [1e-2, 1e-4])
def test_loose_tolerance_error_is_what_the_marginal_error_predicts(seed, tol):
    # the returned plan is the exact entropic plan for marginals off by marginal_error, so the values move
    # by at most (marginal error) x (cost range) to first order
    rng = np.random.default_rng(seed)
    n, m = rng.integers(3, 40, 2)
    a, b = rng.random(n) + 0.05, rng.random(m) + 0.05
    a, b = a / a.sum(), b / b.sum()
    C = rng.random((n, m)) * rng.uniform(0.1, 10)
    eps = rng.uniform(0.01, 0.5) * C.max()
    _, cost_ref, obj_ref = _pot_reference(a, b, C, eps)
    res = sinkhorn(a, b, C, eps, tol=tol)
    assert res.converged and res.marginal_error <= tol
    bound = res.marginal_error * (C.max() - C.min())
    assert abs(res.objective - obj_ref) <= bound
    assert abs(res.cost - cost_ref) <= bound


def test_batch_matches_pot_problem_by_problem():
    rng = np.random.default_rng(3)
    C = rng.random((5, 12, 9)) * np.arange(1, 6)[:, None, None]
    a = rng.random((5, 12)) + 0.1
    a /= a.sum(1, keepdims=True)
    res = sinkhorn(a, None, C, 0.1, tol=1e-12)
    assert res.cost.shape == (5,) and res.potentials[0].shape == (5, 12) and res.potentials[1].shape == (5, 9)
    assert res.converged.dtype == bool and res.converged.all()
    for k in range(5):
        _, cost_ref, _ = _pot_reference(a[k], np.full(9, 1 / 9), C[k], 0.1)
        assert abs(res.cost[k] - cost_ref) <= 1e-7 * cost_ref


# ------------------------------------------------------------------------------------------------
# Marginals, duality and the limit eps -> 0
# ------------------------------------------------------------------------------------------------
@FAST
@given(ot_problems(max_n=9, max_m=9, p=1), st.floats(0.05, 2.0), st.sampled_from([1e-4, 1e-8]))
def test_plan_meets_tolerance_and_values_are_bracketed(problem, rel_eps, tol):
    a, b, C = problem.a, problem.b, problem.cost
    span = float(C.max() - C.min())
    eps = rel_eps * max(span, 1e-3)
    res = sinkhorn(a, b, C, eps, tol=tol, max_iter=100_000)
    mass = a.sum()
    assert res.converged
    plan = res.plan
    assert plan.min() >= 0
    err = np.abs(plan.sum(1) - a).sum() + np.abs(plan.sum(0) - b).sum()
    assert err <= tol * mass + 1e-12
    assert abs(err - res.marginal_error) <= 1e-9 * mass
    # EMD <= <C, P> <= OT_eps <= <C, a x b> / |a|, up to the marginal error
    slack = res.marginal_error * span + 1e-9 * (abs(C).max() + eps) * mass
    exact = emd(a, b, C).cost
    assert exact - slack <= res.cost <= res.objective + slack
    assert res.objective <= (a[:, None] * b[None, :] * C).sum() / mass + slack
    assert np.isfinite(res.potentials[0]).all() and np.isfinite(res.potentials[1]).all()


def test_eps_to_zero_approaches_emd_within_the_entropy_bound():
    x, y, a, b = _problem(7, n=40, m=50)
    C = cost_matrix(x, y, p=2)
    exact = emd(a, b, C).cost
    bound_entropy = min(_entropy(a), _entropy(b))
    gaps = []
    for rel in (1e-1, 1e-2, 1e-3):
        eps = rel * float(np.median(C))
        res = sinkhorn(a, b, C, eps, tol=1e-9, eps_scaling=0.5, max_iter=200_000)
        slack = res.marginal_error * (C.max() - C.min())
        assert res.converged
        assert exact - slack <= res.cost <= res.objective + slack
        assert res.objective <= exact + eps * bound_entropy + slack
        gaps.append(res.cost - exact)
    assert gaps[0] > gaps[1] > gaps[2] >= -1e-9
    assert gaps[2] <= 1e-3 * exact


def test_float32_small_eps_is_finite_and_within_one_percent_of_emd():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(60, 2, generator=gen)
    y = torch.randn(70, 2, generator=gen) + 0.5
    C = cost_matrix(x, y, p=2)
    assert C.dtype == torch.float32
    eps = 1e-3 * float(C.median())
    res = sinkhorn(None, None, C, eps, tol=1e-4, eps_scaling=0.7)
    exact = emd(None, None, C.double()).cost
    assert res.potentials[0].dtype == res.cost.dtype == torch.float32
    assert bool(torch.isfinite(res.potentials[0]).all()) and bool(torch.isfinite(res.potentials[1]).all())
    assert bool(torch.isfinite(res.cost)) and bool(torch.isfinite(res.objective))
    assert res.converged
    assert abs(float(res.cost) / float(exact) - 1) < 0.01


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiny_eps_never_overflows_and_an_unconverged_run_says_so(dtype):
    # eps = 1e-6 x median cost: exp(-C / eps) underflows to 0 everywhere; the iterations must not
    x, y, a, b = _problem(2, n=20, m=25)
    C = torch.as_tensor(cost_matrix(x, y, p=2), dtype=dtype)
    eps = 1e-6 * float(C.median())
    with pytest.warns(ConvergenceWarning, match="max_iter=300"):
        res = sinkhorn(torch.as_tensor(a, dtype=dtype), torch.as_tensor(b, dtype=dtype), C, eps, max_iter=300)
    assert not res.converged and res.n_iter == 300
    for value in (res.potentials[0], res.potentials[1], res.cost, res.objective):
        assert bool(torch.isfinite(value).all())
    assert np.isfinite(res.marginal_error) and res.marginal_error > 1e-6
    if dtype == torch.float32:
        return  # potentials hold 7 digits, and (f + g - C) / eps amplifies their rounding 1e6 times here
    # the unconverged plan has the marginal error it reports
    plan = res.plan
    err = (plan.sum(1) - torch.as_tensor(a)).abs().sum() + (plan.sum(0) - torch.as_tensor(b)).abs().sum()
    assert abs(float(err) - res.marginal_error) <= 1e-3 * res.marginal_error + 1e-5


# ------------------------------------------------------------------------------------------------
# Per-problem convergence, warnings, options
# ------------------------------------------------------------------------------------------------
def _mixed_batch():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 40, 2, generator=gen, dtype=torch.float64)
    scales = torch.tensor([0.2, 1.0, 3.0, 6.0], dtype=torch.float64)[:, None, None]
    y = torch.randn(4, 30, 2, generator=gen, dtype=torch.float64) * scales
    return x, y


def test_each_problem_stops_at_its_own_tolerance_and_then_stops_changing():
    x, y = _mixed_batch()
    res = sinkhorn(None, None, PointCloud(x, y), 0.5, tol=1e-9)
    assert len(set(res.n_iter.tolist())) > 1  # problems of different difficulty
    assert (res.marginal_error <= 1e-9).all() and res.converged.all()
    for k in range(4):
        alone = sinkhorn(None, None, PointCloud(x[k], y[k]), 0.5, tol=1e-9)
        assert alone.n_iter == res.n_iter[k]
        torch.testing.assert_close(alone.potentials[0], res.potentials[0][k], rtol=0, atol=1e-12)
        torch.testing.assert_close(alone.potentials[1], res.potentials[1][k], rtol=0, atol=1e-12)
        torch.testing.assert_close(alone.cost, res.cost[k], rtol=1e-13, atol=0)


@pytest.mark.parametrize("path", ["lockstep", "gemv_loop", "batched_bmm", "log_domain_only", "truncated"])
def test_every_execution_path_gives_the_same_answer(path, monkeypatch):
    # the CPU groups problems and loops over gemv; GPUs run the batch in lockstep with bmm; online costs
    # stay in the log domain; small eps truncates the kernel. Force each path on the CPU and compare.
    x, y = _mixed_batch()
    C = cost_matrix(x[:, :20], y[:, :15], p=2)
    ref = sinkhorn(None, None, C, 0.5, tol=1e-10)
    if path == "lockstep":
        monkeypatch.setattr(loop, "_CPU_GROUP_BYTES", 2**40)
    elif path == "batched_bmm":
        monkeypatch.setattr(loop, "_CPU_GROUP_BYTES", 2**40)
        monkeypatch.setattr(kernel.ScalingKernel, "_gemv_loop", staticmethod(lambda device: False))
    elif path == "log_domain_only":
        monkeypatch.setattr(DenseSoftMin, "is_dense", False)
    elif path == "truncated":
        monkeypatch.setattr(kernel, "SPARSE_DENSITY", 1.0)
    res = sinkhorn(None, None, C, 0.5, tol=1e-10)
    np.testing.assert_array_equal(res.converged, ref.converged)
    assert np.all(np.abs(res.n_iter - ref.n_iter) <= 1)
    torch.testing.assert_close(res.cost, ref.cost, rtol=1e-11, atol=0)
    torch.testing.assert_close(res.potentials[0] - res.potentials[0].mean(1, keepdim=True), ref.potentials[0] - ref.potentials[0].mean(1, keepdim=True),
                               rtol=0, atol=1e-9)


def test_max_iter_flags_the_problem_and_warns():
    x, y = _mixed_batch()
    with pytest.warns(ConvergenceWarning, match="max_iter=40"):
        res = sinkhorn(None, None, PointCloud(x, y), 0.05, tol=1e-9, max_iter=40)
    assert res.n_iter.max() == 40
    assert not res.converged.all()
    np.testing.assert_array_equal(res.converged, res.marginal_error <= 1e-9)
    assert np.all(res.n_iter[~res.converged] == 40)
    assert np.isfinite(res.potentials[0].numpy()).all()  # the last iterate is returned, not garbage


def test_eps_scaling_gives_the_same_answer_in_fewer_iterations():
    x, y, a, b = _problem(4, n=60, m=50)
    C = cost_matrix(x, y, p=2)
    eps = 2e-3 * float(np.median(C))
    plain = sinkhorn(a, b, C, eps, tol=1e-7, max_iter=100_000, eps_scaling=None, acceleration=None)
    scaled = sinkhorn(a, b, C, eps, tol=1e-7, eps_scaling=0.5, acceleration=None)
    assert plain.converged and scaled.converged
    assert scaled.n_iter < plain.n_iter
    span = C.max() - C.min()
    assert abs(scaled.cost - plain.cost) <= (plain.marginal_error + scaled.marginal_error) * span
    # the stages count as iterations (each runs at least one), and the final ones run at the target eps
    # until tol holds; the stages are eps / 0.5^k, from the largest cost down to 2 eps
    stages = loop.eps_schedule(eps, None, 0.5, float(C.max()))
    assert stages[0] >= C.max() > stages[1] and stages[-1] == pytest.approx(2 * eps)
    assert scaled.n_iter > len(stages) and scaled.marginal_error <= 1e-7


def test_warm_start_converges_at_once():
    x, y, a, b = _problem(5)
    C = cost_matrix(x, y, p=2)
    first = sinkhorn(a, b, C, 0.1, tol=1e-10)
    again = sinkhorn(a, b, C, 0.1, tol=1e-10, init=(first.potentials[0], first.potentials[1]))
    assert again.n_iter <= 2 < first.n_iter
    assert abs(again.cost - first.cost) <= 1e-9 * first.cost


def test_kernel_rebuilds_and_log_domain_fallback_keep_the_answer():
    # potentials far from optimal make the first scaling kernel under/overflow: the loop must absorb,
    # fall back to the log domain and still converge to the log-domain answer
    x, y, a, b = _problem(6, n=30, m=30)
    C = torch.as_tensor(cost_matrix(x, y, p=2))
    at, bt = torch.as_tensor(a), torch.as_tensor(b)
    eps = 1e-2 * float(C.median())
    f0 = torch.linspace(-50, 50, 30, dtype=torch.float64)[None]
    kw = dict(tol=np.array([1e-9]), max_iter=200_000, schedule=[], f0=f0, g0=torch.zeros_like(f0))
    op = DenseSoftMin(C[None])
    fast = loop.alternating(op, at[None], bt[None], at.log()[None], bt.log()[None], eps, **kw)
    slow = loop.alternating(op, at[None], bt[None], at.log()[None], bt.log()[None], eps, use_kernel=False,
                            **kw)
    assert fast.kernel_mode and fast.converged[0] and slow.converged[0]
    cost_fast = op.transport_cost(fast.f, fast.g, at.log()[None], bt.log()[None], eps)
    cost_slow = op.transport_cost(slow.f, slow.g, at.log()[None], bt.log()[None], eps)
    assert abs(float(cost_fast - cost_slow)) <= 1e-9 * float(C.max())


def test_zero_weights_are_allowed_and_get_finite_potentials():
    x, y, a, b = _problem(8, n=10, m=12)
    a[[0, 3]] = 0.0
    b[5] = 0.0
    a, b = a / a.sum(), b / b.sum()
    C = cost_matrix(x, y, p=2)
    res = sinkhorn(a, b, C, 0.2, tol=1e-12)
    _, cost_ref, _ = _pot_reference(a, b, C, 0.2)
    assert np.isfinite(res.potentials[0]).all() and np.isfinite(res.potentials[1]).all()
    assert abs(res.cost - cost_ref) <= 1e-7 * cost_ref
    assert np.all(res.plan[[0, 3]] == 0) and np.all(res.plan[:, 5] == 0)


def test_unnormalised_masses_and_the_objective_definition():
    # OT_eps = <C, P> + eps KL(P | a x b) with the generalised KL, for any common mass
    x, y, a, b = _problem(9, n=8, m=9)
    C = cost_matrix(x, y, p=2)
    res = sinkhorn(3 * a, 3 * b, C, 0.3, tol=1e-13)
    P, ab = res.plan, 9 * np.outer(a, b)
    kl = (P * np.log(P / ab) - P + ab).sum()
    assert abs(res.objective - ((P * C).sum() + 0.3 * kl)) <= 1e-10
    unit = sinkhorn(a, b, C, 0.3, tol=1e-13)
    assert abs(res.cost - 3 * unit.cost) <= 1e-10  # the plan scales with the mass


# ------------------------------------------------------------------------------------------------
# Point clouds: online vs dense
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("p,metric",
                         [(2, "euclidean"), (1, "euclidean"), (1.5, "cityblock"), (2, "chebyshev")])
def test_online_point_cloud_matches_dense(p, metric):
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(2, 45, 3, generator=gen, dtype=torch.float64) + 100.0  # far from 0: centring matters
    y = torch.randn(2, 38, 3, generator=gen, dtype=torch.float64) + 100.5
    dense = sinkhorn(None, None, PointCloud(x, y, p=p, metric=metric), 0.3, tol=1e-11)
    online = sinkhorn(None, None, PointCloud(x, y, p=p, metric=metric, online=True, chunk_size=7), 0.3,
                      tol=1e-11)
    torch.testing.assert_close(online.cost, dense.cost, rtol=1e-9, atol=0)
    torch.testing.assert_close(online.objective, dense.objective, rtol=1e-9, atol=0)
    torch.testing.assert_close(online.plan, dense.plan, rtol=0, atol=1e-10)
    torch.testing.assert_close(dense.plan, sinkhorn(None, None, cost_matrix(x, y, p, metric), 0.3,
                                                      tol=1e-11).plan, rtol=0, atol=1e-12)


def test_softmin_operators_agree_with_a_direct_logsumexp():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(3, 17, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(3, 11, 2, generator=gen, dtype=torch.float64)
    h_col = torch.randn(3, 11, generator=gen, dtype=torch.float64)
    h_row = torch.randn(3, 17, generator=gen, dtype=torch.float64)
    C = cost_matrix(x, y, p=2)
    expect_rows = torch.logsumexp(h_col[:, None, :] - C / 0.05, 2)
    expect_cols = torch.logsumexp(h_row[:, :, None] - C / 0.05, 1)
    for op in (DenseSoftMin(C, block=20), PointCloudSoftMin(x, y, rows=4), PointCloudSoftMin(x, y)):
        torch.testing.assert_close(op.row_lse(h_col, 0.05), expect_rows, rtol=1e-12, atol=1e-9)
        torch.testing.assert_close(op.col_lse(h_row, 0.05), expect_cols, rtol=1e-12, atol=1e-9)
        sel = op.select(torch.tensor([2, 0]))
        torch.testing.assert_close(sel.row_lse(h_col[[2, 0]], 0.05), expect_rows[[2, 0]], rtol=1e-12,
                                   atol=1e-9)


def test_online_memory_stays_far_below_the_dense_cost():
    # a subprocess: its resident memory before and its peak after one solve on n = m = 10,000 points in 3-D
    # (a dense float32 cost would take 400 MB; the online blocks take 1 MB; the rest is the allocator's and
    # the libraries' working memory, about 60-90 MB measured, whatever n)
    code = textwrap.dedent("""
        import torch, otmetrics
        torch.set_num_threads(1)
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(10000, 3, generator=gen); y = torch.randn(10000, 3, generator=gen) + 1
        small = otmetrics.PointCloud(x[:100], y[:100], online=True)
        otmetrics.sinkhorn(None, None, small, 1.0, tol=1e-1)  # warm up the allocator and the kernels
        def status(key):  # kB
            with open("/proc/self/status") as fh:
                return next(int(line.split()[1]) for line in fh if line.startswith(key))
        before = status("VmRSS:")
        with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
            fh.write("5")
        import warnings; warnings.simplefilter("ignore")
        res = otmetrics.sinkhorn(None, None, otmetrics.PointCloud(x, y, online=True), 1.0, max_iter=1)
        print((status("VmHWM:") - before) / 1024, bool(torch.isfinite(res.cost)))
    """)
    # (not ru_maxrss: Linux carries the parent's peak over to the child across fork and exec, so the
    # pytest worker's own peak would be measured)
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("needs Linux's /proc/self/clear_refs to measure the peak memory")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    extra_mb, finite = out.stdout.split()
    assert finite == "True"
    assert float(extra_mb) < 150


# ------------------------------------------------------------------------------------------------
# Gradients (envelope theorem)
# ------------------------------------------------------------------------------------------------
def _logits(n, seed):
    return torch.randn(n, dtype=torch.float64, generator=torch.Generator().manual_seed(seed)).requires_grad_()


def test_gradcheck_weights_and_cost_matrix():
    ta, tb = _logits(6, 0), _logits(5, 1)
    C = torch.rand(6, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2)).requires_grad_()

    def objective(ta, tb, C):
        return sinkhorn(torch.softmax(ta, 0), torch.softmax(tb, 0), C, 0.3, tol=1e-13).objective

    assert torch.autograd.gradcheck(objective, (ta, tb, C))


@pytest.mark.parametrize("online", [False, True])
@pytest.mark.parametrize("p,metric", [(2, "euclidean"), (1, "euclidean"), (1.5, "cityblock")])
def test_gradcheck_points(online, p, metric):
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(6, 2, dtype=torch.float64, generator=gen).requires_grad_()
    y = torch.randn(5, 2, dtype=torch.float64, generator=gen).requires_grad_()
    ta, tb = _logits(6, 5), _logits(5, 6)

    def objective(ta, tb, x, y):
        geom = PointCloud(x, y, p=p, metric=metric, online=online)
        return sinkhorn(torch.softmax(ta, 0), torch.softmax(tb, 0), geom, 0.5, tol=1e-13).objective

    assert torch.autograd.gradcheck(objective, (ta, tb, x, y))


def test_gradients_do_not_backpropagate_through_iterations():
    gen = torch.Generator().manual_seed(10)
    x = torch.randn(30, 2, dtype=torch.float64, generator=gen).requires_grad_()
    y = torch.randn(30, 2, dtype=torch.float64, generator=gen)
    def graph(res):
        nodes, seen = [res.objective.grad_fn], []
        while nodes:
            node = nodes.pop()
            seen.append(node.name())
            nodes.extend(nxt for nxt, _ in node.next_functions if nxt is not None)
        return seen

    short = sinkhorn(None, None, PointCloud(x, y), 0.3, tol=1e-1, check_every=1)
    res = sinkhorn(None, None, PointCloud(x, y), 0.3, tol=1e-10)
    assert res.objective.requires_grad and not res.potentials[0].requires_grad and not res.cost.requires_grad
    # the graph holds one envelope node and the cost's construction, and no iteration: its size does not
    # grow with the number of iterations
    assert res.n_iter > 5 * short.n_iter
    seen = graph(res)
    assert sum(name.endswith("EntropicObjectiveBackward") for name in seen) == 1
    assert len(seen) == len(graph(short)) < 30
    (grad,) = torch.autograd.grad(res.objective, x)
    P = res.plan
    torch.testing.assert_close(grad, 2 * (P.sum(1, keepdim=True) * x - P @ y), rtol=1e-10, atol=1e-12)


def test_gradcheck_divergence_batched_and_weights():
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(2, 4, 2, dtype=torch.float64, generator=gen).requires_grad_()
    y = torch.randn(2, 3, 2, dtype=torch.float64, generator=gen).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, y: sinkhorn_divergence(x, y, 1.0, tol=1e-13), (x, y))
    ta, tb = _logits(4, 8), _logits(3, 9)

    def divergence(ta, tb, x, y):
        return sinkhorn_divergence(x, y, 1.0, a=torch.softmax(ta, 0), b=torch.softmax(tb, 0), online=True,
                                   tol=1e-13)

    assert torch.autograd.gradcheck(divergence, (ta, tb, x[0].detach().requires_grad_(),
                                                 y[0].detach().requires_grad_()))


# ------------------------------------------------------------------------------------------------
# The divergence
# ------------------------------------------------------------------------------------------------
@FAST
@given(st.integers(0, 10_000), st.integers(2, 12), st.integers(2, 12), st.floats(0.05, 3.0))
def test_divergence_is_symmetric_and_non_negative(seed, n, m, eps):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, 2)), rng.normal(size=(m, 2)) * rng.uniform(0.2, 2)
    a, b = rng.random(n) + 0.1, rng.random(m) + 0.1
    a, b = a / a.sum(), b / b.sum()
    s_xy = sinkhorn_divergence(x, y, eps, a=a, b=b, tol=1e-10)
    s_yx = sinkhorn_divergence(y, x, eps, a=b, b=a, tol=1e-10)
    assert s_xy >= 0
    scale = float(cost_matrix(x, y, p=2).max())
    assert abs(s_xy - s_yx) <= 1e-8 * scale


def test_divergence_is_exactly_zero_on_identical_inputs_with_zero_gradient():
    x = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(15)).requires_grad_()
    y = x.detach().clone().requires_grad_()
    value = sinkhorn_divergence(x, y, 0.2)
    assert float(value.detach()) == 0.0
    gx, gy = torch.autograd.grad(value, (x, y))
    assert float(gx.abs().max()) <= 1e-12 and float(gy.abs().max()) <= 1e-12
    assert sinkhorn_divergence(np.ones((4, 2)), np.ones((4, 2)), 1.0) == 0.0
    # and it is positive as soon as the measures differ
    assert sinkhorn_divergence(x.detach(), x.detach() + 1e-3, 0.2) > 0


def test_divergence_matches_geomloss_with_matched_conventions():
    geomloss = pytest.importorskip("geomloss")
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(60, 2, dtype=torch.float64, generator=gen)
    y = torch.randn(70, 2, dtype=torch.float64, generator=gen) + 1
    blur = 1.0
    # GeomLoss: cost |x - y|^2 / 2 and eps = blur^2, a fixed schedule (slow annealing, so that it converges)
    theirs = geomloss.SamplesLoss("sinkhorn", p=2, blur=blur, scaling=0.999, debias=True,
                                  backend="tensorized")(x, y)
    ours = sinkhorn_divergence(x, y, 2 * blur**2, tol=1e-12)
    assert abs(float(ours) - 2 * float(theirs)) <= 1e-6 * float(ours)
    biased = geomloss.SamplesLoss("sinkhorn", p=2, blur=blur, scaling=0.999, debias=False,
                                  backend="tensorized")(x, y)
    res = sinkhorn(None, None, PointCloud(x, y), 2 * blur**2, tol=1e-12)
    assert abs(float(res.objective) - 2 * float(biased)) <= 1e-6 * float(res.objective)


def test_divergence_batch_matches_single_problems():
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(3, 15, 2)), rng.normal(size=(3, 10, 2)) + 0.5
    batch = sinkhorn_divergence(x, y, 0.3, tol=1e-11)
    assert isinstance(batch, np.ndarray) and batch.shape == (3,)
    for k in range(3):
        assert abs(batch[k] - sinkhorn_divergence(x[k], y[k], 0.3, tol=1e-11)) <= 1e-10


def test_divergence_between_ot_and_mmd_limits():
    # small eps: close to the exact OT cost, and below OT_eps(x, y); large eps: for |x - y|^2 the MMD limit
    # is |mean(x) - mean(y)|^2
    rng = np.random.default_rng(13)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(30, 2)) * 0.7 + 2.0
    exact = emd(None, None, cost_matrix(x, y, p=2)).cost
    small = sinkhorn_divergence(x, y, 0.3, eps_scaling=0.5)
    assert abs(small - exact) <= 0.02 * exact
    assert small <= sinkhorn(None, None, PointCloud(x, y), 0.3, eps_scaling=0.5).objective
    means = float(((x.mean(0) - y.mean(0)) ** 2).sum())
    assert abs(sinkhorn_divergence(x, y, 1e5) - means) <= 1e-5 * means
    assert abs(small - means) > 0.05 * means


# ------------------------------------------------------------------------------------------------
# Types, devices, bad input
# ------------------------------------------------------------------------------------------------
def test_numpy_in_numpy_out():
    x, y, a, b = _problem(14, n=5, m=6)
    res = sinkhorn(a.tolist(), b, cost_matrix(x, y, p=1), 0.5)
    assert isinstance(res, SinkhornResult)
    assert isinstance(res.potentials[0], np.ndarray) and res.potentials[0].dtype == np.float64 and res.potentials[0].shape == (5,)
    assert isinstance(res.cost, float) and isinstance(res.objective, float)
    assert isinstance(res.converged, bool) and isinstance(res.n_iter, int)
    assert isinstance(res.marginal_error, float)
    assert isinstance(res.plan, np.ndarray) and res.plan.shape == (5, 6)
    assert isinstance(sinkhorn_divergence(x, y, 0.5), float)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_keeps_dtype(dtype):
    gen = torch.Generator().manual_seed(16)
    x = torch.randn(8, 2, dtype=dtype, generator=gen)
    y = torch.randn(9, 2, dtype=dtype, generator=gen)
    for geom in (PointCloud(x, y), PointCloud(x, y, online=True)):
        res = sinkhorn(None, None, geom, 0.5, tol=1e-5)
        for value in (res.potentials[0], res.potentials[1], res.cost, res.objective, res.plan):
            assert value.dtype == dtype and value.device == x.device
    assert sinkhorn_divergence(x, y, 0.5, tol=1e-5).dtype == dtype
    # numpy weights take the dtype of the tensor cost
    res = sinkhorn(np.full(8, 1 / 8), None, cost_matrix(x, y, p=1), 0.5, tol=1e-5)
    assert res.cost.dtype == dtype


def test_public_names():
    for name in ("sinkhorn", "sinkhorn_divergence", "SinkhornResult"):
        assert name in otmetrics.__all__


@pytest.mark.parametrize("kwargs,match", [
    (dict(eps=0.0), "eps"),
    (dict(eps=-1.0), "eps"),
    (dict(eps=float("nan")), "eps"),
    (dict(tol=0.0), "tol"),
    (dict(max_iter=0), "max_iter"),
    (dict(max_iter=2.5), "max_iter"),
    (dict(eps_scaling=1.0), "eps_scaling"),
    (dict(eps_scaling=True), "eps_scaling"),
    (dict(eps_init=-1.0), "eps_init"),
    (dict(a=[0.5, -0.5, 1.0]), "^a: "),
    (dict(a=[np.nan, 0.5, 0.5]), "^a: "),
    (dict(b=[0.5, 0.5]), "^b: "),
    (dict(b=[0.3, 0.3, 0.3, 0.3]), "^b: .*mass"),
    (dict(cost=np.full((3, 4), np.inf)), "^cost: "),
    (dict(cost=np.ones((2, 3, 4)), a=np.ones((3, 3)) / 3), "batch"),
    (dict(cost=np.ones(4)), "^cost: "),
    (dict(init=(np.zeros(3), np.zeros(5))), r"init\[1\]"),
    (dict(init=np.zeros(3)), "init"),
    (dict(check_every=0), "^check_every: "),
    (dict(check_every=-3), "^check_every: "),
    (dict(check_every=2.5), "^check_every: "),
    (dict(check_every=True), "^check_every: "),
    (dict(acceleration=2.0), "^acceleration: "),
    (dict(acceleration=0.5), "^acceleration: "),
    (dict(acceleration="fast"), "^acceleration: "),
    (dict(acceleration=True), "^acceleration: "),
    (dict(acceleration=float("nan")), "^acceleration: "),
    (dict(stage_tol=0.0), "^stage_tol: "),
    (dict(stage_tol=1.5), "^stage_tol: "),
    (dict(stage_tol="loose"), "^stage_tol: "),
    (dict(eps_scaling="fast"), "^eps_scaling: "),
    (dict(process_group=object()), "^process_group: "),
])
def test_bad_input_names_the_argument(kwargs, match):
    args = dict(a=None, b=None, cost=np.ones((3, 4)), eps=0.1)
    args.update(kwargs)
    a, b, cost, eps = args.pop("a"), args.pop("b"), args.pop("cost"), args.pop("eps")
    with pytest.raises(ValueError, match=match):
        sinkhorn(a, b, cost, eps, **args)


@pytest.mark.parametrize("kwargs,match", [
    (dict(eps=0.0), "eps"),
    (dict(y=np.ones((4, 3))), "^y: "),
    (dict(x=np.full((3, 2), np.nan)), "^x: "),
    (dict(p=0.5), "^p: "),
    (dict(metric="cosine"), "metric"),
    (dict(a=[1.0, 2.0, 3.0]), "^b: .*mass"),
    (dict(chunk_size=0), "chunk_size"),
    (dict(check_every=0), "^check_every: "),
    (dict(acceleration=2.5), "^acceleration: "),
    (dict(stage_tol=-1.0), "^stage_tol: "),
    (dict(process_group=object()), "^process_group: "),
])
def test_divergence_bad_input_names_the_argument(kwargs, match):
    args = dict(x=np.ones((3, 2)), y=np.zeros((4, 2)), eps=0.1)
    args.update(kwargs)
    x, y, eps = args.pop("x"), args.pop("y"), args.pop("eps")
    with pytest.raises(ValueError, match=match):
        sinkhorn_divergence(x, y, eps, **args)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_tensors_on_different_devices_are_rejected():
    with pytest.raises(ValueError, match="^a: must be on the device of cost"):
        sinkhorn(torch.ones(3, device="cuda") / 3, None, torch.ones(3, 3), 0.1)


# ------------------------------------------------------------------------------------------------
# CUDA
# ------------------------------------------------------------------------------------------------
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda
@pytest.mark.cuda
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("online", [False, True])
def test_cuda_matches_cpu(dtype, online):
    gen = torch.Generator().manual_seed(21)
    x = torch.randn(3, 200, 3, generator=gen, dtype=dtype)
    y = torch.randn(3, 150, 3, generator=gen, dtype=dtype) + 0.5
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    cpu = sinkhorn(None, None, PointCloud(x, y, online=online), 0.1, tol=tol)
    gpu = sinkhorn(None, None, PointCloud(x.cuda(), y.cuda(), online=online), 0.1, tol=tol)
    assert gpu.potentials[0].device.type == "cuda" and gpu.cost.dtype == dtype
    assert gpu.converged.all() and cpu.converged.all()
    # both are converged to tol: they differ by what the marginal errors allow (plus float32 rounding)
    span = float(cost_matrix(x, y, p=2).max())
    bound = (gpu.marginal_error + cpu.marginal_error) * span + (1e-5 if dtype == torch.float32 else 1e-12)
    assert np.all(np.abs(gpu.cost.cpu().double().numpy() - cpu.cost.double().numpy()) <= bound)
    xg = x.cuda().requires_grad_()
    value = sinkhorn_divergence(xg, y.cuda(), 0.1, online=online, tol=tol)
    (grad,) = torch.autograd.grad(value.sum(), xg)
    assert grad.device.type == "cuda" and bool(torch.isfinite(grad).all())
