"""Hypothesis strategies that draw optimal-transport problems.

Every strategy draws well-scaled float64 data (no denormals, no overflow), so that tolerances like
``1e-9`` relative are meaningful; sizes and scales are parameters, given as integers or as
strategies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .._core.deprecation import changed_default

__all__ = ["OTProblem", "histograms", "cost_matrices", "point_clouds", "sample_pairs", "ot_problems",
           "problem_batches"]


@dataclass(frozen=True)
class OTProblem:
    """A drawn transport problem: weights ``a`` ``(n,)``, ``b`` ``(m,)`` and a cost ``(n, m)``.

    For point-cloud problems ``x`` ``(n, d)`` and ``y`` ``(m, d)`` are the points and ``p`` the power
    of the Euclidean distance in the cost. Batched problems have a leading axis on every array.

    Examples
    --------
    >>> import numpy as np
    >>> OTProblem(a=np.ones(2) / 2, b=np.ones(1), cost=np.zeros((2, 1))).cost.shape
    (2, 1)
    """

    a: np.ndarray
    b: np.ndarray
    cost: np.ndarray
    x: np.ndarray | None = None
    y: np.ndarray | None = None
    p: float | None = None


def _size(draw, size):
    return draw(size) if isinstance(size, st.SearchStrategy) else int(size)


@st.composite
def histograms(draw, size: Any = st.integers(1, 12), *, mass: float = 1.0, allow_zeros: bool = True,
               min_weight: float = 1e-3) -> np.ndarray:
    """Non-negative weights of total ``mass`` with at least one positive entry.

    Parameters
    ----------
    size : int or strategy of int
        Number of bins.
    mass : float
        Total mass of the histogram.
    allow_zeros : bool
        Whether some (not all) bins may be exactly zero.
    min_weight : float
        Smallest positive raw weight before normalisation (keeps ratios within ``1 / min_weight``).

    Examples
    --------
    >>> from hypothesis import given
    >>> @given(histograms(5))
    ... def test(a):
    ...     assert a.shape == (5,) and abs(a.sum() - 1) < 1e-12
    >>> test()
    """
    n = _size(draw, size)
    positive = st.floats(min_weight, 1.0, allow_nan=False, allow_infinity=False)
    elements = st.one_of(st.just(0.0), positive) if allow_zeros else positive
    w = draw(hnp.arrays(np.float64, n, elements=elements))
    if not w.any():
        w[draw(st.integers(0, n - 1))] = 1.0
    return w * (mass / w.sum())


@st.composite
def cost_matrices(draw, n: Any = st.integers(1, 10), m: Any = st.integers(1, 10), *, min_value: float = 0.0,
                  max_value: float = 100.0, integer: bool = False) -> np.ndarray:
    """Finite cost matrices ``(n, m)`` with entries in ``[min_value, max_value]`` (integers if asked)."""
    n, m = _size(draw, n), _size(draw, m)
    if integer:
        elements = st.integers(int(np.ceil(min_value)), int(np.floor(max_value))).map(float)
    else:
        elements = st.floats(min_value, max_value, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    return draw(hnp.arrays(np.float64, (n, m), elements=elements))


@st.composite
def point_clouds(draw, n: Any = st.integers(1, 10), dim: Any = st.integers(1, 3), *,
                 scale: float = 10.0) -> np.ndarray:
    """Point clouds ``(n, dim)`` with coordinates in ``[-scale, scale]`` (repeated points allowed)."""
    n, dim = _size(draw, n), _size(draw, dim)
    coords = st.floats(-scale, scale, allow_nan=False, allow_infinity=False, allow_subnormal=False)
    return draw(hnp.arrays(np.float64, (n, dim), elements=coords))


@st.composite
def sample_pairs(draw, max_n: int = 10, max_m: int | None = None, dim: Any = st.integers(1, 3), *,
                 scale: float = 10.0, min_n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Two point clouds ``x`` ``(n, d)`` and ``y`` ``(m, d)`` of the same dimension."""
    d = _size(draw, dim)
    x = draw(point_clouds(st.integers(min_n, max_n), d, scale=scale))
    y = draw(point_clouds(st.integers(min_n, max_m or max_n), d, scale=scale))
    return x, y


def ot_problems(max_n: int = 10, max_m: int | None = None, *, kind: str = "any", p: float | None = None,
                mass: float = 1.0, allow_zeros: bool = True) -> st.SearchStrategy:
    """A transport problem: weights and either a random cost matrix or the cost of two point clouds.

    Parameters
    ----------
    max_n, max_m : int
        Largest numbers of source and target points.
    kind : {"any", "matrix", "points"}
        ``"matrix"``: arbitrary non-negative costs (not a metric); ``"points"``: ``|x - y|^p``.
    p : float, default 2
        Power of the distance for point-cloud problems. The default was 1 before otmetrics 0.2: omitting
        ``p`` gives a ``FutureWarning`` until 0.3.
    mass : float
        Common total mass of ``a`` and ``b``.
    allow_zeros : bool
        Whether weights may contain zeros.

    Examples
    --------
    >>> from hypothesis import given
    >>> @given(cost_matrices(3, 4, max_value=1.0))
    ... def test(c):
    ...     assert c.shape == (3, 4) and 0 <= c.min() and c.max() <= 1
    >>> test()

    Examples
    --------
    >>> from hypothesis import given
    >>> @given(point_clouds(5, 2, scale=1.0))
    ... def test(x):
    ...     assert x.shape == (5, 2) and abs(x).max() <= 1
    >>> test()

    Examples
    --------
    >>> from hypothesis import given
    >>> @given(sample_pairs(max_n=6, dim=2))
    ... def test(pair):
    ...     x, y = pair
    ...     assert x.shape[1] == y.shape[1] == 2
    >>> test()

    Examples
    --------
    >>> from hypothesis import given, settings
    >>> import otmetrics
    >>> @settings(max_examples=10)
    ... @given(ot_problems(max_n=5, p=2))
    ... def test(problem):
    ...     assert otmetrics.emd(problem.a, problem.b, problem.cost).converged
    >>> test()
    """
    if kind not in ("any", "matrix", "points"):
        raise ValueError(f"kind: must be 'any', 'matrix' or 'points', got {kind!r}")
    p = changed_default(p, func="ot_problems", name="p", old=1, new=2)
    return _ot_problems(max_n, max_m, kind=kind, p=p, mass=mass, allow_zeros=allow_zeros)


@st.composite
def _ot_problems(draw, max_n, max_m, *, kind, p, mass, allow_zeros):
    if kind == "any":
        kind = draw(st.sampled_from(["matrix", "points"]))
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, max_m or max_n))
    a = draw(histograms(n, mass=mass, allow_zeros=allow_zeros))
    b = draw(histograms(m, mass=mass, allow_zeros=allow_zeros))
    if kind == "matrix":
        return OTProblem(a=a, b=b, cost=draw(cost_matrices(n, m)))
    d = draw(st.integers(1, 3))
    x = draw(point_clouds(n, d))
    y = draw(point_clouds(m, d))
    from ..transport.costs import cost_matrix

    return OTProblem(a=a, b=b, cost=cost_matrix(x, y, p=p), x=x, y=y, p=float(p))


@st.composite
def problem_batches(draw, max_batch: int = 4, max_n: int = 8, max_m: int | None = None, *,
                    allow_zeros: bool = True) -> OTProblem:
    """A batch of ``B`` independent problems of a common size: ``a`` ``(B, n)``, ``b`` ``(B, m)``,
    ``cost`` ``(B, n, m)``.

    Examples
    --------
    >>> from hypothesis import given
    >>> @given(problem_batches(max_batch=3, max_n=4))
    ... def test(batch):
    ...     assert batch.cost.shape == (len(batch.a), batch.a.shape[1], batch.b.shape[1])
    >>> test()
    """
    batch = draw(st.integers(1, max_batch))
    n = draw(st.integers(1, max_n))
    m = draw(st.integers(1, max_m or max_n))
    a = np.stack([draw(histograms(n, allow_zeros=allow_zeros)) for _ in range(batch)])
    b = np.stack([draw(histograms(m, allow_zeros=allow_zeros)) for _ in range(batch)])
    cost = np.stack([draw(cost_matrices(n, m)) for _ in range(batch)])
    return OTProblem(a=a, b=b, cost=cost)
