"""Critic networks: a GroupSort network with orthonormalised weights, and a plain ReLU MLP.

Both map points of ``R^d`` to real numbers and see their inputs through a fixed affine
normalisation (a shift and one scalar scale, the same for every coordinate, so that Euclidean
geometry is kept): ``f(x) = scale * g((x - shift) / scale)``. ``f`` has the Lipschitz constant of
``g`` and the trainer can use the same learning rates whatever the units of the data.

- :class:`GroupSortCritic`: every weight matrix is the Björck orthonormalisation of a free
  parameter (spectral norm ``<= 1``) and the activation sorts groups of units, which is
  1-Lipschitz and preserves gradient norms; the network is 1-Lipschitz by construction and can
  represent the optimal Kantorovich potential's slopes of norm 1 (Anil, Lucas & Grosse 2019).
- :class:`MLPCritic`: linear layers and ReLU, the critic of the WGAN papers (weight clipping,
  gradient penalty); its Lipschitz constant is whatever training leaves.
"""

from __future__ import annotations

import abc

import torch
from torch import nn

from .._core.validation import validate_positive

__all__ = ["group_sort", "bjorck_orthonormalize", "GroupSortCritic", "MLPCritic", "ACTIVATIONS"]

#: Activations of the critics, by name: all are 1-Lipschitz in the Euclidean norm.
ACTIVATIONS = ("groupsort", "relu")


def group_sort(h: torch.Tensor, group_size: int = 2) -> torch.Tensor:
    """Sort the units of ``h`` within groups of ``group_size`` (the GroupSort activation).

    With ``group_size=2`` (MaxMin) unit ``i`` is paired with unit ``i + width/2``: the first half
    of the output holds the maxima of the pairs, the second half the minima. Larger groups are
    consecutive blocks sorted in decreasing order. Either way the map permutes coordinates
    piecewise, so it is 1-Lipschitz in the Euclidean norm and exact in floating point.

    Parameters
    ----------
    h : tensor, shape ``(..., width)``, ``width`` a multiple of ``group_size``
        Pre-activations; the last axis holds the units.
    group_size : int, default 2
        Units per group, ``>= 1``; 1 is the identity.

    Returns
    -------
    tensor of the shape of ``h``

    Notes
    -----
    ``O(width log group_size)`` per point (a maximum and a minimum for pairs). Unlike ReLU,
    GroupSort preserves the norm of the gradient (its Jacobian is a permutation matrix), so a
    network of orthonormal layers and GroupSort activations can have gradient norm 1 everywhere,
    which an optimal Kantorovich potential needs; with ReLU, a norm-constrained network loses
    expressiveness. Differentiable almost everywhere (a permutation of the inputs' gradients).

    References
    ----------
    Anil, Lucas & Grosse, "Sorting out Lipschitz function approximation", ICML 2019, Sec. 4
    (GroupSort, MaxMin for groups of 2).

    Examples
    --------
    >>> import torch
    >>> group_sort(torch.tensor([[1.0, 5.0, 3.0, 2.0]]))
    tensor([[3., 5., 1., 2.]])
    """
    group_size = int(validate_positive(group_size, "group_size", integer=True))
    width = h.shape[-1]
    if width % group_size:
        raise ValueError(f"group_size: must divide the layer width {width}, got {group_size}")
    if group_size == 1:
        return h
    if group_size == 2:
        first, second = h[..., : width // 2], h[..., width // 2:]
        return torch.cat([torch.maximum(first, second), torch.minimum(first, second)], dim=-1)
    grouped = h.reshape(*h.shape[:-1], width // group_size, group_size)
    return grouped.sort(dim=-1, descending=True).values.reshape(h.shape)


def bjorck_orthonormalize(weight: torch.Tensor, iters: int = 10, *, tol: float | None = None) -> torch.Tensor:
    """Björck-Bowie orthonormalisation: the closest matrix with orthonormal rows or columns.

    The input is first divided by ``sqrt(|W|_1 |W|_inf) >= |W|_2`` so that every singular value
    lies in ``[0, 1]``; then each iteration of order 1,

    .. math::

        W \\leftarrow \\tfrac32 W - \\tfrac12 W W^\\top W,

    maps each singular value ``s`` to ``s (3 - s^2) / 2``, which stays in ``[0, 1]`` and converges
    quadratically to 1 (for ``s > 0``). A tall matrix gets orthonormal columns, a wide one
    orthonormal rows, a single row unit norm. The iteration is differentiable, so a network can be
    trained through it.

    Parameters
    ----------
    weight : tensor, shape ``(out, in)``
    iters : int, default 10
        Number of iterations (the maximum when ``tol`` is given).
    tol : float, optional
        Stop once ``max |W^T W - I| <= tol`` (checked every iteration; for exporting a trained
        network in float64, not for training).

    Returns
    -------
    tensor of the shape and dtype of ``weight``, spectral norm ``<= 1`` in exact arithmetic.

    Notes
    -----
    ``O(iters * out * in * min(out, in))`` time. Reference: Björck & Bowie, "An iterative algorithm
    for computing the best estimate of an orthogonal matrix", SIAM J. Numer. Anal. 8(2), 1971;
    Anil, Lucas & Grosse, "Sorting out Lipschitz function approximation", ICML 2019.

    Examples
    --------
    >>> import torch
    >>> w = bjorck_orthonormalize(torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64), 30)
    >>> torch.allclose(w.T @ w, torch.eye(2, dtype=torch.float64))
    True
    """
    rows, cols = weight.shape
    scale = torch.sqrt(weight.abs().sum(0).max() * weight.abs().sum(1).max())
    w = weight / scale.clamp_min(torch.finfo(weight.dtype).tiny)
    tall = rows >= cols
    eye = torch.eye(min(rows, cols), dtype=w.dtype, device=w.device) if tol is not None else None
    for _ in range(iters):
        if tall:
            gram = w.T @ w
            w = 1.5 * w - 0.5 * (w @ gram)
        else:
            gram = w @ w.T
            w = 1.5 * w - 0.5 * (gram @ w)
        if tol is not None and float((gram - eye).abs().max()) <= tol:
            break
    return w


class _NormalisedCritic(nn.Module, abc.ABC):
    """Holds the input normalisation ``x -> (x - shift) / scale`` and the output factor ``scale``."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = int(dim)
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(()))
        # float64 copies for the export (the buffers follow the module's dtype, float32 say, which
        # would move a shift of 1e9 by up to 64)
        self._shift64 = torch.zeros(dim, dtype=torch.float64)
        self._scale64 = 1.0

    def set_normalisation(self, shift: torch.Tensor, scale: float) -> None:
        """Use ``f(x) = scale * g((x - shift) / scale)`` from now on."""
        self._shift64 = torch.as_tensor(shift).detach().to(torch.float64).clone()
        self._scale64 = float(scale)
        self.shift.copy_(self._shift64.to(self.shift))
        self.scale.fill_(self._scale64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * self.core((x - self.shift) / self.scale)

    @abc.abstractmethod
    def core(self, z: torch.Tensor) -> torch.Tensor:
        """The network on normalised inputs ``z = (x - shift) / scale``."""

    def affine_layers(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The float64 layers ``(W, b)`` of ``f`` in the original units, normalisation folded in.

        The first layer absorbs ``(x - shift) / scale``, the last one the factor ``scale``; so
        ``f`` is exactly ``W_L act(... act(W_1 x + b_1) ...) + b_L`` with these matrices.
        """
        layers = self._float64_weights()
        scale = self._scale64
        shift = self._shift64.to(layers[0][0].device)
        w, b = layers[0]
        layers[0] = (w / scale, b - (w @ shift) / scale)
        w, b = layers[-1]
        layers[-1] = (w * scale, b * scale)
        return layers

    def _float64_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(w.detach().to(torch.float64), b.detach().to(torch.float64)) for w, b in self.weights()]

    @abc.abstractmethod
    def weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The affine layers ``(W, b)`` of :meth:`core`, in order."""


class GroupSortCritic(_NormalisedCritic):
    """A 1-Lipschitz GroupSort network: ``d -> width -> ... -> width -> 1``.

    Each weight is ``bjorck_orthonormalize(V)`` of a free parameter ``V`` (orthonormal columns for
    the first layer, orthogonal hidden layers, a unit-norm row for the output), each hidden layer
    is followed by :func:`group_sort`. The composition is 1-Lipschitz and, with orthonormal
    weights, gradient-norm preserving: ``|grad f| = 1`` almost everywhere is reachable, which
    is what an optimal Kantorovich potential needs.

    Parameters
    ----------
    dim : int
        Dimension of the inputs.
    width : int, default 64
        Units per hidden layer (a multiple of ``group_size``).
    depth : int, default 3
        Number of hidden layers (0 gives a linear critic).
    group_size : int, default 2
        Size of the sorted groups (2 is MaxMin).
    train_iters : int, default 10
        Björck iterations in the forward pass while training.

    Notes
    -----
    One forward pass costs ``O(N (d w + depth w^2))`` plus ``O(train_iters * depth * w^3)`` for the
    orthonormalisation, independent of the batch ``N``. Reference: Anil, Lucas & Grosse,
    "Sorting out Lipschitz function approximation", ICML 2019.

    Examples
    --------
    >>> import torch
    >>> f = GroupSortCritic(2, width=8, depth=2)
    >>> f(torch.zeros(5, 2)).shape
    torch.Size([5])
    """

    activation = "groupsort"

    def __init__(self, dim: int, width: int = 64, depth: int = 3, group_size: int = 2, train_iters: int = 10):
        super().__init__(dim)
        if width % group_size:
            raise ValueError(f"group_size: must divide width={width}, got {group_size}")
        self.group_size = int(group_size)
        self.train_iters = int(train_iters)
        sizes = [dim] + [width] * depth + [1]
        self.raw_weights = nn.ParameterList(
            [nn.Parameter(nn.init.orthogonal_(torch.empty(out, inp)))
             for inp, out in zip(sizes[:-1], sizes[1:])]
        )
        self.biases = nn.ParameterList([nn.Parameter(torch.zeros(out)) for out in sizes[1:]])

    def weights(self, iters: int | None = None, tol: float | None = None):
        """The orthonormalised weights and the biases, layer by layer."""
        iters = self.train_iters if iters is None else iters
        return [(bjorck_orthonormalize(v, iters, tol=tol), b) for v, b in zip(self.raw_weights, self.biases)]

    def core(self, z: torch.Tensor) -> torch.Tensor:
        layers = self.weights()
        for k, (w, b) in enumerate(layers):
            z = z @ w.T + b
            if k < len(layers) - 1:
                z = group_sort(z, self.group_size)
        return z.squeeze(-1)

    def _float64_weights(self, iters: int = 100, tol: float = 1e-15):
        # exported weights: orthonormalised in float64 to convergence, not just train_iters steps
        return [(bjorck_orthonormalize(v.detach().to(torch.float64), iters, tol=tol),
                 b.detach().to(torch.float64)) for v, b in zip(self.raw_weights, self.biases)]


class MLPCritic(_NormalisedCritic):
    """A ReLU multilayer perceptron ``d -> width -> ... -> width -> 1`` (the WGAN critic).

    Parameters
    ----------
    dim : int
    width : int, default 64
    depth : int, default 3
        Number of hidden layers.

    Notes
    -----
    Its Lipschitz constant is at most the product of the spectral norms of its weights (ReLU is
    1-Lipschitz); nothing in the architecture keeps that product near 1 — weight clipping bounds
    it loosely, a gradient penalty only encourages it.

    Examples
    --------
    >>> import torch
    >>> MLPCritic(3, width=16, depth=2)(torch.zeros(4, 3)).shape
    torch.Size([4])
    """

    activation = "relu"
    group_size = 1

    def __init__(self, dim: int, width: int = 64, depth: int = 3):
        super().__init__(dim)
        sizes = [dim] + [width] * depth + [1]
        self.linears = nn.ModuleList([nn.Linear(inp, out) for inp, out in zip(sizes[:-1], sizes[1:])])

    def weights(self):
        return [(lin.weight, lin.bias) for lin in self.linears]

    def core(self, z: torch.Tensor) -> torch.Tensor:
        for k, lin in enumerate(self.linears):
            z = lin(z)
            if k < len(self.linears) - 1:
                z = torch.relu(z)
        return z.squeeze(-1)
