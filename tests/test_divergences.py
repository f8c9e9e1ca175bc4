"""KL, JS, TV and entropy: scipy references, conventions, the parallel-lines example, bad input."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.distance import jensenshannon

from otmetrics import entropy, js_distance, js_divergence, kl_divergence, total_variation, wasserstein

hist_pairs = st.integers(1, 12).flatmap(lambda k: st.tuples(
    *[hnp.arrays(np.float64, (3, k), elements=st.one_of(st.just(0.0), st.floats(1e-6, 10)))
      .filter(lambda h: (h.sum(-1) > 0).all())] * 2))
bases = st.sampled_from([None, 2.0, 10.0])


@settings(max_examples=80, deadline=None)
@given(hist_pairs, bases)
def test_match_scipy(pair, base):
    p, q = pair
    np.testing.assert_allclose(entropy(p, base=base), scipy.stats.entropy(p, base=base, axis=-1), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(kl_divergence(p, q, base=base), scipy.stats.entropy(p, q, base=base, axis=-1),
                               rtol=1e-12, atol=1e-15)
    with np.errstate(invalid="ignore"):
        ref = jensenshannon(p, q, base=base, axis=-1)
    # scipy takes the square root of a rounding error below zero (NaN) for nearly equal histograms;
    # we clamp the divergence at 0, so there our distance must be exactly 0
    assert np.all(js_distance(p, q, base=base)[np.isnan(ref)] == 0)
    np.testing.assert_allclose(js_distance(p, q, base=base)[~np.isnan(ref)], ref[~np.isnan(ref)],
                               rtol=1e-12, atol=1e-12)
    # axis: our default reduces the last axis; axis=0 reduces like scipy's default
    np.testing.assert_allclose(kl_divergence(p.T, q.T, axis=0, base=base), scipy.stats.entropy(p.T, q.T, base=base),
                               rtol=1e-12, atol=1e-15)


@settings(max_examples=60, deadline=None)
@given(hist_pairs)
def test_properties(pair):
    p, q = pair
    js = js_divergence(p, q)
    assert np.all(js >= 0) and np.all(js <= math.log(2) + 1e-15)
    np.testing.assert_allclose(js, js_divergence(q, p), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(js_distance(p, q) ** 2, js, rtol=1e-12, atol=1e-15)
    tv = total_variation(p, q)
    assert np.all((tv >= 0) & (tv <= 1 + 1e-15))
    assert np.all(kl_divergence(p, q) >= -1e-15)
    assert np.all(kl_divergence(p, p) == 0) and np.all(js_divergence(p, p) == 0) and np.all(total_variation(p, p) == 0)
    # Pinsker: TV <= sqrt(KL / 2)
    assert np.all(tv <= np.sqrt(kl_divergence(p, q) / 2) + 1e-12)


def test_conventions():
    assert kl_divergence([0.5, 0.5, 0.0], [0.5, 0.25, 0.25]) == pytest.approx(0.5 * math.log(2))  # 0 log 0 = 0
    assert kl_divergence([0.5, 0.5], [1.0, 0.0]) == math.inf  # q = 0 < p
    assert entropy([1.0, 0.0]) == 0.0
    assert entropy([0.25] * 4, base=2) == pytest.approx(2.0)
    assert kl_divergence([1, 3], [2, 2]) == pytest.approx(kl_divergence([0.25, 0.75], [0.5, 0.5]))  # normalised
    assert total_variation([1.0, 0.0], [0.5, 0.5]) == 0.5


@pytest.mark.parametrize("theta", [0.5, 1.0, 3.0])
def test_parallel_lines_on_a_grid(theta):
    # P_0 = (0, Z), P_theta = (theta, Z), Z ~ U[0, 1], histogrammed on a grid of cells:
    # disjoint supports -> JS = log 2, KL = inf, TV = 1, while W1 = |theta|
    z = np.random.default_rng(0).random(400)
    x_edges = np.linspace(-0.25, theta + 0.25, 2 * int(theta / 0.25) + 3)
    y_edges = np.linspace(0, 1, 11)
    h0, _, _ = np.histogram2d(np.zeros_like(z), z, bins=[x_edges, y_edges])
    h1, _, _ = np.histogram2d(np.full_like(z, theta), z, bins=[x_edges, y_edges])
    p, q = h0.ravel(), h1.ravel()
    assert js_divergence(p, q) == pytest.approx(math.log(2), rel=1e-15)
    assert js_divergence(p, q, base=2) == pytest.approx(1.0, rel=1e-15)
    assert kl_divergence(p, q) == math.inf and kl_divergence(q, p) == math.inf
    assert total_variation(p, q) == 1.0
    pts0, pts1 = np.stack([np.zeros_like(z), z], 1), np.stack([np.full_like(z, theta), z], 1)
    assert wasserstein(pts0[:100], pts1[:100], p=1) == pytest.approx(theta, rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch(dtype):
    r = np.random.default_rng(2)
    p, q = r.random((4, 6)), r.random((4, 6))
    q[0, 1] = 0.0
    pt, qt = torch.tensor(p, dtype=dtype, requires_grad=True), torch.tensor(q, dtype=dtype)
    for fn in (kl_divergence, js_divergence, js_distance, total_variation):
        out = fn(pt, qt)
        assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.shape == (4,)
        np.testing.assert_allclose(out.detach().numpy(), fn(p, q), rtol=1e-5 if dtype == torch.float32 else 1e-12)
    # q has a zero where p has mass: KL(p || q) is infinite in the first row, and so in torch
    assert bool(torch.isinf(kl_divergence(pt, qt)[0])) and np.isinf(kl_divergence(p, q)[0])
    js_divergence(pt, qt).sum().backward()
    assert torch.isfinite(pt.grad).all()
    np.testing.assert_allclose(entropy(torch.tensor(p)).numpy(), entropy(p), rtol=1e-12)


@pytest.mark.parametrize("fn", [kl_divergence, js_divergence, js_distance, total_variation])
@pytest.mark.parametrize(
    "p, q, kwargs, match",
    [
        ([0.5, -0.5, 1.0], [0.3, 0.3, 0.4], {}, r"^p: probabilities must be non-negative"),
        ([0.5, 0.5], [np.nan, 1.0], {}, r"^q: probabilities must be finite"),
        ([0.0, 0.0], [0.5, 0.5], {}, r"^p: every histogram must have positive mass"),
        ([0.5, 0.5], [0.3, 0.3, 0.4], {}, r"^q: has 3 bins along axis -1, p has 2"),
        ([], [], {}, r"^p: must not be empty"),
        ([0.5, 0.6], [0.5, 0.5], {"normalize": False}, r"^p: must sum to 1 along axis -1 when normalize=False"),
        ([0.5, 0.5], [0.5, 0.5], {"axis": 3}, r"^axis: 3 is out of range"),
    ],
)
def test_bad_input(fn, p, q, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(p, q, **kwargs)


def test_bad_base_and_entropy_input():
    with pytest.raises(ValueError, match=r"^base: must be a finite positive number other than 1"):
        kl_divergence([0.5, 0.5], [0.5, 0.5], base=1)
    with pytest.raises(ValueError, match=r"^p: probabilities must be non-negative"):
        entropy([-1.0, 2.0])
    with pytest.raises(ValueError, match=r"^p: probabilities must be finite"):
        entropy([np.inf, 2.0])


def test_gradients_are_finite_at_the_edges():
    # entropy at a zero bin, JS distance between identical histograms: finite (sub)gradients, no NaN
    p = torch.tensor([0.0, 0.5, 0.5], dtype=torch.float64, requires_grad=True)
    entropy(p).backward()
    assert torch.isfinite(p.grad).all()
    q = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64, requires_grad=True)
    js_distance(q, q.detach()).backward()
    assert torch.isfinite(q.grad).all() and torch.all(q.grad == 0)


def test_axis_and_base_types():
    p = np.array([[0.2, 0.8], [0.5, 0.5]])
    assert kl_divergence(p, p[::-1], axis=np.int64(0)).shape == (2,)
    assert entropy([0.5, 0.5], base=np.int64(2)) == pytest.approx(1.0)
    for bad in (None, 1.0, True):
        with pytest.raises(ValueError, match=r"^axis: must be an integer"):
            entropy(p, axis=bad)
    with pytest.raises(ValueError, match=r"^base: must be a finite positive number"):
        entropy(p, base=np.inf)


def test_bfloat16_tensors_are_accepted():
    p = torch.tensor([0.25, 0.75], dtype=torch.bfloat16)
    q = torch.tensor([0.5, 0.5], dtype=torch.bfloat16)
    out = kl_divergence(p, q)
    assert out.dtype == torch.bfloat16
    assert float(out) == pytest.approx(kl_divergence([0.25, 0.75], [0.5, 0.5]), rel=2e-2)
