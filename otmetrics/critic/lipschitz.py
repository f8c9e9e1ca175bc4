"""What is proven about a trained network: its Lipschitz constant and the rounding of its values.

Everything here is computed in float64 and accounts for its own rounding, so that the numbers it
returns are bounds *of the exact quantities*, not of their floating-point images:

- :func:`spectral_norm_bound` is ``sigma_max`` from LAPACK's SVD, inflated by LAPACK's error bound;
- :func:`lipschitz_bound` is the product of the layers' spectral norm bounds, rounded up;
- :class:`FrozenCritic` evaluates a network together with a bound on the difference between the
  computed and the exact (infinite-precision) value at every point (a running forward-error
  analysis: ``|fl(W h + b) - (W h + b)| <= gamma_{k+1} (|W| |h| + |b|)`` for dot products of
  length ``k``, ``gamma_k = k u / (1 - k u)``, ``u = 2^-53``, propagated through the layers'
  spectral norms; sorting and ReLU are exact).

The certified lower bounds on W1 built from these values are in :mod:`otmetrics.critic.dual`.
"""

from __future__ import annotations

import numpy as np
import torch

from .._core.arrays import is_tensor, to_numpy
from .._core.rounding import TINY, UNIT_ROUNDOFF, gamma, next_up
from .._core.validation import validate_samples
from .networks import group_sort
from .samples import as_float64

__all__ = ["spectral_norm_bound", "lipschitz_bound", "FrozenCritic"]


def spectral_norm_bound(weight) -> float:
    """A proven upper bound on the spectral norm ``|W|_2`` (largest singular value).

    .. math::

        \\hat\\sigma_{\\max} \\, (1 + 32 \\max(m, n)\\, u) + \\text{tiny}

    where :math:`\\hat\\sigma_{\\max}` is LAPACK's float64 SVD (``gesdd``) of the matrix and
    :math:`u = 2^{-53}`: LAPACK guarantees :math:`|\\hat\\sigma_i - \\sigma_i| \\le p(m, n)\\, u\\,
    \\sigma_{\\max}` with :math:`p` a modestly growing function, which the factor covers with a wide
    margin. Never power iteration (which only approaches the norm from below).

    Parameters
    ----------
    weight : array-like or tensor, shape ``(m, n)``

    Returns
    -------
    float

    Notes
    -----
    ``O(m n min(m, n))`` time. Reference: Anderson et al., *LAPACK Users' Guide* (3rd ed., 1999),
    Sec. 4.9 (error bounds for the singular value decomposition).

    Examples
    --------
    >>> spectral_norm_bound([[3.0, 0.0], [0.0, -4.0]])  # doctest: +ELLIPSIS
    4.00000000000...
    """
    w = to_numpy(weight, "weight")
    if w.ndim != 2 or w.size == 0:
        raise ValueError(f"weight: expected a non-empty matrix, got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("weight: entries must be finite")
    sigma = float(np.linalg.svd(w, compute_uv=False)[0])
    return next_up(sigma * (1.0 + 32 * max(w.shape) * UNIT_ROUNDOFF) + TINY)


def lipschitz_bound(layers) -> float:
    """A proven upper bound on the Lipschitz constant of ``W_L act(... act(W_1 x + b_1)) + b_L``.

    For 1-Lipschitz activations (ReLU, GroupSort) the Euclidean Lipschitz constant is at most
    :math:`\\prod_l |W_l|_2`; each factor is :func:`spectral_norm_bound` and the product is
    rounded upwards.

    Parameters
    ----------
    layers : sequence of ``(W, b)`` pairs (arrays or tensors)
        The affine layers ``x -> W x + b`` of the network, first to last (``W`` of shape
        ``(out, in)``); the biases do not enter the bound. The activations between them must be
        1-Lipschitz in the Euclidean norm.

    Returns
    -------
    float
        An upper bound on ``Lip(f)`` that holds for the exact (infinite-precision) network.

    Notes
    -----
    ``O(sum_l m_l n_l min(m_l, n_l))`` time (one SVD per layer). The product of the norms can be
    much larger than the true constant of a trained network (it ignores how the layers align);
    it is tight for GroupSort networks with orthonormal weights, whose constant is 1 on the
    directions they preserve.

    References
    ----------
    Szegedy et al., "Intriguing properties of neural networks", ICLR 2014, Sec. 4.3 (the product
    of the layers' operator norms); Anil, Lucas & Grosse, "Sorting out Lipschitz function
    approximation", ICML 2019 (1-Lipschitz activations and orthonormal weights).

    Examples
    --------
    >>> import numpy as np
    >>> lipschitz_bound([(np.eye(2) * 2, np.zeros(2)), (np.ones((1, 2)), np.zeros(1))])  # doctest: +ELLIPSIS
    2.828427124...
    """
    bound = 1.0
    for w, _ in layers:
        bound = next_up(bound * spectral_norm_bound(w))
    return bound


class FrozenCritic:
    """A trained critic frozen into float64 affine layers: callable, with proven bounds.

    ``f(x) = W_L act(... act(W_1 x + b_1) ...) + b_L`` with ``act`` GroupSort or ReLU. The
    matrices are *the definition* of the function: :attr:`lipschitz_bound` is proven for it, and
    :meth:`evaluate` returns values with bounds on their floating-point error.

    Parameters
    ----------
    layers : list of ``(W, b)`` float64 tensors, ``W`` of shape ``(out, in)``
    activation : {"groupsort", "relu"}
    group_size : int
        GroupSort group size (ignored for ReLU).

    Examples
    --------
    >>> import numpy as np, torch
    >>> f = FrozenCritic([(torch.tensor([[1.0, 0.0]], dtype=torch.float64),
    ...                    torch.zeros(1, dtype=torch.float64))], "relu")
    >>> f(np.array([[2.0, 5.0], [-1.0, 0.0]]))
    array([ 2., -1.])
    """

    def __init__(self, layers, activation: str, group_size: int = 2):
        if activation not in ("groupsort", "relu"):
            raise ValueError(f"activation: must be 'groupsort' or 'relu', got {activation!r}")
        self.layers = [(torch.as_tensor(w, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64))
                       for w, b in layers]
        self.activation = activation
        self.group_size = int(group_size)
        self._lipschitz = None
        self._norms = None

    @property
    def dim(self) -> int:
        """Dimension of the inputs."""
        return int(self.layers[0][0].shape[1])

    @property
    def device(self) -> torch.device:
        """Where the layers live: values are computed there."""
        return self.layers[0][0].device

    @property
    def layer_norm_bounds(self) -> list[float]:
        """Proven upper bounds on the spectral norm of each weight matrix."""
        if self._norms is None:
            self._norms = [spectral_norm_bound(w) for w, _ in self.layers]
        return self._norms

    @property
    def lipschitz_bound(self) -> float:
        """A proven upper bound on the Euclidean Lipschitz constant: the product of the layers' norms."""
        if self._lipschitz is None:
            bound = 1.0
            for norm in self.layer_norm_bounds:
                bound = next_up(bound * norm)
            self._lipschitz = bound
        return self._lipschitz

    def _act(self, h):
        if self.activation == "relu":
            return torch.relu(h)
        return group_sort(h, self.group_size)

    def _points(self, x):
        return as_float64(validate_samples(x, "x", dim=self.dim), self.device)

    def evaluate(self, x, *, with_error: bool = False, chunk_size: int = 65536):
        """The values ``f(x_i)`` in float64, and optionally bounds on their rounding errors.

        Parameters
        ----------
        x : array-like or tensor, shape ``(n, d)``
        with_error : bool, default False
            Also return ``err`` with ``|computed_i - f(x_i)| <= err_i`` for the exact ``f``.
        chunk_size : int
            Points per block.

        Returns
        -------
        values : float64 tensor ``(n,)`` on the critic's device
        err : float64 tensor ``(n,)`` (only with ``with_error``)

        Notes
        -----
        ``O(n sum_l in_l out_l)`` time, about twice that with the error bounds. The bound follows
        the computed activations layer by layer: ``E_{l+1} = |W_l|_2 E_l + gamma_{k+1}
        | |W_l| |h_l| + |b_l| |_2`` with ``k`` the layer's input width, inflated by 1% for the
        rounding of the bound itself.
        """
        t = self._points(x)
        values, errors = [], []
        for start in range(0, t.shape[0], chunk_size):
            h = t[start:start + chunk_size]
            err = torch.zeros(h.shape[0], dtype=torch.float64, device=h.device)
            for k, (w, b) in enumerate(self.layers):
                z = h @ w.T + b
                if with_error:
                    local = gamma(w.shape[1] + 1) * torch.linalg.vector_norm(
                        h.abs() @ w.abs().T + b.abs(), dim=-1)
                    err = (self.layer_norm_bounds[k] * err + local + TINY * w.shape[0]) * 1.01
                h = self._act(z) if k < len(self.layers) - 1 else z
            values.append(h.squeeze(-1))
            errors.append(err)
        values = torch.cat(values)
        return (values, torch.cat(errors)) if with_error else values

    def __call__(self, x):
        """``f(x)``: numpy float64 for numpy input, a tensor like ``x`` for torch input."""
        values = self.evaluate(x)
        if is_tensor(x):
            dtype = x.dtype if x.is_floating_point() else torch.float64
            return values.to(device=x.device, dtype=dtype)
        return values.cpu().numpy()

    def __repr__(self) -> str:
        widths = [self.dim] + [int(w.shape[0]) for w, _ in self.layers]
        return (f"FrozenCritic({' -> '.join(map(str, widths))}, activation={self.activation!r}, "
                f"lipschitz_bound={self.lipschitz_bound:.6g})")
