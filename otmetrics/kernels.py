r"""Kernels, bandwidth rules, the maximum mean discrepancy (MMD) and the Kernel Inception Distance.

The squared MMD between distributions :math:`P` and :math:`Q` for a kernel :math:`k` is

.. math::

    \mathrm{MMD}^2(P, Q) = \mathbb E\,k(x, x') + \mathbb E\,k(y, y') - 2\,\mathbb E\,k(x, y),
    \qquad x, x' \sim P,\; y, y' \sim Q .

:func:`mmd` estimates it from samples with the unbiased U-statistic, the biased V-statistic or
the linear-time statistic of Gretton et al. (2012), in blocks so that memory stays bounded
(``n = 50,000`` points need a few hundred MB, never the ``n x n`` kernel matrix).
:func:`kid` is the Kernel Inception Distance of Bińkowski et al. (2018): the unbiased MMD² with
the cubic polynomial kernel, averaged over random subsets.

Kernels (``bandwidth`` is :math:`\sigma`; a list of bandwidths sums the kernels):

- ``"gaussian"``: :math:`k(x, y) = \exp(-\lVert x - y\rVert^2 / (2 \sigma^2))`
- ``"laplacian"``: :math:`k(x, y) = \exp(-\lVert x - y\rVert / \sigma)` (Euclidean norm, as in
  GeomLoss; scikit-learn's ``laplacian_kernel`` uses the L1 norm instead)
- ``"polynomial"``: :math:`k(x, y) = (\gamma\, x \cdot y + c_0)^{\mathrm{degree}}`, default
  :math:`\gamma = 1/d`, :math:`c_0 = 1`, degree 3 (the KID kernel)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from ._array import describe, is_tensor, to_numpy

__all__ = ["KERNELS", "ESTIMATORS", "median_bandwidth", "kernel_matrix", "mmd", "kid"]

#: The kernels :func:`mmd` and :func:`kernel_matrix` accept.
KERNELS = ("gaussian", "laplacian", "polynomial")
#: The MMD² estimators :func:`mmd` accepts.
ESTIMATORS = ("unbiased", "biased", "linear")

# Laplacian kernel: squared distances below this many ulps (times d and the squared norms) are
# recomputed from differences (the expansion's rounding would be amplified by the square root).
_EXACT_BELOW = 1e8 * np.finfo(np.float64).eps

# Kernel blocks are at most this many entries (float64: 32 MB each; a few live at once).
_BLOCK_ENTRIES = 2048 * 2048


# ------------------------------------------------------------------------------------------------
# Input handling
# ------------------------------------------------------------------------------------------------
def _samples(x, name: str, *, min_samples: int = 2, dim: int | None = None, device=None,
             float64: bool = True):
    """``x`` as a validated ``(n, d)`` tensor (on its own device, or ``device``): float64, or with
    ``float64=False`` in its own floating dtype (float32 stays float32: no full-size copy)."""
    import torch

    if is_tensor(x):
        if x.is_complex():
            raise ValueError(f"{name}: complex values are not supported, got dtype {x.dtype}")
        dtype = torch.float64 if (float64 or not x.is_floating_point()) else x.dtype
        t = x.detach().to(dtype=dtype, device=device if device is not None else x.device)
    else:
        arr = np.asarray(x) if isinstance(x, np.ndarray) else None
        if not float64 and arr is not None and arr.dtype in (np.float32, np.float64):
            t = torch.from_numpy(np.ascontiguousarray(arr))
        else:
            t = torch.from_numpy(np.ascontiguousarray(to_numpy(x, name)))
        if device is not None:
            t = t.to(device)
    if t.ndim == 1:
        t = t[:, None]
    if t.ndim != 2:
        raise ValueError(f"{name}: expected samples of shape (n, d), got {describe(t)}")
    if t.shape[0] < min_samples:
        raise ValueError(f"{name}: need at least {min_samples} samples, got {t.shape[0]}")
    if t.shape[1] == 0:
        raise ValueError(f"{name}: samples must have at least one coordinate, got {describe(t)}")
    if dim is not None and t.shape[1] != dim:
        raise ValueError(f"{name}: expected samples of dimension {dim} (as x), got {t.shape[1]}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: values must be finite, got NaN or infinity")
    return t


def _output(value: float, *refs):
    """A Python float, or a 0-d tensor like the first tensor among ``refs``."""
    for ref in refs:
        if is_tensor(ref):
            import torch

            dtype = ref.dtype if ref.is_floating_point() else torch.float64
            return torch.tensor(value, dtype=dtype, device=ref.device)
    return float(value)


def _check_int(value, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_real(value, name: str, *, positive: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name}: must be a finite real number, got {value!r}")
    if positive and value <= 0:
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    return float(value)


# ------------------------------------------------------------------------------------------------
# Kernels
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Kernel:
    """A resolved kernel: its kind and parameters (bandwidths already numbers)."""

    kind: str
    bandwidths: tuple[float, ...] = ()
    degree: int = 3
    gamma: float = 1.0
    coef0: float = 1.0

    @property
    def radial(self) -> bool:
        return self.kind != "polynomial"

    def _of_sqdist(self, d2):
        if self.kind == "gaussian":
            out = None
            for s in self.bandwidths:
                k = (d2 * (-0.5 / (s * s))).exp_()
                out = k if out is None else out.add_(k)
            return out
        dist = d2.sqrt()
        out = None
        for s in self.bandwidths:
            k = (dist * (-1.0 / s)).exp_()
            out = k if out is None else out.add_(k)
        return out

    def block(self, a, b, sq_a=None, sq_b=None, same: bool = False):
        """The kernel matrix between rows of ``a`` and ``b`` (``sq_*``: squared row norms).

        ``same``: ``a`` is ``b`` (a diagonal block), whose zero distances are set exactly.
        """
        prod = a @ b.T
        if not self.radial:
            return prod.mul_(self.gamma).add_(self.coef0).pow_(self.degree)
        if sq_a is None:
            sq_a = (a * a).sum(1)
        if sq_b is None:
            sq_b = (b * b).sum(1)
        d2 = prod.mul_(-2.0).add_(sq_a[:, None]).add_(sq_b[None, :]).clamp_min_(0.0)
        if self.kind == "laplacian":
            # The expansion is off by ~d eps (|a|^2 + |b|^2); harmless in exp(-d2 / 2s^2), but the
            # laplacian's square root turns it into ~1e-8 for (near-)coincident points. Recompute
            # the distances that are small against that error from differences, exactly.
            small = d2 <= _EXACT_BELOW * a.shape[1] * (sq_a[:, None] + sq_b[None, :])
            if bool(small.any()):
                i, j = small.nonzero(as_tuple=True)
                diff = a[i] - b[j]
                d2[i, j] = (diff * diff).sum(1)
        elif same:
            d2.fill_diagonal_(0.0)
        return self._of_sqdist(d2)

    def block_batched(self, a, b):
        """Kernel matrices of a batch of row sets ``(B, s, d)`` (polynomial kernel only)."""
        return (a @ b.transpose(1, 2)).mul_(self.gamma).add_(self.coef0).pow_(self.degree)

    def rows(self, a, b):
        """``k(a_i, b_i)`` for paired rows (exact differences, no expansion)."""
        if not self.radial:
            return ((a * b).sum(1) * self.gamma + self.coef0) ** self.degree
        diff = a - b
        return self._of_sqdist((diff * diff).sum(1))


def _resolve_kernel(kernel, bandwidth, degree, gamma, coef0, x, y, dim: int) -> _Kernel:
    if kernel not in KERNELS:
        raise ValueError(f"kernel: must be one of {', '.join(KERNELS)}, got {kernel!r}")
    if kernel == "polynomial":
        if bandwidth is not None:
            raise ValueError(f"bandwidth: the polynomial kernel has no bandwidth (use gamma), got "
                             f"{bandwidth!r}")
        deg = 3 if degree is None else _check_int(degree, "degree", 1)
        g = 1.0 / dim if gamma is None else _check_real(gamma, "gamma", positive=True)
        c = 1.0 if coef0 is None else _check_real(coef0, "coef0")
        return _Kernel("polynomial", (), deg, g, c)
    for value, name in ((degree, "degree"), (gamma, "gamma"), (coef0, "coef0")):
        if value is not None:
            raise ValueError(f"{name}: only the polynomial kernel has this parameter, got {value!r} "
                             f"with kernel={kernel!r}")
    if bandwidth is None or (isinstance(bandwidth, str) and bandwidth == "median"):
        widths: tuple[float, ...] = (median_bandwidth(x, y),)
    elif isinstance(bandwidth, str):
        raise ValueError(f"bandwidth: must be a positive number, 'median' or a list of positive numbers, "
                         f"got {bandwidth!r}")
    elif isinstance(bandwidth, numbers.Real):
        widths = (_check_real(bandwidth, "bandwidth", positive=True),)
    else:
        try:
            items = list(bandwidth)
        except TypeError:
            raise ValueError(f"bandwidth: must be a positive number, 'median' or a list of positive numbers, "
                             f"got {bandwidth!r}") from None
        if not items:
            raise ValueError("bandwidth: the list of bandwidths must not be empty, got []")
        widths = tuple(_check_real(b, "bandwidth", positive=True) for b in items)
    return _Kernel(kernel, widths)


def median_bandwidth(x, y=None, *, max_samples: int = 1000, seed: int = 0) -> float:
    r"""The median heuristic: the median Euclidean distance between distinct points of ``x`` and ``y``.

    The points of ``x`` and ``y`` are pooled; when there are more than ``max_samples`` of them a
    seeded random subset of that size is used (the median of ``~500,000`` distances is a stable
    estimate; all ``n^2`` would cost as much as the MMD itself). Zero distances (duplicated points)
    are ignored; if every distance is zero the bandwidth is ``1.0`` (any value gives the same MMD).

    Parameters
    ----------
    x : array-like or tensor, shape (n, d)
    y : array-like or tensor, shape (m, d), optional
    max_samples : int, default 1000
    seed : int, default 0

    Returns
    -------
    float

    References
    ----------
    Gretton et al., "A kernel two-sample test", JMLR 13 (2012), section 8.

    Examples
    --------
    >>> median_bandwidth([[0.0], [1.0], [3.0]])
    2.0
    """
    import torch
    from scipy.spatial.distance import pdist

    _check_int(max_samples, "max_samples", 2)
    xt = _samples(x, "x", min_samples=1)
    pooled = xt if y is None else torch.cat(
        [xt, _samples(y, "y", min_samples=1, dim=xt.shape[1], device=xt.device)])
    if pooled.shape[0] > max_samples:
        pick = np.sort(np.random.default_rng(seed).choice(pooled.shape[0], max_samples, replace=False))
        pooled = pooled[torch.as_tensor(pick, device=pooled.device)]
    dist = pdist(to_numpy(pooled))
    dist = dist[dist > 0]
    return float(np.median(dist)) if dist.size else 1.0


def kernel_matrix(x, y=None, *, kernel: str = "gaussian", bandwidth=None, degree=None, gamma=None,
                  coef0=None):
    """The kernel matrix ``K_ij = k(x_i, y_j)`` (``y = x`` when omitted).

    Parameters as in :func:`mmd`. Returns an ``(n, m)`` numpy ``float64`` array, or a tensor on
    ``x``'s device in its floating dtype. Squared distances use the expansion
    ``|x|^2 + |y|^2 - 2 x.y`` on the points centred on their pooled mean (so the cancellation
    error is relative to the spread of the data, not to its offset), clipped at 0.

    Examples
    --------
    >>> import numpy as np
    >>> K = kernel_matrix([[0.0], [1.0]], kernel="gaussian", bandwidth=1.0)
    >>> bool(np.allclose(K, [[1, np.exp(-0.5)], [np.exp(-0.5), 1]]))
    True
    """
    import torch

    xt = _samples(x, "x", min_samples=1)
    yt = xt if y is None else _samples(y, "y", min_samples=1, dim=xt.shape[1], device=xt.device)
    spec = _resolve_kernel(kernel, bandwidth, degree, gamma, coef0, xt, yt, xt.shape[1])
    if spec.radial:
        pooled = xt if y is None else torch.cat([xt, yt])
        center = pooled.mean(0)
        xt, yt = xt - center, yt - center
    k = spec.block(xt, yt, same=y is None)
    ref = x if is_tensor(x) else (y if is_tensor(y) else None)
    if ref is None:
        return k.cpu().numpy()
    dtype = ref.dtype if ref.is_floating_point() else torch.float64
    return k.to(dtype)


# ------------------------------------------------------------------------------------------------
# Blocked kernel sums
# ------------------------------------------------------------------------------------------------
def _block_size(d: int) -> int:
    # Square blocks of <= _BLOCK_ENTRIES entries; smaller when the rows themselves are long.
    side = int(math.isqrt(_BLOCK_ENTRIES))
    return max(64, min(side, _BLOCK_ENTRIES // max(d, 1)))


def _within_sums(x, spec: _Kernel, block: int):
    """``(sum_ij k(x_i, x_j), sum_i k(x_i, x_i))``: the full sum and its diagonal, by blocks.

    Only blocks on or above the diagonal are evaluated (the kernel is symmetric).
    """
    n = x.shape[0]
    sq = (x * x).sum(1) if spec.radial else None
    total = 0.0
    diag = 0.0
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        a = x[i0:i1]
        sq_a = sq[i0:i1] if sq is not None else None
        for j0 in range(i0, n, block):
            j1 = min(n, j0 + block)
            k = spec.block(a, x[j0:j1], sq_a, sq[j0:j1] if sq is not None else None, same=j0 == i0)
            s = float(k.sum())
            if j0 == i0:
                total += s
                diag += float(k.diagonal().sum())
            else:
                total += 2.0 * s
    return total, diag


def _cross_sum(x, y, spec: _Kernel, block: int) -> float:
    """``sum_ij k(x_i, y_j)`` by blocks."""
    sq_x = (x * x).sum(1) if spec.radial else None
    sq_y = (y * y).sum(1) if spec.radial else None
    total = 0.0
    for i0 in range(0, x.shape[0], block):
        i1 = min(x.shape[0], i0 + block)
        for j0 in range(0, y.shape[0], block):
            j1 = min(y.shape[0], j0 + block)
            k = spec.block(x[i0:i1], y[j0:j1], sq_x[i0:i1] if sq_x is not None else None,
                           sq_y[j0:j1] if sq_y is not None else None)
            total += float(k.sum())
    return total


def mmd(x, y, *, kernel: str = "gaussian", bandwidth=None, estimator: str = "unbiased", degree=None,
        gamma=None, coef0=None, block_size: int | None = None):
    r"""An estimate of the squared maximum mean discrepancy :math:`\mathrm{MMD}^2(P, Q)` from samples.

    With :math:`K^{xx}_{ij} = k(x_i, x_j)`, :math:`K^{yy}`, :math:`K^{xy}` and sample sizes
    :math:`m, n`:

    - ``"unbiased"`` (U-statistic, Gretton et al. 2012, eq. 3): the diagonal terms are removed
      from the within-sample sums,

      .. math::

          \frac{1}{m(m-1)}\sum_{i \ne j} K^{xx}_{ij} + \frac{1}{n(n-1)}\sum_{i \ne j} K^{yy}_{ij}
          - \frac{2}{mn}\sum_{i,j} K^{xy}_{ij};

      unbiased, so it can be slightly negative when :math:`P = Q`.
    - ``"biased"`` (V-statistic): the same with the diagonals kept and :math:`1/m^2, 1/n^2`;
      always :math:`\ge 0`, biased upwards by :math:`O(1/m + 1/n)`. GeomLoss' ``"gaussian"`` and
      ``"laplacian"`` losses are half of this value.
    - ``"linear"`` (linear-time statistic, Gretton et al. 2012, eq. 5, ``m = n``): the mean over
      pairs :math:`i` of :math:`k(x_{2i}, x_{2i+1}) + k(y_{2i}, y_{2i+1}) - k(x_{2i}, y_{2i+1})
      - k(x_{2i+1}, y_{2i})`; unbiased, ``O(n d)``, higher variance.

    Parameters
    ----------
    x : array-like or tensor, shape (m, d)
    y : array-like or tensor, shape (n, d)
        Samples of the two distributions (a 1-D input is read as points on a line).
    kernel : {"gaussian", "laplacian", "polynomial"}, default "gaussian"
        See the module docstring for the formulas.
    bandwidth : float, "median" or list of float, optional
        :math:`\sigma` of the gaussian/laplacian kernel. Default (``None``) and ``"median"``: the
        median heuristic (:func:`median_bandwidth` of the pooled samples, computed once). A list
        sums the kernels of each bandwidth (a multi-scale kernel). Not used by "polynomial".
    estimator : {"unbiased", "biased", "linear"}, default "unbiased"
    degree, gamma, coef0 : optional
        Polynomial kernel parameters; defaults 3, ``1/d``, 1.
    block_size : int, optional
        Rows per block of the kernel sums (default: blocks of about 4 million entries).

    Returns
    -------
    float or torch.Tensor
        The MMD² estimate (squared; no square root is taken). A Python ``float`` for numpy input,
        a 0-d tensor on ``x``'s device in its dtype for tensor input.

    Raises
    ------
    ValueError
        Fewer than 2 samples, different dimensions, NaN/infinite values, an unknown kernel or
        estimator, a non-positive bandwidth, parameters of another kernel, ``m != n`` for
        ``"linear"``.

    Notes
    -----
    Time ``O((m + n)^2 d)`` (``O(n d)`` for ``"linear"``); memory ``O((m + n) d)`` plus a few
    kernel blocks: the within-sample sums evaluate only the blocks on and above the diagonal.
    All arithmetic is ``float64`` on the samples' device (a float32 GPU tensor is converted
    there), so that the difference of large sums keeps its digits. Radial kernels are evaluated
    on points centred on the pooled mean (the MMD is translation invariant).

    References
    ----------
    Gretton, Borgwardt, Rasch, Schölkopf and Smola, "A kernel two-sample test", JMLR 13 (2012).

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import mmd
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(500, 2)), rng.normal(size=(500, 2))
    >>> abs(mmd(x, y)) < 0.01           # same distribution: close to 0
    True
    >>> mmd(x, y + 1.0) > 0.1           # shifted: clearly positive
    True
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator: must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    xt = _samples(x, "x")
    yt = _samples(y, "y", dim=xt.shape[1], device=xt.device)
    spec = _resolve_kernel(kernel, bandwidth, degree, gamma, coef0, xt, yt, xt.shape[1])
    m, n = xt.shape[0], yt.shape[0]
    if spec.radial:
        center = (xt.sum(0) + yt.sum(0)) / (m + n)
        xt, yt = xt - center, yt - center
    if estimator == "linear":
        if m != n:
            raise ValueError(f"y: the linear estimator pairs x_i with y_i and needs as many samples as x "
                             f"({m}), got {n}")
        half = m // 2
        x1, x2 = xt[0:2 * half:2], xt[1:2 * half:2]
        y1, y2 = yt[0:2 * half:2], yt[1:2 * half:2]
        h = spec.rows(x1, x2) + spec.rows(y1, y2) - spec.rows(x1, y2) - spec.rows(x2, y1)
        return _output(float(h.mean()), x, y)
    block = _block_size(xt.shape[1]) if block_size is None else _check_int(block_size, "block_size", 1)
    sxx, dxx = _within_sums(xt, spec, block)
    syy, dyy = _within_sums(yt, spec, block)
    sxy = _cross_sum(xt, yt, spec, block)
    if estimator == "unbiased":
        value = (sxx - dxx) / (m * (m - 1)) + (syy - dyy) / (n * (n - 1)) - 2.0 * sxy / (m * n)
    else:
        value = sxx / (m * m) + syy / (n * n) - 2.0 * sxy / (m * n)
    return _output(value, x, y)


# ------------------------------------------------------------------------------------------------
# KID
# ------------------------------------------------------------------------------------------------
def kid_subset_indices(n_x: int, n_y: int, subsets: int, subset_size: int, seed: int):
    """The subsets :func:`kid` uses: two ``(subsets, subset_size)`` index arrays.

    Drawn as torch-fidelity does: ``numpy.random.RandomState(seed).choice(n, subset_size,
    replace=False)``, alternately for ``x`` and ``y``, so equal seeds give equal subsets.
    """
    rng = np.random.RandomState(seed)
    ix = np.empty((subsets, subset_size), dtype=np.int64)
    iy = np.empty((subsets, subset_size), dtype=np.int64)
    for s in range(subsets):
        ix[s] = rng.choice(n_x, subset_size, replace=False)
        iy[s] = rng.choice(n_y, subset_size, replace=False)
    return ix, iy


def _kid_by_subsets(xt, yt, ix, iy, spec: _Kernel):
    """Per-subset unbiased MMD², evaluating three ``s x s`` kernel matrices per subset."""
    import torch

    subsets, s = ix.shape
    d = xt.shape[1]
    per = s * (2 * d + 3 * s)  # entries held per subset: the gathered rows and three kernels
    chunk = max(1, min(subsets, (8 * _BLOCK_ENTRIES) // per))
    out = torch.empty(subsets, dtype=torch.float64)
    ixt = torch.as_tensor(ix, device=xt.device)
    iyt = torch.as_tensor(iy, device=xt.device)
    for c0 in range(0, subsets, chunk):
        c1 = min(subsets, c0 + chunk)
        a = xt[ixt[c0:c1]].to(torch.float64)
        b = yt[iyt[c0:c1]].to(torch.float64)
        kxx = spec.block_batched(a, a)
        kyy = spec.block_batched(b, b)
        kxy = spec.block_batched(a, b)
        sxx = kxx.sum((1, 2)) - kxx.diagonal(dim1=1, dim2=2).sum(1)
        syy = kyy.sum((1, 2)) - kyy.diagonal(dim1=1, dim2=2).sum(1)
        sxy = kxy.sum((1, 2))
        out[c0:c1] = ((sxx + syy) / (s * (s - 1)) - 2.0 * sxy / (s * s)).cpu()
    return out


def _kid_by_subsets_numpy(xt, yt, ix, iy, spec: _Kernel):
    """:func:`_kid_by_subsets` for CPU data, through numpy: its ``a @ a.T`` is a symmetric rank-k
    update (BLAS ``syrk``, half the flops of a general product), which torch does not use."""
    import torch

    x, y = xt.numpy(), yt.numpy()
    subsets, s = ix.shape
    out = np.empty(subsets)

    def kernel(k):
        k *= spec.gamma
        k += spec.coef0
        if spec.degree == 3:  # the KID kernel: two multiplications instead of pow()
            cube = k * k
            cube *= k
            return cube
        return k ** spec.degree

    for i in range(subsets):
        a = x[ix[i]].astype(np.float64, copy=False)
        b = y[iy[i]].astype(np.float64, copy=False)
        kxx, kyy, kxy = kernel(a @ a.T), kernel(b @ b.T), kernel(a @ b.T)
        sxx = kxx.sum() - np.trace(kxx)
        syy = kyy.sum() - np.trace(kyy)
        out[i] = (sxx + syy) / (s * (s - 1)) - 2.0 * kxy.sum() / (s * s)
    return torch.from_numpy(out)


def _kid_by_gram(xt, yt, ix, iy, spec: _Kernel):
    """Per-subset unbiased MMD² from the kernel matrices of all points, evaluated once by blocks.

    With indicator rows ``W`` (``subsets x n``) of the subsets, the sum of a subset's kernel block
    is ``w^T K w``: blocks of rows of ``K`` are computed once and reduced against all subsets at
    once, in ``O(n^2 (d + subsets))`` instead of ``O(subsets s^2 d)``.
    """
    import torch

    subsets, s = ix.shape
    dev = xt.device
    xt, yt = xt.to(torch.float64), yt.to(torch.float64)

    def indicator(idx, n):
        w = torch.zeros((subsets, n), dtype=torch.float64, device=dev)
        w.scatter_(1, torch.as_tensor(idx, device=dev), 1.0)
        return w

    wx, wy = indicator(ix, xt.shape[0]), indicator(iy, yt.shape[0])
    rows = max(1, _BLOCK_ENTRIES // max(xt.shape[0], yt.shape[0]))

    def quad(a, wa, b, wb, diagonal):
        total = torch.zeros(subsets, dtype=torch.float64, device=dev)
        diag = torch.zeros(subsets, dtype=torch.float64, device=dev)
        for i0 in range(0, a.shape[0], rows):
            i1 = min(a.shape[0], i0 + rows)
            k = spec.block(a[i0:i1], b)  # rows of K
            total += ((wb @ k.T) * wa[:, i0:i1]).sum(1)
            if diagonal:
                diag += wa[:, i0:i1] @ k.diagonal(offset=i0)
        return total, diag

    sxx, dxx = quad(xt, wx, xt, wx, True)
    syy, dyy = quad(yt, wy, yt, wy, True)
    sxy, _ = quad(xt, wx, yt, wy, False)
    return (((sxx - dxx) + (syy - dyy)) / (s * (s - 1)) - 2.0 * sxy / (s * s)).cpu()


def kid(x, y, *, subsets: int = 100, subset_size: int = 1000, degree: int = 3, gamma=None,
        coef0: float = 1, seed: int = 0):
    r"""The Kernel Inception Distance: mean and standard deviation of the unbiased MMD² over subsets.

    For each of ``subsets`` rounds, ``subset_size`` rows of ``x`` and of ``y`` are drawn without
    replacement and the unbiased MMD² (see :func:`mmd`) with the polynomial kernel

    .. math:: k(a, b) = (\gamma\, a \cdot b + c_0)^{\mathrm{degree}}, \qquad \gamma = 1/d

    is computed; the result is the mean and the standard deviation (``ddof=0``) of these values,
    as in the reference code of Bińkowski et al. and torch-fidelity.

    Parameters
    ----------
    x, y : array-like or tensor, shape (n_x, d) and (n_y, d)
        Features (e.g. InceptionV3 pool3) of the two sets.
    subsets : int, default 100
    subset_size : int, default 1000
        At most ``min(n_x, n_y)``: a larger value is an error, not silently shrunk.
    degree : int, default 3
    gamma : float, optional
        Default ``1 / d``.
    coef0 : float, default 1
    seed : int, default 0
        Seeds ``numpy.random.RandomState``; subsets are drawn exactly as torch-fidelity draws them,
        so with its seed (``2020`` by default there) the same subsets and values come out.

    Returns
    -------
    (mean, std) : tuple of float, or of 0-d tensors for tensor input.

    Raises
    ------
    ValueError
        ``subset_size`` larger than either set or smaller than 2, different dimensions, NaN
        features, fewer than 2 samples, bad ``subsets``/``degree``/``gamma``.

    Notes
    -----
    Two exact evaluation orders, chosen by cost: per subset, three ``s x s`` kernel matrices
    (``O(subsets s^2 d)``, batched); or, when the sets are small enough that it is cheaper, the
    kernel matrices of all points once, by row blocks, reduced against every subset's indicator
    vector (``O(n^2 (d + subsets))``: with 2,000 points per set and the default
    ``subset_size=1000`` this is about 50 times fewer operations). Both give the same values up to
    rounding. Arithmetic in ``float64``.

    References
    ----------
    Bińkowski, Sutherland, Arbel and Gretton, "Demystifying MMD GANs", ICLR 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import kid
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 0.5
    >>> mean, std = kid(x, y, subsets=20, subset_size=100)
    >>> mean > 0.05, std < mean
    (True, True)
    """
    # The rows keep their dtype here; each subset (or block) is converted to float64 when used.
    xt = _samples(x, "x", float64=False)
    yt = _samples(y, "y", dim=xt.shape[1], device=xt.device, float64=False)
    subsets = _check_int(subsets, "subsets", 1)
    subset_size = _check_int(subset_size, "subset_size", 2)
    if subset_size > xt.shape[0]:
        raise ValueError(f"subset_size: must be at most the number of samples in x ({xt.shape[0]}), "
                         f"got {subset_size}")
    if subset_size > yt.shape[0]:
        raise ValueError(f"subset_size: must be at most the number of samples in y ({yt.shape[0]}), "
                         f"got {subset_size}")
    seed = _check_int(seed, "seed", 0)
    spec = _resolve_kernel("polynomial", None, degree, gamma, coef0, xt, yt, xt.shape[1])
    ix, iy = kid_subset_indices(xt.shape[0], yt.shape[0], subsets, subset_size, seed)
    d = xt.shape[1]
    nx, ny = xt.shape[0], yt.shape[0]
    cost_gram = (nx * nx + ny * ny + nx * ny) * (d + 2 * subsets)
    cost_subsets = 3 * subsets * subset_size * subset_size * d
    if cost_gram < cost_subsets:
        route = _kid_by_gram
    else:
        route = _kid_by_subsets_numpy if xt.device.type == "cpu" else _kid_by_subsets
    values = route(xt, yt, ix, iy, spec)
    mean = float(values.mean())
    std = float(values.std(correction=0))
    return _output(mean, x, y), _output(std, x, y)
