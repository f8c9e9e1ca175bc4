"""otmetrics: optimal-transport and divergence metrics.

Exact EMD with certified duals, 1-D closed forms, batched log-domain Sinkhorn, KL/JS/TV,
and the generative-model metrics (FID, KID, MMD, Inception Score). The public API is flat:
everything below is importable as ``otmetrics.<name>``.
"""

from __future__ import annotations

import types as _types

from ._warnings import ConvergenceWarning, NumericalWarning, OTMetricsWarning
from .costs import PointCloud, cost_matrix, pairwise_distances

# -- exact transport, 1-D, divergences (foundation) ----------------------------------------------
from .certificate import Certificate, c_transform, certify, dual_value
from .exact import OTResult, emd, wasserstein
from .divergences import entropy, js_distance, js_divergence, kl_divergence, total_variation
from .oned import wasserstein_1d

# -- Sinkhorn (entropic OT) ---------------------------------------------------------------------
from .sinkhorn import SinkhornResult, sinkhorn, sinkhorn_divergence

# -- generative-model metrics: mathematics and streaming objects ------------------------------------
from .gaussian import GaussianStats, frechet_distance
from .inception_score import inception_score
from .kernels import kid, mmd
from .metrics import FID, KID, MMD, InceptionScore

# -- generative-model metrics: features (InceptionV3, images) ---------------------------------------
from .inception import FIDInceptionV3
from .images import image_features, iter_image_features

# -- critic (lives in otmetrics.critic; nothing flat but the module) -------------------------------
from . import critic  # noqa: E402,F401  (estimate_w1, validate, ...: otmetrics.critic.*)


__version__ = "0.1.0"

# The public names: everything imported above that is not private and not a submodule.
__all__ = sorted(
    _name for _name, _value in list(globals().items())
    if not _name.startswith("_") and not isinstance(_value, _types.ModuleType) and _name != "annotations"
)
