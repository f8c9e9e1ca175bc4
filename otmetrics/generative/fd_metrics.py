r"""Streaming Fréchet distances on any feature extractor: :class:`FD` and :class:`FDInfinity`.

:class:`FD` is the Fréchet distance of :func:`otmetrics.frechet_distance` between the Gaussian
statistics of real and generated features, accumulated batch by batch: FID on the Inception
features (:class:`otmetrics.FID` is :class:`FD` restricted to them), FD_DINOv2 on DINOv2 ViT-L/14
features (Stein et al. 2023), or any other. :class:`FDInfinity` keeps the generated features
themselves, for the extrapolation of :func:`otmetrics.fd_infinity`.

Both keep the real side as :class:`~otmetrics.GaussianStats` (``O(d^2)``, or fixed statistics
read from a file), recorded with the name of the extractor that made them: statistics of another
extractor are refused, by name.
"""

from __future__ import annotations

import numpy as np

from .._core.arrays import to_numpy
from .fd_infinity import FDInfinityResult, fd_infinity, validate_options
from .frechet import frechet_distance
from .gaussian import GaussianStats
from .streaming import RowBuffer, StreamingMetric, check_bool, check_same_extractor, require_rows

__all__ = ["FD", "FDInfinity"]


class FD(StreamingMetric):
    r"""Streaming Fréchet distance between real and generated features, on any extractor.

    :meth:`compute` returns :func:`otmetrics.frechet_distance` of the two accumulated Gaussians,
    :math:`\lVert \mu_r - \mu_g \rVert^2 + \operatorname{tr}\big(\Sigma_r + \Sigma_g
    - 2 (\Sigma_r^{1/2} \Sigma_g \Sigma_r^{1/2})^{1/2}\big)`, as a Python float: the FID on the
    Inception's pool3 features, FD_DINOv2 on DINOv2 ViT-L/14's (the metric of Stein et al. 2023
    and of EDM2), and so on.

    Parameters
    ----------
    feature_extractor : None, str, torch.nn.Module or callable, optional
        ``None``: batches are feature vectors ``(B, d)``. A registered name
        (``"inception"``, ``"dinov2-vitl14"``, ``"clip-vit-l-14-336px"``, ...: see
        :func:`~otmetrics.generative.features.registry.extractor_names`) builds that network
        with ``extractor_kwargs``. A module or callable maps a batch (e.g. images) to features
        ``(B, ...)``, flattened to ``(B, d)``; it runs under ``torch.no_grad()``, and a module is
        put in ``eval()`` mode (and moved to ``device`` if given).
    real_stats : GaussianStats, str or path, optional
        Precomputed statistics of the real set (e.g. an ``.npz`` of :meth:`GaussianStats.save`
        or of pytorch-fid): fixed, never updated, kept by :meth:`reset`, not combined across
        ranks. When they record their extractor (:attr:`GaussianStats.extractor`) and this
        object was built from another name, a ``ValueError`` names both.
    reset_real : bool, default True
        ``False``: :meth:`reset` forgets only the generated samples.
    device : str or torch.device, optional
        Where the extractor runs and the ``float64`` statistics live (default: the extractor's
        device, else the first batch's).
    sync : bool, default True
        Combine the statistics of all ``torch.distributed`` ranks in :meth:`compute`.
    process_group : optional
        The ``torch.distributed`` group to combine over (default: the whole world).
    extractor_kwargs : dict, optional
        Keyword arguments of a named extractor, e.g. ``{"weights": "dinov2_vitl14_pretrain.pth"}``.

    Notes
    -----
    Memory ``O(d^2)`` per set (``float64``), whatever the number of images; an update costs
    ``O(B d^2)``. In distributed mode :meth:`compute` sums the statistics of all ranks with two
    all-reduces (``d + 1`` and ``d^2`` numbers) and equals the single-process value up to
    rounding. The statistics record the extractor's name (``fd.real.save(path)`` writes it), so
    that FD_DINOv2 is never computed against Inception statistics by mistake.

    References
    ----------
    Heusel et al., "GANs trained by a two time-scale update rule converge to a local Nash
    equilibrium", NeurIPS 2017. Stein et al., "Exposing flaws of generative model evaluation
    metrics and their unfair treatment of diffusion models", NeurIPS 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import FD
    >>> rng = np.random.default_rng(0)
    >>> fd = FD()                                      # batches are feature vectors
    >>> for _ in range(4):
    ...     fd.update(rng.normal(size=(250, 8)), real=True)
    ...     fd.update(rng.normal(size=(250, 8)) + 0.5, real=False)
    >>> round(fd.compute(), 1)                         # about |0.5 * 1|^2 * 8 = 2
    2.0
    """

    def __init__(self, feature_extractor=None, *, real_stats=None, reset_real: bool = True, device=None,
                 sync: bool = True, process_group=None, extractor_kwargs: dict | None = None):
        super().__init__(feature_extractor, device, sync, process_group, extractor_kwargs=extractor_kwargs)
        self.reset_real = check_bool(reset_real, "reset_real")
        self._fixed_real = real_stats is not None
        if real_stats is None:
            self.real = GaussianStats(device=self.device, extractor=self.extractor_name)
        else:
            self.real = (real_stats.copy() if isinstance(real_stats, GaussianStats)
                         else GaussianStats.load(real_stats))
            if self.extractor_name is not None and self.real.extractor not in (None, self.extractor_name):
                raise ValueError(f"real_stats: statistics of the {self.real.extractor!r} features, but the "
                                 f"feature_extractor is {self.extractor_name!r}")
        self._init_fake()

    def _init_fake(self):
        self.fake = GaussianStats(device=self.device, extractor=self.extractor_name)

    # -- real side (shared with FDInfinity) ------------------------------------------------------
    def _features_for(self, batch, real: bool):
        """The features of a batch, checked against the other set's dimension."""
        check_bool(real, "real")
        if real and self._fixed_real:
            raise ValueError("real: the real statistics were given at construction (real_stats), they "
                             "cannot be updated; pass real=False for generated samples")
        feats = self.extract_features(batch)
        other = self.fake_dim if real else self.real.dim
        if other is not None and feats.shape[1] != other:
            raise ValueError(f"batch: expected feature vectors of dimension {other} (as the "
                             f"{'generated' if real else 'real'} ones), got {feats.shape[1]}")
        return feats

    def _real_stats(self):
        """The real statistics, of all ranks in distributed mode (a collective)."""
        if self.distributed and not self._fixed_real:
            return self.real.sync(self.process_group)
        return self.real

    def _merge_real(self, other):
        """Check ``other`` (type, extractor, dimensions) and merge its real side; nothing is
        changed when it raises."""
        if type(other) is not type(self):
            raise ValueError(f"other: expected an {type(self).__name__} object, got {type(other).__name__}")
        check_same_extractor(self, other)
        dims = [(name, dim) for name, dim in (("this object's real", self.real.dim),
                                              ("this object's generated", self.fake_dim),
                                              ("other's real", other.real.dim),
                                              ("other's generated", other.fake_dim)) if dim is not None]
        if len({d for _, d in dims}) > 1:
            raise ValueError("other: feature dimensions differ, got "
                             + ", ".join(f"{d} ({name})" for name, d in dims))
        if self._fixed_real:
            if other._fixed_real:
                _check_same_statistics(self.real, other.real)
            elif other.real.n:
                raise ValueError("other: holds real samples but this object's real statistics are fixed "
                                 f"(real_stats), got {other.real.n} real samples")
        elif other._fixed_real:
            raise ValueError("other: has fixed real statistics (real_stats) and this object has not")
        else:
            self.real.merge(other.real)

    def _reset_real(self):
        if self.reset_real and not self._fixed_real:
            self.real.reset()

    # -- the metric ----------------------------------------------------------------------------------
    @property
    def fake_dim(self) -> int | None:
        """The dimension of the generated features seen (``None`` before any)."""
        return self.fake.dim

    def update(self, batch, *, real: bool) -> None:
        """Add a batch of real (``real=True``) or generated (``real=False``) samples."""
        feats = self._features_for(batch, real)
        (self.real if real else self.fake).update(feats)

    def compute(self) -> float:
        """The Fréchet distance between everything seen so far (all ranks in distributed mode)."""
        real = self._real_stats()
        fake = self.fake.sync(self.process_group) if self.distributed else self.fake
        for stats, name in ((real, "real"), (fake, "fake")):
            if stats.n is not None and stats.n < 2:
                raise ValueError(f"{name}: need at least 2 samples for a covariance, got {stats.n}")
        if real.dim is not None and fake.dim is not None and real.dim != fake.dim:
            raise ValueError(f"fake: feature dimensions differ from the real ones, got {fake.dim} and "
                             f"{real.dim}")
        return float(frechet_distance(real.mean, real.cov, fake.mean, fake.cov))

    def reset(self):
        """Forget the generated samples, and the real ones unless ``reset_real=False`` or fixed."""
        self.fake.reset()
        self._reset_real()
        return self

    def merge(self, other):
        """Add ``other``'s samples (both sets) to this object's; returns ``self``.

        Fixed real statistics (``real_stats``) are never combined: when this object has them,
        ``other`` must hold no real samples, and if it has fixed real statistics too they must
        be the same (to ``1e-12`` relative); otherwise a ``ValueError``, and nothing is changed.
        Objects built from different named extractors are refused.
        """
        self._merge_real(other)
        self.fake.merge(other.fake)
        return self

    @property
    def n_real(self) -> int | None:
        """Real samples seen (on this rank)."""
        return self.real.n

    @property
    def n_fake(self) -> int:
        """Generated samples seen (on this rank)."""
        return self.fake.n

    def __repr__(self) -> str:
        made = "" if self.extractor_name is None else f", extractor={self.extractor_name!r}"
        return f"{type(self).__name__}(n_real={self.n_real}, n_fake={self.n_fake}{made})"


def _check_same_statistics(mine: GaussianStats, theirs: GaussianStats, rtol: float = 1e-12):
    """Raise unless two fixed real statistics have the same mean and covariance (to ``rtol``
    relative to their largest entry): merging FIDs against different references mixes metrics."""
    mine.check_extractor(theirs.extractor)
    gaps = []
    for what, a, b in (("mean", mine.mean, theirs.mean), ("cov", mine.cov, theirs.cov)):
        a, b = to_numpy(a), to_numpy(b)
        scale = max(float(np.abs(a).max()), float(np.abs(b).max()))
        gap = float(np.abs(a - b).max())
        if gap > rtol * scale:
            gaps.append(f"max |{what} difference| = {gap:.3g} (max |{what}| = {scale:.3g})")
    if gaps:
        raise ValueError("other: its fixed real statistics (real_stats) differ from this object's, got "
                         + ", ".join(gaps))


class FDInfinity(FD):
    r"""Streaming FD-infinity: real statistics and generated features, for
    :func:`otmetrics.fd_infinity`.

    :meth:`compute` returns :class:`~otmetrics.FDInfinityResult` (``value`` a Python float): the
    Fréchet distance of random subsets of the generated features against the real statistics,
    extrapolated to infinitely many samples by a least-squares line in ``1/N`` (dgm-eval's
    protocol, seeded).

    Parameters
    ----------
    feature_extractor, real_stats, reset_real, device, sync, process_group, extractor_kwargs :
        As in :class:`FD`.
    num_points, seed :
        As in :func:`otmetrics.fd_infinity`. The subsets are drawn from the generated rows in the
        order of updates (in distributed mode: rank 0's rows, then rank 1's, ...), so a fixed
        seed gives the same value in one process and on several ranks fed the same rows.

    Notes
    -----
    Memory ``O(d^2)`` for the real side and ``O(N d)`` for the generated features (kept in the
    extractor's dtype on the metric's device; in distributed mode every rank receives all of
    them at :meth:`compute`). Time of :meth:`compute` as :func:`otmetrics.fd_infinity`.

    References
    ----------
    Chong and Forsyth, "Effectively unbiased FID and Inception Score and where to find them",
    CVPR 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import FDInfinity
    >>> rng = np.random.default_rng(0)
    >>> metric = FDInfinity(num_points=5)
    >>> metric.update(rng.normal(size=(20_000, 4)), real=True)
    >>> for _ in range(4):
    ...     metric.update(rng.normal(size=(1000, 4)) + 0.5, real=False)
    >>> result = metric.compute()                      # the exact FD is 4 * 0.25 = 1
    >>> abs(result.value - 1.0) < 0.05, result.n.tolist()
    (True, [400, 1300, 2200, 3100, 4000])
    """

    def __init__(self, feature_extractor=None, *, num_points: int = 15, seed: int = 0, real_stats=None,
                 reset_real: bool = True, device=None, sync: bool = True, process_group=None,
                 extractor_kwargs: dict | None = None):
        super().__init__(feature_extractor, real_stats=real_stats, reset_real=reset_real, device=device,
                         sync=sync, process_group=process_group, extractor_kwargs=extractor_kwargs)
        validate_options(num_points, seed)  # now, not after a long evaluation
        self.options = dict(num_points=num_points, seed=seed)

    def _init_fake(self):
        self.fake = RowBuffer()

    @property
    def fake_dim(self) -> int | None:
        return self.fake.dim

    def update(self, batch, *, real: bool) -> None:
        """Add a batch of real (``real=True``) or generated (``real=False``) samples."""
        feats = self._features_for(batch, real)
        if real:
            self.real.update(feats)
        else:
            self.fake.add(feats, "batch")

    def compute(self) -> FDInfinityResult:
        """FD-infinity of everything seen so far (all ranks in distributed mode)."""
        real = self._real_stats()
        fake = require_rows(self.fake.gathered(self.distributed, self.process_group, "fake"), "fake")
        if real.n is not None and real.n < 2:
            raise ValueError(f"real: need at least 2 samples for a covariance, got {real.n}")
        result = fd_infinity(real, fake, **self.options)
        return FDInfinityResult(float(result.value), result.n, result.fd, result.slope)

    def reset(self):
        """Forget the generated samples, and the real ones unless ``reset_real=False`` or fixed."""
        self.fake.clear()
        self._reset_real()
        return self

    def merge(self, other):
        """Add ``other``'s real statistics and append its generated rows; returns ``self`` (the
        rules of :meth:`FD.merge`)."""
        self._merge_real(other)
        self.fake.extend(other.fake, "other")
        return self

    @property
    def n_fake(self) -> int:
        """Generated samples stored (on this rank)."""
        return self.fake.n
