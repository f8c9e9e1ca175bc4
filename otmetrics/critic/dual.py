"""Certified lower bounds on W1 of two sample sets, from any potential, by c-transforms.

:func:`dual_lower_bound` turns *any* values ``phi`` on the source points into a dual-feasible pair
``(phi', phi^c)`` by c-transforms, with margins that keep ``phi'_i + psi_j <= |x_i - y_j|`` true
for the exact Euclidean distances; by weak duality its value (:class:`DualBound`) is a lower bound
on the exact W1 of the two empirical measures, whatever ``phi`` is: the values of a trained critic
(:class:`~otmetrics.critic.FrozenCritic`) or any other function. :func:`best_scale` picks the
factor ``s`` of ``s phi`` that makes the bound largest. Every number is computed in float64 and
accounts for its own rounding (:mod:`otmetrics._core.rounding`); the c-transforms and their margins
are those of the transport results' bounds (:mod:`otmetrics.transport.feasible`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .._core.arrays import is_tensor
from .._core.rounding import lower_dot, next_down
from .._core.validation import validate_array, validate_positive, validate_samples, validate_weights
from ..transport.feasible import c_transform_points, feasible_c_transform_points
from .samples import as_float64

__all__ = ["DualBound", "dual_lower_bound", "best_scale"]

# distance blocks hold at most this many entries (float64: 128 MB)
_BLOCK = 1 << 24


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
    # the c-transforms with rounding margins, shared with the bounds of the transport results
    if side == "x":
        psi = feasible_c_transform_points(X, Y, scaled, chunk_rows=rows_x)
        phi = feasible_c_transform_points(Y, X, psi, chunk_rows=rows_y)
    else:
        phi = feasible_c_transform_points(Y, X, -scaled, chunk_rows=rows_y)
        psi = feasible_c_transform_points(X, Y, phi, chunk_rows=rows_x)
    value = next_down(lower_dot(wa, phi) + lower_dot(wb, psi))
    return DualBound(value=value, scale=float(scale), side=side)


def best_scale(x, y, values, *, a=None, b=None, side: str = "x", candidates=(), n_golden: int = 30) -> float:
    """The factor ``s >= 0`` maximising the single c-transform value ``D(s)`` of ``s * values``.

    ``D(s) = <a, s f(x)> + <b, (s f)^c>`` is concave and piecewise linear in ``s`` (a sum of
    minima of affine functions); it is searched on a geometric grid around ``candidates`` and then
    refined by golden sections. Any ``s`` gives a valid bound; this only picks a good one, to pass
    as ``scale`` to :func:`dual_lower_bound`.

    Parameters
    ----------
    x, y, values, a, b, side
        As for :func:`dual_lower_bound` (validated the same way).
    candidates : sequence of float, optional
        Scales to search around (non-positive, infinite and ``None`` entries are skipped); 1 when
        none is left. The grid holds ``c 2^k``, ``k = -8 ... 8``, for each candidate ``c``.
    n_golden : int, default 30
        Golden-section steps after the grid.

    Returns
    -------
    float
        The best scale found (1 when ``values`` are all equal: every scale then gives the same
        bound).

    Notes
    -----
    ``O((17 k + 2 + n_golden) n m d)`` time for ``k`` candidates; the distance matrix is kept
    when it has at most ``2^24`` entries, recomputed in blocks otherwise. ``D(s)`` is computed in
    float64 without rounding margins: it ranks scales, the bound itself is
    :func:`dual_lower_bound`'s.

    Examples
    --------
    ``f(x) = -2 x`` is twice an optimal potential of these points: the best scale is about 1/2.

    >>> import numpy as np
    >>> x, y = np.array([0.0, 1.0]), np.array([1.0, 2.0])
    >>> s = best_scale(x, y, -2 * x, candidates=(1.0,))
    >>> bool(0.49 < s <= 0.51), round(dual_lower_bound(x, y, -2 * x, scale=s).value, 6)
    (True, 1.0)
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
            psi, _ = c_transform_points(X, Y, s * v, chunk_rows=max(1, _BLOCK // X.shape[0]))
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
