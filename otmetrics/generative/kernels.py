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

import functools
import math
import numbers
from dataclasses import dataclass

import numpy as np

from .._core.arrays import as_like, first_tensor, is_tensor, to_numpy
from .._core.validation import validate_positive, validate_samples

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
def _rows(x, name: str, *, min_samples: int = 2, dim: int | None = None, device=None,
          float64: bool = True, detach: bool = False):
    """``x`` as a validated ``(n, d)`` tensor (on its own device, or ``device``): float64, or with
    ``float64=False`` in its own floating dtype (float32 arrays and tensors stay float32: no
    full-size copy). Tensors keep their autograd graph unless ``detach``."""
    import torch

    if isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64):
        x = torch.from_numpy(np.ascontiguousarray(x))  # a view: validate_samples keeps the dtype
    t = validate_samples(x, name, min_samples=min_samples, dim=dim)
    if not is_tensor(t):
        t = torch.from_numpy(np.ascontiguousarray(t))
    if detach:
        t = t.detach()
    return t.to(dtype=torch.float64 if float64 else t.dtype,
                device=device if device is not None else t.device)


def _tracks(*tensors) -> bool:
    """Whether autograd records operations on these tensors (grad mode on and one requires grad)."""
    import torch

    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _integer_at_least_two(value, name: str) -> int:
    validate_positive(value, name, integer=True)
    if value < 2:
        raise ValueError(f"{name}: must be an integer >= 2, got {value!r}")
    return int(value)


def _subset_size(value) -> int:
    """A valid KID ``subset_size`` (an integer >= 2), checked before any data is seen."""
    return _integer_at_least_two(value, "subset_size")


# ------------------------------------------------------------------------------------------------
# Kernels
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Kernel:
    """A resolved kernel: its kind and parameters (bandwidths already numbers).

    The evaluations work in place for speed; when autograd records the inputs they are
    out of place, and the Laplacian kernel's distance has gradient 0 at coincident points (a
    subgradient of the kink of ``exp(-|x - y| / s)``) instead of ``inf * 0 = nan``.
    """

    kind: str
    bandwidths: tuple[float, ...] = ()
    degree: int = 3
    gamma: float = 1.0
    coef0: float = 1.0

    @property
    def radial(self) -> bool:
        return self.kind != "polynomial"

    def _of_sqdist(self, d2):
        import torch

        track = _tracks(d2)
        if self.kind == "gaussian":
            base, factors = d2, [-0.5 / (s * s) for s in self.bandwidths]
        else:
            if track:
                positive = d2 > 0
                base = torch.where(positive, torch.where(positive, d2, 1.0).sqrt(), 0.0)
            else:
                base = d2.sqrt()
            factors = [-1.0 / s for s in self.bandwidths]
        scaled = (base * f for f in factors)  # one block at a time
        out = None
        for z in scaled:
            k = z.exp() if track else z.exp_()
            out = k if out is None else (out + k if track else out.add_(k))
        return out

    def _polynomial(self, prod, track: bool):
        if track:
            return (prod * self.gamma + self.coef0) ** self.degree
        return prod.mul_(self.gamma).add_(self.coef0).pow_(self.degree)

    def block(self, a, b, sq_a=None, sq_b=None, same: bool = False):
        """The kernel matrix between rows of ``a`` and ``b`` (``sq_*``: squared row norms).

        ``same``: ``a`` is ``b`` (a diagonal block), whose zero distances are set exactly.
        """
        import torch

        track = _tracks(a, b)
        prod = a @ b.T
        if not self.radial:
            return self._polynomial(prod, track)
        if sq_a is None:
            sq_a = (a * a).sum(1)
        if sq_b is None:
            sq_b = (b * b).sum(1)
        if track:
            d2 = (sq_a[:, None] + sq_b[None, :] - 2.0 * prod).clamp_min(0.0)
        else:
            d2 = prod.mul_(-2.0).add_(sq_a[:, None]).add_(sq_b[None, :]).clamp_min_(0.0)
        if self.kind == "laplacian":
            # The expansion is off by ~d eps (|a|^2 + |b|^2); harmless in exp(-d2 / 2s^2), but the
            # laplacian's square root turns it into ~1e-8 for (near-)coincident points. Recompute
            # the distances that are small against that error from differences, exactly.
            small = d2 <= _EXACT_BELOW * a.shape[1] * (sq_a[:, None] + sq_b[None, :])
            if bool(small.any()):
                i, j = small.nonzero(as_tuple=True)
                diff = a[i] - b[j]
                exact = (diff * diff).sum(1)
                d2 = d2.index_put((i, j), exact) if track else d2.index_put_((i, j), exact)
        elif same:
            if track:
                d2 = torch.diagonal_scatter(d2, d2.new_zeros(d2.shape[0]))
            else:
                d2.fill_diagonal_(0.0)
        return self._of_sqdist(d2)

    def block_batched(self, a, b):
        """Kernel matrices of a batch of row sets ``(B, s, d)`` (polynomial kernel only)."""
        return self._polynomial(a @ b.transpose(1, 2), _tracks(a, b))

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
        deg = 3 if degree is None else int(validate_positive(degree, "degree", integer=True))
        g = 1.0 / dim if gamma is None else float(validate_positive(gamma, "gamma"))
        # coef0 >= 0 keeps the kernel positive semi-definite (a sum of powers of x.y with
        # non-negative coefficients); with coef0 < 0 and an odd degree, k(0, 0) < 0.
        c = 1.0 if coef0 is None else float(validate_positive(coef0, "coef0", allow_zero=True))
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
        widths = (float(validate_positive(bandwidth, "bandwidth")),)
    else:
        try:
            items = list(bandwidth)
        except TypeError:
            raise ValueError(f"bandwidth: must be a positive number, 'median' or a list of positive numbers, "
                             f"got {bandwidth!r}") from None
        if not items:
            raise ValueError("bandwidth: the list of bandwidths must not be empty, got []")
        widths = tuple(float(validate_positive(b, "bandwidth")) for b in items)
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
        At least 2.
    seed : int, default 0
        Seeds the subsample (``numpy.random.default_rng``).

    Returns
    -------
    float
        A constant: no gradient flows through the bandwidth.

    Notes
    -----
    ``O(s^2 d)`` time and ``O(s^2)`` memory for ``s = min(n + m, max_samples)`` pooled points
    (``scipy.spatial.distance.pdist`` in float64); only the subsample is copied to the host.

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

    _integer_at_least_two(max_samples, "max_samples")
    xt = _rows(x, "x", min_samples=1, float64=False, detach=True)
    parts = [xt]
    if y is not None:
        parts.append(_rows(y, "y", min_samples=1, dim=xt.shape[1], float64=False, detach=True))
    total = sum(int(part.shape[0]) for part in parts)
    if total > max_samples:
        # A seeded subset of the pooled rows (x first, then y), gathered set by set.
        pick = np.sort(np.random.default_rng(seed).choice(total, max_samples, replace=False))
        chosen, offset = [], 0
        for part in parts:
            local = pick[(pick >= offset) & (pick < offset + part.shape[0])] - offset
            chosen.append(to_numpy(part[torch.as_tensor(local, device=part.device)]))
            offset += part.shape[0]
    else:
        chosen = [to_numpy(part) for part in parts]
    dist = pdist(np.concatenate(chosen))
    dist = dist[dist > 0]
    return float(np.median(dist)) if dist.size else 1.0


def kernel_matrix(x, y=None, *, kernel: str = "gaussian", bandwidth=None, degree=None, gamma=None,
                  coef0=None):
    r"""The kernel matrix :math:`K_{ij} = k(x_i, y_j)` (``y = x`` when omitted).

    The kernels are those of the module docstring:
    :math:`\exp(-\lVert x - y\rVert^2 / 2\sigma^2)`, :math:`\exp(-\lVert x - y\rVert / \sigma)`
    or :math:`(\gamma\, x \cdot y + c_0)^{\mathrm{degree}}`, a list of bandwidths summing the
    radial kernels.

    Parameters
    ----------
    x : array-like or tensor, shape (n, d)
    y : array-like or tensor, shape (m, d), optional
        Points (a 1-D input is read as points on a line); default ``x``.
    kernel : {"gaussian", "laplacian", "polynomial"}, default "gaussian"
    bandwidth : float, "median" or list of float, optional
        :math:`\sigma` of a radial kernel; default the median heuristic (:func:`median_bandwidth`).
    degree, gamma, coef0 : optional
        Polynomial kernel parameters: an integer ``>= 1``, a real ``> 0`` and a real ``>= 0``;
        defaults 3, ``1/d``, 1.

    Returns
    -------
    numpy.ndarray or torch.Tensor, shape (n, m)
        ``float64`` for array input; for tensors, on ``x``'s device in its floating dtype, and
        differentiable with respect to ``x`` and ``y`` (the bandwidth is a constant).

    Raises
    ------
    ValueError
        Empty or non-finite points, different dimensions, an unknown kernel, a bandwidth that is
        not positive, parameters of another kernel.

    Notes
    -----
    ``O(n m d)`` time and ``O(n m)`` memory (the whole matrix; :func:`mmd` never forms it), in
    ``float64``. Squared distances use the expansion :math:`|x|^2 + |y|^2 - 2 x \cdot y` on the
    points centred on their pooled mean (so the cancellation error is relative to the spread of
    the data, not to its offset), clipped at 0; for the Laplacian kernel, distances small
    against that error are recomputed from differences.

    References
    ----------
    Schölkopf and Smola, "Learning with kernels", MIT Press (2002), chapter 2. Gretton et al.,
    "A kernel two-sample test", JMLR 13 (2012).

    Examples
    --------
    >>> import numpy as np
    >>> K = kernel_matrix([[0.0], [1.0]], kernel="gaussian", bandwidth=1.0)
    >>> bool(np.allclose(K, [[1, np.exp(-0.5)], [np.exp(-0.5), 1]]))
    True
    >>> kernel_matrix([[1.0, 2.0]], [[3.0, 4.0]], kernel="polynomial", degree=2, gamma=1.0)
    array([[144.]])
    """
    import torch

    xt = _rows(x, "x", min_samples=1)
    yt = xt if y is None else _rows(y, "y", min_samples=1, dim=xt.shape[1], device=xt.device)
    spec = _resolve_kernel(kernel, bandwidth, degree, gamma, coef0, xt, yt, xt.shape[1])
    if spec.radial:
        pooled = xt if y is None else torch.cat([xt, yt])
        center = pooled.mean(0)
        xt, yt = xt - center, (None if y is None else yt - center)
        yt = xt if yt is None else yt
    k = spec.block(xt, yt, same=y is None)
    ref = first_tensor(x, y)
    return k.cpu().numpy() if ref is None else as_like(k, ref)


# ------------------------------------------------------------------------------------------------
# Blocked kernel sums
# ------------------------------------------------------------------------------------------------
def _block_size(d: int) -> int:
    # Square blocks of <= _BLOCK_ENTRIES entries; smaller when the rows themselves are long.
    side = int(math.isqrt(_BLOCK_ENTRIES))
    return max(64, min(side, _BLOCK_ENTRIES // max(d, 1)))


def _block_pairs(n: int, m: int | None, block: int):
    """The blocks ``(i0, i1, j0, j1, weight, same)`` of a blocked kernel sum.

    ``m is None``: the within-sample sum of ``n`` points, on and above the diagonal only (the
    kernel is symmetric: off-diagonal blocks count twice). Otherwise the cross sum, ``n x m``.
    """
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        if m is None:
            for j0 in range(i0, n, block):
                yield i0, i1, j0, min(n, j0 + block), (1.0 if j0 == i0 else 2.0), j0 == i0
        else:
            for j0 in range(0, m, block):
                yield i0, i1, j0, min(m, j0 + block), 1.0, False


def _kernel_sums(x, y, spec: _Kernel, block: int):
    """``(sum_ij K_ij, trace K)`` by blocks, as floats: ``K = k(x, x)`` when ``y`` is ``None``
    (only the blocks on and above the diagonal are evaluated), else ``K = k(x, y)`` (trace 0)."""
    other = x if y is None else y
    sq_x = (x * x).sum(1) if spec.radial else None
    sq_o = sq_x if y is None else ((y * y).sum(1) if spec.radial else None)
    total, trace = 0.0, 0.0
    for i0, i1, j0, j1, weight, same in _block_pairs(x.shape[0], None if y is None else y.shape[0], block):
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
        def forward(ctx, x, y, spec, block):
            total, trace = _kernel_sums(x, y, spec, block)
            ctx.spec, ctx.block, ctx.within = spec, block, y is None
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
            blocks = _block_pairs(x.shape[0], None if ctx.within else other.shape[0], ctx.block)
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


def _sums(x, y, spec: _Kernel, block: int):
    """:func:`_kernel_sums`, differentiable (0-d tensors) when autograd records ``x`` or ``y``."""
    if _tracks(x) or (y is not None and _tracks(y)):
        return _differentiable_kernel_sums().apply(x, y, spec, block)
    return _kernel_sums(x, y, spec, block)


def _mmd(x, y, *, kernel: str = "gaussian", bandwidth=None, estimator: str = "unbiased", degree=None,
         gamma=None, coef0=None, block_size: int | None = None):
    """:func:`mmd` in float64: a float, or a 0-d float64 tensor on the graph when autograd records
    a tensor input (the streaming :class:`otmetrics.MMD` reads the float, never rounded to the
    rows' dtype)."""
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator: must be one of {', '.join(ESTIMATORS)}, got {estimator!r}")
    xt = _rows(x, "x")
    yt = _rows(y, "y", dim=xt.shape[1], device=xt.device)
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
        return h.mean() if _tracks(h) else float(h.mean())
    block = _block_size(xt.shape[1]) if block_size is None else int(
        validate_positive(block_size, "block_size", integer=True))
    sxx, dxx = _sums(xt, None, spec, block)
    syy, dyy = _sums(yt, None, spec, block)
    sxy, _ = _sums(xt, yt, spec, block)
    if estimator == "unbiased":
        return (sxx - dxx) / (m * (m - 1)) + (syy - dyy) / (n * (n - 1)) - 2.0 * sxy / (m * n)
    return sxx / (m * m) + syy / (n * n) - 2.0 * sxy / (m * n)


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
        Polynomial kernel parameters: an integer ``>= 1``, a real ``> 0`` and a real ``>= 0``
        (the kernel is positive semi-definite only then); defaults 3, ``1/d``, 1.
    block_size : int, optional
        Rows per block of the kernel sums (default: blocks of about 4 million entries).

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
        ``"linear"``.

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
    return as_like(_mmd(x, y, kernel=kernel, bandwidth=bandwidth, estimator=estimator, degree=degree,
                        gamma=gamma, coef0=coef0, block_size=block_size), first_tensor(x, y))


# ------------------------------------------------------------------------------------------------
# KID
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
        use :func:`mmd` with ``kernel="polynomial"`` (the unbiased MMD² of one subset).

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
    values = _kid_values(x, y, subsets=subsets, subset_size=subset_size, degree=degree, gamma=gamma,
                         coef0=coef0, seed=seed)
    return as_like(float(values.mean()), ref), as_like(float(values.std(correction=0)), ref)


def _kid_values(x, y, *, subsets: int = 100, subset_size: int = 1000, degree: int = 3, gamma=None,
                coef0: float = 1, seed: int = 0):
    """The per-subset unbiased MMD² values of :func:`kid`: a float64 CPU tensor ``(subsets,)``.

    The rows are read as they are (float32 stays float32: no full-size float64 copy); each
    subset (or block) is converted to float64 when used.
    """
    xt = _rows(x, "x", float64=False, detach=True)
    yt = _rows(y, "y", dim=xt.shape[1], device=xt.device, float64=False, detach=True)
    subsets = int(validate_positive(subsets, "subsets", integer=True))
    subset_size = _subset_size(subset_size)
    if subset_size > xt.shape[0]:
        raise ValueError(f"subset_size: must be at most the number of samples in x ({xt.shape[0]}), "
                         f"got {subset_size}")
    if subset_size > yt.shape[0]:
        raise ValueError(f"subset_size: must be at most the number of samples in y ({yt.shape[0]}), "
                         f"got {subset_size}")
    seed = int(validate_positive(seed, "seed", allow_zero=True, integer=True))
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
    return route(xt, yt, ix, iy, spec)
