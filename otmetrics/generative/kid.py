r"""The Kernel Inception Distance of Bińkowski et al. (2018): the unbiased MMD² with the cubic
polynomial kernel, averaged over random subsets.

:func:`kid` returns the mean and the standard deviation over subsets drawn as torch-fidelity
draws them (:func:`kid_subset_indices`); :func:`kid_values` returns the per-subset values
themselves (what the streaming :class:`otmetrics.KID` reduces). The values are computed by one of
two exact evaluation orders, chosen by cost: per subset (:func:`kid_values_by_subsets`, and
:func:`kid_values_by_subsets_numpy` for CPU rows) or from the kernel matrices of all points
evaluated once by blocks (:func:`kid_values_by_gram`). The kernel is
:class:`~otmetrics.generative.kernels.KernelSpec`'s polynomial kernel.
"""

from __future__ import annotations

import numpy as np

from .._core.arrays import as_like, first_tensor
from .._core.validation import validate_positive
from .kernels import BLOCK_ENTRIES, KernelSpec, as_samples_tensor, resolve_kernel

__all__ = ["kid", "kid_subset_indices"]


def validate_subset_size(value) -> int:
    """A valid KID ``subset_size``: an integer ``>= 2`` (checked before any data is seen).

    Raises ``ValueError`` naming ``subset_size`` otherwise.

    Examples
    --------
    >>> validate_subset_size(1000)
    1000
    """
    validate_positive(value, "subset_size", integer=True)
    if value < 2:
        raise ValueError(f"subset_size: must be an integer >= 2, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------------------------
# Subsets and evaluation routes
# ------------------------------------------------------------------------------------------------
def kid_subset_indices(n_x: int, n_y: int, subsets: int, subset_size: int, seed: int):
    """The subsets :func:`kid` uses: two ``(subsets, subset_size)`` index arrays.

    Drawn as torch-fidelity does: ``numpy.random.RandomState(seed).choice(n, subset_size,
    replace=False)``, alternately for ``x`` and ``y``, so equal seeds give equal subsets.

    Parameters
    ----------
    n_x, n_y : int
        Number of rows of the two sets.
    subsets, subset_size, seed : int
        As in :func:`kid` (``subset_size <= min(n_x, n_y)``).

    Returns
    -------
    (ix, iy) : two int64 arrays of shape (subsets, subset_size)
        Row ``s`` holds the distinct indices of subset ``s``. ``O(subsets (n_x + n_y))`` time
        (a permutation per draw, as ``RandomState.choice`` does).

    References
    ----------
    Bińkowski, Sutherland, Arbel and Gretton, "Demystifying MMD GANs", ICLR 2018; torch-fidelity's
    ``kid_features_to_metric``.

    Examples
    --------
    >>> ix, iy = kid_subset_indices(10, 8, subsets=3, subset_size=4, seed=0)
    >>> ix.shape, iy.shape, len(set(ix[0]))
    ((3, 4), (3, 4), 4)
    """
    rng = np.random.RandomState(seed)
    ix = np.empty((subsets, subset_size), dtype=np.int64)
    iy = np.empty((subsets, subset_size), dtype=np.int64)
    for s in range(subsets):
        ix[s] = rng.choice(n_x, subset_size, replace=False)
        iy[s] = rng.choice(n_y, subset_size, replace=False)
    return ix, iy


def kid_values_by_subsets(xt, yt, ix, iy, spec: KernelSpec):
    """Per-subset unbiased MMD², evaluating three ``s x s`` kernel matrices per subset, batched
    in torch (the route :func:`kid_values` takes for rows on an accelerator).

    Parameters
    ----------
    xt, yt : torch.Tensor, shape (n_x, d) and (n_y, d)
        The rows, on one device, in any floating dtype (each subset or block is converted to
        ``float64`` when used).
    ix, iy : int arrays, shape (subsets, subset_size)
        The subsets, from :func:`kid_subset_indices`.
    spec : KernelSpec
        A polynomial kernel (:func:`~otmetrics.generative.kernels.resolve_kernel`).

    Returns
    -------
    torch.Tensor, shape (subsets,)
        The unbiased MMD² of each subset, ``float64`` on the CPU.

    Examples
    --------
    >>> import torch
    >>> from otmetrics.generative.kernels import resolve_kernel
    >>> x = torch.arange(12.0).reshape(6, 2)
    >>> ix, iy = kid_subset_indices(6, 6, subsets=2, subset_size=3, seed=0)
    >>> spec = resolve_kernel("polynomial", None, None, None, None, None, None, dim=2)
    >>> kid_values_by_subsets(x, x, ix, iy, spec).shape
    torch.Size([2])
    """
    import torch

    subsets, s = ix.shape
    d = xt.shape[1]
    per = s * (2 * d + 3 * s)  # entries held per subset: the gathered rows and three kernels
    chunk = max(1, min(subsets, (8 * BLOCK_ENTRIES) // per))
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


def kid_values_by_subsets_numpy(xt, yt, ix, iy, spec: KernelSpec):
    """:func:`kid_values_by_subsets` for CPU rows, through numpy: its ``a @ a.T`` is a symmetric
    rank-k update (BLAS ``syrk``, half the flops of a general product), which torch does not use.
    The same values up to rounding.

    Parameters and return value as :func:`kid_values_by_subsets`.

    Examples
    --------
    >>> import torch
    >>> from otmetrics.generative.kernels import resolve_kernel
    >>> x = torch.arange(12.0, dtype=torch.float64).reshape(6, 2)
    >>> ix, iy = kid_subset_indices(6, 6, subsets=2, subset_size=3, seed=0)
    >>> spec = resolve_kernel("polynomial", None, None, None, None, None, None, dim=2)
    >>> bool(torch.allclose(kid_values_by_subsets_numpy(x, x + 1, ix, iy, spec),
    ...                     kid_values_by_subsets(x, x + 1, ix, iy, spec)))
    True
    """
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


def kid_values_by_gram(xt, yt, ix, iy, spec: KernelSpec):
    """Per-subset unbiased MMD² from the kernel matrices of all points, evaluated once by blocks.

    With indicator rows ``W`` (``subsets x n``) of the subsets, the sum of a subset's kernel block
    is ``w^T K w``: blocks of rows of ``K`` are computed once and reduced against all subsets at
    once, in ``O(n^2 (d + subsets))`` instead of ``O(subsets s^2 d)``. The same values as
    :func:`kid_values_by_subsets` up to rounding.

    Parameters and return value as :func:`kid_values_by_subsets`.

    Examples
    --------
    >>> import torch
    >>> from otmetrics.generative.kernels import resolve_kernel
    >>> x = torch.arange(12.0, dtype=torch.float64).reshape(6, 2)
    >>> ix, iy = kid_subset_indices(6, 6, subsets=2, subset_size=3, seed=0)
    >>> spec = resolve_kernel("polynomial", None, None, None, None, None, None, dim=2)
    >>> bool(torch.allclose(kid_values_by_gram(x, x + 1, ix, iy, spec),
    ...                     kid_values_by_subsets(x, x + 1, ix, iy, spec)))
    True
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
    rows = max(1, BLOCK_ENTRIES // max(xt.shape[0], yt.shape[0]))

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


# ------------------------------------------------------------------------------------------------
# KID
# ------------------------------------------------------------------------------------------------
def kid(x, y, *, subsets: int = 100, subset_size: int = 1000, degree: int = 3, gamma=None,
        coef0: float = 1, seed: int = 0):
    r"""The Kernel Inception Distance: mean and standard deviation of the unbiased MMD² over subsets.

    For each of ``subsets`` rounds, ``subset_size`` rows of ``x`` and of ``y`` are drawn without
    replacement and the unbiased MMD² (see :func:`otmetrics.mmd`) with the polynomial kernel

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
        ``> 0``; default ``1 / d``.
    coef0 : float, default 1
        ``>= 0`` (the kernel is positive semi-definite only then).
    seed : int, default 0
        Seeds ``numpy.random.RandomState``; subsets are drawn exactly as torch-fidelity draws them,
        so with its seed (``2020`` by default there) the same subsets and values come out.

    Returns
    -------
    (mean, std) : tuple of float, or of 0-d tensors for tensor input (the dtype and device of
        the first tensor among ``x, y``).
        Not differentiable: KID is an evaluation metric, computed from the detached rows, and
        the returned tensors do not require grad. For a differentiable loss with the same kernel
        use :func:`otmetrics.mmd` with ``kernel="polynomial"`` (the unbiased MMD² of one subset).

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
    rounding. Arithmetic in ``float64``; the rows themselves are not copied to float64 (50,000
    float32 pool3 vectors stay 400 MB), only each subset or block as it is used.

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
    ref = first_tensor(x, y)
    values = kid_values(x, y, subsets=subsets, subset_size=subset_size, degree=degree, gamma=gamma,
                        coef0=coef0, seed=seed)
    return as_like(float(values.mean()), ref), as_like(float(values.std(correction=0)), ref)


def kid_values(x, y, *, subsets: int = 100, subset_size: int = 1000, degree: int = 3, gamma=None,
               coef0: float = 1, seed: int = 0):
    """The per-subset unbiased MMD² values whose mean and standard deviation are :func:`kid`.

    The arguments and their validation are those of :func:`kid`. The rows are read as they are
    (float32 stays float32: no full-size float64 copy); each subset (or block) is converted to
    float64 when used. The evaluation order is chosen by cost: :func:`kid_values_by_gram` when
    the sets are small enough that it is cheaper, else :func:`kid_values_by_subsets_numpy` for
    rows on the CPU and :func:`kid_values_by_subsets` on an accelerator.

    Returns
    -------
    torch.Tensor, shape (subsets,)
        ``float64`` on the CPU, never rounded to the rows' dtype (what the streaming
        :class:`otmetrics.KID` reduces).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(50, 4)), rng.normal(size=(40, 4))
    >>> values = kid_values(x, y, subsets=5, subset_size=20)
    >>> mean, std = kid(x, y, subsets=5, subset_size=20)
    >>> values.shape, mean == float(values.mean()), std == float(values.std(correction=0))
    (torch.Size([5]), True, True)
    """
    xt = as_samples_tensor(x, "x", float64=False, detach=True)
    yt = as_samples_tensor(y, "y", dim=xt.shape[1], device=xt.device, float64=False, detach=True)
    subsets = int(validate_positive(subsets, "subsets", integer=True))
    subset_size = validate_subset_size(subset_size)
    if subset_size > xt.shape[0]:
        raise ValueError(f"subset_size: must be at most the number of samples in x ({xt.shape[0]}), "
                         f"got {subset_size}")
    if subset_size > yt.shape[0]:
        raise ValueError(f"subset_size: must be at most the number of samples in y ({yt.shape[0]}), "
                         f"got {subset_size}")
    seed = int(validate_positive(seed, "seed", allow_zero=True, integer=True))
    spec = resolve_kernel("polynomial", None, degree, gamma, coef0, xt, yt, xt.shape[1])
    ix, iy = kid_subset_indices(xt.shape[0], yt.shape[0], subsets, subset_size, seed)
    d = xt.shape[1]
    nx, ny = xt.shape[0], yt.shape[0]
    cost_gram = (nx * nx + ny * ny + nx * ny) * (d + 2 * subsets)
    cost_subsets = 3 * subsets * subset_size * subset_size * d
    if cost_gram < cost_subsets:
        route = kid_values_by_gram
    else:
        route = kid_values_by_subsets_numpy if xt.device.type == "cpu" else kid_values_by_subsets
    return route(xt, yt, ix, iy, spec)
