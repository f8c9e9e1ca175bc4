"""Acceleration, annealing and convergence checks of otmetrics.sinkhorn: same answers, fewer iterations, no
host synchronisation between checks, honest diagnostics."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from otmetrics import ConvergenceWarning, PointCloud, cost_matrix, sinkhorn, sinkhorn_divergence
from otmetrics.transport.sinkhorn import kernel, loop, relaxation
from otmetrics.transport.sinkhorn.relaxation import ASCENT_FRACTION, relax_potential, relax_scaling

FAST = settings(max_examples=30, deadline=None)
PLAIN = dict(acceleration=None, eps_scaling=None)


def _clouds(seed, n=60, m=50, shift=1.0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=gen, dtype=torch.float64)
    y = torch.randn(m, 2, generator=gen, dtype=torch.float64) * 0.6 + shift
    return x, y


def _plan_error(res, a, b):
    plan = np.asarray(res.plan)
    return np.abs(plan.sum(1) - a).sum() + np.abs(plan.sum(0) - b).sum()


# ------------------------------------------------------------------------------------------------
# The safeguard: every relaxed step keeps a fraction of the plain step's gain of the dual
# ------------------------------------------------------------------------------------------------
def _gain(x_old, x_new):
    # the dual, per coordinate and up to eps a_i and a constant, is h(x) = x - exp(x)
    h = (lambda t: t - np.exp(t))
    return h(x_new) - h(x_old)


@FAST
@given(st.lists(st.floats(-40, 40), min_size=1, max_size=30), st.floats(1.0, 1.999), st.floats(1e-3, 10.0))
def test_relaxed_step_gains_at_least_a_fraction_of_the_plain_step(xs, omega, eps):
    x = np.asarray(xs)
    target = torch.linspace(-3, 3, len(x), dtype=torch.float64)
    p = target + eps * torch.as_tensor(x)
    new = relax_potential(p, target, torch.tensor(omega, dtype=torch.float64), eps)
    x_new = ((new - target) / eps).numpy()
    plain_gain = _gain(x, 0.0)
    gain = _gain(x, x_new)
    assert np.all(gain >= ASCENT_FRACTION * plain_gain - 1e-9 * (1 + np.abs(plain_gain)))
    # the scaling form takes the same step: s -> s ratio^(-w), ratio = exp(x)
    s = torch.exp(torch.as_tensor(x) / 4)
    out = relax_scaling(s, torch.exp(torch.as_tensor(x)), torch.tensor(omega, dtype=torch.float64))
    x_scaled = x + np.log(out.numpy()) - np.log(s.numpy())
    np.testing.assert_allclose(x_scaled, x_new, rtol=1e-9, atol=1e-9)
    # near the solution the relaxation is the requested one (up to the cap)
    zero = torch.zeros_like(target)
    small = relax_potential(zero + 1e-6 * eps, zero, torch.tensor(omega, dtype=torch.float64), eps)
    np.testing.assert_allclose((small / eps).numpy(), (1 - omega) * 1e-6, rtol=1e-9)


# ------------------------------------------------------------------------------------------------
# Fewer iterations, the same answer
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 3])
def test_acceleration_cuts_iterations_and_keeps_the_answer(seed):
    x, y = _clouds(seed, n=80, m=80)
    C = cost_matrix(x, y, p=2)
    plain = sinkhorn(None, None, C, 0.02, tol=1e-6, max_iter=100_000, **PLAIN)
    fast = sinkhorn(None, None, C, 0.02, tol=1e-6, max_iter=100_000)
    assert plain.converged and fast.converged
    assert fast.n_iter * 5 <= plain.n_iter
    span = float(C.max() - C.min())
    bound = (plain.marginal_error + fast.marginal_error) * span
    assert abs(float(fast.cost) - float(plain.cost)) <= bound
    assert abs(float(fast.objective) - float(plain.objective)) <= bound


def _small_matrix_problem(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(3, 12, 2)
    C = rng.random((n, m)) * rng.choice([1, 10])
    a, b = rng.random(n), rng.random(m)
    if seed % 2:
        a[0] = 0.0
    return a / a.sum(), b / b.sum(), C, float(rng.choice([0.3, 0.1, 0.03, 0.01]))


@pytest.mark.parametrize("seed", [5, 10, 16, 31, 53, 55])
def test_a_plateau_does_not_leave_the_relaxation_above_its_optimum(seed):
    # problems whose error first plateaus: rates measured there ratchet w towards 2, where the error
    # contracts like w - 1 = 0.995 per iteration; without the back-off above relaxation.BACKOFF_ABOVE these
    # took 1.8-7x plain Sinkhorn's iterations (e.g. seed 16: 3,210 against 460)
    a, b, C, eps = _small_matrix_problem(seed)
    plain = sinkhorn(a, b, C, eps, tol=1e-9, max_iter=100_000, **PLAIN)
    fast = sinkhorn(a, b, C, eps, tol=1e-9, max_iter=100_000, eps_scaling=None)
    assert plain.converged and fast.converged
    assert fast.n_iter <= plain.n_iter
    assert float(fast.cost) == pytest.approx(float(plain.cost), abs=1e-7 * float(C.max()))


@FAST
@given(st.integers(0, 10_000), st.integers(2, 12), st.integers(2, 12), st.floats(0.01, 1.0),
       st.sampled_from([1e-4, 1e-8]), st.sampled_from(["auto", 1.0, 1.5, 1.99]),
       st.sampled_from([None, "auto", 0.5, 0.1]), st.sampled_from([1, 3, 10]))
def test_acceleration_and_annealing_converge_to_the_plain_answer(seed, n, m, rel_eps, tol, acceleration,
                                                                   eps_scaling, check_every):
    rng = np.random.default_rng(seed)
    a, b = rng.random(n) + 0.05, rng.random(m) + 0.05
    a, b = a / a.sum(), b / b.sum()
    C = rng.random((n, m)) * rng.uniform(0.1, 10)
    span = float(C.max() - C.min())
    eps = rel_eps * max(span, 1e-3)
    ref = sinkhorn(a, b, C, eps, tol=tol, max_iter=200_000, check_every=1, **PLAIN)
    res = sinkhorn(a, b, C, eps, tol=tol, max_iter=200_000, acceleration=acceleration,
                   eps_scaling=eps_scaling, check_every=check_every)
    assert ref.converged and res.converged
    # the diagnostics are those of the returned pair, and converged means what it says
    assert res.marginal_error <= tol
    assert abs(_plan_error(res, a, b) - res.marginal_error) <= 1e-9
    bound = (ref.marginal_error + res.marginal_error) * span + 1e-10 * (span + eps)
    assert abs(res.objective - ref.objective) <= bound
    assert abs(res.cost - ref.cost) <= bound
    if eps_scaling is None:  # (annealing stages restart the count of checks)
        assert res.n_iter == 1 or res.n_iter % check_every == 0


@FAST
@given(st.integers(0, 10_000), st.integers(1, 60), st.sampled_from(["auto", 1.9, None]),
       st.sampled_from([None, 0.5]), st.sampled_from([1, 4, 10]))
def test_never_converged_above_tol_and_the_error_is_the_plans(seed, max_iter, acceleration, eps_scaling,
                                                              check_every):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(15, 2)), rng.normal(size=(12, 2)) + 1
    a, b = np.full(15, 1 / 15), np.full(12, 1 / 12)
    C = cost_matrix(x, y, p=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        res = sinkhorn(a, b, C, 0.01 * float(np.median(C)), tol=1e-9, max_iter=max_iter,
                       acceleration=acceleration, eps_scaling=eps_scaling, check_every=check_every)
    assert res.n_iter <= max_iter
    assert res.converged == (res.marginal_error <= 1e-9)
    if not res.converged:
        assert res.n_iter == max_iter
    # the returned potentials are measured at the target eps, annealing or not
    assert abs(_plan_error(res, a, b) - res.marginal_error) <= 1e-9 * max(1.0, res.marginal_error)


def test_iterates_do_not_depend_on_check_every():
    x, y = _clouds(1)
    C = cost_matrix(x, y, p=2)
    with pytest.warns(ConvergenceWarning):
        runs = [sinkhorn(None, None, C, 0.05, tol=1e-30, max_iter=60, check_every=k) for k in (1, 7, 10, 60)]
    for res in runs:
        assert res.n_iter == 60 and not res.converged
        torch.testing.assert_close(res.potentials[0], runs[0].potentials[0], rtol=0, atol=1e-12)
        assert res.marginal_error == pytest.approx(runs[0].marginal_error, rel=1e-9)


def test_check_every_stops_at_the_first_check_below_tol():
    x, y = _clouds(2)
    C = cost_matrix(x, y, p=2)
    every = sinkhorn(None, None, C, 0.05, tol=1e-8, check_every=1)
    sparse = sinkhorn(None, None, C, 0.05, tol=1e-8, check_every=25)
    assert sparse.n_iter % 25 == 0 and every.n_iter <= sparse.n_iter < every.n_iter + 25
    assert every.marginal_error <= 1e-8 and sparse.marginal_error <= 1e-8


# ------------------------------------------------------------------------------------------------
# Annealing
# ------------------------------------------------------------------------------------------------
def test_annealing_stages_run_to_their_tolerance_and_count_as_iterations():
    x, y = _clouds(4, n=60, m=50)
    C = cost_matrix(x, y, p=2)
    eps = 2e-3 * float(C.median())
    calls = []
    original = loop._Alternating._stage

    def spy(self, idx, eps_stage, tol, budget, out, kernel_first):
        calls.append(eps_stage)
        return original(self, idx, eps_stage, tol, budget, out, kernel_first)

    loop._Alternating._stage = spy
    try:
        res = sinkhorn(None, None, C, eps, tol=1e-7, eps_scaling=0.5, stage_tol=1e-2)
    finally:
        loop._Alternating._stage = original
    stages = loop.eps_schedule(eps, None, 0.5, float(C.max()))
    assert calls == stages + [eps]
    assert res.converged and res.n_iter >= len(stages) + 1
    plain = sinkhorn(None, None, C, eps, tol=1e-7, max_iter=200_000, **PLAIN)
    assert res.n_iter < plain.n_iter
    span = float(C.max() - C.min())
    assert abs(float(res.cost) - float(plain.cost)) <= (res.marginal_error + plain.marginal_error) * span


def test_auto_annealing_only_for_small_eps_and_never_with_a_warm_start():
    from otmetrics.transport.sinkhorn.options import AUTO_BELOW, schedule

    costs = (lambda: np.array([10.0, 100.0]))
    sched = schedule(AUTO_BELOW * 50, None, "auto", costs, False)
    assert list(sched.first) == [len(sched.values), 0]  # only the problem whose cost is large enough
    assert schedule(AUTO_BELOW * 50, None, "auto", costs, True).values == []
    assert schedule(AUTO_BELOW * 500, None, "auto", costs, False).values == []
    assert schedule(1.0, None, None, costs, False).values == []


# ------------------------------------------------------------------------------------------------
# Truncated kernels at small eps
# ------------------------------------------------------------------------------------------------
def test_truncated_kernel_at_small_eps_matches_the_log_domain(monkeypatch):
    # above kernel.ScalingKernel.SMALL entries: smaller problems run as one batched dense product
    x, y = _clouds(5, n=140, m=130)
    assert 140 * 130 >= kernel.ScalingKernel.SMALL
    C = cost_matrix(x, y, p=2)
    eps = 2e-3 * float(C.median())  # about 5% of the kernel's entries are kept
    built = []
    original = kernel.ScalingKernel.__init__

    def spy(self, *args, **kwargs):
        original(self, *args, **kwargs)
        built.append(self.sparse)

    monkeypatch.setattr(kernel.ScalingKernel, "__init__", spy)
    fast = sinkhorn(None, None, C, eps, tol=1e-10, eps_scaling=None)
    assert any(built)  # most entries of the kernel are negligible here
    monkeypatch.setattr(kernel, "SPARSE_DENSITY", 0.0)
    dense = sinkhorn(None, None, C, eps, tol=1e-10, eps_scaling=None)
    assert fast.converged and dense.converged
    span = float(C.max() - C.min())
    assert abs(float(fast.cost - dense.cost)) <= (fast.marginal_error + dense.marginal_error) * span + 1e-12
    a = np.full(140, 1 / 140)
    b = np.full(130, 1 / 130)
    assert abs(_plan_error(fast, a, b) - fast.marginal_error) <= 1e-12


# ------------------------------------------------------------------------------------------------
# No host synchronisation between checks
# ------------------------------------------------------------------------------------------------
_CONVERSIONS = ("item", "cpu", "numpy", "tolist", "__bool__", "__float__", "__int__", "__index__",
                "__array__")


def _count_conversions(monkeypatch, loop_name="alternating"):
    """Count every call of a tensor-to-host conversion inside the Sinkhorn loop ``loop.<loop_name>``."""
    counter = {"n": 0, "on": False}
    for name in _CONVERSIONS:
        original = getattr(torch.Tensor, name)

        def wrapped(self, *args, _original=original, **kwargs):
            if counter["on"]:
                counter["n"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, wrapped)
    original_loop = getattr(loop, loop_name)

    def counted(*args, **kwargs):
        counter["on"] = True
        try:
            return original_loop(*args, **kwargs)
        finally:
            counter["on"] = False

    monkeypatch.setattr(loop, loop_name, counted)
    return counter


@pytest.mark.parametrize("geometry", ["dense", "online"])
@pytest.mark.parametrize("acceleration", ["auto", None])
def test_host_synchronisations_happen_only_at_checks(monkeypatch, geometry, acceleration):
    x, y = _clouds(6, n=50, m=40)
    geom = PointCloud(x.float(), y.float(), online=geometry == "online")  # float32: no truncated kernels
    counter = _count_conversions(monkeypatch)
    kw = dict(tol=1e-30, max_iter=200, eps_scaling=None, acceleration=acceleration)
    with pytest.warns(ConvergenceWarning):
        res = sinkhorn(None, None, geom, 0.05, check_every=20, **kw)
    assert res.n_iter == 200
    checks = 1 + 200 // 20  # at the first iteration, then every 20
    assert counter["n"] <= checks + 2  # plus the largest cost, read once to choose the first iteration
    counter["n"] = 0
    with pytest.warns(ConvergenceWarning):
        sinkhorn(None, None, geom, 0.05, check_every=1, **kw)
    assert counter["n"] >= 200  # the counter sees the per-iteration checks


def test_symmetric_loop_synchronises_only_at_checks(monkeypatch):
    """The symmetric terms of sinkhorn_divergence run the same way: one host copy per check."""
    x, y = _clouds(8, n=40, m=30)
    x, y = x.float(), y.float()
    counter = _count_conversions(monkeypatch, "symmetric")
    with pytest.warns(ConvergenceWarning):
        sinkhorn_divergence(x, y, 0.05, tol=1e-30, max_iter=100, check_every=25, eps_scaling=None)
    calls = counter["n"]
    assert 0 < calls <= 2 * (1 + 100 // 25)  # two symmetric problems (x with x, y with y), a check each
    counter["n"] = 0
    with pytest.warns(ConvergenceWarning):
        sinkhorn_divergence(x, y, 0.05, tol=1e-30, max_iter=100, check_every=1, eps_scaling=None)
    assert counter["n"] >= 100


# ------------------------------------------------------------------------------------------------
# The divergence takes the same options
# ------------------------------------------------------------------------------------------------
def test_divergence_options_keep_the_value():
    x, y = _clouds(7, n=40, m=30)
    ref = sinkhorn_divergence(x, y, 0.05, tol=1e-11, check_every=1, **PLAIN)
    for kw in (dict(), dict(acceleration=1.8, check_every=3), dict(eps_scaling=0.5, stage_tol=0.1)):
        value = sinkhorn_divergence(x, y, 0.05, tol=1e-11, **kw)
        assert float(value) == pytest.approx(float(ref), rel=1e-8)


def test_relaxation_defaults_are_documented_constants():
    assert 1.0 < relaxation.OMEGA_MAX < 1.0 + np.sqrt(1.0 - ASCENT_FRACTION)
    assert relaxation.DAMPING >= 2
    assert 1.0 < relaxation.BACKOFF_ABOVE < relaxation.OMEGA_MAX and 0.0 < relaxation.BACKOFF_RATE <= 1.0
