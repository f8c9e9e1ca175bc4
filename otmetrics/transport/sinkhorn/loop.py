"""The Sinkhorn iterations: alternating (``OT_eps(a, b)``) and symmetric (``OT_eps(a, a)``) loops.

Both loops work on a batch of problems given by a soft-min operator (:mod:`.softmin`), with
potentials ``f``, ``g`` such that the plan is ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)``.

One iteration of the alternating loop is the column update ``g <- T_g(f)`` (after which the columns of ``P``
sum to ``b``) followed by the row update ``f' <- T_f(g)``. The row sums of the plan of ``(f, g)`` are
``a_i exp((f_i - f'_i) / eps)``, so the marginal error of ``(f, g)`` comes for free with the next update:

    err = sum_i a_i |exp((f_i - f'_i) / eps) - 1|  (the column error is zero by construction).

A problem whose error is ``<= tol`` is frozen with the pair ``(f, g)`` whose error was measured, and leaves
the batch; the others go on (the batch is compacted, so frozen problems cost nothing).

Dense costs at the target ``eps`` use the *scaling* form of the same iteration: with potentials absorbed into
a kernel ``K_ij = exp((F_i + G_j - C_ij) / eps)`` the updates are matrix-vector products,
``v = 1 / K^T (a u)``, ``u = 1 / K (b v)``, with ``f = F + eps log u`` and ``g = G + eps log v``. They are
the log-domain updates, evaluated without a logarithm or an exponential per entry. When ``u`` or ``v`` drift
far from 1 they are absorbed into ``F``, ``G`` and the kernel is rebuilt; when a scaling is not finite the
iteration is redone in the log domain. So the iteration never under- or overflows, at any ``eps``
(Schmitzer 2019, "Stabilized sparse scaling algorithms for entropy regularized transport problems").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .softmin import SoftMin, exp_floor, soft_c_transform

__all__ = ["LoopResult", "alternating", "symmetric", "eps_schedule"]

#: Bytes of kernel per group of problems solved together on the CPU (about a core's L2 cache).
_CPU_GROUP_BYTES = 2**21

#: After this many log-domain fallbacks of the scaling iteration, the loop stays in the log domain.
_MAX_FALLBACKS = 10


@dataclass
class LoopResult:
    f: torch.Tensor          # (B, n)
    g: torch.Tensor          # (B, m); equal to f in the symmetric loop
    error: np.ndarray        # (B,) L1 marginal error of the returned pair
    plan_mass: np.ndarray    # (B,) total mass of the plan of the returned pair
    n_iter: np.ndarray       # (B,) iterations, the epsilon-scaling stages included
    converged: np.ndarray    # (B,) bool
    kernel_mode: bool        # whether the scaling (matrix-vector) iteration was used


def eps_schedule(eps: float, eps_init: float | None, factor: float | None, max_cost: float) -> list[float]:
    """The decreasing values of eps run before the target (one iteration each); empty without scaling."""
    if factor is None:
        return []
    start = max_cost if eps_init is None else eps_init
    stages = []
    value = start
    while value > eps and len(stages) < 10_000:
        stages.append(value)
        value *= factor
    return stages


def _row_error(a, f, f_new, eps):
    """``sum_i a_i |exp((f_i - f'_i) / eps) - 1|`` and ``sum_i a_i exp(...)`` per problem."""
    ratio = torch.exp((f - f_new) / eps)
    term = torch.where(a > 0, a * (ratio - 1.0).abs(), torch.zeros_like(a))
    mass = torch.where(a > 0, a * ratio, torch.zeros_like(a))
    return term.sum(1), mass.sum(1)


class _Kernel:
    """The scaling-form kernel ``K_ij = exp((F_i + G_j - C_ij) / eps)`` of the active problems.

    On the CPU it is a list of matrices and products are a loop of BLAS ``gemv`` calls (several times faster
    there than a batched product with a vector, and dropping a converged problem costs nothing); on other
    devices one batched tensor and ``bmm``.
    """

    @staticmethod
    def _gemv_loop(device) -> bool:
        return device.type == "cpu"

    def __init__(self, op, F, G, eps):
        self.cpu = self._gemv_loop(F.device)
        floor = exp_floor(F.dtype)  # entries below exp(floor) are negligible (see exp_floor)
        low = -float("inf") if floor is None else floor
        if self.cpu:
            self.mats = [op.problem_cost(k).neg().add_(F[k, :, None]).add_(G[k, None, :]).div_(eps)
                         .clamp_min_(low).exp_() for k in range(F.shape[0])]
        else:
            t = op.dense_cost().neg()
            self.mats = t.add_(F.unsqueeze(2)).add_(G.unsqueeze(1)).div_(eps).clamp_min_(low).exp_()

    def matvec(self, v, transpose: bool):
        """``K v`` (or ``K^T v``) for every problem: ``(B, m) -> (B, n)`` (or ``(B, n) -> (B, m)``)."""
        if self.cpu:
            mats = self.mats
            if len(mats) == 1:
                return torch.mv(mats[0].T if transpose else mats[0], v[0]).unsqueeze(0)
            return torch.stack([torch.mv(mats[k].T if transpose else mats[k], v[k])
                                for k in range(len(mats))])
        mats = self.mats.transpose(1, 2) if transpose else self.mats
        return torch.bmm(mats, v.unsqueeze(2)).squeeze(2)

    def select(self, keep: np.ndarray, sel: torch.Tensor):
        if self.cpu:
            self.mats = [k for k, flag in zip(self.mats, keep) if flag]
        else:
            self.mats = self.mats.index_select(0, sel)


class _Frozen:
    """Bookkeeping of the per-problem outputs, written when a problem leaves the batch."""

    def __init__(self, f, g, batch):
        self.f = f.clone()
        self.g = g.clone()
        self.error = np.full(batch, np.inf)
        self.mass = np.full(batch, np.nan)
        self.converged = np.zeros(batch, dtype=bool)

    def write(self, idx_host, idx_dev, f, g, error, mass, converged):
        self.f.index_copy_(0, idx_dev, f)
        self.g.index_copy_(0, idx_dev, g)
        self.error[idx_host] = error
        self.mass[idx_host] = mass
        self.converged[idx_host] = converged


def alternating(op: SoftMin, a, b, loga, logb, eps: float, *, tol: np.ndarray, max_iter: int,
                schedule: list[float], f0=None, g0=None, use_kernel: bool = True) -> LoopResult:
    """Alternating Sinkhorn iterations on a batch, until every problem's marginal error is ``<= tol[k]``.

    On the CPU, dense problems are solved in groups whose kernels fit in a core's cache (one problem at a
    time for ``n m >= 2^18``): the matrix-vector products then run from cache, several times faster than
    sweeping the whole batch through memory at every iteration. Elsewhere the batch runs in lockstep.
    """
    group = _cpu_group(op)
    if group >= op.batch:
        return _alternating(op, a, b, loga, logb, eps, tol=tol, max_iter=max_iter, schedule=schedule,
                            f0=f0, g0=g0, use_kernel=use_kernel)
    parts = []
    for start in range(0, op.batch, group):
        idx = torch.arange(start, min(op.batch, start + group), device=op.device)
        pick = (lambda t: None if t is None else t.index_select(0, idx))
        parts.append(_alternating(op.select(idx), *(pick(t) for t in (a, b, loga, logb)), eps,
                                  tol=tol[start:start + group], max_iter=max_iter, schedule=schedule,
                                  f0=pick(f0), g0=pick(g0), use_kernel=use_kernel))
    return LoopResult(
        torch.cat([r.f for r in parts]), torch.cat([r.g for r in parts]),
        *(np.concatenate([getattr(r, k) for r in parts])
          for k in ("error", "plan_mass", "n_iter", "converged")),
        any(r.kernel_mode for r in parts),
    )


def _cpu_group(op: SoftMin) -> int:
    """Problems per group on the CPU (see :func:`alternating`); the whole batch elsewhere."""
    if op.device.type != "cpu" or not op.is_dense:
        return op.batch
    item = torch.finfo(op.dtype).bits // 8
    return max(1, _CPU_GROUP_BYTES // (op.n * op.m * item))


def _alternating(op: SoftMin, a, b, loga, logb, eps: float, *, tol: np.ndarray, max_iter: int,
                 schedule: list[float], f0=None, g0=None, use_kernel: bool = True) -> LoopResult:
    batch, device = op.batch, op.device
    f = torch.zeros_like(a) if f0 is None else f0.clone()
    g = torch.zeros_like(b) if g0 is None else g0.clone()
    n_iter = np.zeros(batch, dtype=np.int64)
    for stage_eps in schedule:
        # epsilon scaling: one averaged, simultaneous update per value (as GeomLoss does), on every problem;
        # measured more robust than alternating updates here (e.g. 1.5k instead of 12k iterations at the
        # target for two nearly equal clouds), and never much worse
        f, g = (0.5 * (f + soft_c_transform(op, g, logb, stage_eps, to="rows")),
                0.5 * (g + soft_c_transform(op, f, loga, stage_eps, to="cols")))
        n_iter += 1
    out = _Frozen(f, g, batch)

    active = np.arange(batch)
    sub, a_s, b_s, la_s, lb_s = op, a, b, loga, logb
    kernel = None          # the scaling form is on when this is a tensor
    allow_kernel = use_kernel and op.is_dense
    used_kernel = False
    fallbacks = 0
    threshold = 0.25 * float(np.log(torch.finfo(a.dtype).max))
    while active.size:
        if kernel is None:  # log domain
            g = soft_c_transform(sub, f, la_s, eps, to="cols")
            f_new = soft_c_transform(sub, g, lb_s, eps, to="rows")
            err, mass = _row_error(a_s, f, f_new, eps)
            stats = torch.stack([err, mass]).to("cpu", torch.float64).numpy()
        else:  # scaling form: no exp or log per entry, and none on the vectors either (see _Kernel)
            v = kernel.matvec(a_s * u, transpose=True).reciprocal_()
            s = kernel.matvec(b_s * v, transpose=False)
            weighted = s.mul(u).mul_(a_s)           # the row sums a_i u_i (K b v)_i of the plan
            err = (weighted - a_s).abs_().sum(1)
            mass = weighted.sum(1)
            u_new = s.reciprocal_()
            stats = torch.stack([err, mass, u_new.amax(1), u_new.amin(1), v.amax(1), v.amin(1)])
            stats = stats.to("cpu", torch.float64).numpy()
            with np.errstate(divide="ignore", invalid="ignore"):
                drift = np.abs(np.log(stats[2:])).max(0)
            if not (np.all(np.isfinite(stats[:2])) and np.all(np.isfinite(drift))):
                # a scaling under- or overflowed: redo this iteration in the log domain, then rebuild
                fallbacks += 1
                allow_kernel = fallbacks < _MAX_FALLBACKS
                f, kernel = F + eps * torch.log(u), None
                continue
        n_iter[active] += 1
        done = stats[0] <= tol[active]
        stop = done | (n_iter[active] >= max_iter)
        if stop.any():
            mask = torch.as_tensor(stop, device=device)
            if kernel is None:
                f_out, g_out = f[mask], g[mask]
            else:
                f_out = F[mask] + eps * torch.log(u[mask])
                g_out = G[mask] + eps * torch.log(v[mask])
            out.write(active[stop], torch.as_tensor(active[stop], device=device), f_out, g_out,
                      stats[0][stop], stats[1][stop], done[stop])
            keep = ~stop
            if not keep.any():
                break
            sel = torch.as_tensor(np.flatnonzero(keep), device=device)
            active = active[keep]
            sub = op.select(torch.as_tensor(active, device=device))
            a_s, b_s, la_s, lb_s = (t.index_select(0, sel) for t in (a_s, b_s, la_s, lb_s))
            if kernel is None:
                f_new, g = f_new.index_select(0, sel), g.index_select(0, sel)
            else:
                kernel.select(keep, sel)
                F, G, u_new, v = (t.index_select(0, sel) for t in (F, G, u_new, v))
                drift = drift[keep]
        if kernel is None:
            f = f_new
            if allow_kernel:  # enter the scaling form from (f', g), whose rows are exactly balanced
                F, G = f, g
                kernel = _Kernel(sub, F, G, eps)
                u = torch.ones_like(F)
                used_kernel = True
        else:
            u = u_new
            if drift.max() > threshold:  # absorb the scalings into the potentials
                F, G = F + eps * torch.log(u), G + eps * torch.log(v)
                kernel = _Kernel(sub, F, G, eps)
                u = torch.ones_like(u)
    return LoopResult(out.f, out.g, out.error, out.mass, n_iter, out.converged, used_kernel)


def symmetric(op: SoftMin, a, loga, eps: float, *, tol: np.ndarray, max_iter: int, schedule: list[float],
              f0=None) -> LoopResult:
    """Symmetric iterations ``f <- (f + T(f)) / 2`` for ``OT_eps(a, a)`` on a symmetric cost ``C(x, x)``.

    The plan of ``(f, f)`` is symmetric, with row (and column) sums ``a_i exp((f_i - T(f)_i) / eps)``; the
    returned error counts both marginals.
    """
    batch, device = op.batch, op.device
    f = torch.zeros_like(a) if f0 is None else f0.clone()
    n_iter = np.zeros(batch, dtype=np.int64)
    for stage_eps in schedule:
        f = 0.5 * (f + soft_c_transform(op, f, loga, stage_eps, to="rows"))
        n_iter += 1
    out = _Frozen(f, f, batch)
    active = np.arange(batch)
    sub, a_s, la_s = op, a, loga
    while active.size:
        t_f = soft_c_transform(sub, f, la_s, eps, to="rows")
        err, mass = _row_error(a_s, f, t_f, eps)
        stats = torch.stack([2.0 * err, mass]).to("cpu", torch.float64).numpy()
        n_iter[active] += 1
        done = stats[0] <= tol[active]
        stop = done | (n_iter[active] >= max_iter)
        if stop.any():
            mask = torch.as_tensor(stop, device=device)
            idx = torch.as_tensor(active[stop], device=device)
            out.write(active[stop], idx, f[mask], f[mask], stats[0][stop], stats[1][stop], done[stop])
            keep = ~stop
            if not keep.any():
                break
            sel = torch.as_tensor(np.flatnonzero(keep), device=device)
            active = active[keep]
            sub = op.select(torch.as_tensor(active, device=device))
            a_s, la_s, f, t_f = (t.index_select(0, sel) for t in (a_s, la_s, f, t_f))
        f = 0.5 * (f + t_f)
    return LoopResult(out.f, out.g, out.error, out.mass, n_iter, out.converged, False)
