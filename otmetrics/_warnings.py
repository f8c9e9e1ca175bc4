"""Warning classes of otmetrics, so that users can filter them by category.

Every warning the package emits derives from :class:`OTMetricsWarning`:

- :class:`ConvergenceWarning`: an iterative solver stopped before its tolerance held
  (an iteration cap, an unverified certificate).
- :class:`NumericalWarning`: the result is finite but degraded (singular covariances,
  clipped negative eigenvalues, float32 accumulation, ...).
"""

from __future__ import annotations

__all__ = ["OTMetricsWarning", "ConvergenceWarning", "NumericalWarning"]


class OTMetricsWarning(UserWarning):
    """Base class of every warning emitted by otmetrics."""


class ConvergenceWarning(OTMetricsWarning):
    """An iterative solver did not reach its tolerance; the result is flagged ``converged=False``."""


class NumericalWarning(OTMetricsWarning):
    """A numerically degraded but finite result (e.g. a singular covariance matrix)."""
