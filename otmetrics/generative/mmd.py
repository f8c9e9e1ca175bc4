r"""The maximum mean discrepancy (MMD) between two samples, in blocks, differentiable.

The squared MMD between distributions :math:`P` and :math:`Q` for a kernel :math:`k` is

.. math::

    \mathrm{MMD}^2(P, Q) = \mathbb E\,k(x, x') + \mathbb E\,k(y, y') - 2\,\mathbb E\,k(x, y),
    \qquad x, x' \sim P,\; y, y' \sim Q .

:func:`mmd` estimates it from samples with the unbiased U-statistic, the biased V-statistic or
the linear-time statistic of Gretton et al. (2012), in blocks so that memory stays bounded
(``n = 50,000`` points need a few hundred MB, never the ``n x n`` kernel matrix); its backward
pass evaluates the blocks again instead of storing them. The kernels are those of
:mod:`otmetrics.generative.kernels`. :func:`mmd_float64` is the same estimate kept in
``float64`` (what the streaming :class:`otmetrics.MMD` reads).
"""

from __future__ import annotations

import functools
import math

from .._core.arrays import as_like, first_tensor
from .._core.deprecation import renamed_arguments
from .._core.validation import validate_positive
from .kernels import BLOCK_ENTRIES, KernelSpec, as_samples_tensor, resolve_kernel, tracks_grad

__all__ = ["ESTIMATORS", "mmd"]

#: The MMD² estimators :func:`mmd` accepts.
ESTIMATORS = ("unbiased", "biased", "linear")


# ------------------------------------------------------------------------------------------------
# Blocked kernel sums
# ------------------------------------------------------------------------------------------------
def _default_chunk_size(d: int) -> int:
    # Square blocks of <= BLOCK_ENTRIES entries; smaller when the rows themselves are long.
    side = int(math.isqrt(BLOCK_ENTRIES))
    return max(64, min(side, BLOCK_ENTRIES // max(d, 1)))


def _block_pairs(n: int, m: int | None, chunk: int):
    """The blocks ``(i0, i1, j0, j1, weight, same)`` of a blocked kernel sum.

    ``m is None``: the within-sample sum of ``n`` points, on and above the diagonal only (the
    kernel is symmetric: off-diagonal blocks count twice). Otherwise the cross sum, ``n x m``.
    """
    for i0 in range(0, n, chunk):
        i1 = min(n, i0 + chunk)
        if m is None:
            for j0 in range(i0, n, chunk):
                yield i0, i1, j0, min(n, j0 + chunk), (1.0 if j0 == i0 else 2.0), j0 == i0
        else:
            for j0 in range(0, m, chunk):
                yield i0, i1, j0, min(m, j0 + chunk), 1.0, False


def _kernel_sums(x, y, spec: KernelSpec, chunk: int):
    """``(sum_ij K_ij, trace K)`` by blocks, as floats: ``K = k(x, x)`` when ``y`` is ``None``
    (only the blocks on and above the diagonal are evaluated), else ``K = k(x, y)`` (trace 0)."""
    other = x if y is None else y
    sq_x = (x * x).sum(1) if spec.radial else None
    sq_o = sq_x if y is None else ((y * y).sum(1) if spec.radial else None)
    total, trace = 0.0, 0.0
    for i0, i1, j0, j1, weight, same in _block_pairs(x.shape[0], None if y is None else y.shape[0], chunk):
        k = spec.block(x[i0:i1], other[j0:j1], None if sq_x is None else sq_x[i0:i1],
                       None if sq_o is None else sq_o[j0:j1], same=same)
        total += weight * float(k.sum())
        if same:
            trace += float(k.diagonal().sum())
    return total, trace


@functools.lru_cache(maxsize=None)
def _differentiable_kernel_sums():
    """:func:`_kernel_sums` as an autograd function (built on first use: torch is imported lazily).

    Forward: the blocked sums, unrecorded (the fast in-place kernels), one graph node in all.
    Backward: block by block, the block is evaluated again, recorded and differentiated, and its
    gradient added into ``(n, d)`` buffers. Only the points are kept between the passes, so memory
    stays ``O((n + m) d)`` plus a few blocks, forward and backward.
    """
    import torch
    from torch.autograd.function import once_differentiable

    class KernelSums(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, y, spec, chunk):
            total, trace = _kernel_sums(x, y, spec, chunk)
            ctx.spec, ctx.chunk, ctx.within = spec, chunk, y is None
            ctx.save_for_backward(x, x if y is None else y)
            return (torch.tensor(total, dtype=x.dtype, device=x.device),
                    torch.tensor(trace, dtype=x.dtype, device=x.device))

        @staticmethod
        @once_differentiable
        def backward(ctx, grad_total, grad_trace):
            x, other = ctx.saved_tensors
            need_x = ctx.needs_input_grad[0]
            need_o = need_x if ctx.within else ctx.needs_input_grad[1]
            gx = torch.zeros_like(x) if need_x else None
            go = gx if ctx.within else (torch.zeros_like(other) if need_o else None)
            blocks = _block_pairs(x.shape[0], None if ctx.within else other.shape[0], ctx.chunk)
            with torch.enable_grad():
                for i0, i1, j0, j1, weight, same in blocks:
                    a = x[i0:i1].detach().requires_grad_(need_x)
                    b = a if same else other[j0:j1].detach().requires_grad_(need_o)
                    k = ctx.spec.block(a, b, same=same)
                    out = (grad_total * weight) * k.sum()
                    if same:
                        out = out + grad_trace * k.diagonal().sum()
                    leaves = [t for t in ((a,) if same else (a, b)) if t.requires_grad]
                    grads = torch.autograd.grad(out, leaves)
                    for leaf, grad in zip(leaves, grads):
                        (gx[i0:i1] if leaf is a else go[j0:j1]).add_(grad)
            return gx, (None if ctx.within else go), None, None

    return KernelSums


def _sums(x, y, spec: KernelSpec, chunk: int):
    """:func:`_kernel_sums`, differentiable (0-d tensors) when autograd records ``x`` or ``y``."""
    if tracks_grad(x) or (y is not None and tracks_grad(y)):
        return _differentiable_kernel_sums().apply(x, y, spec, chunk)
    return _kernel_sums(x, y, spec, chunk)


def mmd_float64(x, y, *, kernel: str = "gaussian", bandwidth=None, estimator: str = "unbiased",
                degree=None, gamma=None, coef0=None, chunk_size: int | None = None):
    """The estimate of :func:`mmd`, kept in ``float64``: never rounded to the samples' dtype.

    The arguments, the validation and the arithmetic are those of :func:`mmd`; only the type of
    the result differs. The streaming :class:`otmetrics.MMD` reads it (its stored rows may be
    float32; its value is the float64 one).

    Returns
    -------
    float or torch.Tensor
        A Python ``float``; a 0-d ``float64`` tensor on the autograd graph when autograd records
        a tensor input.

    Examples
    --------
    >>> import torch
    >>> x, y = torch.zeros(3, 1, dtype=torch.float32), torch.ones(3, 1, dtype=torch.float32)
    >>> value = mmd_float64(x, y, bandwidth=1.0, estimator="biased")
    >>> type(value).__name__, round(value, 12)      # 2 - 2 exp(-1/2)
    ('float', 0.786938680575)
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator: must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    xt = as_samples_tensor(x, "x")
    yt = as_samples_tensor(y, "y", dim=xt.shape[1], device=xt.device)
    spec = resolve_kernel(kernel, bandwidth, degree, gamma, coef0, xt, yt, xt.shape[1])
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
        return h.mean() if tracks_grad(h) else float(h.mean())
    chunk = _default_chunk_size(xt.shape[1]) if chunk_size is None else int(
        validate_positive(chunk_size, "chunk_size", integer=True))
    sxx, dxx = _sums(xt, None, spec, chunk)
    syy, dyy = _sums(yt, None, spec, chunk)
    sxy, _ = _sums(xt, yt, spec, chunk)
    if estimator == "unbiased":
        return (sxx - dxx) / (m * (m - 1)) + (syy - dyy) / (n * (n - 1)) - 2.0 * sxy / (m * n)
    return sxx / (m * m) + syy / (n * n) - 2.0 * sxy / (m * n)


@renamed_arguments(block_size="chunk_size")
def mmd(x, y, *, kernel: str = "gaussian", bandwidth=None, estimator: str = "unbiased", degree=None,
        gamma=None, coef0=None, chunk_size: int | None = None):
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
        See :mod:`otmetrics.generative.kernels` for the formulas.
    bandwidth : float, "median" or list of float, optional
        :math:`\sigma` of the gaussian/laplacian kernel. Default (``None``) and ``"median"``: the
        median heuristic (:func:`~otmetrics.generative.kernels.median_bandwidth` of the pooled
        samples, computed once). A list sums the kernels of each bandwidth (a multi-scale
        kernel). Not used by "polynomial".
    estimator : {"unbiased", "biased", "linear"}, default "unbiased"
    degree, gamma, coef0 : optional
        Polynomial kernel parameters: an integer ``>= 1``, a real ``> 0`` and a real ``>= 0``
        (the kernel is positive semi-definite only then); defaults 3, ``1/d``, 1.
    chunk_size : int, optional
        Rows per chunk: the kernel sums are evaluated in blocks of ``chunk_size x chunk_size``
        entries (default: blocks of about 4 million entries). The value is the same for any
        chunk size, up to rounding. Its former name ``block_size`` is accepted until otmetrics
        0.3, with a ``DeprecationWarning``.

    Returns
    -------
    float or torch.Tensor
        The MMD² estimate (squared; no square root is taken). A Python ``float`` for numpy input,
        a 0-d tensor on ``x``'s device in its dtype for tensor input. **Differentiable**: when
        ``x`` or ``y`` requires grad (and grad mode is on) the result carries the autograd graph,
        so ``mmd`` can be a training loss; the bandwidth (even the median heuristic) is a
        constant of the graph.

    Raises
    ------
    ValueError
        Fewer than 2 samples, different dimensions, NaN/infinite values, an unknown kernel or
        estimator, a non-positive bandwidth, parameters of another kernel, ``m != n`` for
        ``"linear"``, a ``chunk_size`` that is not a positive integer, both ``chunk_size`` and
        ``block_size``.

    Notes
    -----
    Time ``O((m + n)^2 d)`` (``O(n d)`` for ``"linear"``); memory ``O((m + n) d)`` plus a few
    kernel blocks: the within-sample sums evaluate only the blocks on and above the diagonal.
    All arithmetic is ``float64`` on the samples' device (a float32 GPU tensor is converted
    there), so that the difference of large sums keeps its digits. Radial kernels are evaluated
    on points centred on the pooled mean (the MMD is translation invariant).

    With autograd, the kernel blocks are not recorded: the backward pass evaluates each block
    again and differentiates it, so it costs a few forward passes and memory stays
    ``O((m + n) d)`` plus a few blocks, where recording every block would keep
    ``O((m + n)^2)`` numbers. The Laplacian kernel's
    gradient at coincident points is 0 (a subgradient of its kink), never NaN.

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
    >>> import torch
    >>> xt = torch.tensor(x[:100], requires_grad=True)
    >>> loss = mmd(xt, torch.tensor(y[:100]) + 1.0, bandwidth=1.0)
    >>> loss.backward()                 # a loss: gradients flow to the samples
    >>> xt.grad.shape
    torch.Size([100, 2])
    """
    return as_like(mmd_float64(x, y, kernel=kernel, bandwidth=bandwidth, estimator=estimator, degree=degree,
                               gamma=gamma, coef0=coef0, chunk_size=chunk_size), first_tensor(x, y))
