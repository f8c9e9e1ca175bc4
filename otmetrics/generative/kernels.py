r"""Kernels for the kernel metrics: the kernel specifications, the median bandwidth rule and
:func:`kernel_matrix`.

Kernels (``bandwidth`` is :math:`\sigma`; a list of bandwidths sums the kernels):

- ``"gaussian"``: :math:`k(x, y) = \exp(-\lVert x - y\rVert^2 / (2 \sigma^2))`
- ``"laplacian"``: :math:`k(x, y) = \exp(-\lVert x - y\rVert / \sigma)` (Euclidean norm, as in
  GeomLoss; scikit-learn's ``laplacian_kernel`` uses the L1 norm instead)
- ``"polynomial"``: :math:`k(x, y) = (\gamma\, x \cdot y + c_0)^{\mathrm{degree}}`, default
  :math:`\gamma = 1/d`, :math:`c_0 = 1`, degree 3 (the KID kernel)

The metrics built on them live next door: the maximum mean discrepancy in
:mod:`otmetrics.generative.mmd` and the Kernel Inception Distance in :mod:`otmetrics.generative.kid`
(both names, and ``ESTIMATORS`` and ``kid_subset_indices``, are still importable from here).

What those modules share with this one is public here: :class:`KernelSpec` (a resolved kernel,
evaluated by blocks), :func:`resolve_kernel`, :func:`as_samples_tensor` (the input rule of every
kernel function), :func:`tracks_grad` and :data:`BLOCK_ENTRIES`.
"""

from __future__ import annotations

import importlib
import numbers
from dataclasses import dataclass

import numpy as np

from .._core.arrays import as_like, first_tensor, is_tensor, to_numpy
from .._core.validation import validate_positive, validate_samples

__all__ = ["KERNELS", "median_bandwidth", "kernel_matrix"]

#: The kernels :func:`kernel_matrix`, :func:`otmetrics.mmd` and :class:`otmetrics.MMD` accept.
KERNELS = ("gaussian", "laplacian", "polynomial")

#: Kernel blocks are at most this many entries (float64: 32 MB each; a few live at once). The
#: blocked sums of :func:`otmetrics.mmd` and the evaluation routes of :func:`otmetrics.kid` size
#: their blocks with it.
BLOCK_ENTRIES = 2048 * 2048

# Laplacian kernel: squared distances below this many ulps (times d and the squared norms) are
# recomputed from differences (the expansion's rounding would be amplified by the square root).
_EXACT_BELOW = 1e8 * np.finfo(np.float64).eps

# Names that moved to their own modules, still importable from here. They are looked up on first
# use (PEP 562): those modules import this one, so importing them at the top would be circular.
_MOVED = {"ESTIMATORS": "mmd", "mmd": "mmd", "kid": "kid", "kid_subset_indices": "kid"}


def __getattr__(name: str):
    if name in _MOVED:
        return getattr(importlib.import_module(f"{__package__}.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_MOVED))


# ------------------------------------------------------------------------------------------------
# Input handling
# ------------------------------------------------------------------------------------------------
def as_samples_tensor(x, name: str, *, min_samples: int = 2, dim: int | None = None, device=None,
                      float64: bool = True, detach: bool = False):
    """``x`` as a validated ``(n, d)`` torch tensor of samples: the input rule of the kernel functions.

    Parameters
    ----------
    x : array-like or tensor, shape (n, d) or (n,)
        Samples (a 1-D input is read as points on a line), validated by
        ``validate_samples`` (finite, at least ``min_samples`` rows, ``dim`` columns if given).
    name : str
        The argument's name, for error messages.
    min_samples : int, default 2
    dim : int, optional
        The required number of columns.
    device : torch.device, optional
        Where the result lives; default the tensor's own device (the CPU for arrays).
    float64 : bool, default True
        Convert to ``float64``. ``False`` keeps the floating dtype of the input (float32 arrays
        and tensors stay float32: no full-size copy; other dtypes become ``float64``).
    detach : bool, default False
        Drop the autograd graph; otherwise tensors keep it.

    Returns
    -------
    torch.Tensor, shape (n, d)

    Examples
    --------
    >>> as_samples_tensor([1.0, 2.0, 4.0], "x").shape
    torch.Size([3, 1])
    >>> as_samples_tensor(np.zeros((2, 3), dtype=np.float32), "x", float64=False).dtype
    torch.float32
    """
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


def tracks_grad(*tensors) -> bool:
    """Whether autograd records operations on these tensors (grad mode on and one requires grad).

    The kernel evaluations work in place when it does not, out of place when it does.

    Examples
    --------
    >>> import torch
    >>> tracks_grad(torch.ones(2)), tracks_grad(torch.ones(2, requires_grad=True))
    (False, True)
    """
    import torch

    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def _integer_at_least_two(value, name: str) -> int:
    validate_positive(value, name, integer=True)
    if value < 2:
        raise ValueError(f"{name}: must be an integer >= 2, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------------------------
# Kernels
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class KernelSpec:
    r"""A resolved kernel: its kind and parameters (bandwidths already numbers), built by
    :func:`resolve_kernel` and evaluated on torch tensors by blocks.

    The evaluations work in place for speed; when autograd records the inputs they are
    out of place, and the Laplacian kernel's distance has gradient 0 at coincident points (a
    subgradient of the kink of ``exp(-|x - y| / s)``) instead of ``inf * 0 = nan``.

    Attributes
    ----------
    kind : {"gaussian", "laplacian", "polynomial"}
    bandwidths : tuple of float
        The radial kernels' :math:`\sigma` (their kernels are summed); empty for "polynomial".
    degree, gamma, coef0 : int, float, float
        The polynomial kernel's parameters (unused by the radial kernels).

    Examples
    --------
    >>> import torch
    >>> spec = KernelSpec("gaussian", (1.0,))
    >>> spec.block(torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64))
    tensor([[0.3679]], dtype=torch.float64)
    """

    kind: str
    bandwidths: tuple[float, ...] = ()
    degree: int = 3
    gamma: float = 1.0
    coef0: float = 1.0

    @property
    def radial(self) -> bool:
        """Whether the kernel is a function of the distance (gaussian, laplacian)."""
        return self.kind != "polynomial"

    def _of_sqdist(self, d2):
        import torch

        track = tracks_grad(d2)
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

        track = tracks_grad(a, b)
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
        return self._polynomial(a @ b.transpose(1, 2), tracks_grad(a, b))

    def rows(self, a, b):
        """``k(a_i, b_i)`` for paired rows (exact differences, no expansion)."""
        if not self.radial:
            return ((a * b).sum(1) * self.gamma + self.coef0) ** self.degree
        diff = a - b
        return self._of_sqdist((diff * diff).sum(1))


def resolve_kernel(kernel, bandwidth, degree, gamma, coef0, x, y, dim: int) -> KernelSpec:
    """Validate a kernel's name and parameters (as the public functions take them) into a
    :class:`KernelSpec`.

    Parameters
    ----------
    kernel : str
        One of :data:`KERNELS`.
    bandwidth, degree, gamma, coef0 :
        As in :func:`kernel_matrix`; ``None`` picks the default (the median heuristic of ``x``
        and ``y`` for a radial kernel's bandwidth, ``1 / dim`` for ``gamma``).
    x, y : tensor, shape (n, d) and (m, d)
        The samples, read only by the median heuristic (``y`` may be ``None``).
    dim : int
        The dimension ``d`` of the samples.

    Returns
    -------
    KernelSpec

    Raises
    ------
    ValueError
        An unknown kernel, a bandwidth that is not positive, parameters of another kernel.

    Examples
    --------
    >>> resolve_kernel("polynomial", None, None, None, None, None, None, dim=4)
    KernelSpec(kind='polynomial', bandwidths=(), degree=3, gamma=0.25, coef0=1.0)
    >>> resolve_kernel("gaussian", [0.5, 1], None, None, None, None, None, dim=4).bandwidths
    (0.5, 1.0)
    """
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
        return KernelSpec("polynomial", (), deg, g, c)
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
    return KernelSpec(kernel, widths)


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
    xt = as_samples_tensor(x, "x", min_samples=1, float64=False, detach=True)
    parts = [xt]
    if y is not None:
        parts.append(as_samples_tensor(y, "y", min_samples=1, dim=xt.shape[1], float64=False, detach=True))
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

    The kernels are those of :data:`KERNELS` (see the module docstring):
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
    ``O(n m d)`` time and ``O(n m)`` memory (the whole matrix; :func:`otmetrics.mmd` never forms
    it), in ``float64``. Squared distances use the expansion :math:`|x|^2 + |y|^2 - 2 x \cdot y` on
    the points centred on their pooled mean (so the cancellation error is relative to the spread of
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

    xt = as_samples_tensor(x, "x", min_samples=1)
    yt = xt if y is None else as_samples_tensor(y, "y", min_samples=1, dim=xt.shape[1], device=xt.device)
    spec = resolve_kernel(kernel, bandwidth, degree, gamma, coef0, xt, yt, xt.shape[1])
    if spec.radial:
        pooled = xt if y is None else torch.cat([xt, yt])
        center = pooled.mean(0)
        xt, yt = xt - center, (None if y is None else yt - center)
        yt = xt if yt is None else yt
    k = spec.block(xt, yt, same=y is None)
    ref = first_tensor(x, y)
    return k.cpu().numpy() if ref is None else as_like(k, ref)
