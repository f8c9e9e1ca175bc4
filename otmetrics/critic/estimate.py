"""``estimate_w1``: a neural Kantorovich-Rubinstein estimate of W1 with a certified lower bound.

The orchestration of the critic, one step per module: validate the samples and weights
(:mod:`.samples`), train a network (:mod:`.training` for the methods, :mod:`.loop` for the loop),
freeze it into float64 layers with a proven Lipschitz bound (:mod:`.lipschitz`), and certify a lower
bound on the exact W1 by c-transforms (:mod:`.dual`). :func:`~otmetrics.critic.validate` (in
:mod:`.validation`) puts the result beside the exact EMD.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass

import torch

from .._core.arrays import first_tensor
from .._core.deprecation import renamed_arguments, warn_deprecated
from .._core.rounding import lower_dot, next_down, upper_dot
from .._core.validation import validate_positive, validate_samples
from .._core.warnings import ConvergenceWarning, NumericalWarning
from .dual import best_scale, dual_lower_bound
from .lipschitz import FrozenCritic
from .loop import CriticHistory, has_converged, normalisation, train_critic
from .samples import as_float64, empirical_measures, weight_tensor
from .threads import torch_threads
from .training import clip_weights_, make_critic, method_config

__all__ = ["CriticEstimate", "estimate_w1"]


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
    >>> est = estimate_w1(x, x + 2.0, steps=100, width=16, depth=1, n_threads=1)  # exact W1: 2
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



def _count(value, name, *, allow_zero=False) -> int:
    return int(validate_positive(value, name, allow_zero=allow_zero, integer=True))


def _real(value, name, *, allow_zero=False) -> float:
    return float(validate_positive(value, name, allow_zero=allow_zero))


@renamed_arguments(num_threads="n_threads")
def estimate_w1(x, y, *, method: str = "groupsort", steps: int | None = None, batch_size: int | None = None,
                seed: int = 0, a=None, b=None, x_test=None, y_test=None, lr: float | None = None,
                width: int = 64, depth: int = 3, group_size: int = 2, clip_value: float | None = None,
                gp_weight: float | None = None, certify: bool = True, tol: float = 1e-3,
                log_every: int | None = None, device=None, dtype=None, n_threads: int | None = None,
                progress: bool = False) -> CriticEstimate:
    """Estimate W1 between two sample sets with a trained critic, and certify a lower bound.

    By Kantorovich-Rubinstein duality

    .. math::

        W_1(\\alpha, \\beta) = \\sup_{\\mathrm{Lip}(f) \\le 1} \\sum_i a_i f(x_i) - \\sum_j b_j f(y_j),

    a network ``f`` trained to maximise the right-hand side gives an estimate. The result also
    says what is *proven*: a Lipschitz bound ``L`` of the final network (exact spectral norms) and
    a lower bound on the exact W1 of the samples, ``max(value / L, dual value of (s f, (s f)^c))``,
    with every floating-point rounding accounted for (see :mod:`otmetrics.critic.lipschitz` and
    :mod:`otmetrics.critic.dual`).

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
    n_threads : int, optional
        torch's CPU threads while this call runs (restored afterwards; the setting is global to the
        process). Default: leave torch's setting. The networks are small: on a machine whose cores
        are busy, ``n_threads=1`` avoids OpenMP threads waiting on each other (we measured 30x
        slower training with 2 threads on 2 oversubscribed cores). The old spelling
        ``num_threads`` still works until otmetrics 0.3, with a ``DeprecationWarning``; passing
        both is a ``ValueError``.
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
    >>> est = estimate_w1(x, x + [0.6, 0.8], steps=100, n_threads=1)
    >>> est.certified <= 1.0 + 1e-12, round(est.certified, 2)   # the exact value is 1
    (True, 1.0)
    """
    cfg = method_config(method)
    # -- inputs --------------------------------------------------------------------------------
    X, Y, wa, wb = empirical_measures(x, y, a, b)
    dim = X.shape[1]
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
    if n_threads is not None:
        n_threads = _count(n_threads, "n_threads")

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
    # The network trains on normalised points z = (x - shift) / scale, computed in float64 before
    # any cast, with the objective in units of z; the normalisation is then folded into the
    # network: f(x) = scale * g((x - shift) / scale) (see loop.normalisation).
    shift, scale = normalisation(X64, Y64, wa, wb)
    Zx, Zy = ((X64 - shift) / scale).to(dtype), ((Y64 - shift) / scale).to(dtype)

    with torch_threads(n_threads):
        history = train_critic(net, Zx, Zy, wa, wb, method=method, steps=steps, batch_size=batch_size,
                               lr=lr, clip_value=clip_value if method == "clipping" else None,
                               gp_weight=gp_weight if method == "gp" else 0.0, seed=seed,
                               log_every=log_every, progress=progress, unit=scale)
        net.set_normalisation(shift, scale)
        return _finish(net, X64, Y64, wa, wb, x_test, y_test, method=method, certify=certify, tol=tol,
                       history=history, n_iter=steps)


def _finish(net, X64, Y64, wa, wb, x_test, y_test, *, method, certify, tol, history, n_iter):
    device = X64.device
    n, m = X64.shape[0], Y64.shape[0]

    # -- the final critic, frozen in float64, and what is proven about it ------------------------
    critic = FrozenCritic(net.affine_layers(), net.activation, getattr(net, "group_size", 1))
    ta = weight_tensor(wa, n, device)
    tb = weight_tensor(wb, m, device)
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

    converged = has_converged(history, tol)
    if not converged:
        warnings.warn(
            f"estimate_w1 ({method}): the critic's objective still rose by more than tol={tol:g} (relative) "
            f"over the last fifth of {n_iter} steps; the value may be far from W1 (the certified bound "
            f"{certified:.6g} holds regardless); increase steps",
            ConvergenceWarning, stacklevel=4,  # _finish <- estimate_w1 <- renamed_arguments <- the caller
        )
    return CriticEstimate(value=value, certified=float(certified), lipschitz_bound=float(lipschitz),
                          certified_lipschitz=float(certified_lipschitz),
                          certified_c_transform=float(certified_c),
                          c_transform_scale=float(scale_c), heldout_value=heldout, method=method,
                          converged=bool(converged), n_iter=n_iter, history=history, critic=critic,
                          n_samples=(n, m))


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
                      NumericalWarning, stacklevel=5)  # _c_transform_bound <- _finish <- ... <- the caller
        return 0.0, 1.0


# validate and CriticValidation lived here until 0.2; otmetrics.critic.validation holds them now
_MOVED = ("validate", "CriticValidation")


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(f"{__package__}.validation")
    warn_deprecated(f"{__name__}.{name} moved to {module.__name__}; import it from otmetrics.critic")
    return getattr(module, name)
