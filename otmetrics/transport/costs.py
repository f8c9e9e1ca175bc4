"""Ground costs between point clouds, and the :class:`PointCloud` geometry.

The ground cost is the ``p``-th power of a distance, ``c(x, y) = d(x, y)^p``, with no hidden
factor (GeomLoss uses ``|x - y|^2 / 2``; see the migration notes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._core.arrays import is_tensor
from .._core.deprecation import changed_default
from .._core.validation import validate_array, validate_p, validate_positive, validate_samples

__all__ = ["METRICS", "pairwise_distances", "cost_matrix", "point_pair", "PointCloud"]

#: Supported distances: name -> the ``p`` of the corresponding Minkowski norm.
METRICS = {"euclidean": 2.0, "cityblock": 1.0, "chebyshev": float("inf")}


def _check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"metric: must be one of {sorted(METRICS)}, got {metric!r}")
    return metric


def pairwise_distances(x, y, metric: str = "euclidean"):
    """Pairwise distances ``D_ij = d(x_i, y_j)`` between two point sets.

    Parameters
    ----------
    x : array-like or tensor, shape ``(n, d)`` or ``(B, n, d)``
    y : array-like or tensor, shape ``(m, d)`` or ``(B, m, d)``
    metric : {"euclidean", "cityblock", "chebyshev"}

    Returns
    -------
    D : shape ``(n, m)`` or ``(B, n, m)``, numpy ``float64`` or a tensor like ``x``.

    Notes
    -----
    ``O(n m d)`` time. Euclidean distances are computed from differences, not from the
    ``|x|^2 + |y|^2 - 2 x.y`` expansion, so that they are exact to rounding (no cancellation),
    which the exact solvers and their certificates need.

    Examples
    --------
    >>> pairwise_distances([[0.0, 0.0]], [[3.0, 4.0]])
    array([[5.]])
    """
    _check_metric(metric)
    x, y = point_pair(x, y)
    norm = METRICS[metric]
    if is_tensor(x):
        import torch

        return torch.cdist(x, y, p=norm, compute_mode="donot_use_mm_for_euclid_dist")
    from scipy.spatial.distance import cdist

    if x.ndim == 2:
        return cdist(x, y, metric=metric)
    return np.stack([cdist(xi, yi, metric=metric) for xi, yi in zip(x, y)])


def _as_points(x, name):
    ndim = x.ndim if is_tensor(x) else np.ndim(x)
    if ndim == 3:
        return validate_array(x, name, ndim=3, what="coordinates")
    return validate_samples(x, name)


def point_pair(x, y, names: tuple[str, str] = ("x", "y")):
    """Validate two point sets and bring them to one type.

    Returns ``(x, y)`` as 2-D ``(n, d)``, ``(m, d)`` (1-D input is points on the line) or 3-D
    ``(B, n, d)``, ``(B, m, d)`` arrays: numpy ``float64``, or tensors on one device in one floating
    dtype when either is a tensor (an array is converted to the tensor's device and dtype).
    Raises ``ValueError`` naming the argument for non-finite or empty input, dimensions that differ, or
    batch sizes that differ.
    """
    x, y = _as_points(x, names[0]), _as_points(y, names[1])
    if x.ndim != y.ndim:
        raise ValueError(f"{names[1]}: expected {x.ndim} dimensions like {names[0]}, got {y.ndim}")
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"{names[1]}: points must have the dimension of {names[0]} ({x.shape[-1]}), got {y.shape[-1]}"
        )
    if x.ndim == 3 and x.shape[0] != y.shape[0]:
        raise ValueError(f"{names[1]}: batch size {y.shape[0]} differs from that of {names[0]} ({x.shape[0]})")
    if is_tensor(x) or is_tensor(y):
        import torch

        ref = x if is_tensor(x) else y
        other = y if is_tensor(x) else x
        if is_tensor(other):
            dtype = torch.promote_types(x.dtype, y.dtype)
            if other.device != ref.device:
                raise ValueError(f"{names[1]}: on device {y.device}, but {names[0]} is on {x.device}")
            x, y = x.to(dtype), y.to(dtype)
        else:
            converted = torch.as_tensor(other, dtype=ref.dtype, device=ref.device)
            x, y = (ref, converted) if is_tensor(x) else (converted, ref)
    return x, y


def cost_matrix(x, y, p: float | None = None, metric: str = "euclidean"):
    """The cost matrix ``C_ij = d(x_i, y_j)^p``.

    Parameters
    ----------
    x, y : shape ``(n, d)`` and ``(m, d)`` (or batched ``(B, n, d)``, ``(B, m, d)``)
    p : float, default 2
        Power of the distance, ``>= 1``. The default was 1 before otmetrics 0.2: omitting ``p`` gives a
        ``FutureWarning`` until 0.3 (see ``docs/conventions.md``).
    metric : see :func:`pairwise_distances`.

    Returns
    -------
    C : shape ``(n, m)`` (or ``(B, n, m)``), in the caller's type.

    Examples
    --------
    >>> cost_matrix([[0.0], [1.0]], [[3.0]], p=2)
    array([[9.],
           [4.]])
    """
    p = validate_p(changed_default(p, func="cost_matrix", name="p", old=1, new=2, stacklevel=3))
    x, y = point_pair(x, y)
    if p == 2.0 and metric == "euclidean" and is_tensor(x) and x.shape[-1] <= 16:
        # the squares of the differences, one coordinate at a time: exact, with a well-defined gradient at 0,
        # and no (B, n, m, d) temporary (several times faster than reducing one over d)
        out = None
        for k in range(x.shape[-1]):
            diff = x[..., :, k, None] - y[..., None, :, k]
            out = diff * diff if out is None else out.addcmul_(diff, diff)
        return out
    if p == 2.0 and metric == "euclidean" and is_tensor(x) and x[..., :1].numel() * y.shape[-2] * x.shape[-1] <= 2**26:
        # the square of the differences directly: exact, with a well-defined gradient at 0
        # (the (B, n, m, d) temporary is bounded to 2**26 entries)
        diff = x.unsqueeze(-2) - y.unsqueeze(-3)
        return (diff * diff).sum(-1)
    dist = pairwise_distances(x, y, metric)
    if p == 1.0:
        return dist
    if p == 2.0:
        return dist * dist
    return dist**p


class PointCloud:
    """The geometry of two point clouds with the cost ``c(x, y) = d(x, y)^p``.

    A geometry stands where a cost matrix is accepted (``emd``, ``sinkhorn``): the solver asks
    it for the cost (dense) or, with ``online=True``, for reductions over the cost computed in
    chunks, so that the ``n x m`` matrix is never stored.

    Parameters
    ----------
    x : array-like or tensor, shape ``(n, d)`` or ``(B, n, d)``
        Source points (a 1-D input is ``n`` points on the line).
    y : array-like or tensor, shape ``(m, d)`` or ``(B, m, d)``, optional
        Target points; defaults to ``x``.
    p : float, default 2
        Power of the distance, ``>= 1``.
    metric : {"euclidean", "cityblock", "chebyshev"}, default "euclidean"
    online : bool, default False
        Never materialise the cost matrix (solvers that support it compute it in chunks).
    chunk_size : int, optional
        Rows per chunk in online mode.

    Examples
    --------
    >>> geom = PointCloud([[0.0], [1.0]], [[0.0], [2.0]], p=1)
    >>> geom.shape
    (2, 2)
    >>> geom.cost_matrix()
    array([[0., 2.],
           [1., 1.]])
    """

    def __init__(self, x: Any, y: Any = None, *, p: float = 2.0, metric: str = "euclidean",
                 online: bool = False, chunk_size: int | None = None):
        self.p = validate_p(p)
        self.metric = _check_metric(metric)
        self.x, self.y = point_pair(x, x if y is None else y)
        self.online = bool(online)
        if chunk_size is not None:
            validate_positive(chunk_size, "chunk_size", integer=True)
        self.chunk_size = None if chunk_size is None else int(chunk_size)

    @property
    def shape(self) -> tuple[int, ...]:
        """``(n, m)``, or ``(B, n, m)`` for a batch of point clouds."""
        return (*self.x.shape[:-2], self.x.shape[-2], self.y.shape[-2])

    @property
    def batched(self) -> bool:
        return self.x.ndim == 3

    def cost_matrix(self):
        """The dense cost matrix ``(n, m)`` (or ``(B, n, m)``) in the points' type."""
        return cost_matrix(self.x, self.y, self.p, self.metric)

    def __repr__(self) -> str:
        kind = "tensor" if is_tensor(self.x) else "ndarray"
        return (f"PointCloud(shape={self.shape}, dim={self.x.shape[-1]}, p={self.p:g}, "
                f"metric={self.metric!r}, online={self.online}, {kind})")
