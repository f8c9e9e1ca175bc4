"""otmetrics: optimal-transport and divergence metrics.

Exact EMD with certified duals, 1-D closed forms, batched log-domain Sinkhorn, KL/JS/TV,
and the generative-model metrics (FID, KID, MMD, Inception Score; FD on any extractor, CMMD,
precision/recall/density/coverage, FD-infinity). The public API is flat:
everything below is importable as ``otmetrics.<name>``.

Names whose modules need torch at import time (the InceptionV3, image folders, the critic) are
loaded on first use, and the other modules import torch inside the functions that use it, so that
``import otmetrics`` stays cheap for numpy-only work: torch is imported when it is needed.
"""

from __future__ import annotations

import importlib as _importlib
import sys as _sys
from typing import TYPE_CHECKING as _TYPE_CHECKING

from ._core.warnings import ConvergenceWarning, NumericalWarning, OTMetricsWarning
from .transport.costs import PointCloud, cost_matrix, pairwise_distances

# -- exact transport, 1-D, divergences (foundation) ----------------------------------------------
from .transport.certificate import Certificate, c_transform, certify, dual_value
from .transport.exact import OTResult, emd, wasserstein
from .transport.certified import Bracket, certified_wasserstein
from .transport.results import TransportResult
from .divergences import entropy, js_distance, js_divergence, kl_divergence, total_variation
from .transport.oned import wasserstein_1d
from .transport.sliced import random_projections, sliced_wasserstein
from .transport.max_sliced import MaxSlicedResult, max_sliced_wasserstein
from .transport.energy import energy_distance

# -- Sinkhorn (entropic OT) ---------------------------------------------------------------------
from .transport.sinkhorn.api import SinkhornResult, sinkhorn, sinkhorn_divergence

# -- generative-model metrics: mathematics and streaming objects ------------------------------------
from .generative.frechet import frechet_distance
from .generative.gaussian import GaussianStats
from .generative.inception_score import inception_score
from .generative.kid import kid
from .generative.metrics import FID, KID, MMD, InceptionScore
from .generative.fd_metrics import FD, FDInfinity
from .generative.row_metrics import CMMD, PRDC
from .generative.mmd import mmd
from .generative.prdc import PRDCResult, prdc
from .generative.cmmd import cmmd
from .generative.fd_infinity import FDInfinityResult, fd_infinity

# -- loaded on first use: name -> module ------------------------------------------------------------
# (no lazy name may equal a submodule's name: importing the submodule would shadow it)
_LAZY = {
    # generative-model metrics: features (InceptionV3, images)
    "FIDInceptionV3": "generative.features.inception",
    "DINOv2": "generative.features.dinov2",
    "CLIPImageEncoder": "generative.features.clip",
    "image_features": "generative.features.images",
    "iter_image_features": "generative.features.images",
    # the torchmetrics adapter (torchmetrics is an optional dependency)
    "TorchMetricsAdapter": "generative.adapters.torchmetrics_adapter",
}
if _TYPE_CHECKING:  # for type checkers and the API documentation (static analysis)
    from . import critic, demo, testing
    from .generative.features.images import image_features, iter_image_features
    from .generative.features.inception import FIDInceptionV3
    from .generative.adapters.torchmetrics_adapter import TorchMetricsAdapter
    from .generative.features.dinov2 import DINOv2
    from .generative.features.clip import CLIPImageEncoder

# Submodules reachable as attributes (otmetrics.critic.estimate_w1, ...).
_LAZY_MODULES = ("critic", "testing", "demo")

__version__ = "0.1.0"

# The module paths of 0.1 (otmetrics.kernels, otmetrics.inception, ...) keep working for one release.
from ._core import legacy as _legacy  # noqa: E402

_legacy.install()


def __getattr__(name: str):
    legacy = f"{__name__}.{name}"
    if legacy in _legacy.LEGACY_MODULES and name not in globals():
        return _sys.modules[legacy]  # an old module path (otmetrics.kernels, ...): see _core/legacy.py
    if name in _LAZY:
        value = getattr(_importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _LAZY_MODULES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'otmetrics' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | set(_LAZY_MODULES))


# The public names: the eager imports above (not private, not modules) and the lazy ones.
__all__ = sorted(
    {_name for _name, _value in list(globals().items())
     if not _name.startswith("_") and not isinstance(_value, type(_importlib)) and _name != "annotations"}
    | set(_LAZY)
)
