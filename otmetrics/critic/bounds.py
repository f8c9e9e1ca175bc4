"""Deprecated module path: the names of ``otmetrics.critic.bounds`` live in two modules now.

This module held two concepts: what is proven about a network (:func:`spectral_norm_bound`,
:func:`lipschitz_bound`, :class:`FrozenCritic`, now in :mod:`otmetrics.critic.lipschitz`) and the
certified dual bounds on W1 built by c-transforms of any potential (:func:`dual_lower_bound`,
:class:`DualBound`, :func:`best_scale`, now in :mod:`otmetrics.critic.dual`). Its names keep
working for one more release, with a ``DeprecationWarning`` that names the new place; import them
from :mod:`otmetrics.critic`.
"""

from __future__ import annotations

import importlib

from .._core.deprecation import warn_deprecated

# each name of the old module -> the module of otmetrics.critic that holds it now
_MOVED = {
    "spectral_norm_bound": "lipschitz",
    "lipschitz_bound": "lipschitz",
    "FrozenCritic": "lipschitz",
    "DualBound": "dual",
    "dual_lower_bound": "dual",
    "best_scale": "dual",
    "as_float64": "samples",
}

# the old __all__, for ``from otmetrics.critic.bounds import *`` (resolved by __getattr__, with the warning)
__all__ = [  # noqa: F822
    "spectral_norm_bound", "lipschitz_bound", "FrozenCritic", "dual_lower_bound", "DualBound",
]


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__package__}.{_MOVED[name]}")
    warn_deprecated(f"{__name__}.{name} moved to {module.__name__}; import it from {module.__name__}"
                    + (" or otmetrics.critic" if name in __all__ else ""))
    return getattr(module, name)
