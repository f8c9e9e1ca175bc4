r"""The Fréchet distance between two Gaussians: the FID when the moments are those of Inception
features.

.. math::

    d^2 = \lVert \mu_1 - \mu_2 \rVert^2
          + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
          - 2 \operatorname{tr}\big(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}\big)^{1/2},

the squared 2-Wasserstein distance between :math:`\mathcal N(\mu_1, \Sigma_1)` and
:math:`\mathcal N(\mu_2, \Sigma_2)`. :func:`frechet_distance` computes it in ``float64`` with
symmetric decompositions only, through one of two linear-algebra backends with the same methods:
:class:`NumpyLinalg` (numpy/scipy, for arrays and CPU tensors: OpenBLAS' symmetric eigensolvers are
several times faster than MKL's on AMD CPUs) and :class:`TorchLinalg` (``torch.linalg``, for
tensors on an accelerator). The moments are spelled ``mean`` and ``cov`` (the arguments
``mean1, cov1, mean2, cov2``); the streaming accumulator of those moments is
:class:`otmetrics.GaussianStats`.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._core.arrays import as_float64_tensor, as_like, describe, is_tensor, to_numpy
from .._core.deprecation import renamed_arguments
from .._core.validation import all_finite
from .._core.warnings import NumericalWarning

__all__ = ["frechet_distance"]

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
# Linear-algebra backends
# ------------------------------------------------------------------------------------------------
class NumpyLinalg:
    """The linear algebra of :func:`frechet_distance` on float64 numpy arrays (numpy/scipy LAPACK).

    Static methods only: ``cholesky`` (``None`` when the matrix is not positive definite),
    ``congruence`` (``L^T S L``), ``tri_product`` (``L1^T L2``), ``eigvalsh``, ``eigh``, ``svdvals``,
    ``matmul_tn`` (``A^T B``), ``diag``, ``trace`` and ``to_float`` (to Python floats),
    ``sqrt_clipped`` (``sqrt(max(v, 0))``). :class:`TorchLinalg` has the same methods.

    Examples
    --------
    >>> NumpyLinalg.trace(np.eye(3))
    3.0
    """

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


class TorchLinalg:
    """The linear algebra of :func:`frechet_distance` on float64 torch tensors (``torch.linalg``,
    on the tensors' device): the methods of :class:`NumpyLinalg`.

    Examples
    --------
    >>> import torch
    >>> TorchLinalg.trace(torch.eye(3, dtype=torch.float64))
    3.0
    """

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


def validate_moments(mean, cov, mean_name: str, cov_name: str, dim: int | None, use_torch, device):
    """Validate one (mean, covariance) pair; return ``float64`` arrays or tensors for a backend.

    Parameters
    ----------
    mean, cov : array-like or tensor
        A mean ``(d,)`` and a covariance ``(d, d)`` (scalars are the case ``d = 1``).
    mean_name, cov_name : str
        Their argument names, for error messages.
    dim : int, optional
        The dimension ``d`` they must have (that of a first distribution).
    use_torch : bool
        Return torch tensors on ``device`` (for :class:`TorchLinalg`), else numpy arrays.
    device : torch.device, optional

    Returns
    -------
    (mean, cov)
        ``float64``; a covariance whose asymmetry is at rounding level is symmetrised.

    Raises
    ------
    ValueError
        Wrong shapes or dimension, NaN/infinite values, a clearly asymmetric covariance.

    Examples
    --------
    >>> mean, cov = validate_moments(0.5, 2.0, "mean", "cov", None, False, None)
    >>> mean, cov
    (array([0.5]), array([[2.]]))
    """
    if use_torch:
        mean = as_float64_tensor(mean, mean_name, device)
        cov = as_float64_tensor(cov, cov_name, device)
    else:
        mean = to_numpy(mean, mean_name)
        cov = to_numpy(cov, cov_name)
    # As pytorch-fid: a scalar mean and variance are the one-dimensional case (np.cov of (n, 1)
    # data returns a 0-d array).
    if mean.ndim == 0:
        mean = mean.reshape(1)
    if cov.ndim == 0:
        cov = cov.reshape(1, 1)
    if mean.ndim != 1 or mean.shape[0] == 0:
        raise ValueError(f"{mean_name}: expected a non-empty mean vector of shape (d,), got {describe(mean)}")
    d = mean.shape[0]
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"{cov_name}: expected a square covariance matrix (d, d), got {describe(cov)}")
    if cov.shape[0] != d:
        raise ValueError(f"{cov_name}: expected shape ({d}, {d}) to match {mean_name} of shape ({d},), "
                         f"got {describe(cov)}")
    if dim is not None and d != dim:
        raise ValueError(f"{mean_name}: feature dimensions differ, got {d} here and {dim} in the first "
                         "distribution")
    if not all_finite(mean):
        raise ValueError(f"{mean_name}: values must be finite, got NaN or infinity")
    if not all_finite(cov):
        raise ValueError(f"{cov_name}: values must be finite, got NaN or infinity")
    scale = float(abs(cov).max()) if d else 0.0
    asym = float(abs(cov - cov.T).max())
    if asym > _SYMMETRY_RTOL * scale:
        raise ValueError(f"{cov_name}: a covariance matrix must be symmetric, got max |S - S^T| = "
                         f"{asym:.3g} (max |S| = {scale:.3g})")
    if asym > 0:
        cov = (cov + cov.T) / 2
    return mean, cov


def _psd_root_factor(cov, name: str, ops):
    """A factor ``A`` (``d x r``) with ``A A^T = cov`` from the eigen-decomposition.

    Eigenvalues at rounding level are dropped (``r`` is the numerical rank); a singular
    covariance gives a :class:`NumericalWarning`, a clearly indefinite matrix a ``ValueError``.
    """
    d = cov.shape[0]
    lam, vec = ops.eigh(cov)
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
            NumericalWarning, stacklevel=5)  # frechet_distance's caller (through its wrapper)
    if rank == 0:
        return None
    root = ops.sqrt_clipped(lam[keep])
    return vec[:, keep] * root[None, :]


def _tiny_pivot(lower, ops) -> bool:
    pivots = ops.diag(lower) ** 2
    return ops.to_float(pivots.min()) <= _RANK_ULPS * lower.shape[0] * _EPS * ops.to_float(pivots.max())


def trace_sqrt_product(s1, s2, ops) -> float:
    r"""``tr (S1^{1/2} S2 S1^{1/2})^{1/2}`` for symmetric PSD ``S1, S2`` (float64), never complex.

    The trace term of :func:`frechet_distance`; ``ops`` is :class:`NumpyLinalg` for numpy
    arrays or :class:`TorchLinalg` for torch tensors. A singular covariance gives a
    :class:`~otmetrics.NumericalWarning` naming ``cov1`` or ``cov2``, an indefinite one a
    ``ValueError``.

    Route 1 (both Cholesky factors exist and the product is well conditioned): the eigenvalues
    ``mu_i`` of the symmetric ``L1^T S2 L1`` (similar to ``S1 S2``), summed as ``sqrt(mu_i)``.
    Route 2 (otherwise): the nuclear norm of ``F1^T F2`` for factors ``F F^T = S``, i.e. the sum
    of its singular values, which equal ``sqrt(mu_i)`` but are computed to an absolute accuracy of
    ``eps * |F1^T F2|``: rounding is not amplified by a square root near zero, so identical
    singular covariances still give a distance at rounding level.

    Examples
    --------
    >>> trace_sqrt_product(np.diag([1.0, 4.0]), np.diag([9.0, 1.0]), NumpyLinalg)  # 3 + 2
    5.0
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
    f1 = _psd_root_factor(s1, "cov1", ops) if singular1 else l1
    f2 = _psd_root_factor(s2, "cov2", ops) if singular2 else l2
    if f1 is None or f2 is None:
        return 0.0
    return ops.to_float(ops.svdvals(ops.matmul_tn(f1, f2)).sum())


@renamed_arguments(mu1="mean1", sigma1="cov1", mu2="mean2", sigma2="cov2")
def frechet_distance(mean1, cov1, mean2, cov2):
    r"""The Fréchet distance between two Gaussians: the FID when given Inception statistics.

    .. math::

        d^2 = \lVert \mu_1 - \mu_2 \rVert^2 + \operatorname{tr}\Sigma_1 + \operatorname{tr}\Sigma_2
              - 2 \operatorname{tr}\big(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2}\big)^{1/2}

    This is :math:`W_2^2(\mathcal N(\mu_1, \Sigma_1), \mathcal N(\mu_2, \Sigma_2))`, the squared
    2-Wasserstein distance between the Gaussians (the value called FID, without a square root).

    Parameters
    ----------
    mean1, mean2 : array-like or tensor, shape (d,)
        Means :math:`\mu_1, \mu_2` (a scalar is the case ``d = 1``, as in pytorch-fid).
    cov1, cov2 : array-like or tensor, shape (d, d)
        Covariance matrices :math:`\Sigma_1, \Sigma_2`: symmetric (asymmetry up to ``1e-5``
        relative is symmetrised) and positive semi-definite (eigenvalues at rounding level below
        zero are clipped). A scalar is a ``1 x 1`` covariance.

        pytorch-fid's keyword names ``mu1``, ``sigma1``, ``mu2``, ``sigma2`` (also this
        function's until otmetrics 0.2) are accepted until 0.3, with a ``DeprecationWarning``.

    Returns
    -------
    float or torch.Tensor
        A Python ``float`` for numpy/array-like input; for tensors, a 0-d tensor on the device of
        ``mean1`` (else of the first tensor) in its floating dtype. Always real, finite and ``>= 0``.
        Not differentiable: the value is computed from detached inputs and the returned tensor
        does not require grad (the gradient of the trace term involves
        :math:`(\Sigma_1^{1/2} \Sigma_2 \Sigma_1^{1/2})^{-1/2}`, unbounded for the singular
        covariances FID often meets).

    Raises
    ------
    ValueError
        Shapes that are not ``(d,)``/``(d, d)``, different ``d`` between the two Gaussians,
        NaN/infinite values, a clearly asymmetric or indefinite "covariance", an argument given
        both under its name and under its deprecated alias (``mean1=`` and ``mu1=``).

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
    >>> mean = np.zeros(2)
    >>> round(frechet_distance(mean, np.eye(2), mean + [3.0, 4.0], 4 * np.eye(2)), 12)  # 25 + 2 (1 - 2)^2
    27.0
    """
    ref = mean1 if is_tensor(mean1) else None
    use_torch = False
    device = None
    tensors = [t for t in (mean1, cov1, mean2, cov2) if is_tensor(t)]
    if tensors:
        device = tensors[0].device
        use_torch = device.type != "cpu"
        ref = mean1 if is_tensor(mean1) else tensors[0]
    m1, s1 = validate_moments(mean1, cov1, "mean1", "cov1", None, use_torch, device)
    m2, s2 = validate_moments(mean2, cov2, "mean2", "cov2", m1.shape[0], use_torch, device)
    ops = TorchLinalg if use_torch else NumpyLinalg
    diff = m1 - m2
    mean_term = float((diff * diff).sum())
    trace_term = trace_sqrt_product(s1, s2, ops)
    value = mean_term + ops.trace(s1) + ops.trace(s2) - 2.0 * trace_term
    # Rounding can leave a tiny negative number for (nearly) identical Gaussians; W_2^2 >= 0.
    value = max(value, 0.0)
    return as_like(value, ref)
