"""The entropic objective as a differentiable function of the weights and the cost (envelope theorem).

At the optimal potentials ``(f, g)`` the dual value
``D(f, g) = <a, f> + <b, g> - eps <a x b, exp((f + g - C) / eps)> + eps |a||b|`` equals ``OT_eps``, and
its partial derivatives are those of ``OT_eps``: ``dD/dC = P``, ``dD/da_i = f_i - eps (P 1)_i / a_i + eps |b|``
and symmetrically for ``b``. :func:`attach_gradient` returns the value carrying these gradients, so that
``backward()`` costs one extra pass over the cost and never back-propagates through the iterations.
"""

from __future__ import annotations

import functools

from ..._core.arrays import is_tensor

__all__ = ["objective_function", "dual_value", "attach_gradient"]


def _torch():
    import torch

    return torch


@functools.lru_cache(maxsize=None)
def objective_function():
    torch = _torch()
    from .softmin import soft_c_transform

    class EntropicObjective(torch.autograd.Function):
        """``OT_eps`` as a function of ``(a, b, cost leaves)`` with the optimal potentials held fixed.

        The value is the dual
        ``D(f, g) = <a, f> + <b, g> - eps <a x b, exp((f + g - C) / eps)> + eps |a||b|``;
        at the optimum its partial derivatives are those of ``OT_eps`` (envelope theorem):
        ``dD/dC = P``, ``dD/da_i = f_i - eps (P 1)_i / a_i + eps |b|`` and symmetrically for ``b``.
        """

        @staticmethod
        def forward(ctx, value, state, a, b, *leaves):
            ctx.state = state
            return value.detach().clone()

        @staticmethod
        def backward(ctx, grad):
            op, f, g, loga, logb, eps, mass_a, mass_b = ctx.state
            grad = grad.reshape(-1)
            needs = ctx.needs_input_grad
            grad_a = grad_b = None
            if needs[2]:
                f_next = soft_c_transform(op, g, logb, eps, to="rows")
                grad_a = f - eps * torch.exp((f - f_next) / eps) + eps * mass_b[:, None]
                grad_a = grad_a * grad[:, None].to(f.dtype)
            if needs[3]:
                g_next = soft_c_transform(op, f, loga, eps, to="cols")
                grad_b = g - eps * torch.exp((g - g_next) / eps) + eps * mass_a[:, None]
                grad_b = grad_b * grad[:, None].to(g.dtype)
            leaf_grads = op.leaf_grads(f, g, loga, logb, eps, grad, needs[4:])
            return (None, None, grad_a, grad_b, *leaf_grads)

    return EntropicObjective


def dual_value(prob_a, prob_b, f, g, plan_mass, eps, mass_a, mass_b):
    """``<a, f> + <b, g> - eps sum(P) + eps |a||b|`` per problem, in float64."""
    torch = _torch()
    f64 = torch.float64
    value = (prob_a.detach().to(f64) * f.to(f64)).nansum(1) + (prob_b.detach().to(f64) * g.to(f64)).nansum(1)
    extra = eps * (torch.as_tensor(mass_a * mass_b - plan_mass, dtype=f64, device=f.device))
    return value + extra


def attach_gradient(value, op, f, g, a, b, eps, mass_a, mass_b):
    """``value`` (B,) carrying envelope-theorem gradients to ``a``, ``b`` and the cost's leaves."""
    torch = _torch()
    leaves = op.leaves()
    tracked = [t for t in (a, b, *leaves) if is_tensor(t) and t.requires_grad]
    if not tracked or not torch.is_grad_enabled():
        return value
    loga, logb = torch.log(a.detach()), torch.log(b.detach())
    dev = f.device
    state = (op, f, g, loga, logb, eps, torch.as_tensor(mass_a, dtype=f.dtype, device=dev),
             torch.as_tensor(mass_b, dtype=f.dtype, device=dev))
    return objective_function().apply(value, state, a, b, *leaves)
