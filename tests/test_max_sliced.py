"""Max-sliced Wasserstein: known maxima, never below its random starts (POT's value), bounds, numpy and
torch agree, envelope gradients, batches, warnings, bad input."""

import warnings

import numpy as np
import ot
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import otmetrics
from otmetrics import (MaxSlicedResult, max_sliced_wasserstein, random_projections, sliced_wasserstein,
                       wasserstein)


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("d", [2, 5, 20])
def test_a_translation_is_found_exactly(p, d):
    # every projection moves by <theta, t>: W_p(theta) = |<theta, t>|, largest at t / |t|, = W_p
    rng = np.random.default_rng(d)
    x = rng.normal(size=(60, d))
    t = rng.normal(size=d)
    result = max_sliced_wasserstein(x, x + t, p=p)
    assert isinstance(result, MaxSlicedResult) and result.converged
    assert result.value == pytest.approx(np.linalg.norm(t), rel=1e-12)
    np.testing.assert_allclose(abs(result.direction @ t) / np.linalg.norm(t), 1.0, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(result.direction), 1.0, rtol=1e-14)
    assert result.value >= result.start_value


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_measures_that_differ_along_one_axis(p):
    # both clouds live on the first axis: every direction sees cos(angle) times the 1-D problem
    rng = np.random.default_rng(1)
    u, v = rng.normal(size=40), rng.normal(size=30) * 2 + 1
    x = np.zeros((40, 4))
    y = np.zeros((30, 4))
    x[:, 0], y[:, 0] = u, v
    result = max_sliced_wasserstein(x, y, p=p, seed=3)
    assert result.value == pytest.approx(otmetrics.wasserstein_1d(u, v, p=p), rel=1e-12)
    np.testing.assert_allclose(abs(result.direction[0]), 1.0, atol=1e-12)
    # a shared spread in the other coordinates, identical in both clouds, changes nothing along axis 0
    noise = rng.normal(size=(40, 3))
    x2 = np.c_[u, noise]
    y2 = np.c_[np.sort(u) + 3.0, noise[np.argsort(u)]]  # y = x moved by 3 along axis 0 (reordered)
    result = max_sliced_wasserstein(x2, y2, p=p)
    assert result.value == pytest.approx(3.0, rel=1e-12)
    np.testing.assert_allclose(np.abs(result.direction), [1.0, 0, 0, 0], atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 25), st.integers(2, 25), st.integers(1, 5), st.sampled_from([1.0, 1.5, 2.0, 3.0]),
       st.booleans(), st.integers(0, 2**31))
def test_never_below_its_random_starts_and_between_sw_and_w(n, m, d, p, weighted, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 1.5 + 0.2
    a, b = (rng.random(n) + 0.05, rng.random(m) + 0.05) if weighted else (None, None)
    if weighted:
        a, b = a / a.sum(), b / b.sum()  # wasserstein (the LP) wants equal masses
    theta = random_projections(d, 20, seed % 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", otmetrics.ConvergenceWarning)  # a rare long ascent is not the point
        result = max_sliced_wasserstein(x, y, a=a, b=b, p=p, projections=theta)
    # the start is POT's max-sliced value on the same directions
    ref = ot.max_sliced_wasserstein_distance(x, y, a, b, p=p, projections=theta.T)
    assert result.start_value == pytest.approx(ref, rel=1e-10, abs=1e-12)
    assert result.value >= result.start_value
    assert result.value >= sliced_wasserstein(x, y, a=a, b=b, p=p, projections=theta) * (1 - 1e-12)
    # a projection is 1-Lipschitz: no direction beats the full W_p
    assert result.value <= wasserstein(x, y, a=a, b=b, p=p) * (1 + 1e-9) + 1e-12
    # and the direction is a unit vector whose 1-D value is the value reported
    direction = result.direction
    assert np.linalg.norm(direction) == pytest.approx(1.0, rel=1e-12)
    along = otmetrics.wasserstein_1d(x @ direction, y @ direction, a, b, p=p)
    assert along == pytest.approx(result.value, rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_more_starts_never_lose(p):
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(80, 12)), rng.normal(size=(70, 12)) * np.r_[1.6, np.ones(11)]
    values = [max_sliced_wasserstein(x, y, p=p, n_starts=k, n_projections=20).value for k in (1, 3, 20, 50)]
    assert values[0] <= values[1] * (1 + 1e-12) and values[1] <= values[2] * (1 + 1e-12)
    assert values[3] == values[2]  # all 20 directions either way


def test_identical_measures():
    x = np.random.default_rng(2).normal(size=(10, 3))
    result = max_sliced_wasserstein(x, x[::-1])
    assert result.value == 0.0 and result.converged and result.n_iter == 0
    xt = torch.tensor(x, requires_grad=True)
    max_sliced_wasserstein(xt, torch.tensor(x)).value.backward()
    assert torch.equal(xt.grad, torch.zeros_like(xt))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_agrees_with_numpy_and_differentiates(dtype):
    rng = np.random.default_rng(3)
    x, y, b = rng.normal(size=(30, 4)), rng.normal(size=(25, 4)) * [2.0, 1, 1, 1], rng.random(25)
    ref = max_sliced_wasserstein(x, y, b=b, seed=1)
    xt = torch.tensor(x, dtype=dtype, requires_grad=True)
    result = max_sliced_wasserstein(xt, torch.tensor(y, dtype=dtype), b=torch.tensor(b, dtype=dtype), seed=1)
    assert result.value.dtype == result.direction.dtype == result.start_value.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    assert result.value.item() == pytest.approx(ref.value, rel=tol)
    if dtype == torch.float64:  # the same ascent: numpy's coupling gradient is autograd's
        np.testing.assert_allclose(result.direction.numpy(), ref.direction, atol=1e-8)
        assert result.n_iter == ref.n_iter
    result.value.backward()
    # envelope theorem: the gradient is that of W_p at the fixed optimal direction
    direction = result.direction.detach()
    xe = torch.tensor(x, dtype=dtype, requires_grad=True)
    otmetrics.wasserstein_1d(xe @ direction, torch.tensor(y, dtype=dtype) @ direction,
                             None, torch.tensor(b, dtype=dtype), p=2).backward()
    torch.testing.assert_close(xt.grad, xe.grad)


def test_the_envelope_gradient_matches_finite_differences():
    # a smooth case: y is x moved by t plus a small distortion; the maximiser moves smoothly with x
    rng = np.random.default_rng(4)
    x = rng.normal(size=(12, 3))
    y = torch.tensor(x + [2.0, 1.0, 0.0] + 0.01 * rng.normal(size=(12, 3)))
    xt = torch.tensor(x, requires_grad=True)
    max_sliced_wasserstein(xt, y, tol=1e-12).value.backward()
    h = 1e-6
    for i, k in [(0, 0), (3, 1), (7, 2)]:
        plus, minus = x.copy(), x.copy()
        plus[i, k] += h
        minus[i, k] -= h
        fd = (max_sliced_wasserstein(plus, y.numpy(), tol=1e-12).value
              - max_sliced_wasserstein(minus, y.numpy(), tol=1e-12).value) / (2 * h)
        assert xt.grad[i, k].item() == pytest.approx(fd, abs=1e-6)


def test_batches_have_their_own_directions():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(3, 20, 3))
    shifts = np.array([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]])
    Y = X + shifts[:, None, :]
    result = max_sliced_wasserstein(X, Y)
    assert result.value.shape == (3,) and result.direction.shape == (3, 3) and result.n_iter.shape == (3,)
    np.testing.assert_allclose(result.value, [1.0, 2.0, 3.0], rtol=1e-12)
    np.testing.assert_allclose(np.abs(result.direction), np.eye(3), atol=1e-6)
    one = max_sliced_wasserstein(X[1], Y[1])
    assert result.value[1] == pytest.approx(one.value, rel=1e-13)
    # a batch against one cloud, torch
    res = max_sliced_wasserstein(torch.tensor(X), torch.tensor(X[0] + 1.0))
    assert res.value.shape == (3,) and res.direction.shape == (3, 3)


def test_an_early_stop_warns_and_keeps_the_start():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(50, 8)), rng.normal(size=(50, 8)) * 1.5
    stopped = r"best ascent of 1 of 1 problem\(s\) stopped at max_iter=2"
    with pytest.warns(otmetrics.ConvergenceWarning, match=stopped):
        result = max_sliced_wasserstein(x, y, max_iter=2)
    assert not result.converged and result.n_iter == 2 and result.value >= result.start_value
    with pytest.warns(otmetrics.ConvergenceWarning):
        result = max_sliced_wasserstein(x, y, max_iter=0)
    assert result.value == result.start_value
    full = max_sliced_wasserstein(x, y)
    assert full.converged and full.value > result.value


def test_huge_coordinates():
    x = np.random.default_rng(7).normal(size=(10, 2))
    result = max_sliced_wasserstein(x * 2.0**800, (x + [3.0, 4.0]) * 2.0**800)
    assert result.value == pytest.approx(5.0 * 2.0**800, rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"tol": 0.0}, r"^tol: must be finite and > 0"),
        ({"n_starts": 0}, r"^n_starts: must be finite and > 0"),
        ({"tol": float("nan")}, r"^tol: must be finite and > 0"),
        ({"max_iter": -1}, r"^max_iter: must be finite and >= 0"),
        ({"n_projections": 0}, r"^n_projections: must be finite and > 0"),
        ({"projections": [[1.0, 0.0]]}, r"^projections: expected shape \(n_projections, 3\)"),
        ({"projections": [[0.5, 0.5, 0.5]]}, r"^projections: rows must be unit vectors"),
        ({"p": 0.0}, r"^p: must be a finite number >= 1"),
        ({"b": [1.0, np.inf, 1.0]}, r"^b: weights must be finite"),
    ],
)
def test_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        max_sliced_wasserstein(np.zeros((4, 3)), np.ones((3, 3)), **kwargs)
    with pytest.raises(ValueError, match=r"^x: coordinates must be finite"):
        max_sliced_wasserstein([[np.inf, 0.0]], [[0.0, 0.0]])
    with pytest.raises(ValueError, match=r"^y: points must have the dimension of x"):
        max_sliced_wasserstein(np.zeros((3, 2)), np.zeros((3, 1)))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(300, 6)), rng.normal(size=(250, 6)) * [2.0, 1, 1, 1, 1, 1]
    cpu = max_sliced_wasserstein(x, y, seed=2)
    xt = torch.tensor(x, device="cuda", requires_grad=True)
    gpu = max_sliced_wasserstein(xt, torch.tensor(y, device="cuda"), seed=2)
    assert gpu.value.device.type == "cuda" and gpu.direction.device.type == "cuda"
    assert gpu.value.item() == pytest.approx(cpu.value, rel=1e-9)
    gpu.value.backward()
    assert torch.isfinite(xt.grad).all()
