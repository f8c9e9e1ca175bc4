"""The front of the Sinkhorn solvers: validated inputs as batched torch tensors, and the way back.

:func:`prepare` turns ``(a, b, cost)`` (arrays or tensors, a cost matrix, a batch or a
:class:`~otmetrics.PointCloud`) into a :class:`Problem`: weights with a batch axis and equal masses,
and the soft-min operator of the cost (:mod:`.softmin`), dense or online. :func:`to_output` and
:func:`diagnostic` give results back in the caller's type (numpy ``float64`` or tensors on the caller's
device and dtype), with the batch axis dropped for a single problem.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..._core.arrays import batch_size, is_tensor, to_numpy
from ..._core.validation import validate_cost, validate_positive, validate_same_mass, validate_weights
from ..costs import PointCloud

__all__ = ["Problem", "prepare", "check_options", "initial_potentials", "to_output", "diagnostic",
           "reference_tensor", "as_tensor"]


@dataclass
class Problem:
    """A validated problem as torch tensors with a batch axis, and how to give results back."""

    op: Any            # SoftMin
    a: Any             # (B, n), in the graph of the caller's a (if any)
    b: Any             # (B, m), rescaled to the mass of a
    mass_a: np.ndarray  # (B,)
    mass_b: np.ndarray
    batched: bool
    like: Any          # a tensor for torch output, None for numpy output


def _torch():
    import torch

    return torch


def reference_tensor(**values):
    """The tensor that decides the output type, device and dtype, or None (numpy)."""
    torch = _torch()
    named = [(name, v) for name, v in values.items() if is_tensor(v)]
    tensors = [v for _, v in named]
    if not tensors:
        return None
    device = tensors[0].device
    for name, t in named[1:]:
        if t.device != device:
            raise ValueError(f"{name}: must be on the device of {named[0][0]} ({device}), got {t.device}")
    dtype = None
    for t in tensors:
        if t.is_floating_point():
            dtype = t.dtype if dtype is None else torch.promote_types(dtype, t.dtype)
    dtype = dtype or torch.float64
    return torch.empty(0, dtype=dtype, device=device)


def as_tensor(x, ref, name):
    torch = _torch()
    if is_tensor(x):
        return x.to(ref.dtype) if x.dtype != ref.dtype else x
    return torch.as_tensor(to_numpy(x, name), dtype=ref.dtype, device=ref.device)


def prepare(a, b, cost, *, online=None, mass_rtol=1e-6) -> Problem:
    """Validate ``a``, ``b``, ``cost`` and build the soft-min operator (the shared front of both solvers)."""
    from .softmin import DenseSoftMin, PointCloudSoftMin

    torch = _torch()
    geom = cost if isinstance(cost, PointCloud) else None
    if geom is None:
        cost = validate_cost(cost, "cost")
        n, m = cost.shape[-2:]
        cost_batch = batch_size("cost", cost, 2)
        ref = reference_tensor(cost=cost, a=a, b=b)
    else:
        n, m = geom.shape[-2:]
        cost_batch = geom.x.shape[0] if geom.batched else None
        ref = reference_tensor(x=geom.x, y=geom.y, a=a, b=b)
    like = ref
    if ref is None:
        ref = torch.empty(0, dtype=torch.float64)

    def weights(w, name, size, what):
        if w is None:
            return torch.full((size,), 1.0 / size, dtype=ref.dtype, device=ref.device)
        w = validate_weights(w, name)
        if w.shape[-1] != size:
            raise ValueError(f"{name}: expected {size} weights (the {what} of cost), got {w.shape[-1]}")
        return as_tensor(w, ref, name)

    a_t = weights(a, "a", n, "rows")
    b_t = weights(b, "b", m, "columns")
    sizes = {s for s in (batch_size("a", a_t, 1), batch_size("b", b_t, 1), cost_batch) if s is not None}
    if len(sizes) > 1:
        raise ValueError(f"cost: batch sizes of a, b and cost differ: {sorted(sizes)}")
    batch = sizes.pop() if sizes else None
    rtol = max(float(mass_rtol), 100 * float(torch.finfo(ref.dtype).eps))
    mass_a, mass_b = validate_same_mass(a_t.detach(), b_t.detach(), rtol=rtol)
    B = batch or 1
    mass_a = np.broadcast_to(np.asarray(mass_a, dtype=np.float64), (B,)).copy()
    mass_b = np.broadcast_to(np.asarray(mass_b, dtype=np.float64), (B,)).copy()
    a_t = a_t.expand(B, n) if a_t.ndim == 1 else a_t
    b_t = b_t.expand(B, m) if b_t.ndim == 1 else b_t
    scale = torch.as_tensor(mass_a / mass_b, dtype=ref.dtype, device=ref.device)
    if a_t.requires_grad or b_t.requires_grad:
        # the same value, with the gradient of the rescaling b |a| / |b|: a change of the mass of a moves b
        # with it, so that gradients are right in every direction (not only mass-preserving ones)
        ratio = a_t.sum(-1) / b_t.sum(-1)
        scale = scale + (ratio - ratio.detach())
    b_t = b_t * scale[:, None]  # exactly balanced masses
    mass_b = mass_a.copy()

    if geom is None:
        c = as_tensor(cost, ref, "cost")
        c = c.expand(B, n, m) if c.ndim == 2 else c
        op = DenseSoftMin(c)
    else:
        x, y = as_tensor(geom.x, ref, "x"), as_tensor(geom.y, ref, "y")
        if x.ndim == 2:
            x, y = x.expand(B, *x.shape), y.expand(B, *y.shape)
        use_online = geom.online if online is None else online
        if use_online:
            op = PointCloudSoftMin(x, y, geom.p, geom.metric, rows=geom.chunk_size)
        else:
            from ..costs import cost_matrix

            op = DenseSoftMin(cost_matrix(x, y, geom.p, geom.metric))
    return Problem(op, a_t, b_t, mass_a, mass_b, batch is not None, like)


def check_options(eps, tol, max_iter, eps_scaling, eps_init):
    eps = float(validate_positive(eps, "eps"))
    tol = float(validate_positive(tol, "tol"))
    if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 1:
        raise ValueError(f"max_iter: must be a positive integer, got {max_iter!r}")
    if eps_scaling is not None:
        if isinstance(eps_scaling, bool) or not isinstance(eps_scaling, numbers.Real) \
                or not 0 < eps_scaling < 1:
            raise ValueError(f"eps_scaling: must be a factor in (0, 1) or None, got {eps_scaling!r}")
        eps_scaling = float(eps_scaling)
    if eps_init is not None:
        eps_init = float(validate_positive(eps_init, "eps_init"))
    return eps, tol, int(max_iter), eps_scaling, eps_init


def to_output(value, prob: Problem, *, scalar_ok=True):
    """A ``(B, ...)`` tensor in the caller's type, with the batch axis dropped for one problem."""
    if not prob.batched:
        value = value[0]
    if prob.like is not None:
        return value.to(prob.like.dtype) if value.is_floating_point() else value
    arr = value.detach().cpu().numpy().astype(np.float64)
    return float(arr) if (arr.ndim == 0 and scalar_ok) else arr


def diagnostic(values, prob: Problem, kind):
    values = np.asarray(values)
    if prob.batched:
        return values.astype(kind)
    return kind(values[0]) if kind is not bool else bool(values[0])



def initial_potentials(init, prob):
    torch = _torch()
    if not isinstance(init, (tuple, list)) or len(init) != 2:
        raise ValueError(f"init: expected a pair of potentials (f, g), got {type(init).__name__}")
    ref = prob.a
    out = []
    for name, pot, size in (("init[0]", init[0], prob.op.n), ("init[1]", init[1], prob.op.m)):
        t = torch.as_tensor(to_numpy(pot, name), dtype=ref.dtype, device=ref.device) if not is_tensor(pot) \
            else pot.detach().to(ref.dtype)
        if t.shape[-1] != size or t.ndim > 2:
            raise ValueError(f"{name}: expected shape ({size},) or (B, {size}), got {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}: potentials must be finite")
        out.append(t.expand(prob.op.batch, size).clone() if t.ndim == 1 else t.clone())
        if out[-1].shape[0] != prob.op.batch:
            raise ValueError(f"{name}: batch size {out[-1].shape[0]} differs from {prob.op.batch}")
    return out
