"""The module paths of otmetrics 0.1, importable for one more release.

Until 0.2 the package was one flat folder (``otmetrics.costs``, ``otmetrics.kernels``,
``otmetrics.inception``, ...). Those paths keep working: each is a small stand-in module,
registered in ``sys.modules`` when otmetrics is imported, that finds every name in the module(s)
that hold it now, imports them on first use (so ``import otmetrics`` still does not import torch),
and emits a ``DeprecationWarning`` that names the new place. ``from otmetrics.kernels import mmd``,
``import otmetrics.inception as inc; inc.FIDInceptionV3`` and unpickling objects saved under the
old paths all work. New code imports from ``otmetrics`` (the flat public API) or from the new
module (see ``docs/architecture.md``).
"""

from __future__ import annotations

import importlib
import sys
import types
import warnings

__all__ = ["LEGACY_MODULES", "install"]

#: Old module path -> the modules that hold its names now, searched in order.
LEGACY_MODULES: dict[str, tuple[str, ...]] = {
    "otmetrics.costs": ("otmetrics.transport.costs",),
    "otmetrics.exact": ("otmetrics.transport.exact",),
    "otmetrics.certificate": ("otmetrics.transport.certificate",),
    "otmetrics.oned": ("otmetrics.transport.oned",),
    "otmetrics.sinkhorn": ("otmetrics.transport.sinkhorn.api",),
    "otmetrics.softmin": ("otmetrics.transport.sinkhorn.softmin",),
    "otmetrics.gaussian": ("otmetrics.generative.gaussian",),
    "otmetrics.kernels": ("otmetrics.generative.kernels",),
    "otmetrics.inception_score": ("otmetrics.generative.inception_score",),
    "otmetrics.metrics": ("otmetrics.generative.metrics",),
    "otmetrics.inception": ("otmetrics.generative.features.preprocess",
                            "otmetrics.generative.features.weights",
                            "otmetrics.generative.features.inception_weights",
                            "otmetrics.generative.features.inception"),
    "otmetrics.images": ("otmetrics.generative.features.images",),
}


class LegacyModule(types.ModuleType):
    """A stand-in for a moved module: attribute lookups go to the modules that hold the names now."""

    def __init__(self, name: str, targets: tuple[str, ...]):
        super().__init__(name, f"Deprecated: the names of this module moved to {', '.join(targets)}.")
        self.__targets = targets

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr != "__all__":
            raise AttributeError(attr)
        targets = self.__targets
        if attr == "__all__":
            names: list[str] = []
            for target in targets:
                names += [n for n in getattr(importlib.import_module(target), "__all__", ()) if n not in names]
            return names
        for target in targets:
            module = importlib.import_module(target)
            if hasattr(module, attr):
                warnings.warn(
                    f"{self.__name__} is deprecated and will be removed in otmetrics 0.3; import {attr} from "
                    f"otmetrics or from {module.__name__}", DeprecationWarning, stacklevel=2)
                return getattr(module, attr)
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self.__getattr__("__all__")))


def install() -> None:
    """Register the stand-ins in ``sys.modules`` (idempotent; imports none of the targets)."""
    for name, targets in LEGACY_MODULES.items():
        if name not in sys.modules:
            sys.modules[name] = LegacyModule(name, targets)
