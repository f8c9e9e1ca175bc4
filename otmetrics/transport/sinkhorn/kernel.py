"""The scaling form of Sinkhorn on stored costs: a kernel with absorbed potentials, dense or truncated.

With potentials ``F``, ``G`` absorbed into ``K_ij = exp((F_i + G_j - C_ij) / eps)``, the log-domain updates
are matrix-vector products with scalings ``u = exp((f - F) / eps)``, ``v = exp((g - G) / eps)``:
``v <- 1 / K^T (a u)``, ``u <- 1 / K (b v)``. When the scalings drift far from 1 they are absorbed into
``F``, ``G`` and the kernel is rebuilt (Schmitzer 2019), so nothing under- or overflows at any ``eps``.

Three layouts, one interface (:meth:`ScalingKernel.matvec`):

- on the CPU, a list of dense matrices and a loop of BLAS ``gemv`` (faster there than a batched product with
  a vector, and a converged problem leaves the list for free);
- elsewhere (GPUs), one ``(B, n, m)`` tensor and ``bmm``;
- on the CPU, when most entries are negligible (small ``eps``: the plan concentrates near the optimal
  assignment), a **truncated** kernel in CSR format that keeps the entries ``>= exp(LOG_TRUNCATION)``
  (Schmitzer's stabilised sparse scaling). A dropped entry, after scalings of at most
  ``exp(SPARSE_DRIFT)`` each, weighs at most ``exp(LOG_TRUNCATION + 2 SPARSE_DRIFT) = exp(-50)`` (``2e-22``)
  times ``a_i b_j`` in the plan: below the rounding of any marginal. The loop still measures the final
  errors on the exact cost.
"""

from __future__ import annotations

import warnings

import torch

from .softmin import exp_floor

__all__ = ["ScalingKernel", "LOG_TRUNCATION", "SPARSE_DRIFT", "SPARSE_DENSITY", "dense_drift"]

#: Entries of the truncated kernel below ``exp(LOG_TRUNCATION)`` are dropped.
LOG_TRUNCATION = -80.0
#: The truncated kernel is rebuilt as soon as a scaling leaves ``[exp(-SPARSE_DRIFT), exp(SPARSE_DRIFT)]``.
SPARSE_DRIFT = 15.0
#: Largest fraction of kept entries for which the truncated (CSR) kernel is used instead of the dense one
#: (a CSR product costs about twice a dense one per stored entry).
SPARSE_DENSITY = 0.2


def dense_drift(dtype) -> float:
    """How far ``|log u|`` may drift before a dense kernel is rebuilt: a quarter of the exponent range."""
    import math

    return 0.25 * math.log(torch.finfo(dtype).max)


class ScalingKernel:
    """``K_ij = exp((F_i + G_j - C_ij) / eps)`` for the problems of a soft-min operator with a stored cost.

    Parameters
    ----------
    op : SoftMin
        With ``is_dense`` (a stored cost).
    F, G : tensors ``(B, n)``, ``(B, m)``
        The absorbed potentials.
    eps : float
    allow_sparse : bool
        Whether a truncated kernel may be used (the CPU gemv layout in float64 only).
    """

    @staticmethod
    def _gemv_loop(device) -> bool:
        return device.type == "cpu"

    #: Below this many entries per problem a CPU group runs as one batched product: there the cost of an
    #: iteration is the number of operations launched, not the memory traffic.
    SMALL = 2**14

    def __init__(self, op, F, G, eps, allow_sparse: bool = True):
        self.cpu = self._gemv_loop(F.device) and F.shape[1] * G.shape[1] >= self.SMALL
        self.sparse = False
        floor = exp_floor(F.dtype)  # entries below exp(floor) are negligible (see exp_floor)
        low = -float("inf") if floor is None else floor
        # truncation only in float64: in float32 the potentials' own rounding, amplified by 1 / eps, is
        # larger than what the truncation's final exact measurement could resolve
        allow_sparse = allow_sparse and F.dtype == torch.float64
        if self.cpu:
            self.mats = [self._build(op.problem_cost(k), F[k], G[k], eps, low, allow_sparse)
                         for k in range(F.shape[0])]
            self.sparse = any(isinstance(k, tuple) for k in self.mats)
        else:
            t = op.dense_cost().neg()
            self.mats = t.add_(F.unsqueeze(2)).add_(G.unsqueeze(1)).div_(eps).clamp_min_(low).exp_()
        self.drift = SPARSE_DRIFT if self.sparse else dense_drift(F.dtype)

    @staticmethod
    def _build(cost, F, G, eps, low, allow_sparse):
        logk = torch.add(F[:, None], G[None, :]).sub_(cost).mul_(1.0 / eps)
        if allow_sparse:
            keep = logk >= LOG_TRUNCATION
            n, m = keep.shape
            if int(torch.count_nonzero(keep)) <= SPARSE_DENSITY * n * m \
                    and bool(keep.any(1).all()) and bool(keep.any(0).all()):
                return _csr_pair(logk, keep)
        return logk.clamp_min_(low).exp_()

    def matvec(self, v, transpose: bool):
        """``K v`` (or ``K^T v``) for every problem: ``(B, m) -> (B, n)`` (or ``(B, n) -> (B, m)``)."""
        if self.cpu:
            out = [_mv(k, v[i], transpose) for i, k in enumerate(self.mats)]
            return out[0].unsqueeze(0) if len(out) == 1 else torch.stack(out)
        mats = self.mats.transpose(1, 2) if transpose else self.mats
        return torch.bmm(mats, v.unsqueeze(2)).squeeze(2)

    def select(self, keep, sel):
        """Keep the problems flagged in the host array ``keep`` (``sel``: their indices on the device)."""
        if self.cpu:
            self.mats = [k for k, flag in zip(self.mats, keep) if flag]
        else:
            self.mats = self.mats.index_select(0, sel)


def _csr(values, keep):
    """A CSR matrix from a boolean mask and the values at its ``True`` entries (row-major order)."""
    n, m = keep.shape
    idx = keep.nonzero()
    crow = torch.zeros(n + 1, dtype=torch.int64, device=keep.device)
    crow[1:] = torch.bincount(idx[:, 0], minlength=n).cumsum(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow, idx[:, 1].contiguous(), values, (n, m))


def _csr_pair(logk, keep):
    """``(K, K^T)`` in CSR, with the entries of ``exp(logk)`` flagged in ``keep``."""
    forward = _csr(logk[keep].exp_(), keep)
    keep_t = keep.T
    backward = _csr(logk.T[keep_t].exp_(), keep_t)
    return forward, backward


def _mv(mat, v, transpose):
    if isinstance(mat, tuple):
        return torch.mv(mat[1] if transpose else mat[0], v)
    return torch.mv(mat.T if transpose else mat, v)
