"""The training loop of :func:`~otmetrics.critic.estimate_w1`, built from the parts in ``training.py``.

- :func:`normalisation`: the affine map under which the network sees the points (unit RMS radius);
- :func:`train_critic`: the loop itself: batches (full, or drawn in proportion to the weights), the
  step (:func:`~otmetrics.critic.critic_loss`, :func:`~otmetrics.critic.gradient_penalty`, the
  method's optimizer and schedule, :func:`~otmetrics.critic.clip_weights_`), and its record, a
  :class:`CriticHistory`;
- :func:`has_converged`: the convergence test on that record.

The same shape as the Sinkhorn solver's (``transport/sinkhorn``: ``api.py`` validates and reports,
``loop.py`` iterates): :mod:`otmetrics.critic.estimate` validates, trains with this loop, freezes and
certifies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .training import clip_weights_, critic_loss, gradient_penalty, make_optimizer, method_config

__all__ = ["CriticHistory", "normalisation", "train_critic", "has_converged"]

_FULL_BATCH = 4096  # default: full batches up to this many points per side


@dataclass(frozen=True)
class CriticHistory:
    """What happened during training, logged every ``log_every`` steps.

    Attributes
    ----------
    step : ndarray of int ``(k,)``
        The step after which each entry was logged (the last one is the final step).
    objective : ndarray ``(k,)``
        The batch objective ``E f(x_batch) - E f(y_batch)`` averaged over the steps since the last
        entry, in the units of the data.
    value : ndarray ``(k,)``
        The objective on all the samples (the training dtype), at the logged steps.
    penalty : ndarray ``(k,)``
        The gradient penalty averaged like ``objective`` (zeros for other methods).
    lr : ndarray ``(k,)``
        The learning rate at the logged steps.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics.critic import estimate_w1
    >>> x = np.linspace(0.0, 1.0, 50)
    >>> h = estimate_w1(x, x + 2.0, steps=100, width=16, depth=1, log_every=25, n_threads=1).history
    >>> h.step.tolist(), bool(h.value[-1] > h.value[0]), bool(h.lr[0] > h.lr[-1])
    ([25, 50, 75, 100], True, True)
    """

    step: np.ndarray
    objective: np.ndarray
    value: np.ndarray
    penalty: np.ndarray
    lr: np.ndarray


def normalisation(x: torch.Tensor, y: torch.Tensor, a: np.ndarray | None = None,
                  b: np.ndarray | None = None) -> tuple[torch.Tensor, float]:
    """The affine map under which the critic trains: ``z = (x - shift) / scale``.

    ``shift`` is the midpoint of the two (weighted) means, ``scale`` the RMS distance of all the
    points to it, so that the network sees points of unit RMS radius whatever the units of the
    data (a float32 cast of points at 1e9 would lose their digits; Adam's ``eps`` would swamp the
    gradients of an objective of size 1e-12). :func:`~otmetrics.critic.estimate_w1` computes it
    in float64, trains on ``z`` and folds the map into the network afterwards:
    ``f(x) = scale * g((x - shift) / scale)``.

    Parameters
    ----------
    x, y : float64 tensors, shapes ``(n, d)`` and ``(m, d)``
    a, b : float64 ndarrays ``(n,)`` and ``(m,)`` normalised to 1, or None (uniform)

    Returns
    -------
    shift : tensor ``(d,)``
    scale : float
        1 when all the points coincide (or the RMS is not a positive finite number). The RMS is
        taken of the deviations divided by the largest one, so that it neither underflows (points
        1e-170 apart) nor overflows.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    >>> shift, scale = normalisation(x, x + 4.0)
    >>> shift.tolist(), round(scale, 12)   # deviations -3, -1, 1, 3: RMS sqrt(5)
    ([3.0], 2.2360679775)
    """
    px = x.mean(0) if a is None else (torch.from_numpy(a).to(x)[:, None] * x).sum(0)
    py = y.mean(0) if b is None else (torch.from_numpy(b).to(y)[:, None] * y).sum(0)
    shift = px / 2 + py / 2
    deviations = torch.cat([x - shift, y - shift])
    largest = float(deviations.abs().max())
    if not (largest > 0 and math.isfinite(largest)):
        return shift, 1.0
    scale = largest * float((deviations / largest).pow(2).sum(-1).mean().sqrt())
    return shift, scale if scale > 0 and math.isfinite(scale) else 1.0


def _sampler(n, w, device, generator):
    """A function ``k -> k indices`` drawn uniformly or in proportion to ``w`` (with replacement)."""
    if w is None:
        return lambda k: torch.randint(n, (k,), generator=generator, device=device)
    probs = torch.from_numpy(w).to(device)
    return lambda k: torch.multinomial(probs, k, replacement=True, generator=generator)


def train_critic(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, a: np.ndarray | None = None,
                 b: np.ndarray | None = None, *, method: str, steps: int, batch_size: int | None = None,
                 lr: float | None = None, clip_value: float | None = None, gp_weight: float = 0.0,
                 seed: int = 0, log_every: int | None = None, progress: bool = False,
                 unit: float = 1.0) -> CriticHistory:
    """Train ``net`` to maximise ``sum_i a_i f(x_i) - sum_j b_j f(y_j)``: the loop of ``estimate_w1``.

    Each step computes the objective on a batch (all the points, weighted, for full batches;
    otherwise ``batch_size`` points per side drawn with replacement in proportion to the weights,
    through :func:`critic_loss`), adds ``gp_weight`` times the :func:`gradient_penalty`, takes an
    optimizer step (:func:`make_optimizer`; a cosine-annealed learning rate for methods with
    ``cosine_schedule``) and clips the weights (:func:`clip_weights_`) when ``clip_value`` is
    given. The inputs are used as given: :func:`~otmetrics.critic.estimate_w1` validates them and
    trains on normalised points (:func:`normalisation`).

    Parameters
    ----------
    net : torch.nn.Module
        The critic (:func:`make_critic`), updated in place; its parameters live on the device and
        in the dtype of ``x``.
    x, y : tensors, shapes ``(n, d)`` and ``(m, d)``
        The points, on the device and in the dtype of the training.
    a, b : float64 ndarrays ``(n,)`` and ``(m,)`` normalised to 1, or None (uniform)
    method : {"groupsort", "clipping", "gp"}
        Chooses the optimizer and the schedule.
    steps : int
        Optimizer steps.
    batch_size : int, optional
        Points per side and step. ``None``: full batches when both sides have at most 4096 points,
        batches of 4096 otherwise.
    lr : float, optional
        Learning rate instead of the method's default.
    clip_value : float, optional
        Clip every parameter to ``[-clip_value, clip_value]`` after each step.
    gp_weight : float, default 0
        Weight of the gradient penalty (0: none).
    seed : int, default 0
        Seeds the batches and the penalty's interpolation weights (a private generator).
    log_every : int, optional
        History interval; default ``max(1, steps // 50)``.
    progress : bool, default False
        Show a progress bar (tqdm).
    unit : float, default 1
        The history reports objectives times ``unit`` (the ``scale`` of :func:`normalisation`:
        objectives in the units of the data).

    Returns
    -------
    CriticHistory

    Notes
    -----
    ``O(steps B (d w + depth w^2))`` for batches of ``B`` points and networks of width ``w``, plus
    one full-sample evaluation per logged step. The global torch RNG is untouched.

    Examples
    --------
    >>> import torch
    >>> from otmetrics.critic import make_critic
    >>> x = torch.linspace(-1.0, 1.0, 20)[:, None]
    >>> net = make_critic("groupsort", 1, width=16, depth=2, seed=0)
    >>> history = train_critic(net, x, x + 1.0, method="groupsort", steps=100, log_every=25)
    >>> history.step.tolist(), round(float(history.value[-1]), 3)   # W1 is 1
    ([25, 50, 75, 100], 1.0)
    """
    device = x.device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    n, m = x.shape[0], y.shape[0]
    cfg = method_config(method)
    if log_every is None:
        log_every = max(1, steps // 50)
    full = batch_size is None and n <= _FULL_BATCH and m <= _FULL_BATCH
    batch = batch_size or _FULL_BATCH
    both = torch.cat([x, y])
    full_a = torch.full((n,), 1.0 / n, device=device, dtype=x.dtype) if a is None else \
        torch.from_numpy(a).to(x)
    full_b = torch.full((m,), 1.0 / m, device=device, dtype=x.dtype) if b is None else \
        torch.from_numpy(b).to(x)
    sample_x, sample_y = _sampler(n, a, device, generator), _sampler(m, b, device, generator)

    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = make_optimizer(method, params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if cfg.cosine_schedule else None

    def full_value():
        with torch.no_grad():
            out = net(both)
            return float((full_a * out[:n]).sum() - (full_b * out[n:]).sum()) * unit

    objectives = torch.zeros(steps, dtype=torch.float64, device=device)
    penalties = torch.zeros(steps, dtype=torch.float64, device=device)
    log_step, log_value, log_lr = [], [], []
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=steps, desc=f"critic ({method})", leave=False)
    for step in range(steps):
        if full:
            out = net(both)
            objective = (full_a * out[:n]).sum() - (full_b * out[n:]).sum()
            loss = -objective
            if gp_weight:
                k = min(batch, n, m)
                penalty = gradient_penalty(net, x[sample_x(k)], y[sample_y(k)], generator=generator)
                loss = loss + gp_weight * penalty
                penalties[step] = penalty.detach()
            objectives[step] = objective.detach()
        else:
            loss, objective, penalty = critic_loss(net, x[sample_x(batch)], y[sample_y(batch)],
                                                   gp_weight=gp_weight, generator=generator)
            objectives[step] = objective
            penalties[step] = penalty
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if clip_value is not None:
            clip_weights_(net, clip_value)
        current_lr = optimizer.param_groups[0]["lr"]
        if schedule is not None:
            schedule.step()
        if (step + 1) % log_every == 0 or step + 1 == steps:
            log_step.append(step + 1)
            log_value.append(full_value())
            log_lr.append(current_lr)
            if bar is not None:
                bar.set_postfix(value=f"{log_value[-1]:.4g}")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    steps_arr = np.asarray(log_step, dtype=np.int64)
    obj = objectives.cpu().numpy()
    pen = penalties.cpu().numpy()
    starts = np.concatenate([[0], steps_arr[:-1]])
    return CriticHistory(
        step=steps_arr,
        objective=np.array([obj[s:e].mean() for s, e in zip(starts, steps_arr)]) * unit,
        value=np.asarray(log_value, dtype=np.float64),
        penalty=np.array([pen[s:e].mean() for s, e in zip(starts, steps_arr)]),
        lr=np.asarray(log_lr, dtype=np.float64),
    )


def has_converged(history: CriticHistory, tol: float) -> bool:
    """True when the full-sample objective rose by at most ``tol`` (relative) over the last fifth of steps.

    The rise is ``value[-1] - value[k]`` from the first entry ``k`` logged at or after 80% of the
    steps (the last but one at the latest), relative to ``max(|value[-1]|, 1e-12)``. A history of
    fewer than 2 entries counts as converged.

    Parameters
    ----------
    history : CriticHistory
    tol : float
        Relative tolerance ``>= 0``.

    Returns
    -------
    bool

    Examples
    --------
    >>> import numpy as np
    >>> values = np.array([0.5, 0.9, 0.99, 0.999, 0.9995])
    >>> h = CriticHistory(step=np.arange(10, 60, 10), objective=values, value=values,
    ...                   penalty=np.zeros(5), lr=np.zeros(5))
    >>> has_converged(h, 1e-3), has_converged(h, 1e-4)   # rose by 5e-4 over steps 40-50
    (True, False)
    """
    values = history.value
    if values.size < 2:
        return True
    start = int(np.searchsorted(history.step, 0.8 * history.step[-1]))
    start = min(start, values.size - 2)
    rise = values[-1] - values[start]
    return bool(rise <= tol * max(abs(values[-1]), 1e-12))
