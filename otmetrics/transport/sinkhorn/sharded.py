"""Sinkhorn on point clouds sharded over ``torch.distributed`` ranks (``process_group=``).

Each rank holds a shard of the source points ``x`` (``n_r`` rows, with their weights ``a``) and the whole
target ``y`` (and ``b``). The cost is computed online, block by block, so that a rank stores
``O((n_r + m) d)`` numbers plus one block. The two soft-min reductions become:

- ``row_lse`` (a log-sum-exp over the columns ``j`` for each local row): local, no communication;
- ``col_lse`` (over the rows ``i``, for each column ``j``): a partial log-sum-exp over the local rows, then
  the ``(R, B, m)`` partials of all ranks gathered (one ``all_gather``) and reduced in rank order, so that
  every rank gets bit-for-bit the same ``g``;
- sums over the rows (marginal errors, plan mass, transport cost): per-rank partials gathered and added in
  rank order, identical on every rank.

So every convergence decision is the same on every rank, and each rank returns its rows of ``f`` and the whole
``g``. The self-transport ``OT(x, x)`` of the divergence uses :class:`ShardedSelfSoftMin`, which passes
the shards around (one ``broadcast`` of ``(points, potential)`` per rank and reduction), keeping the memory
per rank at ``O((n_r + m) d)``.

Gradients (envelope theorem) follow the same layout: each rank gets the gradient of the global objective with
respect to its own points and weights, and the full gradient with respect to the replicated ``y`` and ``b``
(reduced across ranks inside ``backward``, which is therefore a collective: every rank must call it).
"""

from __future__ import annotations

import numpy as np
import torch

from ..._core import distributed
from ..._core.arrays import batch_size
from ..._core.validation import validate_same_mass, validate_weights
from ..costs import PointCloud
from .problem import Problem, as_tensor, reference_tensor
from .softmin import PointCloudSoftMin

__all__ = ["ShardedPointCloudSoftMin", "ShardedSelfSoftMin", "prepare_sharded", "check_group",
           "check_replicated", "same_global_points", "gather_rows", "dual_value_sharded"]


def check_group(group):
    """``group`` if ``torch.distributed`` is initialised (the default group for ``True``), else ValueError."""
    if not distributed.is_initialised():
        raise ValueError("process_group: torch.distributed is not initialised (call "
                         "torch.distributed.init_process_group first, e.g. under torchrun)")
    if group is True:
        import torch.distributed as dist

        return dist.group.WORLD
    return group


def _fingerprint(t) -> list[float]:
    """A few float64 sums that differ, in practice, for any two different tensors: sizes, sums, moments and
    sums against fixed pseudo-random weights."""
    flat = t.detach().reshape(-1).to(torch.float64)
    k = torch.arange(flat.numel(), dtype=torch.float64, device=flat.device)
    w = torch.sin(k * 0.7548776662466927 + 0.5)
    return [float(flat.numel()), float(flat.sum()), float((flat * flat).sum()), float((flat * w).sum())]


def check_replicated(group, **values):
    """ValueError naming the first argument whose value (a tensor or a float) differs across the ranks."""
    rows = []
    for value in values.values():
        rows += _fingerprint(value) if torch.is_tensor(value) else [float(value)]
    table = distributed.all_gather_tensor(torch.tensor(rows, dtype=torch.float64), group).numpy()
    start = 0
    for name, value in values.items():
        width = 4 if torch.is_tensor(value) else 1
        block = table[:, start:start + width]
        start += width
        if not np.all(np.equal(block, block[0]) | (np.isnan(block) & np.isnan(block[0]))):
            what = "the ranks hold different values (it must be the same on every rank)"
            raise ValueError(f"{name}: {what}; fingerprints per rank: {block.tolist()}")


def gather_rows(values, group):
    """``(B, n_r) -> (B,)``: the sum over the rows of every rank, added in rank order (same on every rank)."""
    return distributed.all_gather_tensor(values.sum(1), group).sum(0)


class _ShardedRows:
    """What the sharded soft-mins share: sums over the rows and the largest costs are gathered over all
    ranks (``self.group``), so that every rank sees the global values."""

    def row_sum(self, values):
        return gather_rows(values, self.group)

    def max_costs(self):
        local = torch.as_tensor(super().max_costs())
        return distributed.all_gather_tensor(local, self.group).amax(0).numpy()


class ShardedPointCloudSoftMin(_ShardedRows, PointCloudSoftMin):
    """The soft-min of ``|x - y|^p`` with the rows ``x`` sharded over ``group`` and ``y`` replicated.

    ``x``, ``y`` must already be centred on a point common to all ranks (``_centred`` semantics).
    """

    def __init__(self, x, y, p=2.0, metric="euclidean", rows=None, *, group, leaves=None):
        super().__init__(x, y, p, metric, rows, _centred=True)
        if leaves is not None:
            self._leaves = leaves
        self.group = group

    def col_lse(self, h, eps):
        partial = super().col_lse(h, eps)
        return torch.logsumexp(distributed.all_gather_tensor(partial, self.group), 0)

    def select(self, index):
        return ShardedPointCloudSoftMin(self.x.index_select(0, index), self.y.index_select(0, index), self.p,
                                        self.metric, self.rows, group=self.group)

    def transport_cost(self, f, g, loga, logb, eps):
        local = super().transport_cost(f, g, loga, logb, eps)
        return distributed.all_gather_tensor(local, self.group).sum(0)

    def leaf_grads(self, f, g, loga, logb, eps, weight, needs):
        gx, gy = super().leaf_grads(f, g, loga, logb, eps, weight, (needs[0], True))
        gy = distributed.all_gather_tensor(gy, self.group).sum(0)  # the replicated y: all ranks' terms
        return gx, (gy if needs[1] else None)


class ShardedSelfSoftMin(_ShardedRows, PointCloudSoftMin):
    """The soft-min of ``|x - x'|^p`` for ``OT(x, x)`` with the points sharded: rows and columns are the
    points of all ranks, each rank computing its own rows.

    A reduction over the columns visits the shards in rank order: rank ``r`` broadcasts its points and the
    potential on them, and every rank folds them into a running log-sum-exp of its rows.
    """

    def __init__(self, x, p=2.0, metric="euclidean", rows=None, *, group, leaf=None, sizes=None):
        super().__init__(x, x, p, metric, rows, _centred=True)
        self._leaves = (x if leaf is None else leaf,)
        self.group = group
        self.sizes = sizes if sizes is not None else distributed.all_gather_ints([x.shape[1]], group)[:, 0]
        self.rank = distributed.rank(group)

    def _shards(self, h):
        """Yield ``(points, potential)`` of every rank's shard in rank order (collectives)."""
        d = self.x.shape[2]
        for r, size in enumerate(self.sizes):
            if r == self.rank:
                both = torch.cat([self.x, h.unsqueeze(2)], 2)
            else:
                both = torch.empty((self.batch, int(size), d + 1), dtype=self.dtype, device=self.device)
            both = distributed.broadcast_tensor(both, r, self.group)
            yield both[..., :d], both[..., d]

    def row_lse(self, h, eps):
        total = None
        for points, h_r in self._shards(h):
            part = PointCloudSoftMin(self.x, points, self.p, self.metric, self.rows, _centred=True)
            lse = part.row_lse(h_r, eps)
            total = lse if total is None else torch.logaddexp(total, lse)
        return total

    col_lse = row_lse

    def select(self, index):
        return ShardedSelfSoftMin(self.x.index_select(0, index), self.p, self.metric, self.rows,
                                  group=self.group, leaf=self._leaves[0], sizes=self.sizes)

    def leaves(self):
        return self._leaves

    def leaf_grads(self, f, g, loga, logb, eps, weight, needs):
        if not needs[0]:
            return (None,)
        total = torch.zeros_like(self.x)
        h = loga + f / eps
        for points, h_r in self._shards(h):
            part = PointCloudSoftMin(self.x, points, self.p, self.metric, self.rows, _centred=True)
            # the plan's entries are a_i a_l exp((f_i + f_l - C_il) / eps): f_l, a_l through h_r
            gx, _ = part.leaf_grads(f, eps * h_r, loga, torch.zeros_like(h_r), eps, weight, (True, False))
            total += gx
        return (2.0 * total,)  # the columns' share equals the rows' (symmetric plan and cost)


def _check_sizes(geom, group):
    x, y = geom.x, geom.y
    batch = x.shape[0] if geom.batched else -1
    table = distributed.all_gather_ints([x.shape[-2], y.shape[-2], x.shape[-1], batch], group)
    for col, name, what in ((1, "y", "number of target points"), (2, "x", "dimension"),
                            (3, "x", "batch size")):
        if len(set(table[:, col].tolist())) > 1:
            raise ValueError(f"{name}: the {what} differs across the ranks of process_group, got "
                             f"{table[:, col].tolist()}")
    return table[:, 0]


def prepare_sharded(a, b, geom: PointCloud, group, mass_rtol) -> Problem:
    """Validate a sharded problem (``x``, ``a``: this rank's shard; ``y``, ``b``: the same on every rank)."""
    if not isinstance(geom, PointCloud):
        raise ValueError(f"process_group: needs a PointCloud cost (sharded point clouds), got "
                         f"{type(geom).__name__}")
    sizes = _check_sizes(geom, group)
    n_all = int(sizes.sum())
    ref = reference_tensor(x=geom.x, y=geom.y, a=a, b=b)
    like = ref
    if ref is None:
        ref = torch.empty(0, dtype=torch.float64)
    n, m = geom.shape[-2:]
    x, y = as_tensor(geom.x, ref, "x"), as_tensor(geom.y, ref, "y")
    check_replicated(group, y=y, **({} if b is None else {"b": as_tensor(b, ref, "b")}))
    a_t = torch.full((n,), 1.0 / n_all, dtype=ref.dtype, device=ref.device) if a is None \
        else as_tensor(validate_weights(a, "a"), ref, "a")
    b_t = torch.full((m,), 1.0 / m, dtype=ref.dtype, device=ref.device) if b is None \
        else as_tensor(validate_weights(b, "b"), ref, "b")
    for name, w, size in (("a", a_t, n), ("b", b_t, m)):
        if w.shape[-1] != size:
            raise ValueError(f"{name}: expected {size} weights, got {w.shape[-1]}")
    batch = {s for s in (batch_size("a", a_t, 1), batch_size("b", b_t, 1),
                         x.shape[0] if geom.batched else None) if s is not None}
    if len(batch) > 1:
        raise ValueError(f"cost: batch sizes of a, b and cost differ: {sorted(batch)}")
    batch = batch.pop() if batch else None
    B = batch or 1
    a_t = a_t.expand(B, n) if a_t.ndim == 1 else a_t
    b_t = b_t.expand(B, m) if b_t.ndim == 1 else b_t
    mass_a = gather_rows(a_t.detach().to(torch.float64), group).cpu().numpy()
    rtol = max(float(mass_rtol), 100 * float(torch.finfo(ref.dtype).eps))
    validate_same_mass(torch.as_tensor(mass_a), b_t.detach().to(torch.float64).sum(1).cpu(), rtol=rtol)
    mass_b = b_t.detach().to(torch.float64).sum(1).cpu().numpy()
    scale = torch.as_tensor(mass_a / mass_b, dtype=ref.dtype, device=ref.device)
    if a_t.requires_grad or b_t.requires_grad:
        # as in problem.prepare, the rescaling b |a| / |b| in the graph (same value): the local sum of a
        # differentiates the global mass with respect to this rank's weights
        local = a_t.sum(-1)
        total = torch.as_tensor(mass_a, dtype=ref.dtype, device=ref.device)
        ratio = (local - local.detach() + total) / b_t.sum(-1)
        scale = scale + (ratio - ratio.detach())
    b_t = b_t * scale[:, None]
    if x.ndim == 2:
        x, y = x.expand(B, *x.shape), y.expand(B, *y.shape)
    centre = y.detach().mean(1, keepdim=True)  # the same on every rank: y is replicated
    op = ShardedPointCloudSoftMin(x.detach() - centre, y.detach() - centre, geom.p, geom.metric,
                                  geom.chunk_size, group=group, leaves=(x, y))
    return Problem(op, a_t, b_t, mass_a, mass_a.copy(), batch is not None, like)


def dual_value_sharded(group, a, f, b, g, plan_mass, eps, mass_a, mass_b, *, cols_sharded=False):
    """The dual value ``<a, f> + <b, g> - eps (sum(P) - |a||b|)`` of a sharded problem, in float64: the
    sums over sharded sides are added over the ranks (in rank order)."""
    f64 = torch.float64
    rows = gather_rows(a.detach().to(f64) * f.to(f64), group)
    cols = (b.detach().to(f64) * g.to(f64))
    cols = gather_rows(cols, group) if cols_sharded else cols.sum(1)
    extra = eps * torch.as_tensor(mass_a * mass_b - plan_mass, dtype=f64, device=f.device)
    return rows + cols + extra


def same_global_points(x, y, group) -> bool:
    """Whether the shards ``x`` of all ranks, in rank order, are exactly ``y`` (the same on every rank)."""
    sizes = distributed.all_gather_ints([x.shape[-2]], group)[:, 0]
    me = distributed.rank(group)
    start = int(sizes[:me].sum())
    ok = int(sizes.sum()) == y.shape[-2] and tuple(x.shape[:-2]) == tuple(y.shape[:-2]) \
        and bool(torch.equal(x.detach(), y.detach()[..., start:start + x.shape[-2], :]))
    flags = distributed.all_gather_ints([int(ok)], group)
    return bool(flags.min())
