"""``estimate_w1``: a neural Kantorovich-Rubinstein estimate of W1 with a certified lower bound;
``validate``: the same estimate next to the exact EMD."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._core.arrays import first_tensor, to_numpy
from .._core.validation import validate_positive, validate_samples, validate_weights
from .._core.warnings import ConvergenceWarning, NumericalWarning
from .._core.rounding import gamma, lower_dot, next_down, upper_dot
from .bounds import FrozenCritic, as_float64, best_scale, dual_lower_bound
from .threads import torch_threads
from .training import METHODS, method_config, clip_weights_, gradient_penalty, make_critic, make_optimizer

__all__ = ["CriticHistory", "CriticEstimate", "CriticValidation", "estimate_w1", "validate"]

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
    >>> h = estimate_w1(x, x + 2.0, steps=100, width=16, depth=1, log_every=25, num_threads=1).history
    >>> h.step.tolist(), bool(h.value[-1] > h.value[0]), bool(h.lr[0] > h.lr[-1])
    ([25, 50, 75, 100], True, True)
    """

    step: np.ndarray
    objective: np.ndarray
    value: np.ndarray
    penalty: np.ndarray
    lr: np.ndarray


@dataclass(frozen=True)
class CriticEstimate:
    """A trained critic's estimate of W1 between two sample sets, and what is proven about it.

    Scalars are Python floats (float64) whatever the input type: a certified bound rounded to
    float32 could exceed the exact value.

    Attributes
    ----------
    value : float
        The dual objective ``sum_i a_i f(x_i) - sum_j b_j f(y_j)`` of the final critic on the
        samples (float64). An estimate, not a bound: above W1 for a critic that is not 1-Lipschitz.
    certified : float
        A lower bound on the exact W1 of the two sample sets that holds with certainty: the largest
        of :attr:`certified_lipschitz`, :attr:`certified_c_transform` and 0.
    lipschitz_bound : float
        A proven upper bound ``L`` on the critic's Lipschitz constant (product of the layers' spectral
        norms by SVD in float64, rounded up). About 1 for ``"groupsort"``.
    certified_lipschitz : float
        ``value / L`` with the rounding errors of the evaluation removed (0 when that is negative).
    certified_c_transform : float
        The dual value of ``(s f, (s f)^c)`` made feasible by a second c-transform, for the best
        scale ``s`` found, from either side, with rounding margins (0 without ``certify``).
    c_transform_scale : float
        That scale ``s``.
    heldout_value : float or None
        The objective on fresh samples ``x_test``, ``y_test`` (if given). For a critic with
        ``L <= 1`` it estimates a lower bound on W1 of the underlying distributions without the
        optimism of evaluating on the training samples (unbiased, not certain).
    method : str
    converged : bool
        The full-sample objective rose by at most ``tol`` (relative) over the last fifth of training.
    n_iter : int
        Critic updates performed.
    history : CriticHistory
    critic : FrozenCritic
        The final critic as float64 layers: callable on new points, with its Lipschitz bound.
    n_samples : tuple of int
        ``(n, m)``: the numbers of samples of ``x`` and ``y`` it was trained and certified on.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics.critic import estimate_w1
    >>> x = np.linspace(0.0, 1.0, 50)
    >>> est = estimate_w1(x, x + 2.0, steps=100, width=16, depth=1, num_threads=1)  # exact W1: 2
    >>> est.certified <= 2.0, round(est.certified, 3), est.lipschitz_bound <= 1 + 1e-9
    (True, 2.0, True)
    >>> est.n_samples, est.critic(np.array([0.0, 1.0])).shape
    ((50, 50), (2,))
    """

    value: float
    certified: float
    lipschitz_bound: float
    certified_lipschitz: float
    certified_c_transform: float
    c_transform_scale: float
    heldout_value: float | None
    method: str
    converged: bool
    n_iter: int
    history: CriticHistory
    critic: FrozenCritic
    n_samples: tuple[int, int]


@dataclass(frozen=True)
class CriticValidation:
    """A critic estimate beside the exact EMD of the same samples.

    Attributes
    ----------
    estimate : CriticEstimate
    exact : float
        The exact W1 (``otmetrics.wasserstein``, network simplex, certified optimal).
    ratio : float or None
        ``estimate.value / exact`` (``None`` when ``exact == 0``).
    certified_ratio : float or None
        ``estimate.certified / exact`` (``None`` when ``exact == 0``).
    bound_held : bool
        ``estimate.certified <= exact (1 + 1e-9)``: the certified bound held, up to the exact
        solver's relative rounding (a relative tolerance only, so that it means the same in every
        unit; for ``exact == 0`` it requires ``certified == 0``).

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics.critic import validate
    >>> x = np.linspace(0.0, 1.0, 50)
    >>> report = validate(x, x + 2.0, steps=100, width=16, depth=1, num_threads=1)
    >>> round(report.exact, 12), report.bound_held, round(report.certified_ratio, 3)
    (2.0, True, 1.0)
    """

    estimate: CriticEstimate
    exact: float
    ratio: float | None
    certified_ratio: float | None
    bound_held: bool

    def summary(self) -> str:
        """One line: method, value, certified bound, exact value and ratios."""
        e = self.estimate
        ratios = ("" if self.ratio is None
                  else f" (ratio {self.ratio:.4f}, certified {self.certified_ratio:.4f})")
        return (f"{e.method}: value {e.value:.6g}, certified {e.certified:.6g}, exact {self.exact:.6g}"
                f"{ratios}, Lipschitz bound {e.lipschitz_bound:.4g}, bound held: {self.bound_held}")


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------
def _count(value, name, *, allow_zero=False) -> int:
    return int(validate_positive(value, name, allow_zero=allow_zero, integer=True))


def _real(value, name, *, allow_zero=False) -> float:
    return float(validate_positive(value, name, allow_zero=allow_zero))


def _weights(w, name, size):
    """Validated weights normalised to 1 (numpy float64), or None for uniform weights."""
    if w is None:
        return None
    w = to_numpy(validate_weights(w, name, ndim=1, size=size), name)
    return w / w.sum()


# ----------------------------------------------------------------------------------------------
# The estimator
# ----------------------------------------------------------------------------------------------
def estimate_w1(x, y, *, method: str = "groupsort", steps: int | None = None, batch_size: int | None = None,
                seed: int = 0, a=None, b=None, x_test=None, y_test=None, lr: float | None = None,
                width: int = 64, depth: int = 3, group_size: int = 2, clip_value: float | None = None,
                gp_weight: float | None = None, certify: bool = True, tol: float = 1e-3,
                log_every: int | None = None, device=None, dtype=None, num_threads: int | None = None,
                progress: bool = False) -> CriticEstimate:
    """Estimate W1 between two sample sets with a trained critic, and certify a lower bound.

    By Kantorovich-Rubinstein duality

    .. math::

        W_1(\\alpha, \\beta) = \\sup_{\\mathrm{Lip}(f) \\le 1} \\sum_i a_i f(x_i) - \\sum_j b_j f(y_j),

    a network ``f`` trained to maximise the right-hand side gives an estimate. The result also
    says what is *proven*: a Lipschitz bound ``L`` of the final network (exact spectral norms) and
    a lower bound on the exact W1 of the samples, ``max(value / L, dual value of (s f, (s f)^c))``,
    with every floating-point rounding accounted for (see :mod:`otmetrics.critic.bounds`).

    Parameters
    ----------
    x : array-like or tensor, shape ``(n, d)`` (or ``(n,)`` for points on a line)
        Samples of the first distribution, ``n >= 2``.
    y : array-like or tensor, shape ``(m, d)`` (or ``(m,)``)
        Samples of the second distribution, ``m >= 2``.
    method : {"groupsort", "clipping", "gp"}, default "groupsort"
        ``"groupsort"``: a 1-Lipschitz GroupSort network with Björck-orthonormalised weights, Adam
        (lr 1e-2, cosine-annealed), full batches; the accurate one. ``"clipping"``: the WGAN critic
        with weight clipping (RMSProp, lr 5e-5, clip 0.01, batch 64). ``"gp"``: WGAN-GP (gradient
        penalty 10, Adam 1e-4, betas (0, 0.9), batch 64). See :data:`~otmetrics.critic.METHODS`.
    steps : int, optional
        Critic updates; default 500 (groupsort) or 2000 (clipping, gp).
    batch_size : int, optional
        Points per side and step, drawn with replacement (in proportion to the weights). Default:
        64 for clipping and gp; full batches for groupsort up to 4096 points per side.
    seed : int, default 0
        Seeds the initial weights and the batches (the global RNG is untouched). CPU runs are
        reproducible.
    a, b : array-like, optional
        Non-negative weights of the samples (normalised to 1); uniform when omitted.
    x_test, y_test : array-like or tensor, optional
        Fresh samples for :attr:`CriticEstimate.heldout_value` (both or neither).
    lr : float, optional
        Learning rate instead of the method's default (inputs are normalised to unit RMS radius).
    width, depth : int, default 64 and 3
        Units per hidden layer and number of hidden layers.
    group_size : int, default 2
        GroupSort group size.
    clip_value : float, optional
        Weight-clipping bound (``"clipping"``; default 0.01).
    gp_weight : float, optional
        Gradient-penalty weight (``"gp"``; default 10).
    certify : bool, default True
        Compute the c-transform bound (``O(n m d)`` per evaluation, ~50 evaluations to choose the
        scale). Without it ``certified`` is the Lipschitz bound ``value / L`` alone.
    tol : float, default 1e-3
        Relative rise of the full-sample objective over the last fifth of the steps below which
        training counts as converged.
    log_every : int, optional
        History interval (default: 50 entries in all).
    device, dtype : optional
        Where and in which floating dtype to train. Default: the device and floating dtype of
        tensor input, else the CPU in float32. Bounds are always computed in float64.
    num_threads : int, optional
        torch's CPU threads while this call runs (restored afterwards; the setting is global to the
        process). Default: leave torch's setting. The networks are small: on a machine whose cores
        are busy, ``num_threads=1`` avoids OpenMP threads waiting on each other (we measured 30x
        slower training with 2 threads on 2 oversubscribed cores).
    progress : bool, default False
        Show a progress bar (tqdm).

    Returns
    -------
    CriticEstimate

    Raises
    ------
    ValueError
        Samples of different dimensions, fewer than 2 samples, NaN or infinite coordinates, bad
        weights, an unknown method, non-positive steps or batch size, ...

    Warns
    -----
    ConvergenceWarning
        When the objective still rose by more than ``tol`` over the last fifth of training.

    Notes
    -----
    Training costs ``O(steps * B * (d w + depth w^2))`` for batches of ``B`` points (plus
    ``O(steps * depth * w^3)`` for the orthonormalisation); certification ``O(n m d)`` per
    c-transform. The default critic reaches 0.99 of the exact value and more on simple pairs
    (1-D Gaussians, translations, parallel lines) and 0.95 on a ring of Gaussians against one
    Gaussian, with ``n = 500`` (see the benchmarks; the tests check both at 150 steps).
    Clipping and GP critics give values that are not W1: a clipped critic is ``K``-Lipschitz
    for an unknown small ``K``, a penalised one is not Lipschitz at all; only their certified
    bound is a statement about W1.

    References
    ----------
    Arjovsky, Chintala & Bottou, "Wasserstein generative adversarial networks", ICML 2017.
    Gulrajani et al., "Improved training of Wasserstein GANs", NeurIPS 2017.
    Anil, Lucas & Grosse, "Sorting out Lipschitz function approximation", ICML 2019.
    Villani, *Optimal Transport: Old and New*, 2009, Thm. 5.10 and Rem. 6.5.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics.critic import estimate_w1
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 2))
    >>> est = estimate_w1(x, x + [0.6, 0.8], steps=100, num_threads=1)
    >>> est.certified <= 1.0 + 1e-12, round(est.certified, 2)   # the exact value is 1
    (True, 1.0)
    """
    cfg = method_config(method)
    # -- inputs --------------------------------------------------------------------------------
    X = validate_samples(x, "x", min_samples=2)
    Y = validate_samples(y, "y", min_samples=2)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"y: points must have the dimension of x ({X.shape[1]}), got {Y.shape[1]}")
    dim = X.shape[1]
    n, m = X.shape[0], Y.shape[0]
    wa, wb = _weights(a, "a", n), _weights(b, "b", m)
    if (x_test is None) != (y_test is None):
        raise ValueError(f"y_test: give both x_test and y_test or neither, got "
                         f"{'x_test only' if y_test is None else 'y_test only'}")
    if x_test is not None:
        x_test = validate_samples(x_test, "x_test", min_samples=1, dim=dim)
        y_test = validate_samples(y_test, "y_test", min_samples=1, dim=dim)
    steps = cfg.steps if steps is None else _count(steps, "steps")
    if batch_size is not None:
        batch_size = _count(batch_size, "batch_size")
    elif cfg.batch_size is not None:
        batch_size = cfg.batch_size
    lr = cfg.lr if lr is None else _real(lr, "lr")
    if clip_value is not None and method != "clipping":
        raise ValueError(f"clip_value: only used by method='clipping', got {clip_value!r} "
                         f"with method={method!r}")
    if gp_weight is not None and method != "gp":
        raise ValueError(f"gp_weight: only used by method='gp', got {gp_weight!r} with method={method!r}")
    clip_value = cfg.clip_value if clip_value is None else _real(clip_value, "clip_value")
    gp_weight = cfg.gp_weight if gp_weight is None else _real(gp_weight, "gp_weight", allow_zero=True)
    seed = _count(seed, "seed", allow_zero=True)
    tol = _real(tol, "tol", allow_zero=True)
    log_every = max(1, steps // 50) if log_every is None else _count(log_every, "log_every")
    if not isinstance(certify, bool):
        raise ValueError(f"certify: must be True or False, got {certify!r}")
    if num_threads is not None:
        num_threads = _count(num_threads, "num_threads")

    like = first_tensor(x, y)
    if device is None:
        device = like.device if like is not None else torch.device("cpu")
    device = torch.device(device)
    if dtype is None:
        dtype = like.dtype if like is not None and like.is_floating_point() else torch.float32
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype: must be a floating torch dtype, got {dtype!r}")

    # float64 copies (the definition of the samples) and training copies
    X64 = as_float64(X, device)
    Y64 = as_float64(Y, device)
    net = make_critic(method, dim, width=width, depth=depth, group_size=group_size, seed=seed,
                      device=device, dtype=dtype)
    if clip_value is not None and method == "clipping":
        clip_weights_(net, clip_value)
    # The network trains on normalised points z = (x - shift) / scale, in float64 before any cast
    # (a float32 cast of points at 1e9 would lose their digits), with the objective in units of
    # z (Adam's eps would swamp the gradients of an objective of size 1e-12). The normalisation is
    # then folded into the network: f(x) = scale * g((x - shift) / scale).
    shift, scale = _normalisation(X64, Y64, wa, wb)
    Zx, Zy = ((X64 - shift) / scale).to(dtype), ((Y64 - shift) / scale).to(dtype)

    with torch_threads(num_threads):
        history, n_iter = _train(net, Zx, Zy, wa, wb, method=method, steps=steps, batch_size=batch_size,
                                 lr=lr,
                                 clip_value=clip_value if method == "clipping" else None,
                                 gp_weight=gp_weight if method == "gp" else 0.0, seed=seed,
                                 log_every=log_every, progress=progress, unit=scale)
        net.set_normalisation(shift, scale)
        return _finish(net, X64, Y64, wa, wb, x_test, y_test, method=method, certify=certify, tol=tol,
                       history=history, n_iter=n_iter)


def _finish(net, X64, Y64, wa, wb, x_test, y_test, *, method, certify, tol, history, n_iter):
    device = X64.device
    n, m = X64.shape[0], Y64.shape[0]

    # -- the final critic, frozen in float64, and what is proven about it ------------------------
    critic = FrozenCritic(net.affine_layers(), net.activation, getattr(net, "group_size", 1))
    ta = _weight_tensor(wa, n, device)
    tb = _weight_tensor(wb, m, device)
    fx, ex = critic.evaluate(X64, with_error=True)
    fy, ey = critic.evaluate(Y64, with_error=True)
    value = float((ta * fx).sum() - (tb * fy).sum())
    lipschitz = critic.lipschitz_bound
    # a lower bound on the exact objective of the exact network: each rounded step moved down
    lower = next_down(lower_dot(ta, fx) + lower_dot(tb, -fy))
    lower = next_down(lower - upper_dot(ta, ex))
    lower = next_down(lower - upper_dot(tb, ey))
    certified_lipschitz = max(0.0, next_down(lower / lipschitz)) if lower > 0 else 0.0

    certified_c, scale_c = 0.0, 1.0
    if certify:
        certified_c, scale_c = _c_transform_bound(X64, Y64, fx, fy, wa, wb, lipschitz)
    certified = max(certified_lipschitz, certified_c, 0.0)

    heldout = None
    if x_test is not None:
        heldout = float(critic.evaluate(x_test).mean() - critic.evaluate(y_test).mean())

    converged = _converged(history, tol)
    if not converged:
        warnings.warn(
            f"estimate_w1 ({method}): the critic's objective still rose by more than tol={tol:g} (relative) "
            f"over the last fifth of {n_iter} steps; the value may be far from W1 (the certified bound "
            f"{certified:.6g} holds regardless); increase steps",
            ConvergenceWarning, stacklevel=3,
        )
    return CriticEstimate(value=value, certified=float(certified), lipschitz_bound=float(lipschitz),
                          certified_lipschitz=float(certified_lipschitz),
                          certified_c_transform=float(certified_c),
                          c_transform_scale=float(scale_c), heldout_value=heldout, method=method,
                          converged=bool(converged), n_iter=n_iter, history=history, critic=critic,
                          n_samples=(n, m))


def _weight_tensor(w, size, device):
    if w is None:
        return torch.full((size,), 1.0 / size, dtype=torch.float64, device=device)
    return torch.from_numpy(np.ascontiguousarray(w)).to(device)


def _normalisation(X, Y, wa, wb):
    """Shift: the mean of all points; scale: their RMS distance to it (1 if all points coincide).

    The RMS is taken of deviations divided by the largest one, so that it neither underflows
    (points 1e-170 apart) nor overflows.
    """
    px = X.mean(0) if wa is None else (torch.from_numpy(wa).to(X)[:, None] * X).sum(0)
    py = Y.mean(0) if wb is None else (torch.from_numpy(wb).to(Y)[:, None] * Y).sum(0)
    shift = px / 2 + py / 2
    deviations = torch.cat([X - shift, Y - shift])
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


def _train(net, X, Y, wa, wb, *, method, steps, batch_size, lr, clip_value, gp_weight, seed, log_every,
           progress, unit=1.0):
    """Train ``net`` on (normalised) points; the history reports objectives times ``unit``."""
    device = X.device
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)
    n, m = X.shape[0], Y.shape[0]
    cfg = METHODS[method]
    full = batch_size is None and n <= _FULL_BATCH and m <= _FULL_BATCH
    batch = batch_size or _FULL_BATCH
    both = torch.cat([X, Y])
    full_wa = torch.full((n,), 1.0 / n, device=device, dtype=X.dtype) if wa is None else \
        torch.from_numpy(wa).to(X)
    full_wb = torch.full((m,), 1.0 / m, device=device, dtype=X.dtype) if wb is None else \
        torch.from_numpy(wb).to(X)
    sample_x, sample_y = _sampler(n, wa, device, generator), _sampler(m, wb, device, generator)

    params = [p for p in net.parameters() if p.requires_grad]
    optimizer = make_optimizer(method, params, lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps) if cfg.cosine_schedule else None

    def full_value():
        with torch.no_grad():
            out = net(both)
            return float((full_wa * out[:n]).sum() - (full_wb * out[n:]).sum()) * unit

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
            objective = (full_wa * out[:n]).sum() - (full_wb * out[n:]).sum()
        else:
            xb, yb = X[sample_x(batch)], Y[sample_y(batch)]
            out = net(torch.cat([xb, yb]))
            objective = out[:batch].mean() - out[batch:].mean()
        loss = -objective
        if gp_weight:
            k = min(batch, n, m) if full else batch
            real = X[sample_x(k)] if full else xb[:k]
            fake = Y[sample_y(k)] if full else yb[:k]
            penalty = gradient_penalty(net, real, fake, generator=generator)
            loss = loss + gp_weight * penalty
            penalties[step] = penalty.detach()
        objectives[step] = objective.detach()
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
    history = CriticHistory(
        step=steps_arr,
        objective=np.array([obj[s:e].mean() for s, e in zip(starts, steps_arr)]) * unit,
        value=np.asarray(log_value, dtype=np.float64),
        penalty=np.array([pen[s:e].mean() for s, e in zip(starts, steps_arr)]),
        lr=np.asarray(log_lr, dtype=np.float64),
    )
    return history, steps


def _converged(history: CriticHistory, tol: float) -> bool:
    values = history.value
    if values.size < 2:
        return True
    start = int(np.searchsorted(history.step, 0.8 * history.step[-1]))
    start = min(start, values.size - 2)
    rise = values[-1] - values[start]
    return bool(rise <= tol * max(abs(values[-1]), 1e-12))


def _c_transform_bound(X, Y, fx, fy, wa, wb, lipschitz):
    """The best certified dual value over scales and sides; ``(value, scale)``."""
    try:
        best = (0.0, 1.0)
        for side, values in (("x", fx), ("y", fy)):
            s = best_scale(X, Y, values, a=wa, b=wb, side=side, candidates=(1.0, 1.0 / lipschitz))
            for scale in {s, 1.0}:
                bound = dual_lower_bound(X, Y, values, a=wa, b=wb, side=side, scale=scale)
                if bound.value > best[0]:
                    best = (bound.value, scale)
        return best
    except FloatingPointError as exc:
        warnings.warn(f"estimate_w1: no c-transform bound ({exc}); certified uses the Lipschitz bound only",
                      NumericalWarning, stacklevel=3)
        return 0.0, 1.0


# ----------------------------------------------------------------------------------------------
# Validation against the exact primal
# ----------------------------------------------------------------------------------------------
def validate(x, y, *, a=None, b=None, estimate: CriticEstimate | None = None,
             **options: Any) -> CriticValidation:
    """Estimate W1 with a critic and compare with the exact EMD of the same samples.

    The exact value is ``otmetrics.wasserstein(x, y, a=a, b=b, p=1)`` (Euclidean ground cost,
    network simplex, certified optimal); the comparison reports both, their ratio and whether the
    certified lower bound held: ``certified <= exact (1 + 1e-9)``.

    Parameters
    ----------
    x, y : array-like or tensor, shapes ``(n, d)`` and ``(m, d)``
    a, b : array-like, optional
        Non-negative weights of the samples (normalised to 1); uniform when omitted.
    estimate : CriticEstimate, optional
        An estimate already computed on these samples and weights (otherwise one is trained). It
        is checked against them: its critic's dimension, its numbers of samples, and its
        ``value``, recomputed from its critic on ``x``, ``y`` with ``a``, ``b`` (a permutation of
        the samples gives the same measures and passes).
    **options
        Passed to :func:`estimate_w1` (``method``, ``steps``, ``seed``, ...).

    Returns
    -------
    CriticValidation

    Raises
    ------
    ValueError
        Bad samples or weights (as :func:`estimate_w1`); ``options`` beside an ``estimate``; an
        ``estimate`` that was not computed on these samples and weights.

    Notes
    -----
    The exact solver costs roughly ``O(n^3)`` for ``n = m``: a few seconds at ``n = 2000``.
    Checking a given estimate costs one evaluation of its critic on the samples.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics.critic import validate
    >>> rng = np.random.default_rng(1)
    >>> report = validate(rng.normal(size=(100, 1)), rng.normal(2.0, 1.0, size=(100, 1)), steps=100,
    ...                   num_threads=1)
    >>> report.bound_held, report.certified_ratio > 0.99
    (True, True)
    """
    X = validate_samples(x, "x", min_samples=2)
    Y = validate_samples(y, "y", min_samples=2)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"y: points must have the dimension of x ({X.shape[1]}), got {Y.shape[1]}")
    wa, wb = _weights(a, "a", X.shape[0]), _weights(b, "b", Y.shape[0])
    if estimate is None:
        estimate = estimate_w1(x, y, a=a, b=b, **options)
    elif options:
        raise ValueError(f"options: not used when an estimate is given, got {sorted(options)}")
    elif not isinstance(estimate, CriticEstimate):
        raise ValueError(f"estimate: must be a CriticEstimate, got {type(estimate).__name__}")
    else:
        _check_estimate_matches(estimate, X, Y, wa, wb)
    from ..transport.exact import wasserstein

    exact = float(wasserstein(to_numpy(X, "x"), to_numpy(Y, "y"), a=wa, b=wb, p=1))
    ratio = estimate.value / exact if exact > 0 else None
    certified_ratio = estimate.certified / exact if exact > 0 else None
    # relative only: the exact value is computed to relative rounding (non-negative terms, distances
    # by differences), so an absolute floor would make the check vacuous in small units
    held = estimate.certified <= exact * (1.0 + 1e-9)
    return CriticValidation(estimate=estimate, exact=exact, ratio=ratio, certified_ratio=certified_ratio,
                            bound_held=bool(held))


def _check_estimate_matches(estimate: CriticEstimate, X, Y, wa, wb) -> None:
    """Refuse an estimate computed on other samples or weights than ``X``, ``Y``, ``wa``, ``wb``."""
    critic = estimate.critic
    n, m = X.shape[0], Y.shape[0]
    if critic.dim != X.shape[1]:
        raise ValueError(f"estimate: its critic takes points of dimension {critic.dim}, got samples of "
                         f"dimension {X.shape[1]}")
    if tuple(estimate.n_samples) != (n, m):
        raise ValueError(f"estimate: computed on {estimate.n_samples[0]} and {estimate.n_samples[1]} "
                         f"samples, got {n} and {m}")
    device = critic.device
    ta, tb = _weight_tensor(wa, n, device), _weight_tensor(wb, m, device)
    fx, fy = critic.evaluate(as_float64(X, device)), critic.evaluate(as_float64(Y, device))
    value = float((ta * fx).sum() - (tb * fy).sum())
    # both values are sums of the same terms, possibly in another order (permuted samples) and with
    # weights normalised from other floats: they agree to the rounding of the sums
    magnitude = float((ta * fx.abs()).sum() + (tb * fy.abs()).sum())
    tolerance = 4 * gamma(4 * (n + m) + 4) * magnitude + 1e-300
    if not abs(value - estimate.value) <= tolerance:
        raise ValueError(f"estimate: its value {estimate.value!r} is not the objective of its critic "
                         f"on these samples and weights ({value!r}): it was computed on other samples "
                         f"or weights")
