r"""FD-infinity: the Fréchet distance extrapolated to an infinite number of generated samples.

The Fréchet distance of ``N`` generated samples is biased upwards by a term that decays like
``1/N`` (Chong and Forsyth, 2020): :func:`fd_infinity` evaluates it on random subsets of growing
size, fits a line in ``1/N`` and reports its intercept, as dgm-eval's ``compute_FD_infinity``
does, with a seed.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core.arrays import as_like, first_tensor
from .._core.validation import validate_positive
from .._core.warnings import NumericalWarning
from .frechet import frechet_distance
from .gaussian import GaussianStats
from .kernels import as_samples_tensor

__all__ = ["fd_infinity", "FDInfinityResult", "fd_infinity_sizes", "validate_options"]


@dataclass(frozen=True)
class FDInfinityResult:
    """The result of :func:`fd_infinity`.

    Attributes
    ----------
    value : float or torch.Tensor
        FD-infinity: the intercept at ``1/N = 0`` of the least-squares line through the points
        ``(1/N, FD_N)``.
    n : numpy.ndarray of int64
        The subset sizes ``N``.
    fd : numpy.ndarray of float64
        ``FD_N`` for each size: the Fréchet distance between a random subset of ``N`` generated
        samples and the full real statistics.
    slope : float
        The slope of the line: the estimated bias ``FD_N - FD_inf ~ slope / N``.
    """

    value: Any
    n: np.ndarray
    fd: np.ndarray
    slope: float


def fd_infinity_sizes(n: int, num_points: int = 15) -> np.ndarray:
    """The subset sizes of dgm-eval's protocol: ``num_points`` sizes evenly spaced from
    ``min(5000, max(n // 10, 2))`` to ``n``, truncated to integers.

    Examples
    --------
    >>> fd_infinity_sizes(50_000, 5).tolist()
    [5000, 16250, 27500, 38750, 50000]
    >>> fd_infinity_sizes(1000, 4).tolist()
    [100, 400, 700, 1000]
    """
    return np.linspace(min(5000, max(n // 10, 2)), n, num_points).astype(np.int64)


def validate_options(num_points, seed) -> None:
    """Check the options of :func:`fd_infinity`: ``num_points`` an integer ``>= 2``, ``seed`` an
    integer ``>= 0``; a ``ValueError`` naming the argument otherwise.

    Examples
    --------
    >>> validate_options(1, 0)
    Traceback (most recent call last):
    ...
    ValueError: num_points: must be an integer >= 2 (a line needs two points), got 1
    """
    validate_positive(num_points, "num_points", integer=True)
    if num_points < 2:
        raise ValueError(f"num_points: must be an integer >= 2 (a line needs two points), got {num_points!r}")
    validate_positive(seed, "seed", allow_zero=True, integer=True)


def fd_infinity(real, fake, *, num_points: int = 15, seed: int = 0) -> FDInfinityResult:
    r"""FD-infinity: the Fréchet distance of the generated features extrapolated to
    :math:`N \to \infty` generated samples.

    With :math:`\mathrm{FD}_N` the Fréchet distance (:func:`otmetrics.frechet_distance`) between
    the Gaussian statistics of ``N`` generated samples drawn at random without replacement and
    those of all real samples, :math:`\mathrm{FD}_N \approx \mathrm{FD}_\infty + c / N`
    (Chong and Forsyth, 2020). The line is fitted by least squares to ``num_points`` sizes
    ``N`` evenly spaced from ``min(5000, n / 10)`` to ``n`` (:func:`fd_infinity_sizes`) and its
    intercept is returned: dgm-eval's ``compute_FD_infinity`` (used for FD_DINOv2-infinity by
    Stein et al. 2023), whose draws are not seeded; here they come from
    ``numpy.random.default_rng(seed).choice(n, N, replace=False)`` for each ``N`` in turn, which
    are the rows dgm-eval draws from an identically seeded generator.

    Parameters
    ----------
    real : array-like or tensor, shape (n_real, d), or GaussianStats
        Real features, or their statistics (e.g. ``GaussianStats.load("real.npz")``): only their
        mean and covariance are used.
    fake : array-like or tensor, shape (n, d)
        Generated features (at least 2 rows; the subsets need the rows themselves).
    num_points : int, default 15
        Number of subset sizes (at least 2).
    seed : int, default 0
        Seeds the subsets.

    Returns
    -------
    FDInfinityResult
        ``value`` (a Python float for array input, a 0-d tensor on ``fake``'s device in its dtype
        for tensor input), the sizes ``n``, the values ``fd`` and the ``slope``.

    Raises
    ------
    ValueError
        Different dimensions, NaN or infinite features, fewer than 2 generated samples or than
        2 distinct sizes, a ``num_points`` that is not an integer ``>= 2``.

    Warns
    -----
    NumericalWarning
        Once, when subsets have no more samples than dimensions (their covariances are singular,
        ``FD_N`` degenerate and the extrapolation unreliable): use more samples, or fewer
        dimensions.

    Notes
    -----
    Time ``O(\sum_N N d^2 + \text{num\_points}\, d^3)``: a covariance per subset and one
    Fréchet distance each (about 8 ``n d^2`` for 15 sizes). Memory ``O(n d + d^2)``. The
    extrapolation removes the ``1/N`` bias of the generated side only: the real statistics are
    used as they are, so a small real set still biases the value (use many real samples, or
    their exact statistics).

    References
    ----------
    Chong and Forsyth, "Effectively unbiased FID and Inception Score and where to find them",
    CVPR 2020. Stein et al., "Exposing flaws of generative model evaluation metrics and their
    unfair treatment of diffusion models", NeurIPS 2023 (dgm-eval).

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import fd_infinity
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(20_000, 4))
    >>> fake = rng.normal(size=(4000, 4)) + 0.5                    # the exact FD is 4 * 0.25 = 1
    >>> result = fd_infinity(real, fake, num_points=5)
    >>> result.n.tolist()
    [400, 1300, 2200, 3100, 4000]
    >>> abs(result.value - 1.0) < 0.05 and result.slope > 0         # FD_N is biased upwards
    True
    """
    import torch

    validate_options(num_points, seed)
    if isinstance(real, GaussianStats):
        real_stats = real
        if real_stats.dim is None:
            raise ValueError("real: the statistics hold no samples, got n = 0")
    else:
        real_stats = GaussianStats.from_features(as_samples_tensor(real, "real", float64=False, detach=True))
    yt = as_samples_tensor(fake, "fake", dim=real_stats.dim, float64=False, detach=True)
    n = int(yt.shape[0])
    sizes = fd_infinity_sizes(n, int(num_points))
    if len(np.unique(sizes)) < 2:
        raise ValueError(f"fake: need samples for at least 2 distinct subset sizes, got {n} samples")
    mean, cov = real_stats.mean, real_stats.cov
    rng = np.random.default_rng(seed)
    values, degenerate, about_real = [], [], None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", NumericalWarning)
        for size in sizes:
            pick = torch.as_tensor(rng.choice(n, int(size), replace=False), device=yt.device)
            stats = GaussianStats.from_features(yt[pick])
            before = len(caught)
            values.append(float(frechet_distance(mean, cov, stats.mean, stats.cov)))
            for w in caught[before:]:
                if issubclass(w.category, NumericalWarning) and str(w.message).startswith("cov2"):
                    degenerate.append(int(size))
                elif issubclass(w.category, NumericalWarning) and about_real is None:
                    about_real = w  # the real covariance: the same warning for every subset
    for w in caught:  # anything else is passed on as it was
        if not issubclass(w.category, NumericalWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if about_real is not None:
        warnings.warn(str(about_real.message), NumericalWarning, stacklevel=2)
    degenerate = sorted(set(degenerate))
    if degenerate:
        warnings.warn(f"fake: {len(degenerate)} of the {len(sizes)} subsets (sizes {degenerate[0]} to "
                      f"{degenerate[-1]}) give a singular covariance in {real_stats.dim} dimensions: their "
                      "FD_N is degenerate and the extrapolation unreliable; use more samples",
                      NumericalWarning, stacklevel=2)
    fd = np.asarray(values, dtype=np.float64)
    inverse = 1.0 / sizes.astype(np.float64)
    slope, intercept = np.polyfit(inverse, fd, 1)
    return FDInfinityResult(value=as_like(float(intercept), first_tensor(fake)), n=sizes, fd=fd,
                            slope=float(slope))
