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
    """Base class of every warning emitted by otmetrics.

    Examples
    --------
    Silence all of them, or make them errors, with the standard filters:

    >>> import warnings, otmetrics
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", otmetrics.OTMetricsWarning)
    ...     otmetrics.emd([1.0], [1.0], [[0.0]]).cost
    0.0
    """


class ConvergenceWarning(OTMetricsWarning):
    """An iterative solver did not reach its tolerance; the result is flagged ``converged=False``.

    Examples
    --------
    >>> import warnings, numpy as np, otmetrics
    >>> x = np.random.default_rng(0).normal(size=(60, 2))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     res = otmetrics.emd(None, None, otmetrics.PointCloud(x, x[::-1] + 1), max_iter=5)
    >>> res.converged, caught[0].category.__name__
    (False, 'ConvergenceWarning')
    """


class NumericalWarning(OTMetricsWarning):
    """A numerically degraded but finite result (e.g. a singular covariance matrix).

    Examples
    --------
    >>> import warnings, numpy as np, otmetrics
    >>> x = np.random.default_rng(0).normal(size=(3, 5))   # 3 samples in 5-D: a singular covariance
    >>> s = otmetrics.GaussianStats.from_features(x)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     value = otmetrics.frechet_distance(s.mean, s.cov, s.mean, s.cov)
    >>> abs(value) < 1e-6, caught[0].category.__name__
    (True, 'NumericalWarning')
    """
