"""Sliced Wasserstein: POT on the same directions, the seed's directions, properties, torch, batches,
bad input."""

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import otmetrics
from otmetrics import random_projections, sliced_wasserstein, wasserstein


def cloud(rng, n, d, shift=0.0):
    return rng.normal(size=(n, d)) + shift


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.integers(1, 6), st.integers(1, 40),
       st.sampled_from([1.0, 1.5, 2.0, 3.0]), st.booleans(), st.integers(0, 2**31))
def test_equals_pot_on_the_same_projections(n, m, d, n_projections, p, weighted, seed):
    rng = np.random.default_rng(seed)
    x, y = cloud(rng, n, d), cloud(rng, m, d, 0.5)
    a, b = (rng.random(n) + 0.01, rng.random(m) + 0.01) if weighted else (None, None)
    theta = random_projections(d, n_projections, seed=seed % 1000)
    ours = sliced_wasserstein(x, y, a=a, b=b, p=p, projections=theta)
    ref = ot.sliced_wasserstein_distance(x, y, None if a is None else a / a.sum(),
                                         None if b is None else b / b.sum(), p=p, projections=theta.T)
    assert ours == pytest.approx(ref, rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("d, n_projections, seed", [(1, 5, 0), (3, 50, 7), (10, 200, 123)])
def test_a_seed_draws_pots_directions(d, n_projections, seed):
    theta = random_projections(d, n_projections, seed)
    assert theta.shape == (n_projections, d)
    np.testing.assert_allclose((theta**2).sum(1), 1.0, rtol=1e-14)
    np.testing.assert_array_equal(theta, ot.sliced.get_random_projections(d, n_projections, seed=seed).T)
    rng = np.random.default_rng(seed)
    x, y = cloud(rng, 40, d), cloud(rng, 30, d, 1.0)
    # the defaults are POT's: the same seed gives the same value without passing projections
    ours = sliced_wasserstein(x, y, seed=seed, n_projections=n_projections)
    assert ours == pytest.approx(ot.sliced_wasserstein_distance(x, y, n_projections=n_projections, seed=seed),
                                 rel=1e-12)
    if n_projections == 50:
        assert sliced_wasserstein(x, y, seed=seed) == pytest.approx(
            ot.sliced_wasserstein_distance(x, y, seed=seed), rel=1e-12)


def test_seeds_are_reproducible_and_differ():
    rng = np.random.default_rng(0)
    x, y = cloud(rng, 30, 4), cloud(rng, 30, 4, 1.0)
    assert sliced_wasserstein(x, y, seed=3) == sliced_wasserstein(x, y, seed=3)
    assert sliced_wasserstein(x, y, seed=3) != sliced_wasserstein(x, y, seed=4)
    # torch input draws the same directions (on the host), hence the same value
    value = sliced_wasserstein(torch.tensor(x), torch.tensor(y), seed=3)
    assert value.item() == pytest.approx(sliced_wasserstein(x, y, seed=3), rel=1e-13)


def test_worked_values():
    x = np.array([[0.0, 0.0], [1.0, 0.0]])
    y = x + [0.0, 2.0]
    # along the shift every point moves by 2, across it nothing moves: sqrt((4 + 0) / 2)
    both = [[0.0, 1.0], [1.0, 0.0]]
    assert sliced_wasserstein(x, y, projections=both) == pytest.approx(np.sqrt(2), rel=1e-15)
    assert sliced_wasserstein(x, y, p=1, projections=both) == pytest.approx(1.0, rel=1e-15)
    # a translation t: SW_2^2 = mean_l <theta_l, t>^2, and E <theta, t>^2 = |t|^2 / d on the sphere
    rng = np.random.default_rng(1)
    x = cloud(rng, 20, 3)
    t = np.array([1.0, -2.0, 0.5])
    theta = random_projections(3, 20_000, seed=5)
    assert sliced_wasserstein(x, x + t, projections=theta) ** 2 == pytest.approx(np.mean((theta @ t) ** 2),
                                                                                rel=1e-12)
    random = sliced_wasserstein(x, x + t, n_projections=20_000, seed=5)
    assert random**2 == pytest.approx(t @ t / 3, rel=0.03)
    # in one dimension every direction is +-1: the sliced distance is W_p itself
    u, v = rng.normal(size=25), rng.normal(size=17)
    line = otmetrics.wasserstein_1d(u, v, p=3)
    assert sliced_wasserstein(u, v, p=3, n_projections=7) == pytest.approx(line, rel=1e-13)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 12), st.integers(1, 4), st.sampled_from([1.0, 2.0, 2.5]), st.integers(0, 2**31))
def test_metric_properties_and_the_bound_by_w_p(n, d, p, seed):
    rng = np.random.default_rng(seed)
    x, y, z = cloud(rng, n, d), cloud(rng, n + 1, d, 0.3), cloud(rng, n + 2, d, -0.2)
    theta = random_projections(d, 30, seed % 97)
    sw = lambda u, v: sliced_wasserstein(u, v, p=p, projections=theta)  # noqa: E731
    assert sw(x, y) == pytest.approx(sw(y, x), rel=1e-12, abs=1e-14)
    assert sw(x, x) == 0.0
    assert sw(x, z) <= sw(x, y) + sw(y, z) + 1e-12
    # each projection is 1-Lipschitz, so every term is below W_p^p: SW_p <= W_p
    assert sw(x, y) <= wasserstein(x, y, p=p) * (1 + 1e-12) + 1e-12
    # invariances with the directions moved along: translation of both, rotation of everything
    shift = rng.normal(size=d)
    assert sw(x + shift, y + shift) == pytest.approx(sw(x, y), rel=1e-9, abs=1e-12)
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    rotated = sliced_wasserstein(x @ rotation.T, y @ rotation.T, p=p, projections=theta @ rotation.T)
    assert rotated == pytest.approx(sw(x, y), rel=1e-9, abs=1e-12)


def test_weights_zero_and_duplicates():
    rng = np.random.default_rng(2)
    x, y = cloud(rng, 6, 3), cloud(rng, 5, 3, 1.0)
    theta = random_projections(3, 40, seed=1)
    # a point of weight zero does not count; a point twice is a point of weight 2
    a = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    assert sliced_wasserstein(x, y, a=a, projections=theta) == pytest.approx(
        sliced_wasserstein(x[:5], y, projections=theta), rel=1e-12)
    doubled = np.concatenate([x, x[:1]])
    a = np.array([2.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    assert sliced_wasserstein(x, y, a=a, projections=theta) == pytest.approx(
        sliced_wasserstein(doubled, y, projections=theta), rel=1e-12)
    # weights are normalised: a scale changes nothing
    assert sliced_wasserstein(x, y, a=3 * a, projections=theta) == pytest.approx(
        sliced_wasserstein(x, y, a=a, projections=theta), rel=1e-13)


def test_batches_over_leading_axes():
    rng = np.random.default_rng(3)
    X, Y = rng.normal(size=(2, 3, 15, 4)), rng.normal(size=(3, 11, 4)) + 0.5
    A = rng.random((2, 3, 15))
    out = sliced_wasserstein(X, Y, a=A, p=1.5, seed=2)
    assert out.shape == (2, 3)
    for i in range(2):
        for j in range(3):
            one = sliced_wasserstein(X[i, j], Y[j], a=A[i, j], p=1.5, seed=2)
            assert out[i, j] == pytest.approx(one, rel=1e-12)
    # one cloud against a batch, uniform weights, equal sizes (the sorting path)
    out = sliced_wasserstein(X[0, 0], rng.normal(size=(5, 15, 4)), seed=0)
    assert out.shape == (5,)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_in_torch_out(dtype):
    rng = np.random.default_rng(4)
    x, y, b = cloud(rng, 20, 3), cloud(rng, 13, 3, 0.4), rng.random(13)
    value = sliced_wasserstein(torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype), b=torch.tensor(b),
                               seed=1)
    assert isinstance(value, torch.Tensor) and value.dtype == dtype and value.shape == ()
    tol = 1e-5 if dtype == torch.float32 else 1e-13
    assert value.item() == pytest.approx(sliced_wasserstein(x, y, b=b, seed=1), rel=tol)
    # torch projections alone make the output a tensor
    theta = torch.tensor(random_projections(3, 8, 0))
    assert isinstance(sliced_wasserstein(x, y, projections=theta), torch.Tensor)


def test_gradients():
    rng = np.random.default_rng(5)
    y = torch.tensor(cloud(rng, 7, 3, 0.5))
    theta = torch.tensor(random_projections(3, 6, 0))
    x = torch.tensor(cloud(rng, 9, 3), requires_grad=True)
    a = torch.tensor(rng.random(9) + 0.1, requires_grad=True)
    for p in (1.0, 2.0, 3.0):
        assert torch.autograd.gradcheck(
            lambda x, a: sliced_wasserstein(x, y, a=a, p=p, projections=theta), (x, a))
    # the directions themselves, for learned slices (p = 2 keeps the objective smooth)
    t = theta.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: sliced_wasserstein(x.detach(), y, projections=t) ** 2, (t,))
    # identical clouds: the value is 0 and the gradient 0, not NaN
    z = torch.tensor(cloud(rng, 5, 3), requires_grad=True)
    sliced_wasserstein(z, z.detach().clone(), projections=theta).backward()
    assert torch.equal(z.grad, torch.zeros_like(z))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_projections": 0}, r"^n_projections: must be finite and > 0, got 0"),
        ({"n_projections": 2.5}, r"^n_projections: must be an integer"),
        ({"projections": [[1.0, 1.0, 0.0]]}, r"^projections: rows must be unit vectors .* got norm 1.414"),
        ({"projections": [[1.0, 0.0]]}, r"^projections: expected shape \(n_projections, 3\)"),
        ({"projections": np.eye(3)[:, :2]}, r"^projections: .*POT's layout .* pass projections.T"),
        ({"projections": [[np.nan, 0.0, 1.0]]}, r"^projections: directions must be finite"),
        ({"projections": [1.0, 0.0, 0.0]}, r"^projections: expected 2 dimension"),
        ({"projections": np.eye(3), "n_projections": 4}, r"^n_projections: 4 differs from the number"),
        ({"p": 0.5}, r"^p: must be a finite number >= 1"),
        ({"seed": -1}, r"^seed: must be finite and >= 0"),
        ({"seed": 2**32}, r"^seed: must be < 2\*\*32"),
        ({"a": [1.0, -1.0, 1.0, 1.0]}, r"^a: weights must be non-negative"),
        ({"a": [1.0, 1.0]}, r"^a: expected 4 weights"),
        ({"b": [0.0, 0.0, 0.0]}, r"^b: total mass must be positive"),
    ],
)
def test_bad_input(kwargs, match):
    x, y = np.zeros((4, 3)), np.ones((3, 3))
    with pytest.raises(ValueError, match=match):
        sliced_wasserstein(x, y, **kwargs)


def test_bad_points():
    with pytest.raises(ValueError, match=r"^x: coordinates must be finite, got nan"):
        sliced_wasserstein([[np.nan, 0.0]], [[0.0, 0.0]])
    with pytest.raises(ValueError, match=r"^y: points must have the dimension of x \(2\), got 3"):
        sliced_wasserstein(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"^y: batch shape \(3,\) does not broadcast with x's \(2,\)"):
        sliced_wasserstein(np.zeros((2, 4, 2)), np.zeros((3, 4, 2)))
    with pytest.raises(ValueError, match=r"^x: must not be empty"):
        sliced_wasserstein(np.zeros((0, 2)), np.zeros((3, 2)))


def test_huge_and_tiny_coordinates_neither_overflow_nor_underflow():
    rng = np.random.default_rng(6)
    x, y = cloud(rng, 8, 3), cloud(rng, 6, 3, 0.5)
    theta = random_projections(3, 10, 0)
    for scale in (2.0**900, 2.0**-900):  # exact scalings: the value scales exactly
        for p in (1.0, 2.0, 3.0):
            ref = sliced_wasserstein(x, y, p=p, projections=theta)
            scaled = sliced_wasserstein(x * scale, y * scale, p=p, projections=theta)
            assert scaled == pytest.approx(ref * scale, rel=1e-14)
    assert sliced_wasserstein([[0.0, 0.0]], [[1e308, 0.0]], projections=[[1.0, 0.0]]) == 1e308


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_cpu(dtype):
    rng = np.random.default_rng(7)
    x, y, b = rng.normal(size=(2, 300, 5)), rng.normal(size=(2, 200, 5)) + 0.3, rng.random(200)
    on = lambda t, device: torch.tensor(t, dtype=dtype, device=device)  # noqa: E731
    cpu = sliced_wasserstein(on(x, "cpu"), on(y, "cpu"), b=on(b, "cpu"), seed=4)
    xt = on(x, "cuda").requires_grad_(True)
    gpu = sliced_wasserstein(xt, on(y, "cuda"), b=on(b, "cuda"), seed=4)
    assert gpu.device.type == "cuda" and gpu.dtype == dtype
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-4 if dtype == torch.float32 else 1e-12, atol=0)
    gpu.sum().backward()
    assert xt.grad.device.type == "cuda" and torch.isfinite(xt.grad).all()
    with pytest.raises(ValueError, match=r"^y: on device cpu"):
        sliced_wasserstein(xt, torch.tensor(y))
