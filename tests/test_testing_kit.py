"""The public test kit: its strategies draw valid problems and its assertions can fail."""

import numpy as np
import pytest
from hypothesis import given, settings

import otmetrics
from otmetrics.testing import (
    OTProblem,
    assert_complementary_slackness,
    assert_dual_feasible,
    assert_marginals,
    assert_metric_axioms,
    assert_optimal,
    assert_strong_duality,
    assert_weak_duality,
    cost_matrices,
    histograms,
    ot_problems,
    point_clouds,
    problem_batches,
    sample_pairs,
)

C = np.array([[0.0, 1.0], [1.0, 0.0]])
HALF = np.array([0.5, 0.5])


@settings(max_examples=40, deadline=None)
@given(histograms(), cost_matrices(), point_clouds(), sample_pairs(), ot_problems(p=1), problem_batches())
def test_strategies_draw_valid_data(h, c, pc, pair, problem, batch):
    assert h.ndim == 1 and np.all(h >= 0) and h.sum() == pytest.approx(1.0) and h.max() > 0
    assert c.ndim == 2 and np.all(np.isfinite(c)) and np.all(c >= 0)
    assert pc.ndim == 2 and np.all(np.isfinite(pc))
    assert pair[0].shape[1] == pair[1].shape[1]
    assert isinstance(problem, OTProblem)
    assert problem.cost.shape == (len(problem.a), len(problem.b))
    if problem.x is not None:
        np.testing.assert_allclose(problem.cost, otmetrics.cost_matrix(problem.x, problem.y, p=problem.p))
    assert batch.cost.shape == (len(batch.a), batch.a.shape[1], batch.b.shape[1])


def test_histograms_respect_mass_and_zeros():
    @settings(max_examples=30, deadline=None)
    @given(histograms(6, mass=3.0, allow_zeros=False))
    def check(h):
        assert h.sum() == pytest.approx(3.0) and np.all(h > 0)

    check()


def test_assertions_pass_on_an_optimal_solution():
    res = otmetrics.emd(HALF, HALF, C)
    assert_optimal(res, HALF, HALF, C)
    assert_marginals(res.plan, HALF, HALF)
    assert_dual_feasible(C, *res.potentials)
    assert_complementary_slackness(res.plan, C, *res.potentials)
    assert_strong_duality(HALF, HALF, C, res.plan, *res.potentials)
    assert_weak_duality(HALF, HALF, C, *res.potentials, res.cost)


def test_assertions_fail_on_wrong_answers():
    swap = np.array([[0.0, 0.5], [0.5, 0.0]])  # feasible, not optimal (cost 1)
    with pytest.raises(AssertionError, match="marginals are off"):
        assert_marginals(np.eye(2), HALF, HALF)
    with pytest.raises(AssertionError, match="negative entry"):
        assert_marginals(np.array([[1.0, -0.5], [-0.5, 1.0]]), HALF, HALF)
    with pytest.raises(AssertionError, match="not dual feasible"):
        assert_dual_feasible(C, [1.0, 0.0], [0.5, 0.0])
    with pytest.raises(AssertionError, match="complementary slackness"):
        assert_complementary_slackness(swap, C, [0.0, 0.0], [0.0, 0.0])
    with pytest.raises(AssertionError, match="duality gap too large"):
        assert_strong_duality(HALF, HALF, C, swap, [0.0, 0.0], [0.0, 0.0])
    with pytest.raises(AssertionError, match="weak duality fails"):
        assert_weak_duality(HALF, HALF, C, [0.0, 0.0], [0.0, 0.0], -1.0)

    class Fake:
        plan, potentials, cost = swap, (np.zeros(2), np.zeros(2)), 1.0

    with pytest.raises(AssertionError):
        assert_optimal(Fake(), HALF, HALF, C)


def test_metric_axioms_catch_non_metrics():
    pts = [np.array([0.0]), np.array([1.0]), np.array([2.0])]
    assert_metric_axioms(lambda x, y: float(np.abs(x - y).sum()), pts)
    with pytest.raises(AssertionError, match="triangle inequality"):
        assert_metric_axioms(lambda x, y: float(((x - y) ** 2).sum()), pts)  # squared distance
    with pytest.raises(AssertionError, match="symmetry"):
        assert_metric_axioms(lambda x, y: float(np.maximum(x - y, 0).sum() * 2 + np.maximum(y - x, 0).sum()), pts)
    with pytest.raises(AssertionError, match="identity"):
        assert_metric_axioms(lambda x, y: 1.0, pts)


def test_ot_problems_rejects_an_unknown_kind():
    with pytest.raises(ValueError, match="^kind: must be"):
        ot_problems(kind="graph", p=1)
