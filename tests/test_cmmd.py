"""cmmd: google-research's cmmd/distance.py transcribed (its exact formula and constants), the
properties of a biased MMD, types, gradients and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import otmetrics
from otmetrics import cmmd, mmd


def reference_distance_py(x, y):
    """cmmd/distance.py's mmd(), in numpy: sigma = 10, gamma = 1 / (2 sigma^2), the means of the
    three dense kernel matrices (diagonals included), times 1000."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x_sqnorms = np.diag(x @ x.T)
    y_sqnorms = np.diag(y @ y.T)
    gamma = 1 / (2 * 10 ** 2)
    k_xx = np.mean(np.exp(-gamma * (-2 * (x @ x.T) + x_sqnorms[:, None] + x_sqnorms[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * (x @ y.T) + x_sqnorms[:, None] + y_sqnorms[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * (y @ y.T) + y_sqnorms[:, None] + y_sqnorms[None, :])))
    return 1000 * (k_xx + k_yy - 2 * k_xy)


def unit_rows(a):
    return a / np.linalg.norm(a, axis=1, keepdims=True)


@pytest.mark.parametrize("m, n, d", [(50, 50, 8), (120, 80, 32), (300, 260, 768)])
def test_equals_the_reference_formula(m, n, d):
    rng = np.random.default_rng(d)
    x = unit_rows(rng.normal(size=(m, d)))                  # CLIP embeddings are unit vectors
    y = unit_rows(rng.normal(size=(n, d)) + 0.3 * rng.normal(size=d))
    expected = reference_distance_py(x, y)
    assert expected > 0
    for chunk in (None, 17):
        assert cmmd(x, y, chunk_size=chunk) == pytest.approx(expected, rel=1e-9)
    # unnormalised inputs are taken as they are (and the formula is the same)
    assert cmmd(x * 3, y * 3) == pytest.approx(reference_distance_py(x * 3, y * 3), rel=1e-9)


def test_it_is_the_biased_gaussian_mmd_with_bandwidth_10_times_1000():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(60, 5)) * 4, rng.normal(size=(70, 5)) * 4 + 1
    assert cmmd(x, y) == pytest.approx(1000 * mmd(x, y, kernel="gaussian", bandwidth=10, estimator="biased"),
                                       rel=1e-12)
    assert otmetrics.cmmd is cmmd


def test_properties():
    rng = np.random.default_rng(2)
    x = unit_rows(rng.normal(size=(80, 16)))
    y = unit_rows(rng.normal(size=(90, 16)) + 0.5)
    assert cmmd(x, x) == pytest.approx(0.0, abs=1e-12)            # identical sets
    assert cmmd(x, y) == pytest.approx(cmmd(y, x), rel=1e-12)     # symmetric
    assert cmmd(x, y) > 0                                          # a V-statistic: never negative
    shift = rng.normal(size=16) * 100
    assert cmmd(x + shift, y + shift) == pytest.approx(cmmd(x, y), rel=1e-9)   # translation invariant
    rot, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    assert cmmd(x @ rot, y @ rot) == pytest.approx(cmmd(x, y), rel=1e-9)      # rotation invariant
    # the reference drops images after the last full batch of 32; we do not: using only the first
    # 32 * (N // 32) rows gives its number
    assert cmmd(x[:64], y[:64]) == pytest.approx(reference_distance_py(x[:64], y[:64]), rel=1e-9)
    assert cmmd(x, y) != pytest.approx(cmmd(x[:64], y[:64]), rel=1e-3)


def test_types_and_gradients():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 6)), rng.normal(size=(30, 6)) + 0.2
    value = cmmd(x, y)
    assert isinstance(value, float)
    xt = torch.tensor(x, dtype=torch.float32, requires_grad=True)
    out = cmmd(xt, torch.tensor(y, dtype=torch.float32))
    assert out.dtype == torch.float32 and out.ndim == 0
    assert float(out.detach()) == pytest.approx(cmmd(x.astype(np.float32).astype(np.float64),
                                            y.astype(np.float32).astype(np.float64)), rel=1e-6)
    out.backward()
    assert xt.grad.shape == (40, 6) and bool(torch.isfinite(xt.grad).all())


def test_bad_input():
    x = np.ones((5, 3)) + np.arange(5)[:, None]
    with pytest.raises(ValueError, match="y: expected points of dimension 3, got 2"):
        cmmd(x, x[:, :2])
    with pytest.raises(ValueError, match="x: need at least 2 samples, got 1"):
        cmmd(x[:1], x)
    bad = x.copy()
    bad[2, 0] = np.nan
    with pytest.raises(ValueError, match="y: coordinates must be finite, got nan"):
        cmmd(x, bad)
    with pytest.raises(ValueError, match="chunk_size: must be finite and > 0, got 0"):
        cmmd(x, x, chunk_size=0)
