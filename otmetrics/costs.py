"""Ground costs between point clouds, and the :class:`PointCloud` geometry.

The ground cost is the ``p``-th power of a distance, ``c(x, y) = d(x, y)^p``, with no hidden
factor (GeomLoss uses ``|x - y|^2 / 2``; see the migration notes).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._array import is_tensor, validate_array, validate_p, validate_samples

__all__ = ["METRICS", "pairwise_distances", "cost_matrix", "PointCloud"]

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
    norm = METRICS[metric]
    if is_tensor(x) or is_tensor(y):
        import torch

        ref = x if is_tensor(x) else y
        x = torch.as_tensor(x, device=ref.device)
        y = torch.as_tensor(y, device=ref.device)
        dtype = torch.promote_types(x.dtype, y.dtype)
        if not dtype.is_floating_point:
            dtype = torch.float64
        x, y = x.to(dtype), y.to(dtype)
        return torch.cdist(x, y, p=norm, compute_mode="donot_use_mm_for_euclid_dist")
    from scipy.spatial.distance import cdist

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    name = {"euclidean": "euclidean", "cityblock": "cityblock", "chebyshev": "chebyshev"}[metric]
    if x.ndim == 2:
        return cdist(x, y, metric=name)
    return np.stack([cdist(xi, yi, metric=name) for xi, yi in zip(x, y)])


def cost_matrix(x, y, p: float = 1.0, metric: str = "euclidean"):
    """The cost matrix ``C_ij = d(x_i, y_j)^p``.

    Parameters
    ----------
    x, y : shape ``(n, d)`` and ``(m, d)`` (or batched ``(B, n, d)``, ``(B, m, d)``)
    p : power of the distance, ``>= 1``.
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
    p = validate_p(p)
    dist = pairwise_distances(x, y, metric)
    if p == 1.0:
        return dist
    if p == 2.0 and metric == "euclidean":
        # square of the differences directly: exact and with a well-defined gradient at 0
        if is_tensor(dist):
            import torch

            xt = x if is_tensor(x) else torch.as_tensor(x, dtype=dist.dtype, device=dist.device)
            yt = y if is_tensor(y) else torch.as_tensor(y, dtype=dist.dtype, device=dist.device)
            if xt.shape[-2] * yt.shape[-2] * xt.shape[-1] <= 2**26:
                diff = xt.to(dist.dtype).unsqueeze(-2) - yt.to(dist.dtype).unsqueeze(-3)
                return (diff * diff).sum(-1)
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
        self.x = self._points(x, "x")
        self.y = self.x if y is None else self._points(y, "y")
        if self.x.ndim != self.y.ndim:
            raise ValueError(f"y: expected {self.x.ndim} dimensions like x, got {self.y.ndim}")
        if self.x.shape[-1] != self.y.shape[-1]:
            raise ValueError(
                f"y: points must have the dimension of x ({self.x.shape[-1]}), got {self.y.shape[-1]}"
            )
        if self.x.ndim == 3 and self.x.shape[0] != self.y.shape[0]:
            raise ValueError(f"y: batch size {self.y.shape[0]} differs from that of x ({self.x.shape[0]})")
        if is_tensor(self.x) != is_tensor(self.y):
            raise ValueError("y: x and y must both be tensors or both be arrays")
        self.online = bool(online)
        if chunk_size is not None and (int(chunk_size) != chunk_size or chunk_size < 1):
            raise ValueError(f"chunk_size: must be a positive integer, got {chunk_size!r}")
        self.chunk_size = None if chunk_size is None else int(chunk_size)

    @staticmethod
    def _points(x, name):
        ndim = x.ndim if is_tensor(x) else np.ndim(x)
        if ndim == 3:
            return validate_array(x, name, ndim=3, what="coordinates")
        return validate_samples(x, name)

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
