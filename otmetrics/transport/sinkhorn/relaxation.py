"""Safeguarded over-relaxation of the Sinkhorn updates, with the relaxation chosen from the observed rate.

**The relaxed step.** With ``T`` the exact update of a potential (a soft c-transform), the over-relaxed
update is ``f <- f + w (T - f)``: ``w = 1`` is Sinkhorn's step, ``w`` in ``(1, 2)`` over-shoots it (Thibault,
Chizat, Dossal & Papadakis 2017). Near the solution the iteration is linear, and with ``lambda`` the
contraction factor of plain Sinkhorn per iteration, ``w* = 2 / (1 + sqrt(1 - lambda))`` contracts by ``w* - 1``
per iteration (Young's theory of successive over-relaxation; Lehmann, von Renesse, Sambale & Uschmajew 2021):
for ``lambda = 0.999``, about 50 iterations instead of 1,000 per decade of error.

**The safeguard.** The dual objective ``D(f, g)`` is concave and bounded above by ``OT_eps``; plain Sinkhorn
is block-coordinate ascent on it. With ``g`` fixed, ``D`` is a sum over ``i`` of
``a_i eps (x_i - exp(x_i))`` (plus terms free of ``f``) where ``x_i = (f_i - T_i) / eps``: the current row sum
of the plan is ``a_i exp(x_i)``. The plain step sets ``x_i = 0`` and gains ``a_i eps phi(x_i)``,
``phi(x) = exp(x) - 1 - x`` (in total ``eps KL(a | P 1)``). The relaxed step sets ``x_i <- (1 - w_i) x_i``.
With ``s = w_i - 1``, ``phi(-s x) <= s^2 phi(x)`` for ``x > 0`` and ``phi(s u) <= s^2 exp(u) phi(-u)`` for
``x = -u < 0`` (both from the series of ``phi`` and ``phi(-u) >= exp(-u) phi(u)``), so the per-coordinate factor

    w_i = min(w, 1 + sqrt(1 - c) exp(min(x_i, 0) / 2))

keeps at least the fraction ``c`` of the plain step's gain, for every coordinate and any ``w``. Hence every
half-step raises ``D`` by at least ``c eps KL(a | P 1)`` (or ``c eps KL(b | P^T 1)``); ``D`` being bounded,
the marginal errors tend to 0: **a relaxed iteration converges whenever plain Sinkhorn does**, whatever the
estimate of ``w``. Near the solution ``x -> 0`` and the cap ``1 + sqrt(1 - c)`` (``1.9995``) is inactive.
The safeguard costs a few operations on vectors of length ``n`` (none on the ``n x m`` cost).

**The adaptive choice.** The iterations start plain; at each convergence check the rate ``rho`` per iteration
of the marginal error since the previous check is measured, and the plain rate it implies is inverted from
Young's relation ``(rho + w - 1)^2 = w^2 lambda rho`` (``rho = lambda`` when ``w = 1``). The estimate of
``lambda`` only increases (the slow modes dominate late), and ``w = w*(lambda)``, capped at :data:`OMEGA_MAX`.
An error that did not decrease leaves ``w`` as it was. Everything here runs on the host at the checks, on
``B`` numbers: nothing is synchronised between checks.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

__all__ = ["ASCENT_FRACTION", "OMEGA_MAX", "Relaxation", "check_acceleration", "relax_potential",
           "relax_scaling"]

#: The fraction of the plain step's gain of the dual that a relaxed step keeps (see the module docstring).
ASCENT_FRACTION = 1e-3
_SLOPE = math.sqrt(1.0 - ASCENT_FRACTION)

#: The largest relaxation the adaptive rule chooses (its rate 0.995 per iteration is reached when plain
#: Sinkhorn contracts by ``1 - 6e-6`` per iteration or more slowly).
OMEGA_MAX = 1.995

#: Checks run plain at the start of the first stage before the rate is trusted.
_WARMUP_CHECKS = 3


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
    """Per-problem relaxation factors for a batch, updated at the convergence checks.

    Parameters
    ----------
    batch : int
    mode : ``"auto"``, ``None`` (plain Sinkhorn) or a fixed factor in ``[1, 2)``.
    """

    def __init__(self, batch: int, mode):
        self.mode = mode
        fixed = 1.0 if mode in (None, "auto") else float(mode)
        self.omega = np.full(batch, fixed)
        self.lam = np.zeros(batch)
        self.prev_err = np.full(batch, np.nan)
        self.prev_iter = np.zeros(batch, dtype=np.int64)
        self.checks = np.zeros(batch, dtype=np.int64)

    @property
    def plain(self) -> bool:
        """True when every step is Sinkhorn's (no relaxation operations at all)."""
        return self.mode is None or (self.mode != "auto" and float(self.mode) == 1.0)

    def start_stage(self, idx):
        """Forget the previous errors of problems ``idx`` (a new eps: errors are not comparable)."""
        self.prev_err[idx] = np.nan

    def observe(self, idx, err, n_iter):
        """Record the errors ``err`` of problems ``idx`` at iteration counts ``n_iter``; update ``w``."""
        if self.mode != "auto":
            return
        prev, prev_iter = self.prev_err[idx], self.prev_iter[idx]
        self.prev_err[idx], self.prev_iter[idx] = err, n_iter
        self.checks[idx] += 1
        steps = n_iter - prev_iter
        ok = np.isfinite(prev) & (err < prev) & (err > 0) & (steps >= 2) & (self.checks[idx] > _WARMUP_CHECKS)
        if not ok.any():
            return
        omega = self.omega[idx][ok]
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = (err[ok] / prev[ok]) ** (1.0 / steps[ok])
            lam = np.clip((rho + omega - 1.0) ** 2 / (omega**2 * rho), 0.0, 1.0)
        lam = np.where(np.isfinite(lam), lam, 0.0)
        sel = np.asarray(idx)[ok]
        self.lam[sel] = np.maximum(self.lam[sel], lam)
        self.omega[sel] = np.minimum(OMEGA_MAX, 2.0 / (1.0 + np.sqrt(1.0 - self.lam[sel])))

    def omega_tensor(self, idx, like):
        """The factors of problems ``idx`` as a ``(len(idx), 1)`` tensor like ``like`` (a host-to-device copy)."""
        import torch

        return torch.as_tensor(self.omega[idx], dtype=like.dtype).to(like.device)[:, None]
