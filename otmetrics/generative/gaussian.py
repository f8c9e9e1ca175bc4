r"""Streaming Gaussian statistics of features: :class:`GaussianStats`.

:class:`GaussianStats` accumulates the mean and covariance of a stream of feature vectors in
``float64`` with ``O(d^2)`` memory, merges with other accumulators (other batches, processes, and
``torch.distributed`` ranks through :meth:`GaussianStats.sync`) and reads/writes pytorch-fid's
``.npz`` statistics files. Two such summaries give the FID through
:func:`~otmetrics.generative.frechet.frechet_distance` (:meth:`GaussianStats.frechet_distance`),
which lives in :mod:`otmetrics.generative.frechet` and is still importable from here.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from .._core.arrays import as_float64_tensor, describe, is_tensor, to_numpy
from .._core.validation import validate_positive
from .frechet import frechet_distance, validate_moments

__all__ = ["GaussianStats"]


class GaussianStats:
    r"""Streaming mean and covariance of feature vectors, in ``float64``, mergeable, saveable.

    Keeps the count ``n``, the mean and the centred scatter matrix
    :math:`M = \sum_i (x_i - \bar x)(x_i - \bar x)^T`; each batch is centred on its own mean and
    combined with the running state by the pairwise update of Chan, Golub and LeVeque, so that
    large feature offsets do not cancel (unlike accumulating :math:`\sum x x^T`). Memory is
    ``O(d^2)`` whatever the number of samples.

    Parameters
    ----------
    dim : int, optional
        The feature dimension ``d``; inferred from the first batch when omitted.
    device : str or torch.device, optional
        Keep the state as ``float64`` torch tensors on this device (e.g. ``"cuda"``: the
        ``O(B d^2)`` update runs there). Default: numpy arrays, or tensors on the device of the
        first tensor batch.
    extractor : str, optional
        The registered name of the feature extractor the statistics come from (``"inception"``,
        ``"dinov2-vitl14"``, ...): saved with them, and merging statistics of two different
        extractors is an error. ``None``: unknown (e.g. pytorch-fid's files).

    Attributes
    ----------
    n : int or None
        Number of samples seen; ``None`` for statistics loaded from a file without a count
        (pytorch-fid's files), which can be compared but not updated or merged.
    mean : (d,) float64 array or tensor
    cov : (d, d) float64 array or tensor
        The unbiased covariance (``ddof=1``, as ``numpy.cov`` and pytorch-fid); needs ``n >= 2``.

    Notes
    -----
    Combining a state :math:`(n_a, \bar x_a, M_a)` with a batch's :math:`(n_b, \bar x_b, M_b)`:
    with :math:`\delta = \bar x_b - \bar x_a` and :math:`n = n_a + n_b`,

    .. math::

        \bar x = \bar x_a + \frac{n_b}{n}\,\delta, \qquad
        M = M_a + M_b + \frac{n_a n_b}{n}\,\delta \delta^T, \qquad
        \Sigma = \frac{M}{n - 1}.

    ``update`` costs ``O(B d^2)`` for a batch of ``B`` vectors ``(B, d)``; ``merge`` ``O(d^2)``;
    memory ``O(d^2)``. The same state is what :class:`otmetrics.FID` sums across
    ``torch.distributed`` ranks. The statistics are data, not a graph: batches are detached.

    References
    ----------
    Chan, Golub and LeVeque, "Algorithms for computing the sample variance: analysis and
    recommendations", The American Statistician 37 (1983). Heusel et al., "GANs trained by a two
    time-scale update rule converge to a local Nash equilibrium", NeurIPS 2017 (the FID, and the
    ``mu``/``sigma`` statistics files of its reference code, which pytorch-fid keeps).

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import GaussianStats
    >>> x = np.random.default_rng(0).normal(size=(1000, 3))
    >>> stats = GaussianStats(3)
    >>> for batch in np.array_split(x, 7):
    ...     _ = stats.update(batch)
    >>> stats.n, bool(np.allclose(stats.cov, np.cov(x, rowvar=False)))
    (1000, True)
    >>> other = GaussianStats.from_features(x + 1.0)
    >>> round(stats.frechet_distance(other), 6)          # a shift by 1 in 3 dimensions: 3
    3.0
    """

    #: The feature extractor's registered name (a class default: objects pickled before it existed).
    _extractor: str | None = None

    def __init__(self, dim: int | None = None, *, device=None, extractor: str | None = None):
        if dim is not None:
            validate_positive(dim, "dim", integer=True)
        self._extractor = _validate_extractor(extractor)
        self._dim = None if dim is None else int(dim)
        self._device = None
        if device is not None:
            import torch

            self._device = torch.device(device)
        self._n: int | None = 0
        self._mean = None
        self._scatter = None
        self._fixed_cov = None  # covariance loaded without a sample count

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_features(cls, x, *, device=None, extractor: str | None = None) -> GaussianStats:
        """Statistics of a whole ``(n, d)`` feature array (one :meth:`update`)."""
        return cls(device=device, extractor=extractor).update(x)

    @classmethod
    def from_moments(cls, mean, cov, n: int | None = None, *, device=None,
                     extractor: str | None = None) -> GaussianStats:
        """Statistics from a given mean and (``ddof=1``) covariance, optionally with their count.

        With ``n`` the result can be updated and merged like an accumulated one; without it,
        it can only be compared (``n`` is ``None``).
        """
        use_torch = device is not None or is_tensor(mean) or is_tensor(cov)
        dev = None
        if use_torch:
            import torch

            dev = torch.device(device) if device is not None else (
                mean.device if is_tensor(mean) else cov.device)
        mean, cov = validate_moments(mean, cov, "mean", "cov", None, use_torch, dev)
        d = mean.shape[0]
        stats = cls(d, device=dev, extractor=extractor)
        if n is None:
            stats._n = None
            stats._mean = mean
            stats._fixed_cov = cov
            return stats
        validate_positive(n, "n", integer=True)
        stats._n = int(n)
        stats._mean = mean
        stats._scatter = cov * (int(n) - 1)
        return stats

    # -- state -----------------------------------------------------------------------------------
    @property
    def dim(self) -> int | None:
        """The feature dimension (``None`` until known)."""
        return self._dim

    @property
    def n(self) -> int | None:
        """Number of samples accumulated (``None``: loaded without a count)."""
        return self._n

    @property
    def extractor(self) -> str | None:
        """The registered name of the feature extractor these statistics come from (``None``:
        unknown)."""
        return self._extractor

    def check_extractor(self, extractor: str | None, name: str = "other") -> None:
        """Raise ``ValueError`` naming ``name`` and both extractors when ``extractor`` and this
        object's are both known and differ."""
        if extractor is not None and self._extractor is not None and extractor != self._extractor:
            raise ValueError(f"{name}: statistics of the {extractor!r} features cannot be combined with "
                             f"statistics of the {self._extractor!r} features")

    @property
    def mean(self):
        """The mean vector ``(d,)`` in ``float64``."""
        if self._mean is None:
            raise ValueError("mean: no samples yet, got n = 0 (call update first)")
        return self._mean

    @property
    def cov(self):
        """The unbiased covariance ``(d, d)`` (``ddof=1``) in ``float64``; needs ``n >= 2``."""
        if self._fixed_cov is not None:
            return self._fixed_cov
        if self._n is None or self._n < 2:
            raise ValueError(f"cov: need at least 2 samples for a covariance, got n = {self._n}")
        return self._scatter / (self._n - 1)

    @property
    def is_torch(self) -> bool:
        """Whether the state is held as torch tensors."""
        return self._device is not None

    def _check_updatable(self, what: str):
        if self._n is None:
            raise ValueError(f"{what}: these statistics were loaded without a sample count (a "
                             "pytorch-fid file with only mu and sigma); they can be compared but not "
                             "updated or merged")

    def _as_state(self, x, name: str):
        """A batch as a float64 array/tensor in the state's backend, validated."""
        if self._device is None and self._n == 0 and is_tensor(x):
            self._device = x.device
        if self._device is not None:
            import torch

            x = as_float64_tensor(x, name, self._device)
            finite = bool(torch.isfinite(x).all())
        else:
            x = to_numpy(x, name)
            finite = bool(np.isfinite(x).all())
        if x.ndim != 2:
            raise ValueError(f"{name}: expected a batch of feature vectors of shape (B, d), got "
                             f"{describe(x)}")
        if self._dim is not None and x.shape[1] != self._dim:
            raise ValueError(f"{name}: expected feature vectors of dimension {self._dim}, got "
                             f"{x.shape[1]}")
        if not finite:
            raise ValueError(f"{name}: features must be finite, got NaN or infinity")
        return x

    def update(self, batch) -> GaussianStats:
        """Add a batch of feature vectors ``(B, d)``; returns ``self``. An empty batch is a no-op."""
        self._check_updatable("update")
        x = self._as_state(batch, "batch")
        b = x.shape[0]
        if self._dim is None:
            self._dim = int(x.shape[1])
        if b == 0:
            return self
        batch_mean = x.mean(0)
        xc = x - batch_mean
        batch_scatter = xc.T @ xc
        self._combine(b, batch_mean, batch_scatter)
        return self

    def _combine(self, nb: int, mean_b, scatter_b):
        """Chan et al.'s pairwise update of (n, mean, scatter) with another group's."""
        na = self._n
        if na == 0:
            self._n, self._mean, self._scatter = nb, mean_b, scatter_b
            return
        n = na + nb
        delta = mean_b - self._mean
        self._mean = self._mean + delta * (nb / n)
        outer = delta[:, None] * delta[None, :]
        self._scatter = self._scatter + scatter_b + outer * (na * nb / n)
        self._n = n

    def merge(self, other: GaussianStats) -> GaussianStats:
        """Add the samples summarised by ``other`` (in place); returns ``self``.

        The result equals the statistics of the concatenated streams up to rounding.
        """
        if not isinstance(other, GaussianStats):
            raise ValueError(f"other: expected GaussianStats, got {type(other).__name__}")
        self._check_updatable("merge")
        other._check_updatable("other")
        self.check_extractor(other._extractor)
        if other._n == 0:
            return self
        if self._extractor is None:
            self._extractor = other._extractor
        if self._dim is not None and other._dim != self._dim:
            raise ValueError(f"other: feature dimensions differ, got {other._dim} and {self._dim}")
        mean_b, scatter_b = other._mean, other._scatter
        if self._device is None and self._n == 0 and other._device is not None:
            self._device = other._device
        mean_b = self._convert(mean_b)
        scatter_b = self._convert(scatter_b)
        self._dim = other._dim
        self._combine(other._n, mean_b, scatter_b)
        return self

    def _convert(self, value):
        """A state value (array or tensor) in this object's backend: numpy, or tensors on its device."""
        if self._device is None:
            return to_numpy(value)
        return as_float64_tensor(value, device=self._device)

    def copy(self) -> GaussianStats:
        """An independent copy."""
        new = GaussianStats(self._dim, extractor=self._extractor)
        new._device = self._device
        new._n = self._n

        def clone(v):
            return None if v is None else (v.clone() if is_tensor(v) else v.copy())

        new._mean, new._scatter = clone(self._mean), clone(self._scatter)
        new._fixed_cov = clone(self._fixed_cov)
        return new

    def reset(self) -> GaussianStats:
        """Forget all samples (the dimension and device are kept); returns ``self``."""
        self._n, self._mean, self._scatter, self._fixed_cov = 0, None, None, None
        return self

    def to(self, device) -> GaussianStats:
        """A copy with the state as torch tensors on ``device``."""
        import torch

        new = self.copy()
        new._device = torch.device(device)
        new._mean, new._scatter, new._fixed_cov = (None if v is None else new._convert(v)
                                                   for v in (new._mean, new._scatter, new._fixed_cov))
        return new

    def sync(self, group=None) -> GaussianStats:
        """The statistics of all ``torch.distributed`` ranks combined (a new object).

        Without an initialised process group (or with one rank) this is a copy. Every rank
        must call it (it is a collective). Two all-reduces of ``float64`` sums: ``(n, n * mean)``
        of length ``d + 1`` gives the global count and mean; then each rank's scatter matrix
        re-centred on the global mean, ``M_r + n_r (mean_r - mean)(mean_r - mean)^T``, sums to the
        global scatter matrix (``d x d``). The result equals the statistics of all ranks' samples
        in one stream up to rounding.
        """
        import torch

        from .._core.distributed import all_gather_ints, all_reduce_sum, comm_device, world_size

        if world_size(group) == 1:
            return self.copy()
        self._check_updatable("sync")
        local_dim = self._dim if self._dim is not None else -1
        dims = {int(d) for (d,) in all_gather_ints([local_dim], group)} - {-1}
        if len(dims) > 1:
            raise ValueError(f"stats: the ranks hold features of different dimensions, got {sorted(dims)}")
        if not dims:
            return self.copy()
        d = dims.pop()
        dev = comm_device(group)
        n_local = self._n
        if n_local:
            mean_local = as_float64_tensor(self._mean, device=dev)
        else:
            mean_local = torch.zeros(d, dtype=torch.float64, device=dev)
        count = torch.tensor([float(n_local)], dtype=torch.float64, device=dev)
        first = torch.cat([count, mean_local * n_local])
        first = all_reduce_sum(first, group)
        n_total = int(round(float(first[0])))
        merged = GaussianStats(d, extractor=self._extractor)
        merged._device = self._device
        if n_total == 0:
            return merged
        mean = first[1:] / n_total
        if n_local:
            delta = mean_local - mean
            outer = delta[:, None] * delta[None, :]
            contribution = as_float64_tensor(self._scatter, device=dev) + n_local * outer
        else:
            contribution = torch.zeros((d, d), dtype=torch.float64, device=dev)
        scatter = all_reduce_sum(contribution, group)
        merged._n = n_total
        merged._mean = merged._convert(mean)
        merged._scatter = merged._convert(scatter)
        return merged

    # -- comparison ----------------------------------------------------------------------------------
    def frechet_distance(self, other: GaussianStats):
        """:func:`frechet_distance` between these statistics and ``other``'s."""
        if not isinstance(other, GaussianStats):
            raise ValueError(f"other: expected GaussianStats, got {type(other).__name__}")
        return frechet_distance(self.mean, self.cov, other.mean, other.cov)

    # -- files -----------------------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the mean, the covariance and ``n`` to an ``.npz`` file, under pytorch-fid's keys.

        The keys are ``mu`` (the mean), ``sigma`` (the covariance), ``n`` and, when known,
        ``extractor`` (its registered name, a string): ``mu``/``sigma`` are pytorch-fid's file
        format, kept so that pytorch-fid and torch-fidelity read these files as they are (the
        arguments of otmetrics spell the moments ``mean`` and ``cov``). The file
        is written to a temporary name and renamed, so an interrupted save leaves no truncated
        statistics. ``.npz`` is appended when missing (as ``numpy.savez`` does). Returns the path
        written.
        """
        path = Path(os.fspath(path)).expanduser()
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        arrays: dict[str, Any] = {"mu": to_numpy(self.mean), "sigma": to_numpy(self.cov)}
        if self._n is not None:
            arrays["n"] = np.int64(self._n)
        if self._extractor is not None:
            arrays["extractor"] = np.array(self._extractor)
        tmp = path.with_name(path.name + ".tmp")
        try:
            with open(tmp, "wb") as handle:
                np.savez(handle, **arrays)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path

    @classmethod
    def load(cls, path, *, device=None) -> GaussianStats:
        """Read an ``.npz`` with ``mu`` (the mean) and ``sigma`` (the covariance), and optionally ``n``.

        The keys are pytorch-fid's file format (see :meth:`save`), and the optional ``extractor``
        (the name of the feature extractor, see :attr:`extractor`). Files written by pytorch-fid
        (``--save-stats``) hold only ``mu`` and ``sigma``: the result
        then has ``n = None`` and can be compared but not updated or merged.
        """
        path = Path(os.fspath(path)).expanduser()
        if not path.is_file():
            raise ValueError(f"path: no such statistics file '{path}'")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except Exception as exc:
            raise ValueError(f"path: could not read '{path}' as an .npz statistics file ({exc})") from None
        if not isinstance(arrays, dict) or not {"mu", "sigma"} <= arrays.keys():
            raise ValueError(f"path: '{path}' must hold arrays 'mu' and 'sigma' (pytorch-fid's keys), got "
                             f"{sorted(arrays)}")
        mu, sigma = arrays["mu"], arrays["sigma"]
        n = None
        if "n" in arrays:
            if arrays["n"].size != 1 or not np.issubdtype(arrays["n"].dtype, np.integer):
                raise ValueError(f"path: '{path}' has an entry 'n' that is not an integer count, got "
                                 f"{arrays['n']!r}")
            n = int(arrays["n"])
        extractor = None
        if "extractor" in arrays:
            if arrays["extractor"].ndim != 0 or arrays["extractor"].dtype.kind != "U":
                raise ValueError(f"path: '{path}' has an entry 'extractor' that is not a name, got "
                                 f"{arrays['extractor']!r}")
            extractor = str(arrays["extractor"])
        return cls.from_moments(mu, sigma, n, device=device, extractor=extractor)

    def __repr__(self) -> str:
        where = "" if self._device is None else f", device={str(self._device)!r}"
        made = "" if self._extractor is None else f", extractor={self._extractor!r}"
        return f"GaussianStats(dim={self._dim}, n={self._n}{where}{made})"


def _validate_extractor(extractor):
    if extractor is not None and (not isinstance(extractor, str) or not extractor):
        raise ValueError(f"extractor: must be a feature extractor's name or None, got {extractor!r}")
    return extractor
