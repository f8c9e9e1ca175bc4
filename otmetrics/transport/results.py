"""What every transport solver returns: the common base of :class:`~otmetrics.OTResult` and
:class:`~otmetrics.SinkhornResult`.

Both results carry, under the same names and for every problem of a batch:

- ``cost``: the transport cost ``<C, P>`` of the returned plan;
- ``plan``: the transport plan ``P`` (an attribute on both; the entropic plan is computed on first
  access and kept);
- ``potentials``: the dual potentials ``(u, v)`` in cost units;
- ``converged``: whether the solver's own optimality test held;
- ``marginal_error``: the L1 violation of the marginals, ``|P 1 - a|_1 + |P^T 1 - b|_1``, as measured.

In otmetrics 0.1 the entropic plan was a method (``result.plan()``) and the entropic potentials were
``result.f`` and ``result.g``; both spellings keep working until 0.3 with a ``DeprecationWarning``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._core.arrays import is_tensor
from .._core.deprecation import warn_deprecated

__all__ = ["TransportResult", "callable_plan"]


@dataclass(frozen=True)
class TransportResult:
    """The diagnostics every transport result carries (see the module docstring).

    Attributes
    ----------
    cost : float, ndarray ``(B,)`` or tensor
        The transport cost ``<C, P>`` of the returned plan.
    potentials : tuple ``(u, v)``
        Dual potentials in cost units, shapes ``(n,)`` and ``(m,)`` (or ``(B, n)``, ``(B, m)``).
    converged : bool or ndarray of bool ``(B,)``
        The solver's optimality test held (a certificate for the exact solver, the marginal tolerance
        for Sinkhorn).
    marginal_error : float or ndarray ``(B,)``
        ``|P 1 - a|_1 + |P^T 1 - b|_1``, measured on the returned plan.

    Examples
    --------
    >>> import numpy as np, otmetrics
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> for res in (otmetrics.emd(None, None, C), otmetrics.sinkhorn(None, None, C, eps=0.1)):
    ...     assert isinstance(res, otmetrics.TransportResult)
    ...     print(type(res).__name__, bool(res.converged), res.plan.shape, res.marginal_error < 1e-6)
    OTResult True (2, 2) True
    SinkhornResult True (2, 2) True
    """

    cost: Any
    potentials: tuple[Any, Any]
    converged: Any
    marginal_error: Any


# ------------------------------------------------------------------------------------------------
# ``result.plan()`` of 0.1, for one release
# ------------------------------------------------------------------------------------------------
def _warn_plan_call():
    warn_deprecated("result.plan() is deprecated: the plan is an attribute, use result.plan", stacklevel=3)


class _CallablePlanArray(np.ndarray):
    """A plan (numpy) that can still be called as in 0.1; results of operations are plain arrays."""

    def __call__(self):
        _warn_plan_call()
        return self.view(np.ndarray)

    def __repr__(self):
        return repr(self.view(np.ndarray))

    def __array_wrap__(self, array, context=None, return_scalar=False):
        out = np.asarray(array).view(np.ndarray)
        return out[()] if return_scalar else out


@functools.lru_cache(maxsize=None)
def _callable_plan_tensor_class():
    import torch

    class _CallablePlanTensor(torch.Tensor):
        """A plan (torch) that can still be called as in 0.1; results of operations are plain tensors."""

        __torch_function__ = torch._C._disabled_torch_function_impl

        def __call__(self):
            _warn_plan_call()
            return self.as_subclass(torch.Tensor)

        def __repr__(self, **kwargs):
            return self.as_subclass(torch.Tensor).__repr__(**kwargs)

    # a module-level name (see __getattr__), so that pickle and torch.save find the class
    _CallablePlanTensor.__qualname__ = "_CallablePlanTensor"
    _CallablePlanTensor.__module__ = __name__
    return _CallablePlanTensor


def __getattr__(name: str):
    if name == "_CallablePlanTensor":  # defined on first use: it needs torch
        return _callable_plan_tensor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def callable_plan(plan):
    """``plan`` (an array or a tensor, unchanged in value, dtype and device) that also answers the 0.1
    call ``plan()`` with a ``DeprecationWarning``. Used by :class:`~otmetrics.SinkhornResult` until 0.3."""
    if is_tensor(plan):
        return plan.as_subclass(_callable_plan_tensor_class())
    return np.asarray(plan).view(_CallablePlanArray)
