"""torch.distributed collectives shared by the package: sums and gathers across ranks.

Everything here is a no-op (a local copy) when ``torch.distributed`` is not available, not
initialised, or has a single rank, so the metrics run unchanged in a single process. Every rank
must call the same helpers in the same order (they are collectives).
"""

from __future__ import annotations

import numpy as np

__all__ = ["world_size", "comm_device", "all_reduce_sum", "all_gather_ints", "all_gather_rows",
           "is_initialised", "rank", "all_gather_tensor", "broadcast_tensor"]


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


def all_gather_ints(values, group=None) -> np.ndarray:
    """Gather a short list of integers from every rank: an int64 array ``(world_size, len(values))``.

    Used for headers (sizes, dimensions, dtype codes) before a collective whose shapes depend on them.
    A single process gets ``[values]``.
    """
    import torch

    dist = _dist()
    local = np.asarray(values, dtype=np.int64).reshape(1, -1)
    if dist is None or world_size(group) == 1:
        return local
    header = torch.as_tensor(local[0], device=comm_device(group))
    headers = [torch.empty_like(header) for _ in range(world_size(group))]
    dist.all_gather(headers, header, group=group)
    return np.stack([h.cpu().numpy() for h in headers])


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
    table = all_gather_ints([n_local, d_local, code], group)
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


def is_initialised() -> bool:
    """Whether ``torch.distributed`` is available and a default process group is initialised."""
    return _dist() is not None


def rank(group=None) -> int:
    """This process's rank in ``group`` (0 without an initialised process group)."""
    dist = _dist()
    return 0 if dist is None else dist.get_rank(group)


def all_gather_tensor(tensor, group=None):
    """``(world_size, *tensor.shape)``: the same-shaped ``tensor`` of every rank, stacked in rank order.

    The result is the same on every rank, so that anything computed from it in a fixed order (a sum, a
    log-sum-exp) is identical across ranks. A single process gets ``tensor[None]``.
    """
    import torch

    dist = _dist()
    if dist is None or world_size(group) == 1:
        return tensor.detach().unsqueeze(0).clone()
    device = tensor.device
    buf = tensor.detach().to(comm_device(group)).contiguous()
    pieces = [torch.empty_like(buf) for _ in range(world_size(group))]
    dist.all_gather(pieces, buf, group=group)
    return torch.stack(pieces).to(device)


def broadcast_tensor(tensor, src: int, group=None):
    """``tensor`` of rank ``src`` on every rank (a new tensor; ``tensor`` gives the shape elsewhere).

    ``src`` is a rank of ``group`` (not a global rank).
    """
    dist = _dist()
    if dist is None or world_size(group) == 1:
        return tensor.clone()
    device = tensor.device
    buf = tensor.detach().to(comm_device(group)).contiguous().clone()
    global_src = src if group is None else dist.get_global_rank(group, src)
    dist.broadcast(buf, src=global_src, group=group)
    return buf.to(device)
