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
    "otmetrics.gaussian": ("otmetrics.generative.frechet", "otmetrics.generative.gaussian"),
    # mmd and kid first: generative.kernels still resolves their names too, the warning should name
    # the modules that define them.
    "otmetrics.kernels": ("otmetrics.generative.mmd", "otmetrics.generative.kid",
                          "otmetrics.generative.kernels"),
    "otmetrics.inception_score": ("otmetrics.generative.inception_score",),
    "otmetrics.metrics": ("otmetrics.generative.metrics", "otmetrics.generative.streaming"),
    "otmetrics.inception": ("otmetrics.generative.features.preprocess",
                            "otmetrics.generative.features.weights",
                            "otmetrics.generative.features.inception_weights",
                            "otmetrics.generative.features.inception"),
    "otmetrics.images": ("otmetrics.generative.features.images",),
    "otmetrics.critic.bounds": ("otmetrics.critic.lipschitz", "otmetrics.critic.dual",
                                "otmetrics.critic.samples"),
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
        modules = [importlib.import_module(target) for target in targets]
        # the module that exports the name (its __all__), else the first that has it
        home = next((m for m in modules if attr in getattr(m, "__all__", ())), None)
        home = home or next((m for m in modules if hasattr(m, attr)), None)
        if home is not None:
            value = getattr(home, attr)
            warnings.warn(f"{self.__name__} is deprecated and will be removed in otmetrics 0.3; import {attr} "
                          f"from {_public_home(home, attr, value)}", DeprecationWarning, stacklevel=2)
            return value
        raise AttributeError(f"module {self.__name__!r} has no attribute {attr!r}")

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self.__getattr__("__all__")))


def _public_home(module, attr: str, value) -> str:
    """Where to import ``attr`` from now: the flat API, else its package, else its module."""
    names = [module.__name__]
    parts = module.__name__.split(".")
    names += [".".join(parts[:k]) for k in range(len(parts) - 1, 0, -1)]
    for name in reversed(names):  # otmetrics first, then the subpackages, then the module itself
        package = sys.modules.get(name)
        if package is not None and attr in getattr(package, "__all__", ()) and getattr(package, attr, None) is value:
            return name if name == module.__name__ else f"{name} (or {module.__name__})"
    return module.__name__


def install() -> None:
    """Register the stand-ins in ``sys.modules`` (idempotent; imports none of the targets)."""
    for name, targets in LEGACY_MODULES.items():
        if name not in sys.modules:
            sys.modules[name] = LegacyModule(name, targets)
