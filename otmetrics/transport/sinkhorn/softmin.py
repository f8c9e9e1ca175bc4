"""Soft-min operators: the log-sum-exp reductions of a cost, dense or computed online in chunks.

Sinkhorn's iterations touch the cost ``C`` only through two reductions,

.. math::

    \\operatorname{row\\_lse}(h)_i = \\log \\sum_j \\exp(h_j - C_{ij} / \\varepsilon), \\qquad
    \\operatorname{col\\_lse}(h)_j = \\log \\sum_i \\exp(h_i - C_{ij} / \\varepsilon),

(the soft-min ``-eps * row_lse`` is a smoothed ``min_j (C_ij - eps h_j)``), and, at the end, through sums
against the plan ``P_ij = exp(log a_i + log b_j + (f_i + g_j - C_ij) / eps)``. A solver written against this
small interface runs unchanged on

- :class:`DenseSoftMin`: a cost matrix ``(n, m)`` or a batch ``(B, n, m)``;
- :class:`PointCloudSoftMin`: the cost ``|x - y|^p`` of two point clouds, recomputed block by block and never
  stored, so that memory is ``O((n + m) d)`` plus one block.

Everything here works on torch tensors with a leading batch axis (``B = 1`` for a single problem); the
conversion from user input is done by the callers. Reductions subtract the running maximum, so that they never
overflow or underflow whatever ``eps``.
"""

from __future__ import annotations

import abc
import functools
import math

import torch

__all__ = ["SoftMin", "DenseSoftMin", "PointCloudSoftMin", "block_elements", "soft_c_transform", "exp_floor"]

#: Elements of one block of the cost in chunked reductions: 2^18 on the CPU (2 MB in float64: the several
#: passes over a block then run from cache, measured ~30% faster than 32 MB blocks), 2^26 on a GPU, where
#: large blocks are needed to saturate the device.
_BLOCK_CPU = 2**18
_BLOCK_GPU = 2**26


def block_elements(device: torch.device) -> int:
    """The default number of cost entries computed at once in chunked reductions on ``device``."""
    return _BLOCK_GPU if device.type == "cuda" else _BLOCK_CPU


@functools.lru_cache(maxsize=None)
def exp_floor(dtype: torch.dtype) -> float | None:
    """The exponent below which terms are negligible and exp() is slow: ``log(tiny) + 8``.

    After the largest exponent is subtracted, a sum of exponentials is ``>= 1``; terms below
    ``exp(log(tiny) + 8)`` (``1e-35`` in float32, ``1e-304`` in float64) change it by less than rounding
    for any practical length, but make the vectorised ``exp`` fall back to a slow path (underflow to
    subnormals), several times slower. Clamping them there keeps every ``exp`` on the fast path.
    None for dtypes too short for this (no clamping).
    """
    floor = math.log(float(torch.finfo(dtype).tiny)) + 8.0  # plain floats: no tensor, no synchronisation
    return floor if floor < -50 else None


def _lse_inplace(t: torch.Tensor, dim: int) -> torch.Tensor:
    """``log(sum(exp(t), dim))`` computed in place in ``t`` (which is destroyed), never overflowing."""
    big = t.amax(dim, keepdim=True)
    big = torch.where(torch.isfinite(big), big, torch.zeros_like(big))
    t.sub_(big)
    floor = exp_floor(t.dtype)
    if floor is not None:
        t.clamp_min_(floor)
    t.exp_()
    return t.sum(dim).log_().add_(big.squeeze(dim))


def _plan_block(cost_block, f_rows, g, loga_rows, logb, eps):
    """Entries of the plan ``a_i b_j exp((f_i + g_j - C_ij) / eps)`` on a block of rows (a new tensor)."""
    t = cost_block.neg()
    t.add_((f_rows + eps * loga_rows).unsqueeze(-1)).add_((g + eps * logb).unsqueeze(-2))
    return t.div_(eps).exp_()


class SoftMin(abc.ABC):
    """Interface of a soft-min operator over a batch of costs of shape ``(B, n, m)``.

    Attributes ``batch``, ``n``, ``m``, ``dtype``, ``device``; methods :meth:`row_lse`, :meth:`col_lse`,
    :meth:`row_sum`, :meth:`select`, :meth:`max_cost`, :meth:`max_costs`, :meth:`blocks`, :meth:`plan`,
    :meth:`transport_cost`, :meth:`leaves`, :meth:`leaf_grads`.
    """

    batch: int
    n: int
    m: int
    #: True when :meth:`dense_cost` returns a stored matrix (no extra memory).
    is_dense: bool = False

    @property
    @abc.abstractmethod
    def dtype(self) -> torch.dtype:
        """The floating dtype of the costs."""

    @property
    @abc.abstractmethod
    def device(self) -> torch.device:
        """The device of the costs."""

    @abc.abstractmethod
    def row_lse(self, h: torch.Tensor, eps: float) -> torch.Tensor:
        """``(B, m) -> (B, n)``: ``log sum_j exp(h_j - C_ij / eps)`` for every row ``i``."""

    @abc.abstractmethod
    def col_lse(self, h: torch.Tensor, eps: float) -> torch.Tensor:
        """``(B, n) -> (B, m)``: ``log sum_i exp(h_i - C_ij / eps)`` for every column ``j``."""

    @abc.abstractmethod
    def select(self, index: torch.Tensor) -> "SoftMin":
        """The operator restricted to the problems ``index`` of the batch."""

    def max_cost(self) -> float:
        """An upper bound of the largest cost entry of the batch."""
        return float(self.max_costs().max())

    @abc.abstractmethod
    def max_costs(self):
        """An upper bound of the largest cost entry of each problem, a float64 array ``(B,)`` (where an
        epsilon schedule starts)."""

    @abc.abstractmethod
    def dense_cost(self) -> torch.Tensor:
        """The cost as a dense ``(B, n, m)`` tensor (detached)."""

    @abc.abstractmethod
    def blocks(self):
        """Yield ``(rows, cost_block)``: the cost on consecutive blocks of rows, detached."""

    def row_sum(self, values: torch.Tensor) -> torch.Tensor:
        """``(B, n) -> (B,)``: the sum over the rows (all of them: a sharded operator adds the ranks')."""
        return values.sum(1)

    # -- reductions against the plan, shared by every geometry -----------------------------------
    def plan(self, f, g, loga, logb, eps) -> torch.Tensor:
        """The dense plan ``(B, n, m)`` for the potentials ``f``, ``g``."""
        out = torch.empty((self.batch, self.n, self.m), dtype=self.dtype, device=self.device)
        for rows, block in self.blocks():
            out[:, rows] = _plan_block(block, f[:, rows], g, loga[:, rows], logb, eps)
        return out

    def transport_cost(self, f, g, loga, logb, eps) -> torch.Tensor:
        """``<C, P>`` per problem, ``(B,)``, accumulated in float64 and returned in float64."""
        total = torch.zeros(self.batch, dtype=torch.float64, device=self.device)
        for rows, block in self.blocks():
            plan = _plan_block(block, f[:, rows], g, loga[:, rows], logb, eps)
            total += (plan.mul_(block)).sum(-1).to(torch.float64).sum(-1)
        return total

    @abc.abstractmethod
    def leaves(self) -> tuple[torch.Tensor, ...]:
        """The tensors the cost depends on, for autograd (the cost itself, or the points)."""

    @abc.abstractmethod
    def leaf_grads(self, f, g, loga, logb, eps, weight, needs) -> tuple:
        """Gradients of ``weight . <C, P>`` with the plan ``P`` held fixed, w.r.t. :meth:`leaves`.

        ``weight`` has shape ``(B,)``; ``needs`` flags which leaves need a gradient. By the envelope theorem
        this is the gradient of the entropic objective with respect to the cost.
        """


# ------------------------------------------------------------------------------------------------
# Dense costs
# ------------------------------------------------------------------------------------------------
class DenseSoftMin(SoftMin):
    """Soft-min over a stored batch of cost matrices ``(B, n, m)``.

    Parameters
    ----------
    cost : torch.Tensor, shape ``(B, n, m)``
        May require grad (it is then the autograd leaf of :meth:`leaves`); iterations use a detached view.
    block : int, optional
        Entries per block in the reductions (bounds the temporary memory); default :func:`block_elements`.
    """

    is_dense = True

    def __init__(self, cost: torch.Tensor, block: int | None = None, _index: torch.Tensor | None = None):
        self._leaf = cost
        self._base = cost.detach()
        self._index = _index          # a lazy selection of problems of _base (see select)
        self._cost = self._base if _index is None else None
        self.batch = self._base.shape[0] if _index is None else int(_index.numel())
        self.n, self.m = self._base.shape[1:]
        self.block = int(block) if block else block_elements(self._base.device)

    @property
    def cost(self) -> torch.Tensor:
        """The ``(B, n, m)`` costs (a selection is copied on first use only)."""
        if self._cost is None:
            self._cost = self._base.index_select(0, self._index)
        return self._cost

    def problem_cost(self, k: int) -> torch.Tensor:
        """The ``(n, m)`` cost of problem ``k`` (a view, never a copy)."""
        return self._base[k if self._index is None else int(self._index[k])]

    @property
    def dtype(self):
        return self._base.dtype

    @property
    def device(self):
        return self._base.device

    def _chunks(self, length: int, other: int):
        step = max(1, self.block // max(1, self.batch * other))
        for start in range(0, length, step):
            yield slice(start, min(length, start + step))

    def row_lse(self, h, eps):
        out = torch.empty((self.batch, self.n), dtype=self.dtype, device=self.device)
        for rows in self._chunks(self.n, self.m):
            t = self.cost[:, rows].mul(-1.0 / eps).add_(h.unsqueeze(1))
            out[:, rows] = _lse_inplace(t, 2)
        return out

    def col_lse(self, h, eps):
        out = torch.empty((self.batch, self.m), dtype=self.dtype, device=self.device)
        for cols in self._chunks(self.m, self.n):
            t = self.cost[:, :, cols].mul(-1.0 / eps).add_(h.unsqueeze(2))
            out[:, cols] = _lse_inplace(t, 1)
        return out

    def select(self, index):
        base_index = index if self._index is None else self._index.index_select(0, index)
        return DenseSoftMin(self._base, self.block, _index=base_index)

    def max_costs(self):
        return self.cost.amax((1, 2)).to("cpu", torch.float64).numpy()

    def dense_cost(self):
        return self.cost

    def blocks(self):
        for rows in self._chunks(self.n, self.m):
            yield rows, self.cost[:, rows]

    def leaves(self):
        return (self._leaf,)

    def leaf_grads(self, f, g, loga, logb, eps, weight, needs):
        if not needs[0]:
            return (None,)
        grad = self.plan(f, g, loga, logb, eps)
        return (grad.mul_(weight.to(grad.dtype)[:, None, None]),)


# ------------------------------------------------------------------------------------------------
# Point clouds, online
# ------------------------------------------------------------------------------------------------
_NORMS = {"euclidean": 2.0, "cityblock": 1.0, "chebyshev": float("inf")}

#: Up to this dimension, distances other than the squared Euclidean one are computed from coordinate
#: differences (exact to rounding); above it from matrix products (fast, with cancellation near 0).
_DIRECT_DIM = 16


class PointCloudSoftMin(SoftMin):
    """Soft-min over the cost ``c(x_i, y_j) = d(x_i, y_j)^p`` of two batches of points, never stored.

    Reductions are computed block by block: a block of ``rows`` points against all the other side, so that
    the extra memory is one block of ``batch * rows * m`` entries. The points are centred on a common origin
    first (the cost is translation invariant), which keeps the matrix-product form of the squared distance,
    ``|x|^2 + |y|^2 - 2 x.y``, accurate.

    Parameters
    ----------
    x : torch.Tensor, shape ``(B, n, d)``
    y : torch.Tensor, shape ``(B, m, d)``
    p : float
    metric : {"euclidean", "cityblock", "chebyshev"}
    rows : int, optional
        Points per block; by default chosen so that a block has :func:`block_elements` entries.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, p: float = 2.0, metric: str = "euclidean",
                 rows: int | None = None, _centred: bool = False):
        self._leaves = (x, y)
        x, y = x.detach(), y.detach()
        if not _centred:
            n_all = x.shape[1] + y.shape[1]
            centre = (x.sum(1, keepdim=True) + y.sum(1, keepdim=True)) / n_all
            x, y = x - centre, y - centre
        self.x, self.y = x, y
        self.p = float(p)
        self.metric = metric
        self.norm = _NORMS[metric]
        self.squared = self.p == 2.0 and metric == "euclidean"
        self.batch, self.n, self.d = x.shape
        self.m = y.shape[1]
        self.rows = rows
        if self.squared:
            self.xx = (x * x).sum(-1)
            self.yy = (y * y).sum(-1)

    @property
    def dtype(self):
        return self.x.dtype

    @property
    def device(self):
        return self.x.device

    def _step(self, other: int) -> int:
        if self.rows is not None:
            return self.rows
        return max(1, block_elements(self.device) // max(1, self.batch * other))

    def _cost(self, u, v):
        """The cost block ``c(u_i, v_j)``, ``(B, len(u), len(v))`` (differentiable)."""
        if self.squared:
            norms = (u * u).sum(-1).unsqueeze(2) + (v * v).sum(-1).unsqueeze(1)
            c = torch.baddbmm(norms, u, v.transpose(1, 2), alpha=-2.0)
            return c.clamp_min_(0.0) if not c.requires_grad else c.clamp_min(0.0)
        mode = ("donot_use_mm_for_euclid_dist" if self.d <= _DIRECT_DIM
                else "use_mm_for_euclid_dist_if_necessary")
        dist = torch.cdist(u, v, p=self.norm, compute_mode=mode)
        return dist if self.p == 1.0 else dist.pow(self.p)

    def _lse(self, u, uu, v, vv, h, eps):
        """``log sum_j exp(h_j - c(u_i, v_j) / eps)`` for every point ``u_i``, block by block."""
        out = torch.empty(u.shape[:2], dtype=self.dtype, device=self.device)
        step = self._step(v.shape[1])
        if self.squared:
            # -|u - v|^2 / eps + h = (2 u.v - |v|^2) / eps + h - |u|^2 / eps: one matrix product per block
            shifted = h - vv / eps
            for start in range(0, u.shape[1], step):
                rows = slice(start, min(u.shape[1], start + step))
                t = torch.baddbmm(shifted.unsqueeze(1), u[:, rows], v.transpose(1, 2), alpha=2.0 / eps)
                out[:, rows] = _lse_inplace(t, 2).sub_(uu[:, rows] / eps)
            return out
        for start in range(0, u.shape[1], step):
            rows = slice(start, min(u.shape[1], start + step))
            t = self._cost(u[:, rows], v).mul_(-1.0 / eps).add_(h.unsqueeze(1))
            out[:, rows] = _lse_inplace(t, 2)
        return out

    def row_lse(self, h, eps):
        return self._lse(self.x, getattr(self, "xx", None), self.y, getattr(self, "yy", None), h, eps)

    def col_lse(self, h, eps):
        return self._lse(self.y, getattr(self, "yy", None), self.x, getattr(self, "xx", None), h, eps)

    def select(self, index):
        return PointCloudSoftMin(self.x.index_select(0, index), self.y.index_select(0, index), self.p,
                                 self.metric, self.rows, _centred=True)

    def max_costs(self):
        both = torch.cat([self.x, self.y], 1)
        span = both.amax(1) - both.amin(1)
        if self.metric == "euclidean":
            diam = span.norm(dim=-1)
        elif self.metric == "cityblock":
            diam = span.sum(-1)
        else:
            diam = span.amax(-1)
        return diam.to("cpu", torch.float64).numpy() ** self.p

    def dense_cost(self):
        return self._cost(self.x, self.y)

    def blocks(self):
        step = self._step(self.m)
        for start in range(0, self.n, step):
            rows = slice(start, min(self.n, start + step))
            yield rows, self._cost(self.x[:, rows], self.y)

    def leaves(self):
        return self._leaves

    def leaf_grads(self, f, g, loga, logb, eps, weight, needs):
        if not any(needs):
            return (None, None)
        gx = torch.zeros_like(self.x) if needs[0] else None
        gy = torch.zeros_like(self.y) if needs[1] else None
        w = weight.to(self.dtype)[:, None, None]
        step = self._step(self.m)
        for start in range(0, self.n, step):
            rows = slice(start, min(self.n, start + step))
            xr = self.x[:, rows]
            if self.squared:
                plan = _plan_block(self._cost(xr, self.y), f[:, rows], g, loga[:, rows], logb, eps).mul_(w)
                # d/dx_i sum_j P_ij |x_i - y_j|^2 = 2 (r_i x_i - sum_j P_ij y_j), and symmetrically for y
                if gx is not None:
                    gx[:, rows] = 2.0 * (plan.sum(2, keepdim=True) * xr - torch.bmm(plan, self.y))
                if gy is not None:
                    gy += 2.0 * (plan.sum(1).unsqueeze(2) * self.y - torch.bmm(plan.transpose(1, 2), xr))
                continue
            with torch.enable_grad():
                xr = xr.clone().requires_grad_(gx is not None)
                yr = self.y.clone().requires_grad_(gy is not None)
                block = self._cost(xr, yr)
                plan = _plan_block(block.detach(), f[:, rows], g, loga[:, rows], logb, eps).mul_(w)
                inputs = [t for t in (xr, yr) if t.requires_grad]
                grads = torch.autograd.grad(block, inputs, plan)
            grads = list(grads)
            if gx is not None:
                gx[:, rows] = grads.pop(0)
            if gy is not None:
                gy += grads.pop(0)
        return gx, gy


def soft_c_transform(op: SoftMin, potential, logw, eps: float, *, to: str) -> torch.Tensor:
    """The soft c-transform: ``to="cols"`` gives ``g_j = -eps log sum_i a_i exp((f_i - C_ij) / eps)``.

    ``to="rows"`` gives ``f_i = -eps log sum_j b_j exp((g_j - C_ij) / eps)``. ``logw`` is the log of the
    weights on the side that is summed over.
    """
    h = logw + potential / eps
    lse = op.col_lse(h, eps) if to == "cols" else op.row_lse(h, eps)
    return lse.mul_(-eps)
