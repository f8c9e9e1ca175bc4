"""otmetrics: optimal-transport and divergence metrics.

Exact EMD with certified duals, 1-D closed forms, batched log-domain Sinkhorn, KL/JS/TV,
and the generative-model metrics (FID, KID, MMD, Inception Score). The public API is flat:
everything below is importable as ``otmetrics.<name>``.
"""

from __future__ import annotations

from ._warnings import ConvergenceWarning, NumericalWarning, OTMetricsWarning
from .costs import PointCloud, cost_matrix, pairwise_distances

# -- exact transport (issue: foundation) --------------------------------------------------------
# -- sinkhorn (issue: batched Sinkhorn) ----------------------------------------------------------
# -- generative metrics (issue: FID/KID/IS) -------------------------------------------------------

__version__ = "0.1.0"

__all__ = [
    "ConvergenceWarning",
    "NumericalWarning",
    "OTMetricsWarning",
    "PointCloud",
    "cost_matrix",
    "pairwise_distances",
]
