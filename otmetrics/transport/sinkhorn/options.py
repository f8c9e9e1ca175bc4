"""The solver options of :func:`~otmetrics.sinkhorn`: annealing, acceleration, checks, and their defaults.

:func:`check_solver_options` validates them (a ``ValueError`` naming the argument) and :func:`schedule`
turns ``eps_scaling`` into the list of temperatures run before the target. The defaults were measured
(``benchmarks/bench_sinkhorn.py``, ``docs/benchmarks.md``):

- ``acceleration="auto"``: safeguarded over-relaxation with the factor estimated from the observed rate
  (:mod:`.relaxation`); it converges whenever plain Sinkhorn does, and never changes the answer.
- ``eps_scaling="auto"``: annealing by :data:`AUTO_FACTOR` per stage from the largest cost when ``eps`` is
  below :data:`AUTO_BELOW` times it and no ``init`` is given (a warm start is better than any schedule).
- ``stage_tol=None``: :data:`AUTO_STAGE_TOL` relative to the mass, or ``tol`` if it is larger.
- ``check_every=10``: one host synchronisation per 10 iterations.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .relaxation import check_acceleration

__all__ = ["SolverOptions", "check_solver_options", "scaling_factor", "schedule", "AUTO_FACTOR", "AUTO_BELOW",
           "AUTO_STAGE_TOL", "CHECK_EVERY"]

#: The temperature ratio between two stages of the automatic annealing.
AUTO_FACTOR = 0.5
#: Automatic annealing runs when ``eps < AUTO_BELOW * max cost``.
AUTO_BELOW = 3e-4
#: The default tolerance of the intermediate stages (relative to the mass, like ``tol``).
AUTO_STAGE_TOL = 1e-2
#: The default number of iterations between convergence checks.
CHECK_EVERY = 10


@dataclass(frozen=True)
class SolverOptions:
    """Validated options: ``eps_scaling`` (``"auto"``, None or a factor), ``stage_tol`` (relative, or None
    for the default), ``acceleration``, ``check_every``."""

    eps_scaling: object
    stage_tol: float | None
    acceleration: object
    check_every: int

    def stage_tolerance(self, tol: float) -> float:
        """The relative tolerance of the intermediate stages for the final tolerance ``tol``."""
        return max(tol, AUTO_STAGE_TOL if self.stage_tol is None else self.stage_tol)


def scaling_factor(eps_scaling):
    """``eps_scaling`` as a factor for ``check_options`` (which validates it), None for ``"auto"``."""
    return None if isinstance(eps_scaling, str) else eps_scaling


def check_solver_options(eps_scaling, stage_tol, acceleration, check_every) -> SolverOptions:
    """Validate the options (``eps_scaling`` may be ``"auto"``; a factor is checked by ``check_options``)."""
    if isinstance(eps_scaling, str) and eps_scaling != "auto":
        raise ValueError(f"eps_scaling: must be 'auto', None or a factor in (0, 1), got {eps_scaling!r}")
    if stage_tol is not None:
        if isinstance(stage_tol, bool) or not isinstance(stage_tol, numbers.Real) or not 0 < stage_tol < 1:
            raise ValueError(f"stage_tol: must be a relative tolerance in (0, 1) or None, got {stage_tol!r}")
        stage_tol = float(stage_tol)
    if isinstance(check_every, bool) or not isinstance(check_every, numbers.Integral) or check_every < 1:
        raise ValueError(f"check_every: must be a positive integer, got {check_every!r}")
    return SolverOptions(eps_scaling, stage_tol, check_acceleration(acceleration), int(check_every))


def schedule(eps: float, eps_init: float | None, eps_scaling, max_costs, init_given: bool):
    """The annealing stages before ``eps``, a :class:`~.loop.Schedule`: the temperatures
    ``eps / factor^k`` down to ``eps / factor``, each problem starting at the first one at or above its
    ``eps_init`` (default: its largest cost, from the callable ``max_costs``). Per problem, so that a problem
    of a batch runs as it runs alone."""
    from .loop import Schedule, stage_count

    if eps_scaling is None or (eps_scaling == "auto" and init_given):
        return Schedule([])
    factor = AUTO_FACTOR if eps_scaling == "auto" else float(eps_scaling)
    tops = np.asarray(max_costs(), dtype=np.float64)
    if eps_init is not None:
        tops = np.full_like(tops, eps_init)
    count = stage_count(eps, tops, factor)
    if eps_scaling == "auto":
        count = np.where(eps < AUTO_BELOW * tops, count, 0)
    most = int(count.max()) if count.size else 0
    values = [eps * factor ** (-k) for k in range(most, 0, -1)]
    return Schedule(values, most - count)
