"""Property-based verification of optimal transport, for your own test suites.

``otmetrics.testing`` gives hypothesis strategies that draw transport problems and assertions that
check what optimality means — primal feasibility, dual feasibility, strong and weak duality,
complementary slackness, metric axioms — from the numbers, independently of any solver's claims, and
whether proven bounds hold (a bracket contains a value; bounds contain the exact value of the LP).

Example
-------
.. code-block:: python

    from hypothesis import given
    import otmetrics
    from otmetrics.testing import ot_problems, assert_optimal

    @given(ot_problems(max_n=8, max_m=8, p=2))
    def test_my_solver(problem):
        result = otmetrics.emd(problem.a, problem.b, problem.cost)
        assert_optimal(result, problem.a, problem.b, problem.cost)

The strategies need ``hypothesis`` (``pip install otmetrics[testing]``); the assertions do not.
"""

from .assertions import (
    assert_bracket_contains,
    assert_complementary_slackness,
    assert_dual_feasible,
    assert_marginals,
    assert_metric_axioms,
    assert_optimal,
    assert_strong_duality,
    assert_valid_bounds,
    assert_weak_duality,
)

__all__ = [
    "assert_bracket_contains",
    "assert_valid_bounds",
    "assert_complementary_slackness",
    "assert_dual_feasible",
    "assert_marginals",
    "assert_metric_axioms",
    "assert_optimal",
    "assert_strong_duality",
    "assert_weak_duality",
    "OTProblem",
    "histograms",
    "cost_matrices",
    "point_clouds",
    "sample_pairs",
    "ot_problems",
    "problem_batches",
]


def __getattr__(name):
    # The strategies import hypothesis; load them only when asked for.
    if name in {"OTProblem", "histograms", "cost_matrices", "point_clouds", "sample_pairs", "ot_problems",
                "problem_batches"}:
        from . import strategies

        return getattr(strategies, name)
    raise AttributeError(f"module 'otmetrics.testing' has no attribute {name!r}")
