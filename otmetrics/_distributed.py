"""torch.distributed helpers for the streaming metrics: sums and gathers across ranks.

Everything here is a no-op (a local copy) when ``torch.distributed`` is not available, not
initialised, or has a single rank, so the metrics run unchanged in a single process. Every rank
must call the same helpers in the same order (they are collectives).
"""

from __future__ import annotations

import numpy as np

__all__ = ["world_size", "comm_device", "all_reduce_sum", "all_gather_rows", "sync_gaussian"]


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def world_size(group=None) -> int:
    """Number of ranks in ``group`` (1 without an initialised process group)."""
    dist = _dist()
    return 1 if dist is None else dist.get_world_size(group)


def comm_device(group=None):
    """Where tensors must live for the group's backend: the current CUDA device for NCCL, else CPU."""
    import torch

    dist = _dist()
    if dist is not None and str(dist.get_backend(group)).lower() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sum(tensor, group=None):
    """The element-wise sum of ``tensor`` over all ranks (a new tensor on ``tensor``'s device)."""
    dist = _dist()
    if dist is None or world_size(group) == 1:
        return tensor.clone()
    device = tensor.device
    buf = tensor.detach().to(comm_device(group)).clone()
    dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group)
    return buf.to(device)


_DTYPE_CODES = ("float16", "bfloat16", "float32", "float64")


def all_gather_rows(rows, group=None, *, name: str = "features"):
    """Concatenate the ``(n_r, d)`` tensors of all ranks in rank order (``n_r`` may differ, or be 0).

    ``rows`` may be ``None`` on a rank that saw no data. Returns a tensor on the local tensor's
    device (CPU when ``rows`` is ``None``), or ``None`` when no rank has any row. Rows are padded
    to the longest rank for the collective and trimmed afterwards; dtypes are promoted to the
    widest one present.
    """
    import torch

    dist = _dist()
    if dist is None or world_size(group) == 1:
        return None if rows is None else rows.clone()
    device = comm_device(group)
    local_device = rows.device if rows is not None else torch.device("cpu")
    if rows is not None and str(rows.dtype).replace("torch.", "") not in _DTYPE_CODES:
        rows = rows.to(torch.float64)
    n_local = 0 if rows is None else int(rows.shape[0])
    d_local = -1 if rows is None else int(rows.shape[1])
    code = -1 if rows is None else _DTYPE_CODES.index(str(rows.dtype).replace("torch.", ""))
    header = torch.tensor([n_local, d_local, code], dtype=torch.int64, device=device)
    headers = [torch.empty_like(header) for _ in range(world_size(group))]
    dist.all_gather(headers, header, group=group)
    table = np.array([h.cpu().numpy() for h in headers])
    dims = {int(d) for n, d, _ in table if n > 0}
    if len(dims) > 1:
        raise ValueError(f"{name}: the ranks hold feature vectors of different dimensions, got "
                         f"{sorted(dims)}")
    if not dims:
        return None
    d = dims.pop()
    dtype = getattr(torch, _DTYPE_CODES[max(int(c) for n, _, c in table if n > 0)])
    longest = int(table[:, 0].max())
    buf = torch.zeros((longest, d), dtype=dtype, device=device)
    if n_local:
        buf[:n_local] = rows.to(device=device, dtype=dtype)
    pieces = [torch.empty_like(buf) for _ in range(world_size(group))]
    dist.all_gather(pieces, buf, group=group)
    return torch.cat([p[: int(n)] for p, n in zip(pieces, table[:, 0])]).to(local_device)


def sync_gaussian(stats, group=None):
    """Combine the :class:`~otmetrics.GaussianStats` of all ranks (returns a new object).

    Two all-reduces of ``float64`` sums: ``(n, n * mean)`` gives the global count and mean, then
    each rank's scatter matrix re-centred on the global mean,
    ``M_r + n_r (mean_r - mean)(mean_r - mean)^T``, sums to the global scatter matrix. The result
    equals the statistics of all ranks' samples in one stream up to rounding.
    """
    import torch

    from .gaussian import GaussianStats

    if world_size(group) == 1:
        return stats.copy()
    stats._check_updatable("sync")
    dev = comm_device(group)
    n_local = stats.n
    dim_local = stats.dim if stats.dim is not None else -1
    header = torch.tensor([dim_local], dtype=torch.int64, device=dev)
    dims = [torch.empty_like(header) for _ in range(world_size(group))]
    _dist().all_gather(dims, header, group=group)
    known = {int(t.item()) for t in dims} - {-1}
    if len(known) > 1:
        raise ValueError(f"stats: the ranks hold features of different dimensions, got {sorted(known)}")
    if not known:
        return stats.copy()
    d = known.pop()

    def local(v):
        return torch.as_tensor(np.asarray(v) if not torch.is_tensor(v) else v,
                               dtype=torch.float64).to(dev)

    mean_local = local(stats.mean) if n_local else torch.zeros(d, dtype=torch.float64, device=dev)
    first = torch.cat([torch.tensor([float(n_local)], dtype=torch.float64, device=dev), mean_local * n_local])
    first = all_reduce_sum(first, group)
    n_total = int(round(float(first[0])))
    merged = GaussianStats(d)
    merged._device = stats._device
    if n_total == 0:
        return merged
    mean = first[1:] / n_total
    if n_local:
        delta = mean_local - mean
        contribution = local(stats._scatter) + n_local * (delta[:, None] * delta[None, :])
    else:
        contribution = torch.zeros((d, d), dtype=torch.float64, device=dev)
    scatter = all_reduce_sum(contribution, group)
    merged._n = n_total
    merged._mean = merged._convert(mean) if merged._device is not None else mean.cpu().numpy()
    merged._scatter = merged._convert(scatter) if merged._device is not None else scatter.cpu().numpy()
    return merged
