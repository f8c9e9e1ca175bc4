"""A proven bracket of the exact Wasserstein distance between point clouds too large for the LP.

:func:`certified_wasserstein` solves the entropic problem at decreasing ``eps`` with the public
:func:`~otmetrics.sinkhorn` on an online :class:`~otmetrics.PointCloud` (the ``n x m`` cost is never
stored), warm-starting each solve from the previous potentials, and after each solve reads the proven
bounds of its result (:mod:`.bounds`): the c-transforms of the potentials bound the exact value from
below, the entropic plan rounded onto the exact marginals from above. The best bounds so far form the
bracket; it stops when the bracket is narrow enough (relative width ``rtol``), or at its effort limits
with a :class:`~otmetrics.ConvergenceWarning` and the honest bracket. The bracket holds whatever the
solver did: its correctness never depends on the convergence of the iterations.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .._core.arrays import is_tensor, to_numpy
from .._core.rounding import UNIT_ROUNDOFF, next_down, next_up
from .._core.validation import validate_p, validate_positive, validate_same_mass, validate_samples
from .._core.validation import validate_weights
from .._core.warnings import ConvergenceWarning
from .costs import METRICS, PointCloud

__all__ = ["Bracket", "BracketStage", "certified_wasserstein", "root_bracket"]

#: The share of the target width the marginal tolerance may cost the upper bound (the rounding charges the
#: missing mass about the mean cost).
TOL_SHARE = 0.05
#: The next eps aims at this fraction of the target width (the width shrinks about linearly with eps).
AIM = 0.6
#: No new solve starts when the time left allows fewer iterations than this.
MIN_ITER = 20


@dataclass(frozen=True)
class BracketStage:
    """One entropic solve of :func:`certified_wasserstein`: its ``eps``, its proven bounds, its effort."""

    eps: float
    lower: float
    upper: float
    n_iter: int
    marginal_error: float
    seconds: float


@dataclass(frozen=True)
class Bracket:
    """A proven bracket ``lower <= W_p^p <= upper`` of the exact optimal transport value.

    Attributes
    ----------
    lower, upper : float
        Bounds on ``W_p^p = min_P sum_ij P_ij d(x_i, y_j)^p`` (the optimal transport value with the cost
        ``d^p``, not its ``p``-th root), proven under floating point for the exact points and weights.
    p : float
        The power of the cost.
    rtol : float
        The relative width that was asked for.
    converged : bool
        ``relative_width <= rtol`` (or ``width <= atol``) was reached.
    eps : float
        The smallest ``eps`` solved.
    n_iter : int
        Sinkhorn iterations in all.
    seconds : float
        Wall-clock time.
    stages : tuple of BracketStage
        Every solve, in order.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(40, 2))
    >>> bracket = certified_wasserstein(x, x + [1.0, 0.0], rtol=1e-2)
    >>> bool(bracket.lower <= 1.0 <= bracket.upper), bracket.converged, bracket.relative_width <= 1e-2
    (True, True, True)
    """

    lower: float
    upper: float
    p: float
    rtol: float
    converged: bool
    eps: float
    n_iter: int
    seconds: float
    stages: tuple

    @property
    def width(self) -> float:
        """``upper - lower``."""
        return self.upper - self.lower

    @property
    def relative_width(self) -> float:
        """``(upper - lower) / lower``: at least the relative error of any number in the bracket (``inf``
        when ``lower <= 0``)."""
        return self.width / self.lower if self.lower > 0 else math.inf

    @property
    def distance(self) -> tuple[float, float]:
        """The bracket of ``W_p`` itself: the ``p``-th roots of the bounds, rounded outwards."""
        return root_bracket(self.lower, self.upper, self.p)


def _root(value: float, p: float, direction: float) -> float:
    """``value^(1/p)`` rounded towards ``direction``: ``sqrt`` is correctly rounded; other roots carry the
    rounding of ``1/p`` (``u |log value| / p``, relative) and that of ``pow`` (4 ulps)."""
    if value <= 0.0:
        return 0.0 if value == 0.0 or direction < 0 else math.nan
    if math.isinf(value):
        return value
    if p == 1.0:
        return value
    if p == 2.0:
        root = math.sqrt(value)
        return next_down(root) if direction < 0 else next_up(root)
    root = math.pow(value, 1.0 / p)
    slack = (UNIT_ROUNDOFF * abs(math.log(value)) / p + 8 * UNIT_ROUNDOFF) * 1.01
    return next_down(root * (1 - slack)) if direction < 0 else next_up(root * (1 + slack))


def root_bracket(lower: float, upper: float, p: float) -> tuple[float, float]:
    """``(lower^(1/p), upper^(1/p))`` rounded outwards: a bracket of ``W_p`` from one of ``W_p^p``
    (a negative lower bound gives 0).

    Examples
    --------
    >>> lo, hi = root_bracket(3.9999999999, 4.0000000001, 2)
    >>> lo < 2.0 < hi
    True
    """
    return _root(lower, p, -1.0) if lower > 0 else 0.0, _root(upper, p, 1.0)


def _inputs(x, y, a, b, p, metric):
    X = validate_samples(x, "x")
    Y = validate_samples(y, "y", dim=X.shape[1])
    p = validate_p(p)
    if metric not in METRICS:
        raise ValueError(f"metric: must be one of {sorted(METRICS)}, got {metric!r}")
    if is_tensor(X) != is_tensor(Y) or (is_tensor(X) and X.device != Y.device):
        X, Y = (to_numpy(t, name) for t, name in ((X, "x"), (Y, "y")))
    weights = []
    for name, w, size in (("a", a, X.shape[0]), ("b", b, Y.shape[0])):
        if w is not None:
            w = validate_weights(w, name, ndim=1, size=size)
            if not float(to_numpy(w, name).sum()) > 0:
                raise ValueError(f"{name}: total mass must be positive, got 0")
        weights.append(w)
    if weights[0] is not None and weights[1] is not None:
        validate_same_mass(weights[0], weights[1])
    elif weights[0] is not None or weights[1] is not None:  # the omitted side is uniform, of mass 1
        given, name = (weights[0], "a") if weights[0] is not None else (weights[1], "b")
        mass = float(to_numpy(given, name).sum())
        if abs(mass - 1.0) > 1e-6:
            raise ValueError(f"{name}: total mass must be 1 when the other weights are omitted (uniform), "
                             f"got {mass:.12g}")
    return X, Y, weights[0], weights[1], p


def _cost_scale(X, Y, p, metric) -> float:
    """The mean cost over a fixed sample of pairs: the scale of the first ``eps`` and of the tolerances."""
    rng = np.random.default_rng(0)
    xs, ys = to_numpy(X, "x"), to_numpy(Y, "y")
    i = rng.integers(0, len(xs), 4096)
    j = rng.integers(0, len(ys), 4096)
    diff = np.abs(xs[i] - ys[j])
    dist = {"euclidean": lambda: np.sqrt((diff**2).sum(1)), "cityblock": lambda: diff.sum(1),
            "chebyshev": lambda: diff.max(1)}[metric]()
    scale = float(np.mean(dist**p))
    return scale if scale > 0 and math.isfinite(scale) else 1.0


def certified_wasserstein(x, y, *, a=None, b=None, p: float = 2, metric: str = "euclidean",
                          rtol: float = 1e-3, atol: float = 0.0, eps_init: float | None = None,
                          eps_scaling: float = 0.5,
                          max_stages: int = 40, max_iter: int = 5000, max_time: float | None = None,
                          chunk_size: int | None = None) -> Bracket:
    """A proven bracket of the exact ``W_p^p`` between two point clouds, of relative width at most ``rtol``.

    .. math::

        \\text{lower} \\;\\le\\; W_p^p(\\alpha, \\beta)
        = \\min_{P \\in \\Pi(a, b)} \\sum_{ij} P_{ij}\\, d(x_i, y_j)^p \\;\\le\\; \\text{upper},
        \\qquad \\frac{\\text{upper} - \\text{lower}}{\\text{lower}} \\le \\text{rtol},

    proven under floating point for the exact points and weights (see the theory page "What a
    certificate proves"), for clouds too large for the linear program: nothing of size ``n x m`` is ever
    stored. Entropic problems are solved at decreasing ``eps`` by :func:`~otmetrics.sinkhorn` on an online
    :class:`~otmetrics.PointCloud`, each warm-started from the previous potentials; after each solve the
    bounds of its result are computed (``lower``: the c-transforms of the potentials, with rounding
    margins; ``upper``: the entropic plan rounded onto the exact marginals, with margins), and the best so
    far form the bracket. The next ``eps`` is chosen from the width reached (the width of an entropic
    bracket shrinks about linearly with ``eps``).

    Parameters
    ----------
    x : array-like or tensor, shape ``(n, d)`` (or ``(n,)`` for points on a line)
    y : array-like or tensor, shape ``(m, d)`` (or ``(m,)``)
    a, b : array-like or tensor, shapes ``(n,)`` and ``(m,)``, optional
        Non-negative weights (uniform when omitted); ``b`` is rescaled exactly to the mass of ``a``.
    p : float, default 2
        The power of the distance in the cost ``d(x, y)^p``; the bracket is of ``W_p^p`` (see
        :attr:`Bracket.distance` for ``W_p``).
    metric : {"euclidean", "cityblock", "chebyshev"}
    rtol : float, default 1e-3
        The relative width to reach, ``(upper - lower) / lower <= rtol`` (then every number in the bracket is
        within ``rtol`` of the exact value).
    atol : float, default 0
        Also stop when ``upper - lower <= atol`` (for values near 0, where no relative width can be reached).
    eps_init : float, optional
        The first ``eps`` (default: half the mean cost of a sample of pairs).
    eps_scaling : float in (0, 1), default 0.5
        The largest factor between two consecutive ``eps`` (the next one is smaller when the width says so).
    max_stages : int, default 40
        The most entropic solves.
    max_iter : int, default 5000
        The most Sinkhorn iterations per solve (also capped by what ``max_time`` leaves).
    max_time : float, optional
        Seconds. The iterations of a solve are capped to fit the time left (with its bounds), and no new
        solve starts when the time left allows fewer than 20 iterations.
    chunk_size : int, optional
        Points per block of the online cost in the solver.

    Returns
    -------
    Bracket
        ``lower``, ``upper`` (of ``W_p^p``), ``converged``, ``eps``, ``n_iter``, ``seconds``, ``stages``;
        ``distance`` gives the bracket of ``W_p``.

    Raises
    ------
    ValueError
        Non-finite points, points of different dimensions, empty clouds, negative or non-finite weights,
        weights of the wrong length or of total 0, masses that differ, ``p < 1``, an unknown metric,
        ``rtol <= 0``, ``atol < 0``, ``eps_scaling`` outside (0, 1), non-positive limits.

    Warns
    -----
    ConvergenceWarning
        When the limits are reached before the width: the bracket returned is still proven.

    Notes
    -----
    Each solve costs ``O(n m d)`` per Sinkhorn iteration and each bound ``O(n m d)`` (about six passes over
    the cost), in float64 for numpy input; memory is ``O((n + m) d)`` plus blocks of the cost. The width
    reached at ``eps`` is about ``(d / 2) eps`` for clouds sampled from densities in dimension ``d``: a
    relative
    width ``rtol`` needs ``eps`` of order ``rtol W_p^p / d``, and the iterations grow as ``eps`` shrinks.

    References
    ----------
    Altschuler, Weed & Rigollet, "Near-linear time approximation algorithms for optimal transport via
    Sinkhorn iteration", NeurIPS 2017 (Algorithm 2, the rounding). Peyré & Cuturi, *Computational Optimal
    Transport*, 2019, Sec. 3.1 (c-transforms) and 4.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> x, y = rng.normal(size=(200, 3)), rng.normal(size=(150, 3)) + 1.0
    >>> bracket = certified_wasserstein(x, y, rtol=1e-2)
    >>> bracket.converged, bracket.relative_width <= 1e-2
    (True, True)
    >>> import otmetrics
    >>> exact = otmetrics.emd(None, None, otmetrics.PointCloud(x, y)).cost
    >>> bool(bracket.lower <= exact <= bracket.upper)
    True
    """
    from .sinkhorn.api import sinkhorn

    start = time.perf_counter()
    X, Y, a, b, p = _inputs(x, y, a, b, p, metric)
    validate_positive(rtol, "rtol")
    validate_positive(atol, "atol", allow_zero=True)
    if isinstance(eps_scaling, bool) or not isinstance(eps_scaling, (int, float)) or not 0 < eps_scaling < 1:
        raise ValueError(f"eps_scaling: must be a factor in (0, 1), got {eps_scaling!r}")
    max_stages = int(validate_positive(max_stages, "max_stages", integer=True))
    max_iter = int(validate_positive(max_iter, "max_iter", integer=True))
    if max_time is not None:
        validate_positive(max_time, "max_time")
    if eps_init is not None:
        validate_positive(eps_init, "eps_init")
    geom = PointCloud(X, Y, p=p, metric=metric, online=True, chunk_size=chunk_size)
    scale = _cost_scale(X, Y, p, metric)
    eps = float(eps_init) if eps_init is not None else 0.5 * scale

    lower, upper = -math.inf, math.inf
    stages, potentials, total_iter = [], None, 0
    per_iter = None
    for _ in range(max_stages):
        target = max(rtol * max(lower, 0.0), atol)
        # the rounding charges the missing mass about the mean cost: keep it a small part of the target
        tol = min(1e-3, max(1e-12, TOL_SHARE * target / scale)) if target > 0 else 1e-3
        budget = max_iter
        if max_time is not None and per_iter is not None:
            left = max_time - (time.perf_counter() - start)
            budget = min(max_iter, int(left / per_iter) - 6)  # the bounds take about six passes
            if stages and budget < MIN_ITER:  # too little time left for a solve that could narrow it
                break
        began = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the bounds hold whatever the iterations did
            options = {} if potentials is None else {"init": potentials}  # warm start from the last solve
            result = sinkhorn(a, b, geom, eps=eps, tol=tol, max_iter=budget, **options)
            low, high = float(result.lower), float(result.upper)
        seconds = time.perf_counter() - began
        n_iter = int(result.n_iter)
        total_iter += n_iter
        per_iter = seconds / max(n_iter + 6, 1)  # about six passes of the bounds
        potentials = result.potentials
        lower, upper = max(lower, low), min(upper, high)
        stages.append(BracketStage(eps=eps, lower=low, upper=high, n_iter=n_iter,
                                   marginal_error=float(result.marginal_error), seconds=seconds))
        width = upper - lower
        if width <= max(rtol * lower, atol) and lower > -math.inf:
            break
        if max_time is not None and time.perf_counter() - start >= max_time:
            break
        # the stage's own width shrinks about linearly with eps: aim below the target, at most eps_scaling
        own = high - low
        target = max(rtol * max(lower, 0.0), atol)
        ratio = AIM * target / own if own > 0 and math.isfinite(own) else eps_scaling
        eps *= min(eps_scaling, max(0.1, ratio))

    width = upper - lower
    converged = bool(lower > -math.inf and width <= max(rtol * lower, atol))
    bracket = Bracket(lower=lower, upper=upper, p=p, rtol=float(rtol), converged=converged,
                      eps=stages[-1].eps,
                      n_iter=total_iter, seconds=time.perf_counter() - start, stages=tuple(stages))
    if not converged:
        warnings.warn(
            f"certified_wasserstein: relative width {bracket.relative_width:.3g} > rtol={rtol:g} after "
            f"{len(stages)} solve(s), {total_iter} iterations, eps={bracket.eps:.3g}, "
            f"{bracket.seconds:.1f} s; "
            f"the bracket [{lower:.10g}, {upper:.10g}] is proven; allow more stages, iterations or time "
            f"(or an atol for values near 0)", ConvergenceWarning, stacklevel=2)
    return bracket
