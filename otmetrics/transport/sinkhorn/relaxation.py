"""Safeguarded over-relaxation of the Sinkhorn updates, with the relaxation chosen from the observed rate.

**The relaxed step.** With ``T`` the exact update of a potential (a soft c-transform), the over-relaxed
update is ``f <- f + w (T - f)``: ``w = 1`` is Sinkhorn's step, ``w`` in ``(1, 2)`` over-shoots it (Thibault,
Chizat, Dossal & Papadakis 2017). Near the solution the iteration is linear, and with ``lambda`` the
contraction factor of plain Sinkhorn per iteration, ``w* = 2 / (1 + sqrt(1 - lambda))`` contracts by
``w* - 1`` per iteration (Young's theory of successive over-relaxation; Lehmann, von Renesse, Sambale &
Uschmajew 2021): for ``lambda = 0.999``, about 50 iterations instead of 1,000 per decade of error.

**The safeguard.** The dual objective ``D(f, g)`` is concave and bounded above by ``OT_eps``; plain Sinkhorn
is block-coordinate ascent on it. With ``g`` fixed, ``D`` is a sum over ``i`` of
``a_i eps (x_i - exp(x_i))`` (plus terms free of ``f``) where ``x_i = (f_i - T_i) / eps``: the current row sum
of the plan is ``a_i exp(x_i)``. The plain step sets ``x_i = 0`` and gains ``a_i eps phi(x_i)``,
``phi(x) = exp(x) - 1 - x`` (in total ``eps KL(a | P 1)``). The relaxed step sets ``x_i <- (1 - w_i) x_i``.
With ``s = w_i - 1``, ``phi(-s x) <= s^2 phi(x)`` for ``x > 0`` and ``phi(s u) <= s^2 exp(u) phi(-u)``
for ``x = -u < 0`` (both from the series of ``phi`` and ``phi(-u) >= exp(-u) phi(u)``), so the
per-coordinate factor

    w_i = min(w, 1 + sqrt(1 - c) exp(min(x_i, 0) / 2))

keeps at least the fraction ``c`` of the plain step's gain, for every coordinate and any ``w``. Hence every
half-step raises ``D`` by at least ``c eps KL(a | P 1)`` (or ``c eps KL(b | P^T 1)``); ``D`` being bounded,
the marginal errors tend to 0: **a relaxed iteration converges whenever plain Sinkhorn does**, whatever the
estimate of ``w``. Near the solution ``x -> 0`` and the cap ``1 + sqrt(1 - c)`` (``1.9995``) is inactive.
The safeguard costs a few operations on vectors of length ``n`` (none on the ``n x m`` cost).

**The adaptive choice.** The iterations start plain. Every :data:`DAMPING`-th iteration takes the plain
column update (which also damps the oscillations of strongly over-relaxed iterations), so that its pair has
exact columns and a clean row error; the rate ``rho`` per iteration of that error between two such iterations
is measured, and the plain rate it implies is inverted from Young's relation
``(rho + w - 1)^2 = w^2 lambda rho`` (``rho = lambda`` when ``w = 1``). The estimate of ``lambda`` only
increases (the slow modes dominate late), and ``w = w*(lambda)``, capped at :data:`OMEGA_MAX`. An error that
did not decrease leaves ``w`` as it was. Rates measured in the transient (a plateau of the error before the
asymptotic regime) can ratchet ``w`` up towards the cap on problems whose asymptotic plain rate is moderate.
Above :data:`BACKOFF_ABOVE` the iteration then shows the signature of over-relaxation: the error contracts
like ``w - 1`` per iteration (the modes are complex, of modulus ``w - 1``, exactly when ``w`` is above its
optimum). A rate of at least :data:`BACKOFF_RATE` ``(w - 1)`` there backs ``w`` off (``2 - w`` doubled) and
the rate is estimated again from below, where Young's relation holds. Measured on 200 random small cost
matrices, 40 point-cloud problems and the 10 clouds of the benchmark at eps = 0.02 (tol 1e-9, 1e-9, 1e-6):
3.5x, 2.8x and 0.75x the iterations of the rule without back-off below the cap, and 2 of the 240 problems
taking over 1.5x plain Sinkhorn's iterations instead of 39 (``docs/benchmarks.md``). All of this is a few
operations on ``B`` numbers on the device: the iterates do not depend on how often convergence is checked,
and nothing is synchronised with the host.
"""

from __future__ import annotations

import math
import numbers

__all__ = ["ASCENT_FRACTION", "OMEGA_MAX", "DAMPING", "BACKOFF_ABOVE", "BACKOFF_RATE", "Relaxation",
           "check_acceleration", "relax_potential", "relax_scaling"]

#: The fraction of the plain step's gain of the dual that a relaxed step keeps (see the module docstring).
ASCENT_FRACTION = 1e-3
_SLOPE = math.sqrt(1.0 - ASCENT_FRACTION)

#: The largest relaxation the adaptive rule chooses (its rate 0.995 per iteration is reached when plain
#: Sinkhorn contracts by ``1 - 6e-6`` per iteration or more slowly).
OMEGA_MAX = 1.995

#: Above this relaxation, a rate of :data:`BACKOFF_RATE` ``(w - 1)`` or slower means ``w`` is above its
#: optimum.
BACKOFF_ABOVE = 1.9
#: See :data:`BACKOFF_ABOVE` (a rate of exactly ``w - 1`` is the linear theory's; measured rates over
#: :data:`DAMPING` iterations scatter around it).
BACKOFF_RATE = 0.97

#: Observations (every :data:`DAMPING` iterations) made with plain steps before the rate is trusted.
_WARMUP_CHECKS = 3

#: Every ``DAMPING``-th iteration takes the unrelaxed column update. Measured on problems whose plain
#: convergence is sublinear (``docs/benchmarks.md``): without it the over-relaxed iteration can stall near
#: ``w = 2`` (the error then decays by ``1e-4`` per 10 iterations instead of ``1e-1``); its exact columns
#: also give the clean row errors from which the rate is estimated.
DAMPING = 10


def check_acceleration(acceleration):
    """Validate ``acceleration``: ``"auto"``, ``None`` or a fixed relaxation in ``[1, 2)``."""
    if acceleration is None or (isinstance(acceleration, str) and acceleration == "auto"):
        return acceleration
    if isinstance(acceleration, bool) or not isinstance(acceleration, numbers.Real) \
            or not 1.0 <= float(acceleration) < 2.0:
        raise ValueError(f"acceleration: must be 'auto', None or a relaxation factor in [1, 2), "
                         f"got {acceleration!r}")
    return float(acceleration)


def relax_potential(p, target, omega, eps):
    """``p + w (target - p)`` with the safeguarded per-coordinate ``w`` (log domain; a new tensor)."""
    import torch

    d = p - target                                          # eps x
    w = d.clamp_max(0.0).mul_(0.5 / eps).exp_().mul_(_SLOPE).add_(1.0)
    w = torch.minimum(w, omega)
    return torch.addcmul(p, w, d, value=-1.0)


def relax_scaling(s, ratio, omega):
    """``s ratio^(-w)`` with the safeguarded ``w``, where ``ratio = s / s_target = exp(x)`` (scaling form).

    ``ratio`` is overwritten.
    """
    import torch

    w = ratio.clamp_max(1.0).sqrt_().mul_(_SLOPE).add_(1.0)
    w = torch.minimum(w, omega)
    return s.div(ratio.pow_(w))


class Relaxation:
    """Per-problem relaxation factors of a batch, estimated on the device (no host synchronisation).

    Parameters
    ----------
    batch : int
    mode : ``"auto"``, ``None`` (plain Sinkhorn) or a fixed factor in ``[1, 2)``.
    like : tensor
        Gives the device and dtype of the state.

    The loop calls :meth:`observe` after every unrelaxed column update (every :data:`DAMPING`-th iteration,
    whose pair has exact columns), with the row error of that pair; the factor of a problem is re-estimated
    from the rate between two such observations of the same stage.
    """

    def __init__(self, batch: int, mode, like):
        import torch

        self.mode = mode
        fixed = 1.0 if mode in (None, "auto") else float(mode)
        opts = dict(dtype=torch.float64, device=like.device)
        self.omega = torch.full((batch,), fixed, **opts)
        self.lam = torch.zeros(batch, **opts)
        self.prev = torch.full((batch,), float("nan"), **opts)
        self.count = torch.zeros(batch, **opts)

    @property
    def plain(self) -> bool:
        """True when every step is Sinkhorn's (no relaxation operations at all)."""
        return self.mode is None or (self.mode != "auto" and float(self.mode) == 1.0)

    @property
    def adaptive(self) -> bool:
        return self.mode == "auto"

    def take(self, idx) -> "Relaxation":
        """The state of problems ``idx`` (a device index tensor), with the previous errors forgotten (a new
        stage: errors at another eps are not comparable)."""
        import torch

        out = Relaxation.__new__(Relaxation)
        out.mode = self.mode
        out.omega, out.lam, out.count = (t.index_select(0, idx) for t in (self.omega, self.lam, self.count))
        out.prev = torch.full_like(out.lam, float("nan"))
        return out

    def put(self, idx, part: "Relaxation"):
        """Write back the state of problems ``idx`` from ``part`` (as returned by :meth:`take`)."""
        for name in ("omega", "lam", "count"):
            getattr(self, name).index_copy_(0, idx, getattr(part, name))

    def select(self, sel):
        """Keep the problems ``sel`` (device indices) of this subset."""
        for name in ("omega", "lam", "prev", "count"):
            setattr(self, name, getattr(self, name).index_select(0, sel))

    def factor(self, like):
        """The factors as a ``(B, 1)`` tensor in the dtype of ``like``."""
        return self.omega.to(like.dtype)[:, None]

    def observe(self, err, steps: int):
        """Record the row errors ``err`` ``(B,)`` of unrelaxed pairs ``steps`` iterations after the previous
        ones; update the factors (device operations only)."""
        import torch

        if self.mode != "auto":
            return
        err = err.to(torch.float64)
        prev, omega = self.prev, self.omega
        seen = torch.isfinite(prev) & (err > 0)
        rho = (err / prev).pow(1.0 / steps)
        warm = self.count >= _WARMUP_CHECKS
        ok = seen & (rho < 1) & warm
        lam = ((rho + omega - 1.0) ** 2 / (omega**2 * rho)).clamp(0.0, 1.0)
        lam = torch.where(ok & torch.isfinite(lam), lam, torch.zeros_like(lam))
        self.lam = torch.maximum(self.lam, lam)
        # w high and the error contracting like w - 1: w is above its optimum (the estimate ratcheted up on
        # transient rates); back off, doubling 2 - w, and estimate again from below
        restart = seen & warm & (omega > BACKOFF_ABOVE) & (rho < 1) & (rho >= BACKOFF_RATE * (omega - 1.0))
        back = 2.0 - 2.0 * (2.0 - omega)
        self.lam = torch.where(restart, 1.0 - ((2.0 - back) / back) ** 2, self.lam)
        best = (2.0 / (1.0 + torch.sqrt(1.0 - self.lam))).clamp_max(OMEGA_MAX)
        self.omega = torch.where(ok | restart, best, omega)
        self.prev = err
        self.count = self.count + 1.0
