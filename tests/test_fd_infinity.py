"""fd_infinity: dgm-eval's compute_FD_infinity transcribed (with a seeded generator: the same
subsets), the extrapolation on Gaussian features whose exact FD is known, warnings, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch

import otmetrics
from otmetrics import FDInfinityResult, GaussianStats, NumericalWarning, fd_infinity, frechet_distance
from otmetrics.generative.fd_infinity import fd_infinity_sizes


def dgm_eval_fd_infinity(reps1, reps2, num_points=15, rng=None):
    """dgm-eval's compute_FD_infinity (metrics/fd.py) with its generator passed in: sizes from
    np.linspace(min(5000, max(len(reps2) // 10, 2)), len(reps2), num_points).astype('int32'),
    rng.choice(reps2, size, replace=False) per size, the FD of its compute_FD_with_stats
    (scipy.linalg.sqrtm), and the intercept of the least-squares line in 1 / size."""
    batches = np.linspace(min(5000, max(len(reps2) // 10, 2)), len(reps2), num_points).astype("int32")
    mu1, sigma1 = reps1.mean(0), np.cov(reps1, rowvar=False)
    fds = []
    for size in batches:
        act = rng.choice(reps2, size, replace=False)
        mu2, sigma2 = act.mean(0), np.cov(act, rowvar=False)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2).real
        fds.append(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))
    design = np.stack([1 / batches, np.ones(num_points)], 1)     # what LinearRegression fits
    slope, intercept = np.linalg.lstsq(design, np.array(fds), rcond=None)[0]
    return intercept, np.array(fds), batches


def test_equals_dgm_eval_with_the_same_generator():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(3000, 12))
    fake = rng.normal(size=(1500, 12)) * 1.1 + 0.1
    for seed, num_points in ((7, 15), (1, 4)):
        expected, fds, sizes = dgm_eval_fd_infinity(real, fake, num_points, np.random.default_rng(seed))
        result = fd_infinity(real, fake, num_points=num_points, seed=seed)
        assert isinstance(result, FDInfinityResult)
        np.testing.assert_array_equal(result.n, sizes)
        np.testing.assert_allclose(result.fd, fds, rtol=1e-10)
        assert result.value == pytest.approx(expected, rel=1e-10)
    assert fd_infinity(real, fake, seed=3).value == fd_infinity(real, fake, seed=3).value   # seeded
    assert fd_infinity(real, fake, seed=3).value != fd_infinity(real, fake, seed=4).value


def test_the_sizes_are_dgm_evals():
    assert fd_infinity_sizes(50_000).tolist()[:3] == [5000, 8214, 11428]
    assert fd_infinity_sizes(50_000)[-1] == 50_000 and len(fd_infinity_sizes(50_000)) == 15
    assert fd_infinity_sizes(30, 3).tolist() == [3, 16, 30]
    assert fd_infinity_sizes(15, 15).tolist() == [2, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]


def test_the_extrapolation_is_closer_to_the_exact_fd_than_the_fd_of_all_samples():
    # Gaussian features with known moments: the exact FD is the formula on them, the real side is
    # given exactly (its statistics, not samples), and FD_N is biased upwards by about c / N.
    d, n = 64, 2000
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(d, d)) / np.sqrt(d), rng.normal(size=(d, d)) / np.sqrt(d)
    cov_real, cov_fake = a @ a.T + 0.5 * np.eye(d), b @ b.T + 0.5 * np.eye(d)
    mean_real, mean_fake = np.zeros(d), np.full(d, 0.1)
    exact = frechet_distance(mean_real, cov_real, mean_fake, cov_fake)
    real = GaussianStats.from_moments(mean_real, cov_real)
    chol = np.linalg.cholesky(cov_fake)
    ratios = []
    for seed in range(5):  # seeded: deterministic; over 20 seeds the largest ratio was 0.73
        fake = mean_fake + np.random.default_rng(100 + seed).normal(size=(n, d)) @ chol.T
        result = fd_infinity(real, fake, seed=seed)
        assert result.fd[-1] - exact > 0.3          # the bias at N = 2000 (about 0.6)
        assert result.slope > 0
        ratios.append(abs(result.value - exact) / abs(result.fd[-1] - exact))
    assert max(ratios) < 1 and np.mean(ratios) < 0.5


def test_real_statistics_tensors_and_types():
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(2000, 3)), rng.normal(size=(600, 3)) + 0.5
    from_rows = fd_infinity(real, fake, num_points=5)
    from_stats = fd_infinity(GaussianStats.from_features(real), fake, num_points=5)
    assert from_stats.value == pytest.approx(from_rows.value, rel=1e-12)
    assert isinstance(from_rows.value, float) and from_rows.n.dtype == np.int64
    t = fd_infinity(torch.from_numpy(real), torch.from_numpy(fake).float(), num_points=5)
    assert isinstance(t.value, torch.Tensor) and t.value.dtype == torch.float32
    assert float(t.value) == pytest.approx(from_rows.value, rel=1e-5)
    assert otmetrics.fd_infinity is fd_infinity


def test_few_samples_warn_once():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(500, 40)), rng.normal(size=(100, 40))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fd_infinity(real, fake, num_points=5)   # sizes 10, 32, 55, 77, 100: two have <= 40 samples
    assert [w.category for w in caught] == [NumericalWarning]
    assert "fake: 2 of the 5 subsets (sizes 10 to 32) give a singular covariance in 40 dimensions" in str(
        caught[0].message)


def test_bad_input():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(50, 3)), rng.normal(size=(40, 3))
    with pytest.raises(ValueError, match="fake: expected points of dimension 3, got 2"):
        fd_infinity(real, fake[:, :2])
    with pytest.raises(ValueError, match=r"num_points: must be an integer >= 2 \(a line needs two points\)"):
        fd_infinity(real, fake, num_points=1)
    with pytest.raises(ValueError, match="num_points: must be an integer, got 2.5"):
        fd_infinity(real, fake, num_points=2.5)
    with pytest.raises(ValueError, match="seed: must be finite and >= 0, got -1"):
        fd_infinity(real, fake, seed=-1)
    with pytest.raises(ValueError, match="fake: need at least 2 samples, got 1"):
        fd_infinity(real, fake[:1])
    with pytest.raises(ValueError, match="fake: need samples for at least 2 distinct subset sizes, got 2"):
        fd_infinity(real, fake[:2])
    bad = fake.copy()
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match="fake: coordinates must be finite, got inf"):
        fd_infinity(real, bad)
    with pytest.raises(ValueError, match="real: the statistics hold no samples"):
        fd_infinity(GaussianStats(), fake)
