r"""The sliced Wasserstein distance: transport along random directions, on the batched 1-D solver.

Projecting two measures on a unit direction :math:`\theta` gives two measures on the line, where
transport is a sort (:mod:`.oned`). The sliced distance averages their cost over directions,

.. math::

    SW_p(\mu, \nu) = \Big( \mathbb E_{\theta \sim \mathcal U(S^{d-1})}\,
    W_p^p(\theta_\#\mu, \theta_\#\nu) \Big)^{1/p},

estimated with ``n_projections`` directions: all points are projected on all directions at once
(one matrix product) and the ``n_projections`` problems on the line are solved in one batched
call. The directions are drawn as POT draws them, so that equal seeds give equal directions and
equal values. The max-sliced distance (:mod:`.max_sliced`) optimises the direction instead.
"""

from __future__ import annotations

import numpy as np

from .._core.arrays import as_float_tensor, exact_scale, first_tensor, is_tensor, pth_root
from .._core.validation import validate_array, validate_p, validate_positive, validate_weighted_clouds
from .oned import wasserstein_1d_power

__all__ = ["DEFAULT_N_PROJECTIONS", "random_projections", "directions", "project", "projected_powers",
           "sliced_wasserstein"]

#: The number of random directions when neither ``n_projections`` nor ``projections`` is given
#: (POT's default, so that equal seeds give POT's directions and values).
DEFAULT_N_PROJECTIONS = 50


def random_projections(d: int, n_projections: int = DEFAULT_N_PROJECTIONS, seed: int = 0) -> np.ndarray:
    """Directions drawn uniformly on the unit sphere :math:`S^{d-1}`, one per row.

    Drawn as POT's ``ot.sliced.get_random_projections`` with its numpy backend draws them:
    ``numpy.random.RandomState(seed).randn(d, n_projections)``, each column divided by its norm
    (a standard Gaussian vector divided by its norm is uniform on the sphere), then transposed to
    our layout, one direction per row. ``RandomState``'s stream is frozen by numpy's compatibility
    policy, so a seed gives the same directions in every numpy version, on every machine, for numpy
    and torch input alike (they are drawn on the host in ``float64``, then moved to the tensor's
    device and dtype).

    Parameters
    ----------
    d : int
        The dimension of the points, ``>= 1``.
    n_projections : int, default 50
        The number of directions, ``>= 1``.
    seed : int, default 0
        The seed, ``0 <= seed < 2**32``.

    Returns
    -------
    ndarray, shape ``(n_projections, d)``, ``float64``: unit rows. POT's layout is the transpose.

    Examples
    --------
    >>> theta = random_projections(3, 4, seed=0)
    >>> theta.shape, bool(np.allclose((theta**2).sum(1), 1.0))
    ((4, 3), True)
    """
    d = int(validate_positive(d, "d", integer=True))
    n_projections = int(validate_positive(n_projections, "n_projections", integer=True))
    seed = int(validate_positive(seed, "seed", allow_zero=True, integer=True))
    if seed >= 2**32:
        raise ValueError(f"seed: must be < 2**32 (numpy's RandomState), got {seed}")
    draws = np.random.RandomState(seed).randn(d, n_projections)
    return np.ascontiguousarray((draws / np.sqrt((draws**2).sum(0, keepdims=True))).T)


def _unit_tolerance(projections) -> float:
    """How far from 1 a given direction's norm may be: ``max(1e-6, 8 eps)`` of its dtype."""
    if is_tensor(projections):
        import torch

        eps = torch.finfo(projections.dtype).eps if projections.is_floating_point() else 0.0
    else:
        try:
            dtype = np.asarray(projections).dtype
        except Exception:  # ragged lists: validate_array says what is wrong
            dtype = np.dtype(np.float64)
        eps = np.finfo(dtype).eps if np.issubdtype(dtype, np.floating) else 0.0
    return max(1e-6, 8 * float(eps))


def directions(d: int, n_projections=None, seed: int = 0, projections=None, like=None):
    """The directions of a sliced distance, validated: ``(n_projections, d)`` unit rows.

    Either drawn by :func:`random_projections` (``projections`` is ``None``; ``n_projections``
    defaults to 50) or the user's ``projections``, which must be finite, of shape
    ``(n_projections, d)``, with rows of Euclidean norm 1 to within ``max(1e-6, 8 eps)`` (``eps``
    of their dtype); they are used as given (not renormalised), as POT uses them. ``n_projections``,
    when given with ``projections``, must equal their number. Returns numpy ``float64``, or a
    tensor on ``like``'s device and dtype when ``like`` is a tensor (a tensor ``projections`` keeps
    its autograd graph).

    Raises ``ValueError`` naming ``projections`` (not unit vectors, wrong shape: POT's layout
    ``(d, n_projections)`` is the transpose of ours, and the message says so when that is what
    was passed), ``n_projections`` (not an integer ``>= 1``, or not the number of projections)
    or ``seed``.
    """
    if projections is None:
        theta = random_projections(d, DEFAULT_N_PROJECTIONS if n_projections is None else n_projections, seed)
    else:
        tol = _unit_tolerance(projections)
        theta = validate_array(projections, "projections", ndim=2, what="directions")
        shape = tuple(theta.shape)
        pot_hint = ("; POT's layout (d, n_projections) is the transpose of ours: pass projections.T"
                    if shape[0] == d else "")
        if shape[1] != d:
            raise ValueError(f"projections: expected shape (n_projections, {d}), one unit vector of the "
                             f"points' dimension {d} per row, got {shape}{pot_hint}")
        norms = (theta * theta).sum(1) ** 0.5
        norms = np.asarray(norms.detach().cpu() if is_tensor(norms) else norms, dtype=np.float64)
        error = np.abs(norms - 1.0)
        if error.max() > tol:
            row = int(error.argmax())
            hint = pot_hint if shape[0] == shape[1] else ""
            raise ValueError(f"projections: rows must be unit vectors (norm 1 to within {tol:g}), got norm "
                             f"{float(norms[row])!r} in row {row}{hint}")
        if n_projections is not None:
            validate_positive(n_projections, "n_projections", integer=True)
            if int(n_projections) != shape[0]:
                raise ValueError(f"n_projections: {n_projections} differs from the number of projections "
                                 f"given ({shape[0]}); omit it or make them agree")
    if is_tensor(like):
        import torch

        dtype = like.dtype if like.is_floating_point() else torch.float64
        theta = theta.to(device=like.device, dtype=dtype) if is_tensor(theta) else torch.as_tensor(
            theta, dtype=dtype, device=like.device)
    return theta


def project(x, theta):
    """The coordinates of the points ``x`` ``(..., n, d)`` along the directions ``theta``: ``(L, d)``
    (shared by every problem) or ``(..., L, d)`` (per problem; the batch axes broadcast). Shape
    ``(..., L, n)``: one problem on the line per direction (the layout of the 1-D solver)."""
    if is_tensor(x):
        return theta @ x.transpose(-1, -2)
    return np.matmul(theta, np.swapaxes(x, -1, -2))


def _expand_weights(w, values):
    """Weights ``(..., n)`` broadcast to projected values ``(..., L, n)`` and the other way round."""
    if w is None:
        return values, None
    w = w[..., None, :]
    if is_tensor(values):
        import torch

        shape = torch.broadcast_shapes(values.shape, w.shape)
        return values.expand(shape), w.expand(shape)
    shape = np.broadcast_shapes(values.shape, w.shape)
    return np.broadcast_to(values, shape), np.broadcast_to(w, shape)


def projected_powers(x, y, a, b, theta, p: float):
    """``W_p^p`` between the projections of two validated weighted clouds on every direction of
    ``theta``, ``(L, d)`` or ``(..., L, d)`` (see :func:`project`): shape ``batch + (L,)``, in the
    inputs' type (differentiable for tensors). The block the sliced and max-sliced distances share."""
    xs, a_ = _expand_weights(a, project(x, theta))
    ys, b_ = _expand_weights(b, project(y, theta))
    return wasserstein_1d_power(xs, ys, a_, b_, p=p)


def sliced_wasserstein(x, y, *, a=None, b=None, p: float = 2.0, n_projections: int | None = None,
                       seed: int = 0, projections=None):
    r"""The sliced Wasserstein distance, a Monte Carlo estimate over random directions.

    .. math::

        SW_p(\mu, \nu) = \Big( \frac1L \sum_{l=1}^{L} W_p^p(\theta_{l\#}\mu, \theta_{l\#}\nu) \Big)^{1/p},
        \qquad \theta_{l\#}\mu = \sum_i a_i \delta_{\langle \theta_l, x_i \rangle},

    an unbiased estimate of :math:`SW_p^p = \mathbb E_\theta W_p^p(\theta_\#\mu, \theta_\#\nu)` for
    :math:`\theta` uniform on the sphere (the root of it is consistent, with a bias of order
    :math:`1/L`). Each term is exact: the 1-D problems are solved by sorting.

    Parameters
    ----------
    x : array-like or tensor, shape ``(n, d)`` or ``(..., n, d)``
        The points of the first measure (a 1-D input is ``n`` points on the line); leading axes
        are a batch of independent problems.
    y : array-like or tensor, shape ``(m, d)`` or ``(..., m, d)``
        The points of the second measure, of the same dimension ``d``; its batch axes broadcast
        against those of ``x``.
    a, b : optional, shapes ``(..., n)`` and ``(..., m)``
        Non-negative weights (normalised internally); uniform when omitted.
    p : float, default 2
        The order, ``>= 1``.
    n_projections : int, optional
        The number of random directions ``L`` (default 50, POT's default). Given with
        ``projections``, it must equal their number.
    seed : int, default 0
        The seed of the directions: ``numpy.random.RandomState(seed)``, as POT's numpy backend
        draws them (see :func:`random_projections`); the same directions for numpy and torch
        input, on any device.
    projections : array-like or tensor, shape ``(L, d)``, optional
        The directions to use instead of random ones, one unit vector per row (POT's
        ``projections`` matrix is ``(d, L)``, one per column: pass its transpose). Used as given;
        a tensor may carry gradients.

    Returns
    -------
    float (one problem), ndarray of the batch shape, or a tensor of the batch shape (torch input:
    on the input's device and dtype, differentiable in the points, the weights and tensor
    ``projections``).

    Raises
    ------
    ValueError
        Naming the argument: non-finite or empty points, dimensions that differ, batch shapes that
        do not broadcast, bad weights, ``p < 1``, ``n_projections < 1``, projections that are not
        unit vectors of dimension ``d``, a ``seed`` outside ``[0, 2**32)``.

    Notes
    -----
    Cost: the projections ``O((n + m) d L)`` (one matrix product) and ``L`` problems on the line,
    ``O(L (n + m) log(n + m))``; memory ``O((n + m) L)``. With equal sizes and uniform weights
    each problem is two sorts. Points beyond ``1e100`` in magnitude (or all below ``1e-100``) are
    first divided by a power of two (exactly), so that ``|x|^p`` neither overflows nor underflows.

    Equal to POT's ``ot.sliced_wasserstein_distance(x, y, a, b, n_projections, p, projections,
    seed)`` given the same directions: POT's ``projections`` is our ``projections.T``, and with
    equal ``seed`` and ``n_projections`` (numpy input) both draw the same directions. POT also
    returns :math:`SW_p` (not its ``p``-th power); it uses the weights as given, we normalise them.

    :math:`SW_p \le W_p` (each projection is 1-Lipschitz) and, for a fixed set of directions,
    :math:`SW_p` is a pseudo-metric (symmetric, zero for equal measures, the triangle
    inequality); with all directions of the sphere it is a metric.

    References
    ----------
    Rabin, Peyré, Delon & Bernot, *Wasserstein barycenter and its application to texture
    mixing*, SSVM 2011. Bonneel, Rabin, Peyré & Pfister, *Sliced and Radon Wasserstein barycenters
    of measures*, JMIV 51, 2015.

    Examples
    --------
    >>> x = [[0.0, 0.0], [1.0, 0.0]]
    >>> y = [[0.0, 2.0], [1.0, 2.0]]           # x moved by (0, 2)
    >>> theta = [[0.0, 1.0], [1.0, 0.0]]        # the shift's direction and the orthogonal one
    >>> round(sliced_wasserstein(x, y, projections=theta), 12)   # sqrt((4 + 0) / 2)
    1.414213562373
    >>> round(sliced_wasserstein(x, y, n_projections=1000, seed=0), 1)   # ~ |t| / sqrt(d) = 1.41
    1.4
    """
    p = validate_p(p)
    x, y, a, b, _ = validate_weighted_clouds(x, y, a, b)
    like = first_tensor(x, y, a, b, projections)
    if like is not None and not is_tensor(x):  # only the projections are a tensor: torch out
        x, y, a, b = (None if t is None else as_float_tensor(t, like=like) for t in (x, y, a, b))
    theta = directions(x.shape[-1], n_projections, seed, projections, like=like)
    scale = exact_scale(x, y)  # a power of two: |x|^p neither overflows nor underflows
    if scale != 1.0:
        return scale * pth_root(projected_powers(x / scale, y / scale, a, b, theta, p).mean(-1), p)
    return pth_root(projected_powers(x, y, a, b, theta, p).mean(-1), p)
