r"""Gaussian statistics of features and the Fréchet distance between two Gaussians (FID).

:class:`GaussianStats` accumulates the mean and covariance of a stream of feature vectors in
``float64`` with ``O(d^2)`` memory, merges with other accumulators (other batches, processes or
ranks) and reads/writes pytorch-fid's ``.npz`` statistics files. :func:`frechet_distance` turns two
such summaries into the Fréchet distance

.. math::

    d^2 = \lVert \mu_1 - \mu_2 \rVert^2
          + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
          - 2 \operatorname{tr}\big(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}\big)^{1/2},

the squared 2-Wasserstein distance between :math:`\mathcal N(\mu_1, \Sigma_1)` and
:math:`\mathcal N(\mu_2, \Sigma_2)`, which is the FID when the features are InceptionV3 pool3
activations.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._core.arrays import as_like, describe, is_tensor, to_numpy
from .._core.validation import all_finite, validate_positive
from .._core.warnings import NumericalWarning

__all__ = ["frechet_distance", "GaussianStats"]

_EPS = np.finfo(np.float64).eps
# A covariance is numerically singular when an eigenvalue is below this many ulps of the largest.
_RANK_ULPS = 1.0
# An eigenvalue below -_NOT_PSD * (largest eigenvalue) means the matrix is not a covariance at all.
_NOT_PSD = 1e-3
# The fast route (eigenvalues mu_i of M = L1^T S2 L1) is kept when rounding errors of size
# delta = _EIG_ERROR_ULPS * eps * max(mu) in the mu_i -- the backward error of a symmetric
# eigensolver on M -- move sum sqrt(mu_i) by less than _FAST_ROUTE_RTOL times tr S1 + tr S2, the
# scale of the distance. The errors are combined as independent roundings (root of the sum of
# squares of delta / (2 sqrt(mu_i))); observed errors are far smaller still (tests compare with
# closed forms). Rounding while forming M amounts to a relative perturbation of S2 of order eps,
# as large as the rounding S2 already carries: every route inherits it. The eigensolver's error is
# different: pulled back to S2 it is amplified by the conditioning of S1, and a square root
# amplifies it again for small mu_i. Otherwise the singular values of L1^T L2 are used: no square
# root of rounded small eigenvalues.
_FAST_ROUTE_RTOL = 1e-9
_EIG_ERROR_ULPS = 2.0

# Relative asymmetry of a covariance that is symmetrised silently; above it, an error.
_SYMMETRY_RTOL = 1e-5


# ------------------------------------------------------------------------------------------------
# Linear-algebra backends: numpy/scipy for arrays and CPU tensors (OpenBLAS' symmetric eigensolvers
# are several times faster than MKL's on AMD CPUs), torch.linalg for tensors on an accelerator.
# ------------------------------------------------------------------------------------------------
class _NumpyOps:
    @staticmethod
    def cholesky(s):
        import scipy.linalg

        try:
            return scipy.linalg.cholesky(s, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return None

    @staticmethod
    def congruence(lower, s):
        """``L^T S L`` for a lower-triangular ``L``, with triangular products (half the flops)."""
        from scipy.linalg.blas import dtrmm

        sl = dtrmm(1.0, lower, s, side=1, lower=1)  # S L
        m = dtrmm(1.0, lower, sl, side=0, lower=1, trans_a=1)  # L^T (S L)
        return m

    @staticmethod
    def tri_product(l1, l2):
        """``L1^T L2`` for lower-triangular factors."""
        from scipy.linalg.blas import dtrmm

        return dtrmm(1.0, l1, l2, side=0, lower=1, trans_a=1)

    eigvalsh = staticmethod(lambda m: np.linalg.eigvalsh(m))
    eigh = staticmethod(lambda m: np.linalg.eigh(m))
    svdvals = staticmethod(lambda m: np.linalg.svd(m, compute_uv=False))
    matmul_tn = staticmethod(lambda a, b: a.T @ b)
    diag = staticmethod(np.diagonal)
    trace = staticmethod(lambda m: float(np.trace(m)))
    to_float = staticmethod(float)
    sqrt_clipped = staticmethod(lambda v: np.sqrt(np.clip(v, 0.0, None)))


class _TorchOps:
    @staticmethod
    def cholesky(s):
        import torch

        lower, info = torch.linalg.cholesky_ex(s)
        return lower if int(info) == 0 else None

    @staticmethod
    def congruence(lower, s):
        return lower.T @ s @ lower

    @staticmethod
    def tri_product(l1, l2):
        return l1.T @ l2

    @staticmethod
    def eigvalsh(m):
        import torch

        return torch.linalg.eigvalsh(m)

    @staticmethod
    def eigh(m):
        import torch

        return torch.linalg.eigh(m)

    @staticmethod
    def svdvals(m):
        import torch

        return torch.linalg.svdvals(m)

    matmul_tn = staticmethod(lambda a, b: a.T @ b)
    diag = staticmethod(lambda m: m.diagonal())
    trace = staticmethod(lambda m: float(m.trace()))
    to_float = staticmethod(lambda v: float(v))
    sqrt_clipped = staticmethod(lambda v: v.clamp_min(0).sqrt())


def _prepare_moments(mu, sigma, mu_name: str, sigma_name: str, dim: int | None, use_torch, device):
    """Validate one (mean, covariance) pair; return float64 arrays/tensors for the chosen backend."""
    if use_torch:
        mu = _as_float64_tensor(mu, mu_name, device)
        sigma = _as_float64_tensor(sigma, sigma_name, device)
    else:
        mu = to_numpy(mu, mu_name)
        sigma = to_numpy(sigma, sigma_name)
    # As pytorch-fid: a scalar mean and variance are the one-dimensional case (np.cov of (n, 1)
    # data returns a 0-d array).
    if mu.ndim == 0:
        mu = mu.reshape(1)
    if sigma.ndim == 0:
        sigma = sigma.reshape(1, 1)
    if mu.ndim != 1 or mu.shape[0] == 0:
        raise ValueError(f"{mu_name}: expected a non-empty mean vector of shape (d,), got {describe(mu)}")
    d = mu.shape[0]
    if sigma.ndim != 2 or sigma.shape[0] != sigma.shape[1]:
        raise ValueError(f"{sigma_name}: expected a square covariance matrix (d, d), got {describe(sigma)}")
    if sigma.shape[0] != d:
        raise ValueError(f"{sigma_name}: expected shape ({d}, {d}) to match {mu_name} of shape ({d},), "
                         f"got {describe(sigma)}")
    if dim is not None and d != dim:
        raise ValueError(f"{mu_name}: feature dimensions differ, got {d} here and {dim} in the first "
                         "distribution")
    if not all_finite(mu):
        raise ValueError(f"{mu_name}: values must be finite, got NaN or infinity")
    if not all_finite(sigma):
        raise ValueError(f"{sigma_name}: values must be finite, got NaN or infinity")
    scale = float(abs(sigma).max()) if d else 0.0
    asym = float(abs(sigma - sigma.T).max())
    if asym > _SYMMETRY_RTOL * scale:
        raise ValueError(f"{sigma_name}: a covariance matrix must be symmetric, got max |S - S^T| = "
                         f"{asym:.3g} (max |S| = {scale:.3g})")
    if asym > 0:
        sigma = (sigma + sigma.T) / 2
    return mu, sigma


def _as_float64_tensor(x, name: str, device):
    import torch

    if is_tensor(x):
        if x.is_complex():
            raise ValueError(f"{name}: complex values are not supported, got dtype {x.dtype}")
        return x.detach().to(device=device, dtype=torch.float64)
    return torch.as_tensor(to_numpy(x, name), dtype=torch.float64, device=device)


def _psd_root_factor(sigma, name: str, ops):
    """A factor ``A`` (``d x r``) with ``A A^T = sigma`` from the eigen-decomposition.

    Eigenvalues at rounding level are dropped (``r`` is the numerical rank); a singular
    covariance gives a :class:`NumericalWarning`, a clearly indefinite matrix a ``ValueError``.
    """
    d = sigma.shape[0]
    lam, vec = ops.eigh(sigma)
    lam_max = max(ops.to_float(lam[-1]), 0.0)
    lam_min = ops.to_float(lam[0])
    if lam_min < -_NOT_PSD * lam_max or (lam_max == 0.0 and lam_min < 0.0):
        raise ValueError(f"{name}: a covariance matrix must be positive semi-definite, got eigenvalue "
                         f"{lam_min:.6g} (largest {lam_max:.6g})")
    tol = _RANK_ULPS * d * _EPS * lam_max
    keep = lam > tol
    rank = int(keep.sum())
    if rank < d:
        hint = " (fewer samples than dimensions gives rank <= n - 1)" if rank > 0 else ""
        if lam_min < -tol:
            hint += f"; negative eigenvalues down to {lam_min:.3g} were clipped to 0"
        warnings.warn(
            f"{name}: the covariance matrix is singular (numerical rank {rank} of {d}){hint}; the "
            "Fréchet distance is finite and computed on its range, but the estimate is degenerate: "
            "use more samples than feature dimensions",
            NumericalWarning, stacklevel=4)
    if rank == 0:
        return None
    root = ops.sqrt_clipped(lam[keep])
    return vec[:, keep] * root[None, :]


def _tiny_pivot(lower, ops) -> bool:
    pivots = ops.diag(lower) ** 2
    return ops.to_float(pivots.min()) <= _RANK_ULPS * lower.shape[0] * _EPS * ops.to_float(pivots.max())


def _trace_sqrt_product(s1, s2, ops) -> float:
    r"""``tr (S1^{1/2} S2 S1^{1/2})^{1/2}`` for symmetric PSD ``S1, S2`` (float64), never complex.

    Route 1 (both Cholesky factors exist and the product is well conditioned): the eigenvalues
    ``mu_i`` of the symmetric ``L1^T S2 L1`` (similar to ``S1 S2``), summed as ``sqrt(mu_i)``.
    Route 2 (otherwise): the nuclear norm of ``F1^T F2`` for factors ``F F^T = S``, i.e. the sum
    of its singular values, which equal ``sqrt(mu_i)`` but are computed to an absolute accuracy of
    ``eps * |F1^T F2|``: rounding is not amplified by a square root near zero, so identical
    singular covariances still give a distance at rounding level.
    """
    l1 = ops.cholesky(s1)
    l2 = ops.cholesky(s2)
    # No factor, or a tiny pivot: a (numerically) singular covariance. The eigen route below
    # measures its rank and warns.
    singular1 = l1 is None or _tiny_pivot(l1, ops)
    singular2 = l2 is None or _tiny_pivot(l2, ops)
    if not (singular1 or singular2):
        mu = ops.eigvalsh(ops.congruence(l1, s2))
        total = ops.to_float(ops.sqrt_clipped(mu).sum())
        scale = ops.trace(s1) + ops.trace(s2)
        # Effect of an absolute eigenvalue error delta on sqrt(mu_i): delta / (2 sqrt(mu_i)), at most
        # sqrt(delta) / 2 at rounding level; root of the sum of squares over i.
        delta = _EIG_ERROR_ULPS * _EPS * max(ops.to_float(mu[-1]), 0.0)
        err = 0.0
        if delta > 0:
            floor = mu.clamp_min(delta) if is_tensor(mu) else np.maximum(mu, delta)
            err = (ops.to_float((delta / (4 * floor)).sum()) * delta) ** 0.5
        if delta > 0 and err <= _FAST_ROUTE_RTOL * scale:
            return total
        return ops.to_float(ops.svdvals(ops.tri_product(l1, l2)).sum())
    f1 = _psd_root_factor(s1, "sigma1", ops) if singular1 else l1
    f2 = _psd_root_factor(s2, "sigma2", ops) if singular2 else l2
    if f1 is None or f2 is None:
        return 0.0
    return ops.to_float(ops.svdvals(ops.matmul_tn(f1, f2)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2):
    r"""The Fréchet distance between two Gaussians: the FID when given Inception statistics.

    .. math::

        d^2 = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
              - 2 \operatorname{tr}\big(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}\big)^{1/2}

    This is :math:`W_2^2(\mathcal N(\mu_1, \Sigma_1), \mathcal N(\mu_2, \Sigma_2))`, the squared
    2-Wasserstein distance between the Gaussians (the value called FID, without a square root).

    Parameters
    ----------
    mu1, mu2 : array-like or tensor, shape (d,)
        Means (a scalar is the case ``d = 1``, as in pytorch-fid).
    sigma1, sigma2 : array-like or tensor, shape (d, d)
        Covariance matrices: symmetric (asymmetry up to ``1e-5`` relative is symmetrised) and
        positive semi-definite (eigenvalues at rounding level below zero are clipped). A scalar
        is a ``1 x 1`` covariance.

    Returns
    -------
    float or torch.Tensor
        A Python ``float`` for numpy/array-like input; for tensors, a 0-d tensor on the device of
        ``mu1`` (else of the first tensor) in its floating dtype. Always real, finite and ``>= 0``.
        Not differentiable: the value is computed from detached inputs and the returned tensor
        does not require grad (the gradient of the trace term involves
        :math:`(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2})^{-1/2}`, unbounded for the singular
        covariances FID often meets).

    Raises
    ------
    ValueError
        Shapes that are not ``(d,)``/``(d, d)``, different ``d`` between the two Gaussians,
        NaN/infinite values, a clearly asymmetric or indefinite "covariance".

    Warns
    -----
    NumericalWarning
        A covariance is numerically singular, e.g. estimated from fewer samples than dimensions
        (rank ``<= n - 1 < d``). The value is still finite and real: the trace term is computed on
        the range of the matrix.

    Notes
    -----
    Everything is computed in ``float64`` (tensors are converted on their device), with symmetric
    decompositions only, never a complex matrix square root:

    1. Cholesky ``S1 = L1 L1^T``; the eigenvalues :math:`\mu_i` of the symmetric ``L1^T S2 L1``
       (similar to ``S1 S2``) give the trace term :math:`\sum_i \sqrt{\mu_i}`. Cost
       ``O(d^3)`` with a small constant: one Cholesky, two triangular products, one
       symmetric eigenvalue solve (no eigenvectors).
    2. When a covariance is singular or the product is so ill-conditioned that rounding in small
       :math:`\mu_i` would matter after the square root, the trace term is computed as the sum of
       the singular values of ``F1^T F2`` with ``F F^T = S`` (Cholesky or eigenvector factors):
       the same numbers, but accurate to ``eps`` times the largest one, so identical statistics
       give ``|d^2| ~ 1e-13`` even when singular.

    pytorch-fid computes ``scipy.linalg.sqrtm(S1 @ S2)`` (a complex Schur decomposition, several
    times slower, with an ``eps * I`` retry when it fails); torchmetrics and torch-fidelity sum
    ``sqrt(eigvals(S1 @ S2))`` of the non-symmetric product. All agree to about ``1e-10``
    relative on well-conditioned covariances (see ``benchmarks/bench_generative.py``).
    Arrays and CPU tensors use numpy/scipy LAPACK; CUDA tensors use ``torch.linalg`` on the device.

    References
    ----------
    Dowson and Landau, "The Fréchet distance between multivariate normal distributions",
    J. Multivariate Anal. 12 (1982). Heusel et al., "GANs trained by a two time-scale update rule
    converge to a local Nash equilibrium", NeurIPS 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import frechet_distance
    >>> mu = np.zeros(2)
    >>> round(frechet_distance(mu, np.eye(2), mu + [3.0, 4.0], 4 * np.eye(2)), 12)  # 25 + 2 * (1 - 2)^2
    27.0
    """
    ref = mu1 if is_tensor(mu1) else None
    use_torch = False
    device = None
    tensors = [t for t in (mu1, sigma1, mu2, sigma2) if is_tensor(t)]
    if tensors:
        device = tensors[0].device
        use_torch = device.type != "cpu"
        ref = mu1 if is_tensor(mu1) else tensors[0]
    m1, s1 = _prepare_moments(mu1, sigma1, "mu1", "sigma1", None, use_torch, device)
    m2, s2 = _prepare_moments(mu2, sigma2, "mu2", "sigma2", m1.shape[0], use_torch, device)
    ops = _TorchOps if use_torch else _NumpyOps
    diff = m1 - m2
    mean_term = float((diff * diff).sum())
    trace_term = _trace_sqrt_product(s1, s2, ops)
    value = mean_term + ops.trace(s1) + ops.trace(s2) - 2.0 * trace_term
    # Rounding can leave a tiny negative number for (nearly) identical Gaussians; W_2^2 >= 0.
    value = max(value, 0.0)
    return as_like(value, ref)


# ------------------------------------------------------------------------------------------------
# Streaming statistics
# ------------------------------------------------------------------------------------------------
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

    def __init__(self, dim: int | None = None, *, device=None):
        if dim is not None:
            validate_positive(dim, "dim", integer=True)
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
    def from_features(cls, x, *, device=None) -> GaussianStats:
        """Statistics of a whole ``(n, d)`` feature array (one :meth:`update`)."""
        return cls(device=device).update(x)

    @classmethod
    def from_moments(cls, mean, cov, n: int | None = None, *, device=None) -> GaussianStats:
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
        mean, cov = _prepare_moments(mean, cov, "mean", "cov", None, use_torch, dev)
        d = mean.shape[0]
        stats = cls(d, device=dev)
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

            if is_tensor(x):
                if x.is_complex():
                    raise ValueError(f"{name}: complex values are not supported, got dtype {x.dtype}")
                x = x.detach().to(device=self._device, dtype=torch.float64)
            else:
                x = torch.as_tensor(to_numpy(x, name), dtype=torch.float64, device=self._device)
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
        if other._n == 0:
            return self
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
        if self._device is None:
            return to_numpy(value)
        import torch

        if is_tensor(value):
            return value.to(device=self._device, dtype=torch.float64)
        return torch.as_tensor(value, dtype=torch.float64, device=self._device)

    def copy(self) -> GaussianStats:
        """An independent copy."""
        new = GaussianStats(self._dim)
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
        dims = {int(d) for (d,) in all_gather_ints([self._dim if self._dim is not None else -1], group)} - {-1}
        if len(dims) > 1:
            raise ValueError(f"stats: the ranks hold features of different dimensions, got {sorted(dims)}")
        if not dims:
            return self.copy()
        d = dims.pop()
        dev = comm_device(group)

        def local(v):
            return torch.as_tensor(v if is_tensor(v) else np.asarray(v), dtype=torch.float64).to(dev)

        n_local = self._n
        mean_local = local(self._mean) if n_local else torch.zeros(d, dtype=torch.float64, device=dev)
        first = torch.cat([torch.tensor([float(n_local)], dtype=torch.float64, device=dev), mean_local * n_local])
        first = all_reduce_sum(first, group)
        n_total = int(round(float(first[0])))
        merged = GaussianStats(d)
        merged._device = self._device
        if n_total == 0:
            return merged
        mean = first[1:] / n_total
        if n_local:
            delta = mean_local - mean
            contribution = local(self._scatter) + n_local * (delta[:, None] * delta[None, :])
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
        """Write ``mu``, ``sigma`` (pytorch-fid's keys) and ``n`` to an ``.npz`` file.

        The file is written to a temporary name and renamed, so an interrupted save leaves no
        truncated statistics. ``.npz`` is appended when missing (as ``numpy.savez`` does).
        Returns the path written. pytorch-fid and torch-fidelity read these files as they are.
        """
        path = Path(os.fspath(path)).expanduser()
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        arrays: dict[str, Any] = {"mu": to_numpy(self.mean), "sigma": to_numpy(self.cov)}
        if self._n is not None:
            arrays["n"] = np.int64(self._n)
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
        """Read an ``.npz`` with ``mu`` and ``sigma`` (and optionally ``n``).

        Files written by pytorch-fid (``--save-stats``) hold only ``mu`` and ``sigma``: the result
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
        return cls.from_moments(mu, sigma, n, device=device)

    def __repr__(self) -> str:
        where = "" if self._device is None else f", device={str(self._device)!r}"
        return f"GaussianStats(dim={self._dim}, n={self._n}{where})"
