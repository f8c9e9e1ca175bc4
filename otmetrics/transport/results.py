"""What every transport solver returns: the common base of :class:`~otmetrics.OTResult` and
:class:`~otmetrics.SinkhornResult`.

Both results carry, under the same names and for every problem of a batch:

- ``cost``: the transport cost ``<C, P>`` of the returned plan;
- ``plan``: the transport plan ``P`` (an attribute on both; the entropic plan is computed on first
  access and kept);
- ``potentials``: the dual potentials ``(u, v)`` in cost units;
- ``converged``: whether the solver's own optimality test held;
- ``marginal_error``: the L1 violation of the marginals, ``|P 1 - a|_1 + |P^T 1 - b|_1``, as measured;
- ``lower`` and ``upper``: bounds on the exact (unregularised) optimal transport value, proven under floating
  point (:mod:`otmetrics.transport.bounds`): ``lower <= OT <= upper`` for the problem as posed.

In otmetrics 0.1 the entropic plan was a method (``result.plan()``) and the entropic potentials were
``result.f`` and ``result.g``; both spellings keep working until 0.3 with a ``DeprecationWarning``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
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
    lower, upper : float, ndarray ``(B,)`` or tensor (detached)
        Proven bounds on the exact optimal transport value ``OT(a, b; C) = min_P <C, P>`` (no entropy) of
        the problem as posed: the weights as given (exactly ``1/n`` when omitted), ``b`` rescaled exactly to
        the mass of ``a``, the cost matrix as given or ``d(x_i, y_j)^p`` of the exact points of a
        :class:`~otmetrics.PointCloud`. ``lower`` is the dual value of the potentials made feasible by
        c-transforms, ``upper`` the cost of the plan rounded onto the exact marginals; both carry margins
        for every rounding error (the theory page "What a certificate proves" gives the proof). For the
        exact solver the interval is tight to rounding; for Sinkhorn its width is the entropic bias.
        Computed on first access for Sinkhorn results; tensors in the caller's dtype, rounded outwards.

    Examples
    --------
    >>> import numpy as np, otmetrics
    >>> C = np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> for res in (otmetrics.emd(None, None, C), otmetrics.sinkhorn(None, None, C, eps=0.1)):
    ...     assert isinstance(res, otmetrics.TransportResult)
    ...     print(type(res).__name__, bool(res.converged), res.plan.shape, res.marginal_error < 1e-6)
    ...     assert res.lower <= 0.0 <= res.upper       # the exact value is 0
    OTResult True (2, 2) True
    SinkhornResult True (2, 2) True
    """

    cost: Any
    potentials: tuple[Any, Any]
    converged: Any
    marginal_error: Any
    # (lower, upper), or a function computing them on first access
    _bounds: Any = field(default=None, repr=False, compare=False, kw_only=True)

    def _proven_bounds(self):
        cached = self.__dict__.get("_bounds_value")
        if cached is None:
            bounds = self._bounds() if callable(self._bounds) else self._bounds
            cached = (-float("inf"), float("inf")) if bounds is None else tuple(bounds)
            self.__dict__["_bounds_value"] = cached  # a cache, not a field: the result stays frozen
        return cached

    @property
    def lower(self):
        """A lower bound on the exact optimal transport value, proven under floating point."""
        return self._proven_bounds()[0]

    @property
    def upper(self):
        """An upper bound on the exact optimal transport value, proven under floating point."""
        return self._proven_bounds()[1]


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
