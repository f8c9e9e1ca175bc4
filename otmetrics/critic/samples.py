"""The data of the critic: two weighted sample sets, validated, and their float64 tensors.

Every part of :mod:`otmetrics.critic` reads its inputs through these functions, so that
:func:`~otmetrics.critic.estimate_w1`, :func:`~otmetrics.critic.validate`, the frozen critic and the
dual bounds agree on what the samples and weights are:

- :func:`empirical_measures` validates two sample sets and their weights (normalised to 1 in
  float64, ``None`` for uniform weights);
- :func:`as_float64` and :func:`weight_tensor` give the float64 tensors that the certified
  computations run on (the samples, exactly as given, are their definition).
"""

from __future__ import annotations

import numpy as np
import torch

from .._core.arrays import is_tensor, to_numpy
from .._core.validation import validate_samples, validate_weights

__all__ = ["empirical_measures", "normalised_weights", "weight_tensor", "as_float64"]


def empirical_measures(x, y, a=None, b=None, *, min_samples: int = 2):
    """Two sample sets and their weights, validated: ``sum_i a_i delta_{x_i}`` and ``sum_j b_j delta_{y_j}``.

    Parameters
    ----------
    x : array-like or tensor, shape ``(n, d)`` (or ``(n,)`` for points on a line)
    y : array-like or tensor, shape ``(m, d)`` (or ``(m,)``)
    a, b : array-like or tensor, shapes ``(n,)`` and ``(m,)``, optional
        Non-negative weights with a positive total; uniform when omitted.
    min_samples : int, default 2
        The fewest samples accepted on each side.

    Returns
    -------
    X, Y : ndarray or tensor, shapes ``(n, d)`` and ``(m, d)``
        The samples, validated (finite coordinates), in their own type.
    wa, wb : float64 ndarray or None
        The weights normalised to 1 (see :func:`normalised_weights`), ``None`` when uniform.

    Raises
    ------
    ValueError
        Samples of different dimensions, too few samples, NaN or infinite coordinates, negative or
        non-finite weights, weights of total 0 or of the wrong length.

    Examples
    --------
    >>> import numpy as np
    >>> X, Y, wa, wb = empirical_measures(np.arange(3.0), np.ones((2, 1)), a=[1.0, 1.0, 2.0])
    >>> X.shape, Y.shape, wa.tolist(), wb
    ((3, 1), (2, 1), [0.25, 0.25, 0.5], None)
    """
    X = validate_samples(x, "x", min_samples=min_samples)
    Y = validate_samples(y, "y", min_samples=min_samples)
    if X.shape[1] != Y.shape[1]:
        raise ValueError(f"y: points must have the dimension of x ({X.shape[1]}), got {Y.shape[1]}")
    return X, Y, normalised_weights(a, "a", X.shape[0]), normalised_weights(b, "b", Y.shape[0])


def normalised_weights(w, name: str, size: int) -> np.ndarray | None:
    """Weights validated and normalised to 1 (numpy float64), or ``None`` for uniform weights.

    Parameters
    ----------
    w : array-like or tensor, shape ``(size,)``, or None
        Non-negative, finite, with a positive total.
    name : str
        The argument's name, for error messages.
    size : int
        The number of samples they weigh.

    Returns
    -------
    float64 ndarray ``(size,)`` or None
        ``w / sum(w)``: within :func:`~otmetrics._core.rounding.weight_error` of the exact
        normalised weights.

    Examples
    --------
    >>> normalised_weights([1.0, 3.0], "a", 2).tolist(), normalised_weights(None, "a", 2)
    ([0.25, 0.75], None)
    """
    if w is None:
        return None
    w = to_numpy(validate_weights(w, name, ndim=1, size=size), name)
    return w / w.sum()


def weight_tensor(w: np.ndarray | None, size: int, device) -> torch.Tensor:
    """Normalised weights (from :func:`normalised_weights`) as a float64 tensor on ``device``.

    Parameters
    ----------
    w : float64 ndarray ``(size,)`` or None
        ``None`` gives the uniform weights ``1 / size``.
    size : int
    device : torch.device or str

    Returns
    -------
    float64 tensor ``(size,)``

    Examples
    --------
    >>> weight_tensor(None, 4, "cpu").tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    if w is None:
        return torch.full((size,), 1.0 / size, dtype=torch.float64, device=device)
    return torch.from_numpy(np.ascontiguousarray(w)).to(device)


def as_float64(x, device=None) -> torch.Tensor:
    """A validated array or tensor as a float64 tensor (on ``device``, else where it is).

    Parameters
    ----------
    x : array-like or tensor
        Already validated (finite, numeric).
    device : torch.device or str, optional
        Default: the device of a tensor, the CPU for anything else.

    Returns
    -------
    float64 tensor
        Detached from any graph, with the values of ``x`` (the cast of float16, bfloat16 or float32
        values is exact).

    Examples
    --------
    >>> import torch
    >>> as_float64(torch.tensor([1.5], dtype=torch.float32)).dtype
    torch.float64
    """
    if is_tensor(x):
        return x.detach().to(device=device if device is not None else x.device, dtype=torch.float64)
    return torch.from_numpy(np.ascontiguousarray(to_numpy(x))).to(device or "cpu")
