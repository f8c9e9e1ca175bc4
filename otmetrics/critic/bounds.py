"""Proven bounds: Lipschitz constants of critics, and certified lower bounds on W1 of samples.

Everything here is computed in float64 and accounts for its own rounding, so that the numbers it
returns are bounds *of the exact quantities*, not of their floating-point images:

- :func:`spectral_norm_bound` is ``sigma_max`` from LAPACK's SVD, inflated by LAPACK's error bound;
- :class:`FrozenCritic` evaluates a network together with a bound on the difference between the
  computed and the exact (infinite-precision) value at every point (a running forward-error
  analysis: ``|fl(W h + b) - (W h + b)| <= gamma_{k+1} (|W| |h| + |b|)`` for dot products of
  length ``k``, ``gamma_k = k u / (1 - k u)``, ``u = 2^-53``, propagated through the layers'
  spectral norms; sorting and ReLU are exact);
- :func:`dual_lower_bound` turns *any* values ``phi`` on the source points into a dual-feasible
  pair ``(phi', phi^c)`` by c-transforms, with margins that keep ``phi'_i + psi_j <= |x_i - y_j|``
  true for the exact Euclidean distances; by weak duality its value is a lower bound on the exact
  W1 of the two empirical measures, whatever ``phi`` is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._core.arrays import is_tensor, to_numpy
from .._core.validation import validate_array, validate_positive, validate_samples, validate_weights
from .._core.rounding import TINY, UNIT_ROUNDOFF, gamma, lower_dot, next_down, next_up
from .networks import group_sort

__all__ = ["spectral_norm_bound", "lipschitz_bound", "FrozenCritic", "dual_lower_bound", "DualBound"]

# absolute slack of a computed distance: a square rounded in the subnormal range moves the
# square root by up to sqrt(d * 2^-1074) ~ 1e-161 per coordinate
_TINY_DIST = 1e-150
# distance blocks hold at most this many entries (float64: 128 MB)
_BLOCK = 1 << 24


def spectral_norm_bound(weight) -> float:
    """A proven upper bound on the spectral norm ``|W|_2`` (largest singular value).

    .. math::

        \\hat\\sigma_{\\max} \\, (1 + 32 \\max(m, n)\\, u) + \\text{tiny}

    where :math:`\\hat\\sigma_{\\max}` is LAPACK's float64 SVD (``gesdd``) of the matrix and
    :math:`u = 2^{-53}`: LAPACK guarantees :math:`|\\hat\\sigma_i - \\sigma_i| \\le p(m, n)\\, u\\,
    \\sigma_{\\max}` with :math:`p` a modestly growing function, which the factor covers with a wide
    margin. Never power iteration (which only approaches the norm from below).

    Parameters
    ----------
    weight : array-like or tensor, shape ``(m, n)``

    Returns
    -------
    float

    Notes
    -----
    ``O(m n min(m, n))`` time. Reference: Anderson et al., *LAPACK Users' Guide* (3rd ed., 1999),
    Sec. 4.9 (error bounds for the singular value decomposition).

    Examples
    --------
    >>> spectral_norm_bound([[3.0, 0.0], [0.0, -4.0]])  # doctest: +ELLIPSIS
    4.00000000000...
    """
    w = to_numpy(weight, "weight")
    if w.ndim != 2 or w.size == 0:
        raise ValueError(f"weight: expected a non-empty matrix, got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("weight: entries must be finite")
    sigma = float(np.linalg.svd(w, compute_uv=False)[0])
    return next_up(sigma * (1.0 + 32 * max(w.shape) * UNIT_ROUNDOFF) + TINY)


def lipschitz_bound(layers) -> float:
    """A proven upper bound on the Lipschitz constant of ``W_L act(... act(W_1 x + b_1)) + b_L``.

    For 1-Lipschitz activations (ReLU, GroupSort) the Euclidean Lipschitz constant is at most
    :math:`\\prod_l |W_l|_2`; each factor is :func:`spectral_norm_bound` and the product is
    rounded upwards.

    Parameters
    ----------
    layers : sequence of ``(W, b)`` pairs (arrays or tensors)
        The affine layers ``x -> W x + b`` of the network, first to last (``W`` of shape
        ``(out, in)``); the biases do not enter the bound. The activations between them must be
        1-Lipschitz in the Euclidean norm.

    Returns
    -------
    float
        An upper bound on ``Lip(f)`` that holds for the exact (infinite-precision) network.

    Notes
    -----
    ``O(sum_l m_l n_l min(m_l, n_l))`` time (one SVD per layer). The product of the norms can be
    much larger than the true constant of a trained network (it ignores how the layers align);
    it is tight for GroupSort networks with orthonormal weights, whose constant is 1 on the
    directions they preserve.

    References
    ----------
    Szegedy et al., "Intriguing properties of neural networks", ICLR 2014, Sec. 4.3 (the product
    of the layers' operator norms); Anil, Lucas & Grosse, "Sorting out Lipschitz function
    approximation", ICML 2019 (1-Lipschitz activations and orthonormal weights).

    Examples
    --------
    >>> import numpy as np
    >>> lipschitz_bound([(np.eye(2) * 2, np.zeros(2)), (np.ones((1, 2)), np.zeros(1))])  # doctest: +ELLIPSIS
    2.828427124...
    """
    bound = 1.0
    for w, _ in layers:
        bound = next_up(bound * spectral_norm_bound(w))
    return bound


class FrozenCritic:
    """A trained critic frozen into float64 affine layers: callable, with proven bounds.

    ``f(x) = W_L act(... act(W_1 x + b_1) ...) + b_L`` with ``act`` GroupSort or ReLU. The
    matrices are *the definition* of the function: :attr:`lipschitz_bound` is proven for it, and
    :meth:`evaluate` returns values with bounds on their floating-point error.

    Parameters
    ----------
    layers : list of ``(W, b)`` float64 tensors, ``W`` of shape ``(out, in)``
    activation : {"groupsort", "relu"}
    group_size : int
        GroupSort group size (ignored for ReLU).

    Examples
    --------
    >>> import numpy as np, torch
    >>> f = FrozenCritic([(torch.tensor([[1.0, 0.0]], dtype=torch.float64),
    ...                    torch.zeros(1, dtype=torch.float64))], "relu")
    >>> f(np.array([[2.0, 5.0], [-1.0, 0.0]]))
    array([ 2., -1.])
    """

    def __init__(self, layers, activation: str, group_size: int = 2):
        if activation not in ("groupsort", "relu"):
            raise ValueError(f"activation: must be 'groupsort' or 'relu', got {activation!r}")
        self.layers = [(torch.as_tensor(w, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64))
                       for w, b in layers]
        self.activation = activation
        self.group_size = int(group_size)
        self._lipschitz = None
        self._norms = None

    @property
    def dim(self) -> int:
        """Dimension of the inputs."""
        return int(self.layers[0][0].shape[1])

    @property
    def device(self):
        return self.layers[0][0].device

    @property
    def layer_norm_bounds(self) -> list[float]:
        """Proven upper bounds on the spectral norm of each weight matrix."""
        if self._norms is None:
            self._norms = [spectral_norm_bound(w) for w, _ in self.layers]
        return self._norms

    @property
    def lipschitz_bound(self) -> float:
        """A proven upper bound on the Euclidean Lipschitz constant: the product of the layers' norms."""
        if self._lipschitz is None:
            bound = 1.0
            for norm in self.layer_norm_bounds:
                bound = next_up(bound * norm)
            self._lipschitz = bound
        return self._lipschitz

    def _act(self, h):
        if self.activation == "relu":
            return torch.relu(h)
        return group_sort(h, self.group_size)

    def _points(self, x):
        return as_float64(validate_samples(x, "x", dim=self.dim), self.device)

    def evaluate(self, x, *, with_error: bool = False, chunk_size: int = 65536):
        """The values ``f(x_i)`` in float64, and optionally bounds on their rounding errors.

        Parameters
        ----------
        x : array-like or tensor, shape ``(n, d)``
        with_error : bool, default False
            Also return ``err`` with ``|computed_i - f(x_i)| <= err_i`` for the exact ``f``.
        chunk_size : int
            Points per block.

        Returns
        -------
        values : float64 tensor ``(n,)`` on the critic's device
        err : float64 tensor ``(n,)`` (only with ``with_error``)

        Notes
        -----
        ``O(n sum_l in_l out_l)`` time, about twice that with the error bounds. The bound follows
        the computed activations layer by layer: ``E_{l+1} = |W_l|_2 E_l + gamma_{k+1}
        | |W_l| |h_l| + |b_l| |_2`` with ``k`` the layer's input width, inflated by 1% for the
        rounding of the bound itself.
        """
        t = self._points(x)
        values, errors = [], []
        for start in range(0, t.shape[0], chunk_size):
            h = t[start:start + chunk_size]
            err = torch.zeros(h.shape[0], dtype=torch.float64, device=h.device)
            for k, (w, b) in enumerate(self.layers):
                z = h @ w.T + b
                if with_error:
                    local = gamma(w.shape[1] + 1) * torch.linalg.vector_norm(
                        h.abs() @ w.abs().T + b.abs(), dim=-1)
                    err = (self.layer_norm_bounds[k] * err + local + TINY * w.shape[0]) * 1.01
                h = self._act(z) if k < len(self.layers) - 1 else z
            values.append(h.squeeze(-1))
            errors.append(err)
        values = torch.cat(values)
        return (values, torch.cat(errors)) if with_error else values

    def __call__(self, x):
        """``f(x)``: numpy float64 for numpy input, a tensor like ``x`` for torch input."""
        values = self.evaluate(x)
        if is_tensor(x):
            dtype = x.dtype if x.is_floating_point() else torch.float64
            return values.to(device=x.device, dtype=dtype)
        return values.cpu().numpy()

    def __repr__(self) -> str:
        widths = [self.dim] + [int(w.shape[0]) for w, _ in self.layers]
        return (f"FrozenCritic({' -> '.join(map(str, widths))}, activation={self.activation!r}, "
                f"lipschitz_bound={self.lipschitz_bound:.6g})")


# ----------------------------------------------------------------------------------------------
# Certified dual values
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DualBound:
    """A certified lower bound on the exact W1 of two weighted point sets, from a dual pair.

    Attributes
    ----------
    value : float
        ``<a, phi> + <b, psi>`` rounded down, where ``phi_i + psi_j <= |x_i - y_j|`` holds for the
        exact distances: a lower bound on the exact W1 (weak duality), never above it.
    scale : float
        The factor ``s`` applied to the input values before the c-transforms.
    side : str
        ``"x"`` if the input values were those on ``x`` (``phi = s f(x)``), ``"y"`` if on ``y``
        (``psi = -s f(y)``).

    Examples
    --------
    >>> import numpy as np
    >>> bound = dual_lower_bound(np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([0.0, -1.0]))
    >>> bound.side, bound.scale, round(bound.value, 12)   # the exact W1 is 1
    ('x', 1.0, 1.0)
    """

    value: float
    scale: float
    side: str


def _c_transform(points_src, points_dst, values, chunk_rows: int):
    """``min_i (|src_i - dst_j| - values_i)`` for every ``j``, and ``max_ij |src_i - dst_j|`` (computed)."""
    out = torch.empty(points_dst.shape[0], dtype=torch.float64, device=points_dst.device)
    cmax = 0.0
    for start in range(0, points_dst.shape[0], chunk_rows):
        block = torch.cdist(points_src, points_dst[start:start + chunk_rows],
                            compute_mode="donot_use_mm_for_euclid_dist")
        cmax = max(cmax, float(block.max()))
        out[start:start + chunk_rows] = (block - values[:, None]).min(0).values
    return out, cmax


def _feasible_c_transform(points_src, points_dst, values, chunk_rows: int):
    """The c-transform of ``values`` lowered by a margin that makes it feasible for exact distances.

    The computed distance ``c^`` satisfies ``|c^ - c| <= gamma_{2d+8} c`` (differences, squares,
    a sum of ``d`` terms and a square root, each rounded), and the subtraction adds ``u |c^ - v|``.
    Lowering every entry by ``2 gamma_{2d+10} (max c^ + max |v|)`` (more than both together,
    including the rounding of the lowering) gives ``v_i + psi_j <= c_ij`` exactly.
    """
    psi, cmax = _c_transform(points_src, points_dst, values, chunk_rows)
    d = points_src.shape[1]
    margin = 2.0 * gamma(2 * d + 10) * (cmax * 1.01 + float(values.abs().max())) + _TINY_DIST * (d + 1)
    if not math.isfinite(margin):
        raise FloatingPointError("distances overflow float64")
    return psi - margin


def dual_lower_bound(x, y, values, *, a=None, b=None, side: str = "x", scale: float = 1.0,
                     chunk_size: int | None = None) -> DualBound:
    """A certified lower bound on the exact W1 between two empirical measures, from any potential.

    For ``side="x"``, ``phi = scale * values`` on the source points ``x``; then

    .. math::

        \\psi_j = \\min_i |x_i - y_j| - \\phi_i, \\qquad \\phi'_i = \\min_j |x_i - y_j| - \\psi_j,

    (each lowered by a rounding margin) satisfy ``phi'_i + psi_j <= |x_i - y_j|`` for the exact
    distances, so ``<a, phi'> + <b, psi>`` (rounded down) is at most the exact
    ``W1(sum a_i delta_{x_i}, sum b_j delta_{y_j})`` by weak duality. For ``side="y"`` the
    values live on ``y`` (``psi = -scale * values``) and the transforms run the other way. With
    ``values = f(x)`` for a 1-Lipschitz ``f`` the bound is at least ``E_a f(x) - E_b f(y)``
    (up to rounding): the c-transforms can only improve a Kantorovich-Rubinstein pair.

    Parameters
    ----------
    x : array-like or tensor, shape ``(n, d)``
    y : array-like or tensor, shape ``(m, d)``
    values : array-like or tensor, shape ``(n,)`` (``side="x"``) or ``(m,)`` (``side="y"``)
        Any finite numbers.
    a, b : array-like or tensor, shapes ``(n,)`` and ``(m,)``, optional
        Non-negative weights with a positive total, normalised to 1: the bound is on the W1 of the
        probability measures ``a / sum(a)`` and ``b / sum(b)``. Uniform when omitted.
    side : {"x", "y"}
    scale : float, default 1
    chunk_size : int, optional
        Columns of the distance matrix per block (default: blocks of ``2^24`` entries).

    Returns
    -------
    DualBound

    Raises
    ------
    ValueError
        Points of different dimensions, NaN or infinite coordinates or values, values of the wrong
        length, negative weights, weights of total 0 or of the wrong length.

    Notes
    -----
    ``O(n m d)`` time, ``O(n + m)`` memory beyond one distance block; computed in float64 on the
    device of the inputs. The rounding of the weights' normalisation is accounted for like every
    other rounding. Reference: Villani, *Optimal Transport: Old and New* (2009), Thm. 5.10
    (the c-transform); Peyré & Cuturi, *Computational Optimal Transport* (2019), Sec. 3.1 and 6.1.

    Examples
    --------
    Any values give a bound below the exact value (here 1.0); good values give a tight one:

    >>> import numpy as np
    >>> x, y = np.array([[0.0], [1.0]]), np.array([[1.0], [2.0]])
    >>> dual_lower_bound(x, y, np.array([0.0, 0.0])).value <= 1.0
    True
    >>> round(dual_lower_bound(x, y, -x[:, 0]).value, 12)
    1.0
    """
    if side not in ("x", "y"):
        raise ValueError(f"side: must be 'x' or 'y', got {side!r}")
    if chunk_size is not None:
        chunk_size = int(validate_positive(chunk_size, "chunk_size", integer=True))
    X, Y, v, wa, wb = _dual_inputs(x, y, values, a, b, side)
    scaled = v * float(scale)
    if not torch.isfinite(scaled).all():
        raise ValueError(f"values: must be finite after scaling by {scale!r}")
    rows_x = chunk_size or max(1, _BLOCK // X.shape[0])  # blocks of the (n, chunk) distances from x
    rows_y = chunk_size or max(1, _BLOCK // Y.shape[0])
    if side == "x":
        psi = _feasible_c_transform(X, Y, scaled, rows_x)
        phi = _feasible_c_transform(Y, X, psi, rows_y)
    else:
        phi = _feasible_c_transform(Y, X, -scaled, rows_y)
        psi = _feasible_c_transform(X, Y, phi, rows_x)
    value = next_down(lower_dot(wa, phi) + lower_dot(wb, psi))
    return DualBound(value=value, scale=float(scale), side=side)


def best_scale(x, y, values, *, a=None, b=None, side: str = "x", candidates=(), n_golden: int = 30) -> float:
    """The factor ``s >= 0`` maximising the single c-transform value ``D(s)`` of ``s * values``.

    ``D(s) = <a, s f(x)> + <b, (s f)^c>`` is concave and piecewise linear in ``s`` (a sum of
    minima of affine functions); it is searched on a geometric grid around ``candidates`` and then
    refined by golden sections. Any ``s`` gives a valid bound; this only picks a good one.
    ``O((20 + n_golden) n m d)`` time (the distance matrix is kept when it has at most ``2^24``
    entries, recomputed in blocks otherwise).
    """
    X, Y, v, wa, wb = _dual_inputs(x, y, values, a, b, side)
    if side == "y":  # psi = -s f(y) on y, its transform phi on x: same algebra with roles swapped
        X, Y, wa, wb, v = Y, X, wb, wa, -v
    cached = X.shape[0] * Y.shape[0] <= _BLOCK
    dist = torch.cdist(X, Y, compute_mode="donot_use_mm_for_euclid_dist") if cached else None
    mean_v = float((wa * v).sum())

    def objective(s: float) -> float:
        if cached:
            psi = (dist - s * v[:, None]).min(0).values
        else:
            psi, _ = _c_transform(X, Y, s * v, max(1, _BLOCK // X.shape[0]))
        return s * mean_v + float((wb * psi).sum())

    spread = float(v.max() - v.min())
    if spread == 0.0:
        return 1.0
    anchors = [float(c) for c in candidates if c is not None and math.isfinite(c) and c > 0] or [1.0]
    grid = sorted({anchor * 2.0**k for anchor in anchors for k in range(-8, 9)})
    scores = [objective(s) for s in grid]
    best = int(np.argmax(scores))
    lo = grid[best - 1] if best > 0 else 0.0
    hi = grid[best + 1] if best + 1 < len(grid) else grid[best] * 2.0
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    c, d = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fc, fd = objective(c), objective(d)
    for _ in range(n_golden):
        if fc >= fd:
            hi, d, fd = d, c, fc
            c = hi - ratio * (hi - lo)
            fc = objective(c)
        else:
            lo, c, fc = c, d, fd
            d = lo + ratio * (hi - lo)
            fd = objective(d)
    options = [(scores[best], grid[best]), (fc, c), (fd, d)]
    return max(options)[1]


def as_float64(x, device=None) -> torch.Tensor:
    """A validated array or tensor as a float64 tensor (on ``device``, else where it is)."""
    if is_tensor(x):
        return x.detach().to(device=device if device is not None else x.device, dtype=torch.float64)
    return torch.from_numpy(np.ascontiguousarray(to_numpy(x))).to(device or "cpu")


def _weights64(w, name: str, size: int, device) -> torch.Tensor:
    """Weights validated (non-negative, finite, positive total, ``size`` of them) and normalised to
    1 in float64; uniform when ``w`` is None."""
    if w is None:
        return torch.full((size,), 1.0 / size, dtype=torch.float64, device=device)
    t = as_float64(validate_weights(w, name, ndim=1, size=size), device)
    return t / t.sum()


def _dual_inputs(x, y, values, a, b, side):
    """Points, values and normalised weights of :func:`dual_lower_bound`, validated, in float64
    on the device of ``x``."""
    X = validate_samples(x, "x")
    device = X.device if is_tensor(X) else torch.device("cpu")
    X = as_float64(X, device)
    Y = as_float64(validate_samples(y, "y", dim=X.shape[1]), device)
    size = X.shape[0] if side == "x" else Y.shape[0]
    v = validate_array(values, "values", ndim=1, what="entries")
    if v.shape[0] != size:
        raise ValueError(f"values: expected {size} values (one per point of {side}), got {v.shape[0]}")
    wa, wb = _weights64(a, "a", X.shape[0], device), _weights64(b, "b", Y.shape[0], device)
    return X, Y, as_float64(v, device), wa, wb
