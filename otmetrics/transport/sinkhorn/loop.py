"""The Sinkhorn iterations: alternating (``OT_eps(a, b)``) and symmetric (``OT_eps(a, a)``) loops.

Both loops work on a batch of problems given by a soft-min operator (:mod:`.softmin`), with potentials
``f``, ``g`` such that the plan is ``P_ij = a_i b_j exp((f_i + g_j - C_ij) / eps)``.

**Stages.** An optional decreasing list of temperatures (epsilon annealing) is run first, each stage until
the marginal error is ``<= stage_tol`` and warm-starting the next; the last stage runs at the target ``eps``
until ``tol``. Every returned pair is measured at the target ``eps``.

**One iteration** of the alternating loop is a column update of ``g`` (after which, unrelaxed, the columns
of ``P`` sum to ``b``) followed by a row update of ``f``; both may be over-relaxed (:mod:`.relaxation`).

**Checks.** Convergence is checked every ``check_every`` iterations (and at the first iteration of each
stage, and when a problem reaches ``max_iter``), with one copy of a few numbers per problem to the host;
nothing else synchronises with the device. A check measures the pair ``(f, g)`` after the column update of
the check iteration: with ``g' = T(f)`` the column update's target and ``f' = T(g)`` the next row update
(both computed anyway), the plan of ``(f, g)`` has row sums ``a_i exp((f_i - f'_i) / eps)`` and column sums
``b_j exp((g_j - g'_j) / eps)``, so

    err = sum_i a_i |exp((f_i - f'_i) / eps) - 1| + sum_j b_j |exp((g_j - g'_j) / eps) - 1|

(the column term is zero for an unrelaxed update) costs no extra pass over the cost, and checking does not
change the iterates: the same iterations run whatever ``check_every``.

A problem whose error is ``<= tol`` is frozen with the pair ``(f, g)`` whose error was measured, and leaves
the batch (which is compacted, so frozen problems cost nothing); the others go on.

**Dense costs** iterate in the scaling form (:mod:`.kernel`) after the first iteration of each stage (a
log-domain one, which balances the potentials). Kernels are rebuilt at checks when the scalings drift; a
block of iterations in which a scaling under- or overflowed is redone from the previous check in the log
domain. So the iteration never under- or overflows, at any ``eps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .kernel import ScalingKernel
from . import relaxation
from .relaxation import Relaxation, relax_potential, relax_scaling
from .softmin import SoftMin, soft_c_transform

__all__ = ["LoopResult", "Schedule", "alternating", "symmetric", "eps_schedule", "stage_count", "host_copy",
           "warn_unconverged"]

#: Bytes of kernel per group of problems solved together on the CPU (about a core's L2 cache).
_CPU_GROUP_BYTES = 2**21

#: After this many log-domain fallbacks of the scaling iteration, a stage stays in the log domain.
_MAX_FALLBACKS = 10


@dataclass
class LoopResult:
    f: torch.Tensor          # (B, n)
    g: torch.Tensor          # (B, m); equal to f in the symmetric loop
    error: np.ndarray        # (B,) L1 marginal error of the returned pair
    plan_mass: np.ndarray    # (B,) total mass of the plan of the returned pair
    n_iter: np.ndarray       # (B,) iterations, the annealing stages included
    converged: np.ndarray    # (B,) bool
    kernel_mode: bool        # whether the scaling (matrix-vector) iteration was used


@dataclass
class Schedule:
    """The annealing temperatures ``values`` (decreasing, all above the target) and, per problem, the index
    of its first stage (``len(values)``: none; ``None``: every problem runs every stage)."""

    values: list[float]
    first: np.ndarray | None = None

    def runs(self, stage: int, batch: int) -> np.ndarray:
        """Which problems run stage ``stage`` (the target eps is stage ``len(values)``: all of them)."""
        if self.first is None or stage >= len(self.values):
            return np.ones(batch, dtype=bool)
        return self.first <= stage


def stage_count(eps: float, top, factor: float) -> np.ndarray:
    """The number of stages ``eps / factor^k``, ``k = K, ..., 1``, with ``K`` the smallest that reaches
    ``top`` (``0`` where ``top <= eps``), per entry of ``top``."""
    top = np.asarray(top, dtype=np.float64)
    with np.errstate(divide="ignore"):
        count = np.ceil(np.log(np.maximum(top, eps) / eps) / np.log(1.0 / factor) - 1e-9)
    return np.clip(count, 0, 10_000).astype(np.int64)


def eps_schedule(eps: float, eps_init: float | None, factor: float | None, max_cost) -> list[float]:
    """The temperatures run before the target: ``eps / factor^k`` for ``k = K, ..., 1``, the first one at or
    above ``eps_init`` (default ``max_cost``); empty without a factor. Each stage is ``factor`` times the
    previous one, and the last is ``eps / factor``."""
    if factor is None:
        return []
    top = max_cost if eps_init is None else eps_init
    count = int(stage_count(eps, np.max(top), factor))
    return [eps * factor ** (-k) for k in range(count, 0, -1)]


def host_copy(*tensors) -> np.ndarray:
    """Stack ``(B,)`` tensors and copy them to the host as float64: the loops' only synchronisation."""
    return torch.stack(tensors).to("cpu", torch.float64).numpy()


def _damped(step: int) -> bool:
    """Whether iteration ``step + 1`` of a stage takes the plain column update (:data:`.DAMPING`)."""
    return (step + 1) % relaxation.DAMPING == 0


def _row_stats(op: SoftMin | None, a, f, f_next, eps):
    """``sum_i a_i |exp((f_i - f'_i) / eps) - 1|`` and ``sum_i a_i exp(...)`` per problem (summed over the
    ranks by a sharded ``op``; ``op=None``: a local sum)."""
    ratio = torch.exp((f - f_next) / eps)
    term = torch.where(a > 0, a * (ratio - 1.0).abs(), torch.zeros_like(a))
    mass = torch.where(a > 0, a * ratio, torch.zeros_like(a))
    if op is None:
        return term.sum(1), mass.sum(1)
    return op.row_sum(term), op.row_sum(mass)


class _Frozen:
    """Per-problem outputs of a stage, written when a problem stops."""

    def __init__(self, f, g, batch):
        self.f, self.g = f, g
        self.error = np.full(batch, np.inf)
        self.mass = np.full(batch, np.nan)
        self.done = np.zeros(batch, dtype=bool)
        self.sparse = np.zeros(batch, dtype=bool)

    def write(self, idx_host, idx_dev, f, g, error, mass, done, sparse=False):
        self.f.index_copy_(0, idx_dev, f)
        self.g.index_copy_(0, idx_dev, g)
        self.error[idx_host] = error
        self.mass[idx_host] = mass
        self.done[idx_host] = done
        self.sparse[idx_host] = sparse


def _stages(schedule, eps, tol, stage_tol, max_iter):
    """``(index, eps, tol, budget)`` for every stage; intermediate ones leave one iteration for the last."""
    values = schedule.values if isinstance(schedule, Schedule) else list(schedule)
    out = [(k, e, stage_tol, max_iter - 1) for k, e in enumerate(values) if max_iter > 1]
    return out + [(len(values), eps, tol, max_iter)]


def _as_schedule(schedule) -> Schedule:
    return schedule if isinstance(schedule, Schedule) else Schedule(list(schedule))


def alternating(op: SoftMin, a, b, loga, logb, eps: float, *, tol: np.ndarray, max_iter: int,
                schedule: list[float], f0=None, g0=None, use_kernel: bool = True, acceleration=None,
                check_every: int = 1, stage_tol: np.ndarray | None = None) -> LoopResult:
    """Alternating Sinkhorn iterations on a batch, until every problem's marginal error is ``<= tol[k]``.

    ``acceleration``: ``None`` (plain), ``"auto"`` or a fixed relaxation (:class:`.Relaxation`);
    ``stage_tol``: the per-problem tolerance of the annealing stages (``schedule``).
    On the CPU, dense problems are solved in groups whose kernels fit in a core's cache (one problem at a
    time for ``n m >= 2^18``): the matrix-vector products then run from cache, several times faster than
    sweeping the whole batch through memory at every iteration. Elsewhere the batch runs in lockstep.
    """
    kw = dict(max_iter=max_iter, schedule=schedule, use_kernel=use_kernel, acceleration=acceleration,
              check_every=check_every)
    stage_tol = tol if stage_tol is None else stage_tol
    sched = _as_schedule(schedule)
    group = _cpu_group(op)
    if group >= op.batch:
        return _Alternating(op, a, b, loga, logb, eps, tol=tol, stage_tol=stage_tol, f0=f0, g0=g0,
                            **kw).run()
    parts = []
    for start in range(0, op.batch, group):
        idx = torch.arange(start, min(op.batch, start + group), device=op.device)
        pick = (lambda t: None if t is None else t.index_select(0, idx))
        part = slice(start, start + group)
        kw["schedule"] = Schedule(sched.values, None if sched.first is None else sched.first[part])
        parts.append(_Alternating(op.select(idx), *(pick(t) for t in (a, b, loga, logb)), eps,
                                  tol=tol[part], stage_tol=stage_tol[part], f0=pick(f0), g0=pick(g0),
                                  **kw).run())
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


class _Alternating:
    """The alternating loop on one batch (or one CPU group): stages, blocks between checks, compaction."""

    def __init__(self, op, a, b, loga, logb, eps, *, tol, stage_tol, max_iter, schedule, f0, g0,
                 use_kernel, acceleration, check_every):
        self.op, self.a, self.b, self.loga, self.logb = op, a, b, loga, logb
        self.eps, self.check_every = eps, check_every
        self.schedule = _as_schedule(schedule)
        self.stages = _stages(self.schedule, eps, tol, stage_tol, max_iter)
        self._max_costs = None
        self.f = torch.zeros_like(a) if f0 is None else f0.clone()
        self.g = torch.zeros_like(b) if g0 is None else g0.clone()
        self.warm = f0 is not None
        self.n_iter = np.zeros(op.batch, dtype=np.int64)
        self.relax = Relaxation(op.batch, acceleration, a)
        self.use_kernel = use_kernel and op.is_dense
        self.used_kernel = False

    def run(self) -> LoopResult:
        out = None
        started = np.zeros(self.op.batch, dtype=bool)
        for k, eps, tol, budget in self.stages:
            runs = self.schedule.runs(k, self.op.batch) & (self.n_iter < budget)
            idx = np.flatnonzero(runs)
            out = _Frozen(self.f, self.g, self.op.batch)
            if idx.size:
                self._stage(idx, eps, tol, budget, out, self._kernel_first(idx, started, eps))
            started |= runs
        converged = out.done.copy()
        if out.sparse.any():  # measure the truncated kernels' answers on the exact cost
            self._exact_errors(np.flatnonzero(out.sparse), out, converged)
        return LoopResult(out.f, out.g, out.error, out.mass, self.n_iter, converged, self.used_kernel)

    def _kernel_first(self, idx, started, eps: float) -> bool:
        """Whether a stage may start in the scaling form: from the potentials of a previous stage or of a
        warm start (balanced, or redone in the log domain if not), or from zeros when ``exp(-C / eps)`` is
        representable; otherwise its first iteration runs in the log domain."""
        if not self.use_kernel:
            return False
        cold = idx[~started[idx]] if not self.warm else idx[:0]
        if not cold.size:
            return True
        if self._max_costs is None:
            self._max_costs = self.op.max_costs()
        return self._max_costs[cold].max() / eps <= 0.8 * math.log(torch.finfo(self.op.dtype).max)

    def _exact_errors(self, idx, out, converged):
        dev = torch.as_tensor(idx, device=self.op.device)
        op = self.op.select(dev)
        a, b, la, lb = (t.index_select(0, dev) for t in (self.a, self.b, self.loga, self.logb))
        f, g = out.f.index_select(0, dev), out.g.index_select(0, dev)
        rows, mass = _row_stats(op, a, f, soft_c_transform(op, g, lb, self.eps, to="rows"), self.eps)
        cols, _ = _row_stats(op, b, g, soft_c_transform(op, f, la, self.eps, to="cols"), self.eps)
        stats = host_copy(rows + cols, mass)
        out.error[idx], out.mass[idx] = stats[0], stats[1]
        tol = self.stages[-1][2]
        converged[idx] = stats[0] <= tol[idx]

    # -- one stage --------------------------------------------------------------------------------
    def _stage(self, idx, eps, tol, budget, out, kernel_first):
        device = self.op.device
        active = idx
        sel = torch.as_tensor(active, device=device)
        full = active.size == self.op.batch
        sub = self.op if full else self.op.select(sel)
        pick = (lambda t: t if full else t.index_select(0, sel))
        a, b, la, lb = (pick(t) for t in (self.a, self.b, self.loga, self.logb))
        f, g = pick(self.f), pick(self.g)
        start = self.n_iter[active].copy()
        plain = self.relax.plain
        relax = self.relax.take(sel)
        kernel, fallbacks, it = None, 0, 0
        F = G = u = v = None
        if kernel_first:
            F, G = f, g
            kernel = ScalingKernel(sub, F, G, eps)
            u, v = torch.ones_like(F), torch.ones_like(G)
            self.used_kernel = True
        while active.size:
            remaining = int((budget - start).min()) - it
            block = 1 if it == 0 else min(self.check_every - it % self.check_every, remaining)
            if kernel is not None:
                u0, v0 = u.clone(), v.clone()
                u, v, s, t = self._kernel_block(sub, kernel, a, b, u, v, block, plain, relax, it)
                wsum = s.mul(u).mul_(a)  # the row sums a_i u_i (K b v)_i of the plan
                err, mass = (wsum - a).abs_().sum(1), wsum.sum(1)
                if not plain:  # the columns of a relaxed update: b_j v_j (K^T a u)_j
                    err = err + t.mul(v).mul_(b).sub_(b).abs_().sum(1)
                drift = torch.stack([x.log().abs_().amax(1) for x in (u, v, s)]).amax(0)
                stats = host_copy(err, mass, drift)
                if not np.all(np.isfinite(stats)):
                    # a scaling under- or overflowed: redo the block in the log domain from the last check
                    fallbacks += 1
                    f, g = F + eps * torch.log(u0), G + eps * torch.log(v0)
                    kernel = None
                    continue
            else:
                f, g, f_next, g_next = self._log_block(sub, a, la, lb, f, g, block, eps, plain, relax, it)
                err, mass = _row_stats(sub, a, f, f_next, eps)
                if not plain:  # the columns (never sharded) of a relaxed update
                    err = err + _row_stats(None, b, g, g_next, eps)[0]
                stats = host_copy(err, mass)
            it += block
            self.n_iter[active] = start + it
            done = stats[0] <= tol[active]
            stop = done | (start + it >= budget)
            if stop.any():
                mask = torch.as_tensor(np.flatnonzero(stop), device=device)
                # points of zero weight get the soft c-transform of the other potential
                if kernel is None:
                    f_out = torch.where(a > 0, f, f_next).index_select(0, mask)
                    g_out = torch.where(b > 0, g, g_next).index_select(0, mask)
                else:
                    u_out = torch.where(a > 0, u, s.reciprocal())
                    v_out = torch.where(b > 0, v, t.reciprocal())
                    f_out = (F + eps * torch.log(u_out)).index_select(0, mask)
                    g_out = (G + eps * torch.log(v_out)).index_select(0, mask)
                out.write(active[stop], torch.as_tensor(active[stop], device=device), f_out, g_out,
                          stats[0][stop], stats[1][stop], done[stop], kernel is not None and kernel.sparse)
                self.relax.put(torch.as_tensor(active[stop], device=device), _subset(relax, mask))
                keep = ~stop
                if not keep.any():
                    break
                sel = torch.as_tensor(np.flatnonzero(keep), device=device)
                active, start = active[keep], start[keep]
                sub = self.op.select(torch.as_tensor(active, device=device))
                a, b, la, lb = (x.index_select(0, sel) for x in (a, b, la, lb))
                stats = stats[:, keep]
                relax.select(sel)
                if kernel is None:
                    f, g, f_next = (x.index_select(0, sel) for x in (f, g, f_next))
                else:
                    kernel.select(keep, sel)
                    F, G, u, v, s = (x.index_select(0, sel) for x in (F, G, u, v, s))
            # the row update of the check iteration
            if kernel is None:
                f = f_next if plain else relax_potential(f, f_next, relax.factor(f), eps)
                if self.use_kernel and fallbacks < _MAX_FALLBACKS:  # enter the scaling form
                    F, G = f, g
                    kernel = ScalingKernel(sub, F, G, eps)
                    u, v = torch.ones_like(F), torch.ones_like(G)
                    self.used_kernel = True
            else:
                u = s.reciprocal_() if plain else relax_scaling(u, s.mul_(u), relax.factor(u))
                if stats[2].max() > kernel.drift:  # absorb the scalings into the potentials
                    F, G = F + eps * torch.log(u), G + eps * torch.log(v)
                    kernel = ScalingKernel(sub, F, G, eps)
                    u, v = torch.ones_like(u), torch.ones_like(v)

    @staticmethod
    def _log_block(op, a, la, lb, f, g, block, eps, plain, relax, it):
        """``block`` iterations in the log domain; the last one stops after its column update and returns
        ``(f, g, T(g), T(f))``: the pair to check, the next row update and the column update's target."""
        omega = None if plain else relax.factor(f)
        for step in range(block):
            t_g = soft_c_transform(op, f, la, eps, to="cols")
            damped = _damped(it + step)
            g = t_g if (plain or damped) else relax_potential(g, t_g, omega, eps)
            t_f = soft_c_transform(op, g, lb, eps, to="rows")
            if damped and relax.adaptive:
                relax.observe(_row_stats(op, a, f, t_f, eps)[0], relaxation.DAMPING)
                omega = relax.factor(f)
            if step == block - 1:
                return f, g, t_f, t_g
            f = t_f if plain else relax_potential(f, t_f, omega, eps)

    @staticmethod
    def _kernel_block(op, kernel, a, b, u, v, block, plain, relax, it):
        """As :meth:`_log_block` in the scaling form: returns ``(u, v, K (b v), K^T (a u))``."""
        omega = None if plain else relax.factor(u)
        for step in range(block):
            t = kernel.matvec(a * u, transpose=True)
            last = step == block - 1
            damped = _damped(it + step)
            if plain or damped:
                v = t.reciprocal() if last else t.reciprocal_()
            else:
                v = relax_scaling(v, t.mul(v) if last else t.mul_(v), omega)
            s = kernel.matvec(b * v, transpose=False)
            if damped and relax.adaptive:
                relax.observe(op.row_sum(s.mul(u).mul_(a).sub_(a).abs_()), relaxation.DAMPING)
                omega = relax.factor(u)
            if last:
                return u, v, s, t
            u = s.reciprocal_() if plain else relax_scaling(u, s.mul_(u), omega)


def _subset(relax: Relaxation, index) -> Relaxation:
    part = Relaxation.__new__(Relaxation)
    part.mode = relax.mode
    for name in ("omega", "lam", "prev", "count"):
        setattr(part, name, getattr(relax, name).index_select(0, index))
    return part


def symmetric(op: SoftMin, a, loga, eps: float, *, tol: np.ndarray, max_iter: int, schedule: list[float],
              f0=None, check_every: int = 1, stage_tol: np.ndarray | None = None) -> LoopResult:
    """Symmetric iterations ``f <- (f + T(f)) / 2`` for ``OT_eps(a, a)`` on a symmetric cost ``C(x, x)``.

    The plan of ``(f, f)`` is symmetric, with row (and column) sums ``a_i exp((f_i - T(f)_i) / eps)``; the
    returned error counts both marginals. Stages and checks as in :func:`alternating`.
    """
    batch, device = op.batch, op.device
    f = torch.zeros_like(a) if f0 is None else f0.clone()
    n_iter = np.zeros(batch, dtype=np.int64)
    stage_tol = tol if stage_tol is None else stage_tol
    out = None
    sched = _as_schedule(schedule)
    for k, e, t, budget in _stages(sched, eps, tol, stage_tol, max_iter):
        out = _Frozen(f, f.clone(), batch)
        active = np.flatnonzero(sched.runs(k, batch) & (n_iter < budget))
        if not active.size:
            continue
        sel = torch.as_tensor(active, device=device)
        sub = op.select(sel)
        a_s, la_s, f_s = (x.index_select(0, sel) for x in (a, loga, f))
        start, it = n_iter[active].copy(), 0
        while active.size:
            remaining = int((budget - start).min()) - it
            block = 1 if it == 0 else min(check_every - it % check_every, remaining)
            for step in range(block):
                t_f = soft_c_transform(sub, f_s, la_s, e, to="rows")
                if step < block - 1:
                    f_s = 0.5 * (f_s + t_f)
            err, mass = _row_stats(sub, a_s, f_s, t_f, e)
            stats = host_copy(2.0 * err, mass)
            it += block
            n_iter[active] = start + it
            done = stats[0] <= t[active]
            stop = done | (start + it >= budget)
            if stop.any():
                idx = torch.as_tensor(np.flatnonzero(stop), device=device)
                f_out = f_s.index_select(0, idx)
                out.write(active[stop], torch.as_tensor(active[stop], device=device), f_out, f_out,
                          stats[0][stop], stats[1][stop], done[stop])
                keep = ~stop
                if not keep.any():
                    break
                sel = torch.as_tensor(np.flatnonzero(keep), device=device)
                active, start = active[keep], start[keep]
                sub = op.select(torch.as_tensor(active, device=device))
                a_s, la_s, f_s, t_f = (x.index_select(0, sel) for x in (a_s, la_s, f_s, t_f))
            f_s = 0.5 * (f_s + t_f)
    return LoopResult(out.f, out.g, out.error, out.mass, n_iter, out.done.copy(), False)


def warn_unconverged(name: str, out: LoopResult, tol: float, max_iter: int):
    """A :class:`~otmetrics.ConvergenceWarning` naming the problems of ``out`` that did not reach ``tol``
    (raised at the caller of the public function that called this)."""
    import warnings

    from ..._core.warnings import ConvergenceWarning

    bad = ~out.converged
    if bad.any():
        worst = float(np.max(out.error[bad]))
        warnings.warn(
            f"{name}: {int(bad.sum())} of {bad.size} problem(s) reached max_iter={max_iter} with a marginal "
            f"error above tol={tol:g} (largest {worst:.3g}); increase max_iter, use eps_scaling, or a "
            f"larger eps",
            ConvergenceWarning, stacklevel=3,
        )
