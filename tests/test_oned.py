"""1-D closed forms: references (scipy, POT, the exact LP), batches, torch, bad input."""

import numpy as np
import ot
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from otmetrics import emd, wasserstein_1d

values = st.integers(1, 25).flatmap(
    lambda n: hnp.arrays(np.float64, n, elements=st.floats(-100, 100, allow_subnormal=False)))


def weights_for(x):
    return hnp.arrays(np.float64, x.shape, elements=st.floats(0, 1, allow_subnormal=False)).filter(
        lambda w: w.sum() > 1e-3)


@settings(max_examples=80, deadline=None)
@given(st.data(), values, values)
def test_p1_matches_scipy(data, u, v):
    wu, wv = data.draw(weights_for(u)), data.draw(weights_for(v))
    ours = wasserstein_1d(u, v, wu, wv, p=1)
    ref = scipy.stats.wasserstein_distance(u, v, wu, wv)
    assert ours == pytest.approx(ref, rel=1e-12, abs=1e-12)
    assert wasserstein_1d(u, v, p=1) == pytest.approx(scipy.stats.wasserstein_distance(u, v), rel=1e-12, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.data(), values, values)
def test_p2_matches_pot(data, u, v):
    wu, wv = data.draw(weights_for(u)), data.draw(weights_for(v))
    ours = wasserstein_1d(u, v, wu, wv, p=2) ** 2
    ref = ot.wasserstein_1d(u, v, wu / wu.sum(), wv / wv.sum(), p=2)  # POT returns W_p^p
    assert ours == pytest.approx(ref, rel=1e-10, abs=1e-10)


@settings(max_examples=40, deadline=None)
@given(st.data(), values, values, st.sampled_from([1.0, 1.3, 2.0, 3.5]))
def test_any_p_matches_the_exact_lp(data, u, v, p):
    wu, wv = data.draw(weights_for(u)), data.draw(weights_for(v))
    C = np.abs(u[:, None] - v[None, :]) ** p
    lp = emd(wu / wu.sum(), wv / wv.sum(), C).cost
    assert wasserstein_1d(u, v, wu, wv, p=p) ** p == pytest.approx(lp, rel=1e-9, abs=1e-9)


def test_worked_values():
    assert wasserstein_1d([0.0, 1.0, 3.0], [5.0, 6.0, 8.0], p=1) == 5.0
    assert wasserstein_1d([0.0], [3.0], p=7) == pytest.approx(3.0, rel=1e-15)
    assert wasserstein_1d([0.0, 1.0], [0.0, 2.0], p=2) == pytest.approx(np.sqrt(0.5), rel=1e-15)
    # unequal sizes: U{0, 1} against U{0, 0.5, 1}: quantiles differ by 0.5 on a third of [0, 1]... exactly 1/6
    assert wasserstein_1d([0.0, 1.0], [0.0, 0.5, 1.0], p=1) == pytest.approx(1 / 6, rel=1e-15)


def test_batches_over_leading_axes_broadcast():
    r = np.random.default_rng(0)
    U, V = r.normal(size=(4, 3, 20)), r.normal(size=(3, 17))
    W = r.random((4, 3, 20))
    out = wasserstein_1d(U, V, a=W, p=2)
    assert out.shape == (4, 3)
    for i in range(4):
        for j in range(3):
            assert out[i, j] == pytest.approx(wasserstein_1d(U[i, j], V[j], W[i, j], p=2), rel=1e-13)
    same = wasserstein_1d(U, r.normal(size=(4, 3, 20)), p=1)
    assert same.shape == (4, 3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_matches_numpy_and_differentiates(dtype):
    r = np.random.default_rng(1)
    u, v, wu = r.normal(size=30), r.normal(size=20) + 1, r.random(30)
    ut = torch.tensor(u, dtype=dtype, requires_grad=True)
    wt = torch.tensor(wu, dtype=dtype, requires_grad=True)
    out = wasserstein_1d(ut, torch.tensor(v, dtype=dtype), wt, p=2)
    assert out.dtype == dtype
    assert out.item() == pytest.approx(wasserstein_1d(u, v, wu, p=2), rel=1e-5 if dtype == torch.float32 else 1e-12)
    out.backward()
    assert torch.isfinite(ut.grad).all() and torch.isfinite(wt.grad).all()
    if dtype == torch.float64:
        # equal weights and sizes: d W2^2 / d u_i = 2 (u_i - v_sigma(i)) / n, checked with gradcheck
        vv = torch.tensor(r.normal(size=30), dtype=dtype)
        assert torch.autograd.gradcheck(lambda x: wasserstein_1d(x, vv, p=2) ** 2,
                                        (torch.tensor(u, dtype=dtype, requires_grad=True),))


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (([], [1.0]), {}, r"^x: must not be empty"),
        (([1.0], [np.nan]), {}, r"^y: values must be finite"),
        (([1.0, 2.0], [1.0]), {"a": [1.0, -1.0]}, r"^a: weights must be non-negative"),
        (([1.0, 2.0], [1.0]), {"a": [0.0, 0.0]}, r"^a: total mass must be positive"),
        (([1.0, 2.0], [1.0]), {"a": [1.0]}, r"^a: shape \(1,\) does not match"),
        (([1.0], [1.0]), {"b": [np.inf]}, r"^b: weights must be finite"),
        (([1.0], [1.0]), {"p": 0.9}, r"^p: must be a finite number >= 1"),
        ((np.ones((2, 3)), np.ones((3, 3))), {}, r"^y: batch shape \(3,\) does not broadcast"),
        ((1.0, [1.0]), {}, r"^x: expected at least one dimension"),
    ],
)
def test_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        wasserstein_1d(*args, **{"p": 1, **kwargs})


@settings(max_examples=40, deadline=None)
@given(st.data(), values, values, st.sampled_from([1.0, 1.5, 2.0, 3.0]), st.booleans())
def test_power_and_coupling_match_pot(data, u, v, p, weighted):
    from otmetrics.transport.oned import monotone_coupling, wasserstein_1d_power

    wu, wv = (data.draw(weights_for(u)), data.draw(weights_for(v))) if weighted else (None, None)
    power = wasserstein_1d_power(u, v, wu, wv, p=p)
    norm = lambda w: None if w is None else w / w.sum()  # noqa: E731 (POT uses the weights as given)
    ref = ot.wasserstein_1d(u, v, norm(wu), norm(wv), p=p)
    assert power == pytest.approx(ref, rel=1e-10, abs=1e-10)
    assert power == pytest.approx(wasserstein_1d(u, v, wu, wv, p=p) ** p, rel=1e-10, abs=1e-10)
    # the coupling is a plan with the right marginals whose cost is W_p^p
    i, j, mass = monotone_coupling(u, v, wu, wv)
    assert (mass >= 0).all() and mass.sum() == pytest.approx(1.0, rel=1e-12)
    a = np.full(len(u), 1 / len(u)) if wu is None else wu / wu.sum()
    b = np.full(len(v), 1 / len(v)) if wv is None else wv / wv.sum()
    np.testing.assert_allclose(np.bincount(i, mass, minlength=len(u)), a, atol=1e-12)
    np.testing.assert_allclose(np.bincount(j, mass, minlength=len(v)), b, atol=1e-12)
    assert (mass * np.abs(u[i] - v[j]) ** p).sum() == pytest.approx(power, rel=1e-10, abs=1e-10)


def test_weighted_ties_match_scipy():
    u, v = np.array([0.0, 1.0, 1.0, 1.0, 2.0]), np.array([1.0, 1.0, 3.0])
    wu, wv = np.array([0.1, 0.5, 0.2, 0.7, 0.3]), np.array([0.4, 0.1, 0.6])
    assert wasserstein_1d(u, v, wu, wv, p=1) == pytest.approx(scipy.stats.wasserstein_distance(u, v, wu, wv),
                                                              rel=1e-14)
