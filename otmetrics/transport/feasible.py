"""Dual-feasible potentials under floating point: c-transforms with proven rounding margins.

For a cost ``c`` and *any* values ``phi_i`` on the source points, the c-transform
``psi_j = min_i c_ij - phi_i`` makes the pair feasible, ``phi_i + psi_j <= c_ij`` for all ``i, j``,
so that ``<a, phi> + <b, psi>`` is a lower bound on the optimal transport value (weak duality).
Computed in floating point the inequality can fail by a rounding error; this module lowers the
computed transform by a margin that provably covers every rounding, so that the inequality holds
for the *exact* costs:

- **dense costs** (the matrix is the problem's data, exact): :func:`feasible_c_transform_dense`
  lowers ``min_i fl(C_ij - phi_i)`` by one unit in the last place (``fl(C - phi)`` is within
  ``u |fl(C - phi)|`` of ``C - phi``, and the next float down is at least that far below);
- **point clouds** (the costs ``d(x_i, y_j)^p`` are computed): :class:`PointCost` computes them block
  by block in float64 with a bound on their error, ``|c^ - c| <= gamma_K c + abs_error``, and
  :func:`feasible_c_transform_points` lowers the transform by ``2 gamma_{K+2} (1.01 max c^ + max |phi|)
  + 1.01 abs_error`` plus a subnormal slack: the error of every cost, of every subtraction and of
  the lowering itself.

The rounding model (Higham 2002, Sec. 2.2 and 3.1): every float64 operation is exact up to a factor
``1 + delta``, ``|delta| <= u = 2^-53``; a sum of ``k`` terms (in any order) and a dot product of
length ``k`` (BLAS, with or without fused multiply-adds, but not Strassen-like products) are within
``gamma_k = k u / (1 - k u)`` of the exact values relative to the sum of magnitudes; the platform's
``pow`` (for non-integer ``p``) is accurate to 4 ulps (glibc and SLEEF guarantee 1). The points are
the exact data (float64, or a shorter float converted exactly).

The same code gives the certified lower bound of the WGAN critic (:mod:`otmetrics.critic.dual`,
Euclidean distance) and the lower bounds of every transport result (:mod:`.bounds`).
"""

from __future__ import annotations

import math

import numpy as np

from .._core.arrays import is_tensor
from .._core.rounding import gamma

__all__ = ["PointCost", "c_transform_points", "feasible_c_transform_points", "feasible_c_transform_dense",
           "TINY_DIST", "BLOCK_ENTRIES"]

#: Absolute slack of a computed distance: a square rounded in the subnormal range moves the square
#: root by up to ``sqrt(d * 2^-1074) ~ 1e-161`` per coordinate.
TINY_DIST = 1e-150
#: Default number of entries of one block of costs (8 MB of float64: blocks stay in cache).
BLOCK_ENTRIES = 1 << 20

#: Relative error, in units of ``u``-rounded operations, of a distance computed by ``torch.cdist``
#: from coordinate differences in dimension ``d`` (squares, a sum, a square root for "euclidean").
_DISTANCE_OPS = {"euclidean": lambda d: 2 * d + 8, "cityblock": lambda d: d + 4, "chebyshev": lambda d: 2}
_NORMS = {"euclidean": 2.0, "cityblock": 1.0, "chebyshev": float("inf")}


def _power_ops(k: int, p: float) -> int:
    """Operations ``K`` such that ``d^p`` computed from a distance within ``gamma_k`` is within ``gamma_K``.

    ``(1 + gamma_k)^p <= 1 + gamma_{p k}`` for ``p >= 1`` (Bernoulli); ``p = 2`` is one product,
    other powers go through ``pow`` (4 ulps = 8 roundings allowed).
    """
    if p == 1.0:
        return k
    if p == 2.0:
        return 2 * k + 1
    return int(math.ceil(p * k)) + 8


class PointCost:
    """The cost ``c(s_i, t_j) = d(s_i, t_j)^p`` of two point sets in float64, with a proven error bound.

    Every computed entry satisfies ``|c^_ij - c_ij| <= gamma_K c_ij + abs_error`` (plus a subnormal
    slack, see :meth:`margin`) for the exact cost of the exact points, with ``K = rel_ops``.

    Two ways of computing the cost:

    - *direct*: ``torch.cdist`` from coordinate differences (``abs_error = 0``; ``K`` from the number of
      rounded operations, e.g. ``2 d + 8`` for the Euclidean distance);
    - *Gram* (``p = 2``, Euclidean, the default there): ``|s|^2 + |t|^2 - 2 s.t`` by one matrix product per
      block, after centring both sets on their common mean; fast, with an absolute error
      ``abs_error = gamma_{d+8} (max|s - o| + max|t - o|)^2`` (``o`` the centre; the centring, the norms,
      the product and the two sums) and ``K = 0``.

    Parameters
    ----------
    src : tensor, shape ``(n, d)``, float64
    dst : tensor, shape ``(m, d)``, float64, on the device of ``src``
    p : float, default 1
    metric : {"euclidean", "cityblock", "chebyshev"}
    gram : bool, optional
        Use the Gram form (only for ``p = 2``, Euclidean). Default: True there.

    Examples
    --------
    >>> import torch
    >>> s = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    >>> cost = PointCost(s, torch.tensor([[3.0, 4.0]], dtype=torch.float64), p=2)
    >>> [(rows, block.tolist()) for rows, block in cost.row_blocks()]
    [(slice(0, 1, None), [[25.0]])]
    >>> cost.abs_error < 1e-12
    True
    """

    def __init__(self, src, dst, p: float = 1.0, metric: str = "euclidean", *, gram: bool | None = None):
        import torch

        self.src, self.dst = src, dst
        self.p, self.metric = float(p), metric
        self.n, self.d = src.shape
        self.m = dst.shape[0]
        self.gram = (self.p == 2.0 and metric == "euclidean") if gram is None else bool(gram)
        if self.gram and not (self.p == 2.0 and metric == "euclidean"):
            raise ValueError(f"gram: only for p=2 and the Euclidean metric, got p={p}, metric={metric!r}")
        if self.gram:
            centre = (src.sum(0) + dst.sum(0)) / (self.n + self.m)
            self._s, self._t = src - centre, dst - centre
            self._ss, self._tt = (self._s * self._s).sum(1), (self._t * self._t).sum(1)
            span = float(self._ss.max().sqrt()) + float(self._tt.max().sqrt())
            self.rel_ops = 0
            self.abs_error = gamma(self.d + 8) * span * span * (1.0 + gamma(self.d + 8))
        else:
            self.rel_ops = _power_ops(_DISTANCE_OPS[metric](self.d), self.p)
            self.abs_error = 0.0
        if not math.isfinite(self.abs_error):
            raise FloatingPointError("distances overflow float64")
        self._torch = torch

    # -- blocks of computed costs -----------------------------------------------------------------
    def _power(self, dist):
        if self.p == 1.0:
            return dist
        if self.p == 2.0:
            return dist * dist
        return dist.pow(self.p)

    def _direct(self, s, t):
        """``c^(s_i, t_j)`` from coordinate differences, ``(len(s), len(t))``."""
        dist = self._torch.cdist(s, t, p=_NORMS[self.metric], compute_mode="donot_use_mm_for_euclid_dist")
        return self._power(dist)

    def _gram(self, s, ss, t, tt):
        block = self._torch.addmm(tt.unsqueeze(0), s, t.T, alpha=-2.0)
        return block.add_(ss.unsqueeze(1)).clamp_min_(0.0)

    def row_blocks(self, chunk: int | None = None):
        """Yield ``(rows, block)``: ``c^(src_i, dst_j)`` for a slice of the source points and every target,
        a ``(len(rows), m)`` float64 tensor."""
        chunk = chunk or max(1, BLOCK_ENTRIES // max(1, self.m))
        for start in range(0, self.n, chunk):
            rows = slice(start, min(self.n, start + chunk))
            if self.gram:
                yield rows, self._gram(self._s[rows], self._ss[rows], self._t, self._tt)
            else:
                yield rows, self._direct(self.src[rows], self.dst)

    def transposed(self) -> "PointCost":
        """The same cost with the roles of the two point sets exchanged (``c(dst_j, src_i)``)."""
        return PointCost(self.dst, self.src, self.p, self.metric, gram=self.gram)

    # -- c-transforms -------------------------------------------------------------------------------
    def c_transform(self, values, chunk: int | None = None):
        """``psi_j = min_i c^_ij - values_i`` for every target ``j`` (computed, no margin), and ``max c^``.

        Parameters
        ----------
        values : tensor ``(n,)``, float64
        chunk : int, optional
            Targets per block (blocks of ``n x chunk`` costs; default about :data:`BLOCK_ENTRIES`).

        Returns
        -------
        psi : tensor ``(m,)``
        cmax : float
        """
        torch = self._torch
        out = torch.empty(self.m, dtype=torch.float64, device=self.dst.device)
        cmax = 0.0
        chunk = chunk or max(1, BLOCK_ENTRIES // max(1, self.n))
        for start in range(0, self.m, chunk):
            cols = slice(start, start + chunk)
            if self.gram:  # (chunk, n): reduce along the contiguous axis
                block = self._gram(self._t[cols], self._tt[cols], self._s, self._ss)
                cmax = max(cmax, float(block.max()))
                out[cols] = (block - values.unsqueeze(0)).amin(1)
            else:  # (n, chunk), as the critic has always computed it
                block = self._direct(self.src, self.dst[cols])
                cmax = max(cmax, float(block.max()))
                out[cols] = (block - values[:, None]).min(0).values
        return out, cmax

    def margin(self, cmax: float, vmax: float) -> float:
        """The lowering that makes a computed c-transform feasible for the exact costs.

        ``2 gamma_{K+2} (1.01 cmax + vmax) + 1.01 abs_error + TINY_DIST (d + 1) [p (cmax + 1) for p != 1]``,
        where ``cmax`` is the largest computed cost and ``vmax = max |values|``: the cost's error, the
        subtraction ``c^ - v`` (``u |c^ - v|``) and the rounding of the lowering itself, with room to spare.
        """
        tiny = TINY_DIST * (self.d + 1)
        if self.p != 1.0:
            tiny = tiny * self.p * (cmax + 1.0)
        margin = 2.0 * gamma(self.rel_ops + 2) * (cmax * 1.01 + vmax) + self.abs_error * 1.01 + tiny
        if not math.isfinite(margin):
            raise FloatingPointError("distances overflow float64")
        return margin


def c_transform_points(src, dst, values, *, p: float = 1.0, metric: str = "euclidean",
                       chunk_rows: int | None = None, gram: bool | None = None):
    """``min_i c(src_i, dst_j) - values_i`` for every ``j`` as computed (no margin), and the largest cost.

    For searches and diagnostics (e.g. :func:`otmetrics.critic.best_scale`); certified values use
    :func:`feasible_c_transform_points`.

    Parameters
    ----------
    src, dst : float64 tensors ``(n, d)``, ``(m, d)``
    values : float64 tensor ``(n,)``
    p, metric, gram : the cost, see :class:`PointCost`
    chunk_rows : int, optional
        Points of ``dst`` per block.

    Returns
    -------
    psi : tensor ``(m,)``
    cmax : float

    Examples
    --------
    >>> import torch
    >>> src = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    >>> dst = torch.tensor([[1.0]], dtype=torch.float64)
    >>> values = torch.tensor([0.0, 1.0], dtype=torch.float64)
    >>> psi, cmax = c_transform_points(src, dst, values)
    >>> psi.tolist(), cmax
    ([0.0], 1.0)
    """
    return PointCost(src, dst, p, metric, gram=gram).c_transform(values, chunk_rows)


def feasible_c_transform_points(src, dst, values, *, p: float = 1.0, metric: str = "euclidean",
                                chunk_rows: int | None = None, gram: bool | None = None):
    """The c-transform of ``values``, lowered so that ``values_i + psi_j <= c(src_i, dst_j)`` holds exactly.

    ``psi_j = min_i c^_ij - values_i - margin`` with the margin of :meth:`PointCost.margin`: the
    inequality holds for the exact costs of the exact points, whatever the rounding of the computed
    ones (see the module docstring for the rounding model).

    Parameters
    ----------
    src, dst : float64 tensors ``(n, d)``, ``(m, d)`` on one device
    values : float64 tensor ``(n,)``, finite
    p : float, default 1
    metric : {"euclidean", "cityblock", "chebyshev"}
    chunk_rows : int, optional
        Points of ``dst`` per block of costs.
    gram : bool, optional
        The Gram form of the squared Euclidean distance (default for ``p = 2``, Euclidean).

    Returns
    -------
    tensor ``(m,)``, float64

    Raises
    ------
    FloatingPointError
        When the distances overflow float64.

    Notes
    -----
    ``O(n m d)`` time, one block of costs in memory. Reference: Villani, *Optimal Transport: Old and
    New* (2009), Def. 5.2; Higham, *Accuracy and Stability of Numerical Algorithms* (2002), Ch. 2-3.

    Examples
    --------
    >>> import torch
    >>> src = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    >>> dst = torch.tensor([[0.5]], dtype=torch.float64)
    >>> psi = feasible_c_transform_points(src, dst, torch.tensor([0.0, 0.0], dtype=torch.float64))
    >>> 0.5 - 1e-12 < float(psi[0]) < 0.5
    True
    """
    cost = PointCost(src, dst, p, metric, gram=gram)
    psi, cmax = cost.c_transform(values, chunk_rows)
    return psi - cost.margin(cmax, float(values.abs().max()) if values.numel() else 0.0)


def feasible_c_transform_dense(cost, values, axis: int = 0, *, rows=None, cols=None):
    """The c-transform of ``values`` for an exact cost matrix, one ulp below: feasible for the exact costs.

    For ``axis=0`` (values on the rows) ``psi_j = next_down(min_i fl(C_ij - values_i))``; for ``axis=1``
    (values on the columns) ``phi_i = next_down(min_j fl(C_ij - values_j))``. Each ``fl(C - v)`` is
    within ``u |fl(C - v)|`` of ``C - v``, and the next float down is at least that far below, so
    ``values_i + psi_j <= C_ij`` holds exactly for every pair.

    Parameters
    ----------
    cost : ndarray or tensor ``(n, m)``, float64
    values : ndarray or tensor, float64, ``(n,)`` for ``axis=0``, ``(m,)`` for ``axis=1``
    axis : 0 or 1
    rows, cols : index arrays, optional
        Restrict the minimum to these rows (``axis=0``) or columns (``axis=1``) — the points of
        positive weight, the only ones whose constraints matter — and, on the other axis, compute only
        these entries (the others are returned as 0).

    Returns
    -------
    ndarray or tensor, ``(m,)`` (``axis=0``) or ``(n,)`` (``axis=1``); ``-inf`` where a difference overflows.

    Examples
    --------
    >>> import numpy as np
    >>> C = np.array([[0.0, 2.0], [1.0, 1.0]])
    >>> psi = feasible_c_transform_dense(C, np.array([0.0, 0.5]))
    >>> bool(np.all(psi < [0.0, 0.5])), bool(np.all(psi > [-1e-15, 0.5 - 1e-15]))
    (True, True)
    """
    tensor = is_tensor(cost)
    if axis == 1:
        cost = cost.T
        rows, cols = cols, rows
    n, m = cost.shape
    keep_rows = np.arange(n) if rows is None else np.asarray(rows)
    keep_cols = np.arange(m) if cols is None else np.asarray(cols)
    step = max(1, (1 << 16) // max(1, len(keep_cols)))
    if tensor:
        import torch

        out = torch.full((m,), math.inf, dtype=torch.float64, device=cost.device)
        idx_c = torch.as_tensor(keep_cols, device=cost.device)
        for start in range(0, len(keep_rows), step):
            idx_r = torch.as_tensor(keep_rows[start:start + step], device=cost.device)
            block = cost.index_select(0, idx_r).index_select(1, idx_c)
            block = block - values.index_select(0, idx_r)[:, None]
            out[idx_c] = torch.minimum(out[idx_c], block.amin(0))
        out = torch.nextafter(out, torch.full_like(out, -math.inf))
        full = torch.zeros(m, dtype=torch.float64, device=cost.device)
        full[idx_c] = torch.nan_to_num(out[idx_c], nan=-math.inf)
        return full
    out = np.full(len(keep_cols), np.inf)
    with np.errstate(over="ignore", invalid="ignore"):
        for start in range(0, len(keep_rows), step):
            sel = keep_rows[start:start + step]
            block = cost[sel] if rows is not None else cost[start:start + step]
            if cols is not None:
                block = block[:, keep_cols]
            np.minimum(out, (block - values[sel][:, None]).min(0), out=out)
    out = np.nan_to_num(np.nextafter(out, -np.inf), nan=-np.inf)
    full = np.zeros(m)
    full[keep_cols] = out
    return full
