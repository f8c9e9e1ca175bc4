"""``validate``: a critic's estimate of W1 beside the exact EMD of the same samples.

The exact value is :func:`otmetrics.transport.exact.wasserstein` with ``p=1`` (the Euclidean ground
cost, network simplex, certified optimal): the one place where the critic uses the transport wing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._core.arrays import to_numpy
from .._core.deprecation import renamed_arguments
from .._core.rounding import gamma
from ..transport.exact import wasserstein
from .estimate import CriticEstimate, estimate_w1
from .samples import as_float64, empirical_measures, weight_tensor

__all__ = ["CriticValidation", "validate"]


@dataclass(frozen=True)
class CriticValidation:
    """A critic estimate beside the exact EMD of the same samples.

    Attributes
    ----------
    estimate : CriticEstimate
    exact : float
        The exact W1 (``otmetrics.wasserstein``, network simplex, certified optimal).
    ratio : float or None
        ``estimate.value / exact`` (``None`` when ``exact == 0``).
    certified_ratio : float or None
        ``estimate.certified / exact`` (``None`` when ``exact == 0``).
    bound_held : bool
        ``estimate.certified <= exact (1 + 1e-9)``: the certified bound held, up to the exact
        solver's relative rounding (a relative tolerance only, so that it means the same in every
        unit; for ``exact == 0`` it requires ``certified == 0``).

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics.critic import validate
    >>> x = np.linspace(0.0, 1.0, 50)
    >>> report = validate(x, x + 2.0, steps=100, width=16, depth=1, n_threads=1)
    >>> round(report.exact, 12), report.bound_held, round(report.certified_ratio, 3)
    (2.0, True, 1.0)
    """

    estimate: CriticEstimate
    exact: float
    ratio: float | None
    certified_ratio: float | None
    bound_held: bool

    def summary(self) -> str:
        """One line: method, value, certified bound, exact value and ratios."""
        e = self.estimate
        ratios = ("" if self.ratio is None
                  else f" (ratio {self.ratio:.4f}, certified {self.certified_ratio:.4f})")
        return (f"{e.method}: value {e.value:.6g}, certified {e.certified:.6g}, exact {self.exact:.6g}"
                f"{ratios}, Lipschitz bound {e.lipschitz_bound:.4g}, bound held: {self.bound_held}")


@renamed_arguments(num_threads="n_threads")
def validate(x, y, *, a=None, b=None, estimate: CriticEstimate | None = None,
             **options: Any) -> CriticValidation:
    """Estimate W1 with a critic and compare with the exact EMD of the same samples.

    The exact value is ``otmetrics.wasserstein(x, y, a=a, b=b, p=1)`` (Euclidean ground cost,
    network simplex, certified optimal); the comparison reports both, their ratio and whether the
    certified lower bound held: ``certified <= exact (1 + 1e-9)``.

    Parameters
    ----------
    x, y : array-like or tensor, shapes ``(n, d)`` and ``(m, d)``
    a, b : array-like, optional
        Non-negative weights of the samples (normalised to 1); uniform when omitted.
    estimate : CriticEstimate, optional
        An estimate already computed on these samples and weights (otherwise one is trained). It
        is checked against them: its critic's dimension, its numbers of samples, and its
        ``value``, recomputed from its critic on ``x``, ``y`` with ``a``, ``b`` (a permutation of
        the samples gives the same measures and passes).
    **options
        Passed to :func:`estimate_w1` (``method``, ``steps``, ``seed``, ``n_threads``, ...; the
        deprecated ``num_threads`` is read as ``n_threads``, with a ``DeprecationWarning``).

    Returns
    -------
    CriticValidation

    Raises
    ------
    ValueError
        Bad samples or weights (as :func:`estimate_w1`); ``options`` beside an ``estimate``; an
        ``estimate`` that was not computed on these samples and weights.

    Notes
    -----
    The exact solver costs roughly ``O(n^3)`` for ``n = m``: a few seconds at ``n = 2000``.
    Checking a given estimate costs one evaluation of its critic on the samples.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics.critic import validate
    >>> rng = np.random.default_rng(1)
    >>> report = validate(rng.normal(size=(100, 1)), rng.normal(2.0, 1.0, size=(100, 1)), steps=100,
    ...                   n_threads=1)
    >>> report.bound_held, report.certified_ratio > 0.99
    (True, True)
    """
    X, Y, wa, wb = empirical_measures(x, y, a, b)
    if estimate is None:
        estimate = estimate_w1(x, y, a=a, b=b, **options)
    elif options:
        raise ValueError(f"options: not used when an estimate is given, got {sorted(options)}")
    elif not isinstance(estimate, CriticEstimate):
        raise ValueError(f"estimate: must be a CriticEstimate, got {type(estimate).__name__}")
    else:
        _check_estimate_matches(estimate, X, Y, wa, wb)
    exact = float(wasserstein(to_numpy(X, "x"), to_numpy(Y, "y"), a=wa, b=wb, p=1))
    ratio = estimate.value / exact if exact > 0 else None
    certified_ratio = estimate.certified / exact if exact > 0 else None
    # relative only: the exact value is computed to relative rounding (non-negative terms, distances
    # by differences), so an absolute floor would make the check vacuous in small units
    held = estimate.certified <= exact * (1.0 + 1e-9)
    return CriticValidation(estimate=estimate, exact=exact, ratio=ratio, certified_ratio=certified_ratio,
                            bound_held=bool(held))


def _check_estimate_matches(estimate: CriticEstimate, X, Y, wa, wb) -> None:
    """Refuse an estimate computed on other samples or weights than ``X``, ``Y``, ``wa``, ``wb``."""
    critic = estimate.critic
    n, m = X.shape[0], Y.shape[0]
    if critic.dim != X.shape[1]:
        raise ValueError(f"estimate: its critic takes points of dimension {critic.dim}, got samples of "
                         f"dimension {X.shape[1]}")
    if tuple(estimate.n_samples) != (n, m):
        raise ValueError(f"estimate: computed on {estimate.n_samples[0]} and {estimate.n_samples[1]} "
                         f"samples, got {n} and {m}")
    device = critic.device
    ta, tb = weight_tensor(wa, n, device), weight_tensor(wb, m, device)
    fx, fy = critic.evaluate(as_float64(X, device)), critic.evaluate(as_float64(Y, device))
    value = float((ta * fx).sum() - (tb * fy).sum())
    # both values are sums of the same terms, possibly in another order (permuted samples) and with
    # weights normalised from other floats: they agree to the rounding of the sums
    magnitude = float((ta * fx.abs()).sum() + (tb * fy.abs()).sum())
    tolerance = 4 * gamma(4 * (n + m) + 4) * magnitude + 1e-300
    if not abs(value - estimate.value) <= tolerance:
        raise ValueError(f"estimate: its value {estimate.value!r} is not the objective of its critic "
                         f"on these samples and weights ({value!r}): it was computed on other samples "
                         f"or weights")
