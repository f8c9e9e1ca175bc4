"""frechet_distance and GaussianStats: references, closed forms, properties, edge cases, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from otmetrics import GaussianStats, NumericalWarning, frechet_distance
from otmetrics.generative import frechet as frechet_module


# ------------------------------------------------------------------------------------------------
# References
# ------------------------------------------------------------------------------------------------
def sqrtm_route(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's calculate_frechet_distance, re-implemented: scipy sqrtm of the product."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def eigvals_route(mu1, sigma1, mu2, sigma2):
    """torchmetrics' / torch-fidelity's route: sqrt of the eigenvalues of the non-symmetric product."""
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    ev = np.linalg.eigvals(sigma1 @ sigma2)
    trace_sqrt = np.sqrt(ev + 0j).real.sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def random_orthogonal(d, rng):
    q, r = np.linalg.qr(rng.normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def commuting_pair(spec1, spec2, rng):
    """S_k = Q diag(spec_k) Q^T share eigenvectors: tr (S1 S2)^(1/2) = sum sqrt(a_i b_i) exactly."""
    q = random_orthogonal(len(spec1), rng)
    s1 = (q * spec1) @ q.T
    s2 = (q * spec2) @ q.T
    return (s1 + s1.T) / 2, (s2 + s2.T) / 2


def moments(x):
    return x.mean(0), np.atleast_2d(np.cov(x, rowvar=False))


def well_conditioned(d, n, rng, offset=0.0):
    x = rng.normal(size=(n, d)) @ (np.eye(d) + 0.3 * rng.normal(size=(d, d)) / np.sqrt(d)) + offset
    return moments(x)


# ------------------------------------------------------------------------------------------------
# frechet_distance: agreement with the references
# ------------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(d=st.integers(1, 40), seed=st.integers(0, 2**32 - 1), shift=st.floats(0.0, 3.0))
def test_agrees_with_pytorch_fid_sqrtm_route(d, seed, shift):
    rng = np.random.default_rng(seed)
    mu1, s1 = well_conditioned(d, 4 * d + 10, rng)
    mu2, s2 = well_conditioned(d, 4 * d + 10, rng, offset=shift)
    ours = frechet_distance(mu1, s1, mu2, s2)
    ref = sqrtm_route(mu1, s1, mu2, s2)
    assert isinstance(ours, float)
    assert ours == pytest.approx(ref, rel=1e-6, abs=1e-9 * (np.trace(s1) + np.trace(s2)))


def test_agrees_with_both_routes_at_d_256():
    rng = np.random.default_rng(1)
    mu1, s1 = well_conditioned(256, 600, rng)
    mu2, s2 = well_conditioned(256, 600, rng, offset=0.05)
    ours = frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(sqrtm_route(mu1, s1, mu2, s2), rel=1e-6)
    assert ours == pytest.approx(eigvals_route(mu1, s1, mu2, s2), rel=1e-6)


# ------------------------------------------------------------------------------------------------
# Closed forms
# ------------------------------------------------------------------------------------------------
def test_one_dimensional_closed_form():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet_distance([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9.0 + 1.0, rel=1e-14)
    # Scalars are the 1-D case, as in pytorch-fid (np.cov of (n, 1) data is 0-d).
    assert frechet_distance(1.0, 4.0, -2.0, np.cov(np.array([[0.0], [3.0], [6.0]]), rowvar=False)) == \
        pytest.approx(9.0 + 1.0, rel=1e-14)


def test_worked_example_diagonal():
    # |(0,0) - (3,4)|^2 = 25; tr(I + 4I - 2 * 2I) = 2 - 4 + ... = sum (1 - 2)^2 = 2.
    value = frechet_distance(np.zeros(2), np.eye(2), np.array([3.0, 4.0]), 4 * np.eye(2))
    assert value == pytest.approx(27.0)


@pytest.mark.parametrize("log_cond", [0, 4, 8, 12, 15])
def test_commuting_covariances_exact_at_any_conditioning(log_cond):
    """Shared eigenvectors give sum (sqrt a - sqrt b)^2 exactly, whatever the conditioning.

    At high condition numbers the fast eigenvalue route hands over to the singular-value route;
    both must reproduce the closed form to rounding of the traces.
    """
    rng = np.random.default_rng(log_cond)
    d = 60
    a = np.logspace(0, -log_cond, d) * rng.uniform(0.5, 2, d)
    b = np.logspace(0, -log_cond, d)[rng.permutation(d)] * rng.uniform(0.5, 2, d)
    s1, s2 = commuting_pair(a, b, rng)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    got = frechet_distance(mu1, s1, mu2, s2)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12 * (a.sum() + b.sum()))


@pytest.mark.parametrize("exponent", [1.0, 2.0, 3.0])
def test_identical_ill_conditioned_statistics_give_zero(exponent):
    """Power-law spectra as Inception features have (condition numbers up to 1e7): the squared
    eigenvalues of L^T S L span up to 1e14, where sqrt-amplified rounding could exceed 1e-6."""
    rng = np.random.default_rng(int(exponent))
    d = 200
    spectrum = 50 * np.arange(1, d + 1.0) ** -exponent
    s, _ = commuting_pair(spectrum, spectrum, rng)
    mu = rng.normal(size=d)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-9 * spectrum.sum()


def test_singular_commuting_covariances_exact_with_warning():
    rng = np.random.default_rng(3)
    d = 30
    a = rng.uniform(0.5, 2, d)
    b = rng.uniform(0.5, 2, d)
    a[::3] = 0.0  # rank 20
    s1, s2 = commuting_pair(a, b, rng)
    match = r"cov1: the covariance matrix is singular \(numerical rank 20 of 30\)"
    with pytest.warns(NumericalWarning, match=match):
        got = frechet_distance(np.zeros(d), s1, np.zeros(d), s2)
    assert got == pytest.approx(((np.sqrt(a) - np.sqrt(b)) ** 2).sum(), rel=1e-9)


# ------------------------------------------------------------------------------------------------
# Edge cases of the issue
# ------------------------------------------------------------------------------------------------
def test_identical_statistics_give_zero():
    rng = np.random.default_rng(0)
    mu, s = well_conditioned(128, 400, rng, offset=3.0)
    assert abs(frechet_distance(mu, s, mu, s)) < 1e-6


@pytest.mark.parametrize("n,d", [(10, 64), (100, 512)])
def test_identical_singular_statistics_give_zero_with_warning(n, d):
    """Fewer samples than dimensions: rank n - 1. The sqrt of rounded zero eigenvalues of S^2
    would add ~1e-8 * |S| per eigenvalue; the singular-value route keeps |FID| at rounding."""
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, d)) * 3 + 1
    mu, s = moments(x)
    with pytest.warns(NumericalWarning, match=f"numerical rank {n - 1} of {d}"):
        value = frechet_distance(mu, s, mu, s)
    assert abs(value) < 1e-6


def test_fewer_samples_than_dimensions_is_finite_real_and_warns():
    rng = np.random.default_rng(5)
    mu1, s1 = moments(rng.normal(size=(20, 50)))
    mu2, s2 = moments(rng.normal(size=(30, 50)) + 0.5)
    with pytest.warns(NumericalWarning) as record:
        value = frechet_distance(mu1, s1, mu2, s2)
    assert {str(w.message).split(":")[0] for w in record} == {"cov1", "cov2"}
    assert isinstance(value, float) and np.isfinite(value) and value > 0
    # The eigenvalues of S1 S2 are real and >= 0 (a product of PSD matrices): the eigvals route,
    # computed carefully, agrees; the value is no artefact of the singular route.
    assert value == pytest.approx(eigvals_route(mu1, s1, mu2, s2), rel=1e-6)


def test_zero_covariance_is_a_point_mass():
    # N(0, 0) vs N(m, S): |m|^2 + tr S.
    s2 = np.diag([1.0, 2.0, 3.0])
    with pytest.warns(NumericalWarning, match="rank 0 of 3"):
        value = frechet_distance(np.zeros(3), np.zeros((3, 3)), np.ones(3), s2)
    assert value == pytest.approx(3.0 + 6.0)


# ------------------------------------------------------------------------------------------------
# Properties
# ------------------------------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(d=st.integers(2, 20), seed=st.integers(0, 2**32 - 1), scale=st.floats(0.1, 10.0))
def test_symmetry_invariances_and_scaling(d, seed, scale):
    rng = np.random.default_rng(seed)
    mu1, s1 = well_conditioned(d, 5 * d, rng)
    mu2, s2 = well_conditioned(d, 5 * d, rng, offset=0.7)
    base = frechet_distance(mu1, s1, mu2, s2)
    assert base >= 0
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(base, rel=1e-9)
    shift = rng.normal(size=d) * 5
    assert frechet_distance(mu1 + shift, s1, mu2 + shift, s2) == pytest.approx(base, rel=1e-9)
    q = random_orthogonal(d, rng)
    assert frechet_distance(q @ mu1, q @ s1 @ q.T, q @ mu2, q @ s2 @ q.T) == pytest.approx(base, rel=1e-8)
    # Scaling features by c scales W2^2 by c^2.
    assert frechet_distance(scale * mu1, scale**2 * s1, scale * mu2, scale**2 * s2) == pytest.approx(
        scale**2 * base, rel=1e-8)


def test_triangle_inequality_of_the_square_root():
    # sqrt(FID) is the W2 distance between Gaussians: a metric.
    rng = np.random.default_rng(11)
    g = [well_conditioned(6, 40, rng, offset=o) for o in (0.0, 0.5, 1.5)]
    w = lambda i, j: np.sqrt(frechet_distance(*g[i], *g[j]))  # noqa: E731
    assert w(0, 2) <= w(0, 1) + w(1, 2) + 1e-12


def test_fast_and_robust_routes_agree(monkeypatch):
    rng = np.random.default_rng(2)
    mu1, s1 = well_conditioned(40, 200, rng)
    mu2, s2 = well_conditioned(40, 200, rng, offset=0.3)
    fast = frechet_distance(mu1, s1, mu2, s2)
    monkeypatch.setattr(frechet_module, "_FAST_ROUTE_RTOL", -1.0)  # always the SVD route
    robust = frechet_distance(mu1, s1, mu2, s2)
    assert fast == pytest.approx(robust, rel=1e-11)


# ------------------------------------------------------------------------------------------------
# Types and devices
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_in_torch_out(dtype):
    rng = np.random.default_rng(0)
    mu1, s1 = well_conditioned(8, 50, rng)
    mu2, s2 = well_conditioned(8, 50, rng, offset=1.0)
    ref = frechet_distance(mu1, s1, mu2, s2)
    t = [torch.as_tensor(v, dtype=dtype) for v in (mu1, s1, mu2, s2)]
    out = frechet_distance(*t)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.ndim == 0
    assert float(out) == pytest.approx(ref, rel=1e-6 if dtype == torch.float32 else 1e-12)


def test_result_is_detached_as_documented():
    # Not differentiable (documented): tensors that require grad are accepted, the result is a
    # plain 0-d tensor of the first tensor's dtype and device.
    rng = np.random.default_rng(1)
    mu1, s1 = well_conditioned(4, 30, rng)
    mu2, s2 = well_conditioned(4, 30, rng, offset=0.5)
    s2t = torch.tensor(s2, dtype=torch.float32, requires_grad=True)
    out = frechet_distance(mu1, s1, mu2, s2t)
    assert isinstance(out, torch.Tensor) and not out.requires_grad and out.dtype == torch.float32
    ref = frechet_distance(mu1, s1, mu2, s2t.detach().double().numpy())
    assert float(out) == pytest.approx(ref, rel=1e-6)


def test_float32_covariance_with_rounding_asymmetry_is_accepted():
    rng = np.random.default_rng(0)
    mu, s = well_conditioned(16, 100, rng)
    s32 = s.astype(np.float32)
    s32[0, 1] *= 1 + 1e-7
    assert frechet_distance(mu, s32, mu, s) < 1e-5


@pytest.mark.parametrize("case", ["full", "ill", "singular"])
def test_torch_linalg_backend_matches_numpy_backend(case):
    """The backend CUDA tensors use (torch.linalg), run here on CPU tensors."""
    rng = np.random.default_rng(4)
    d = 40
    if case == "full":
        s1, s2 = well_conditioned(d, 200, rng)[1], well_conditioned(d, 200, rng, offset=1.0)[1]
    elif case == "ill":
        spectrum = np.logspace(0, -13, d)
        s1, s2 = commuting_pair(spectrum, spectrum[::-1].copy(), rng)
    else:
        s1, s2 = moments(rng.normal(size=(15, d)))[1], moments(rng.normal(size=(60, d)))[1]
    with warnings.catch_warnings(record=True) as caught_numpy:
        warnings.simplefilter("always")
        ref = frechet_module.trace_sqrt_product(s1, s2, frechet_module.NumpyLinalg)
    with warnings.catch_warnings(record=True) as caught_torch:
        warnings.simplefilter("always")
        got = frechet_module.trace_sqrt_product(torch.from_numpy(s1), torch.from_numpy(s2),
                                                frechet_module.TorchLinalg)
    assert isinstance(got, float)
    # Agreement on the scale of the distance (tr S1 + tr S2), which is what FID needs.
    assert got == pytest.approx(ref, abs=1e-11 * (np.trace(s1) + np.trace(s2)))
    assert [str(w.message) for w in caught_torch] == [str(w.message) for w in caught_numpy]
    assert len(caught_numpy) == (1 if case == "singular" else 0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(0)
    mu1, s1 = well_conditioned(256, 600, rng)
    mu2, s2 = well_conditioned(256, 600, rng, offset=0.2)
    ref = frechet_distance(mu1, s1, mu2, s2)
    out = frechet_distance(*(torch.as_tensor(v, device="cuda") for v in (mu1, s1, mu2, s2)))
    assert out.device.type == "cuda"
    assert float(out) == pytest.approx(ref, rel=1e-9)
    x = rng.normal(size=(20, 64))
    mu, s = moments(x)
    with pytest.warns(NumericalWarning):
        value = frechet_distance(*(torch.as_tensor(v, device="cuda") for v in (mu, s, mu, s)))
        assert abs(float(value)) < 1e-6


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args,match", [
    ((np.zeros(3), np.eye(3), np.zeros(4), np.eye(4)), "mean2: feature dimensions differ"),
    ((np.zeros(3), np.eye(3), np.zeros(3), np.eye(4)), r"cov2: expected shape \(3, 3\)"),
    ((np.zeros(3), np.ones((3, 2)), np.zeros(3), np.eye(3)), "cov1: expected a square covariance"),
    ((np.zeros((3, 1)), np.eye(3), np.zeros(3), np.eye(3)), "mean1: expected a non-empty mean vector"),
    ((np.zeros(0), np.eye(0), np.zeros(0), np.eye(0)), "mean1: expected a non-empty"),
    ((np.array([0.0, np.nan]), np.eye(2), np.zeros(2), np.eye(2)), "mean1: values must be finite"),
    ((np.zeros(2), np.eye(2), np.zeros(2), np.array([[1.0, np.inf], [np.inf, 1.0]])),
     "cov2: values must be finite"),
    ((np.zeros(2), np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2), np.eye(2)),
     "cov1: a covariance matrix must be symmetric"),
    ((np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, -0.5])),
     "cov2: a covariance matrix must be positive semi-definite"),
    ((np.zeros(2), np.eye(2), np.zeros(2), [["a", "b"], ["c", "d"]]), "cov2: expected numeric values"),
])
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        frechet_distance(*args)


def test_deprecated_keyword_names_warn_and_give_the_same_value():
    # pytorch-fid's names (mu1, sigma1, mu2, sigma2) were the arguments' names until 0.2.
    rng = np.random.default_rng(3)
    (m1, s1), (m2, s2) = well_conditioned(5, 40, rng), well_conditioned(5, 40, rng, offset=0.5)
    value = frechet_distance(mean1=m1, cov1=s1, mean2=m2, cov2=s2)
    assert value == frechet_distance(m1, s1, m2, s2)
    with pytest.warns(DeprecationWarning) as caught:
        old = frechet_distance(mu1=m1, sigma1=s1, mu2=m2, sigma2=s2)
    assert old == value
    assert [str(w.message).split(";")[0] for w in caught] == [
        f"frechet_distance({name}=...) is deprecated" for name in ("mu1", "sigma1", "mu2", "sigma2")]
    assert all(w.filename == __file__ for w in caught)  # the warning points at the caller
    with pytest.warns(DeprecationWarning, match=r"use cov2=\.\.\. \(removed in otmetrics 0\.3\)"):
        assert frechet_distance(m1, s1, m2, sigma2=s2) == value  # positional and old keywords mix


@pytest.mark.parametrize("kw", [dict(mean2=0.0, mu2=0.0), dict(cov2=1.0, sigma2=1.0)])
def test_a_keyword_and_its_deprecated_alias_together_are_an_error(kw):
    with pytest.raises(ValueError, match=r"(mu2: deprecated alias of mean2|sigma2: deprecated alias of "
                                         r"cov2); pass only (mean2|cov2), got both"):
        frechet_distance(np.zeros(1), np.eye(1), **{"mean2": np.zeros(1), "cov2": np.eye(1), **kw})


def test_numerical_warning_points_at_the_caller():
    x = np.random.default_rng(0).normal(size=(3, 5))
    mean, cov = moments(x)
    with pytest.warns(NumericalWarning) as caught:
        frechet_distance(mean, cov, mean, np.eye(5))
    assert caught[0].filename == __file__


# ------------------------------------------------------------------------------------------------
# GaussianStats
# ------------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(0, 30), min_size=1, max_size=8).filter(lambda s: sum(s) >= 2),
       d=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_streaming_equals_batch_moments(sizes, d, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(sum(sizes), d)) * rng.uniform(0.1, 10, d) + rng.normal(size=d) * 100
    stats = GaussianStats(d)
    start = 0
    for size in sizes:
        stats.update(x[start:start + size])
        start += size
    assert stats.n == len(x)
    np.testing.assert_allclose(stats.mean, x.mean(0), rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(stats.cov, np.atleast_2d(np.cov(x, rowvar=False)), rtol=1e-9, atol=1e-9)


@settings(max_examples=20, deadline=None)
@given(n1=st.integers(0, 40), n2=st.integers(0, 40), seed=st.integers(0, 2**32 - 1))
def test_merge_equals_concatenation(n1, n2, seed):
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=(n1, 3)), rng.normal(size=(n2, 3)) + 2
    merged = GaussianStats(3).update(x1).merge(GaussianStats(3).update(x2))
    whole = GaussianStats(3).update(np.concatenate([x1, x2]))
    assert merged.n == whole.n == n1 + n2
    if n1 + n2:
        np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-12, atol=1e-12)
    if n1 + n2 >= 2:
        np.testing.assert_allclose(merged.cov, whole.cov, rtol=1e-10, atol=1e-12)


def test_large_offset_does_not_cancel():
    """Features with a mean 1e6 times their spread: sum(x x^T) - n m m^T loses every digit of
    the covariance in float64; the centred pairwise update keeps them."""
    rng = np.random.default_rng(0)
    centred = rng.normal(size=(5000, 4))
    x = centred + 1e7
    stats = GaussianStats(4)
    for batch in np.array_split(x, 17):
        stats.update(batch)
    np.testing.assert_allclose(stats.cov, np.cov(centred, rowvar=False), rtol=1e-6, atol=1e-6)
    naive = (x.T @ x - len(x) * np.outer(x.mean(0), x.mean(0))) / (len(x) - 1)
    assert np.abs(naive - np.cov(centred, rowvar=False)).max() > 1e-2  # the trap this avoids


def test_torch_state_and_dtype():
    x = torch.randn(100, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    stats = GaussianStats().update(x[:60]).update(x[60:])
    assert stats.is_torch and isinstance(stats.cov, torch.Tensor) and stats.cov.dtype == torch.float64
    np.testing.assert_allclose(stats.cov.numpy(), np.cov(x.double().numpy(), rowvar=False), rtol=1e-12)
    # Mixed input kinds go into the state's backend.
    stats.update(np.ones((3, 5)))
    assert stats.n == 103
    numpy_stats = GaussianStats(5).update(x.double().numpy()).update(np.ones((3, 5)))
    np.testing.assert_allclose(stats.cov.numpy(), numpy_stats.cov, rtol=1e-12)
    moved = numpy_stats.to("cpu")
    assert moved.is_torch and moved.n == 103


def test_frechet_distance_method_and_empty_batch():
    rng = np.random.default_rng(0)
    a = GaussianStats.from_features(rng.normal(size=(200, 3)))
    b = GaussianStats(3).update(rng.normal(size=(200, 3)) + 1).update(np.zeros((0, 3)))
    assert b.n == 200
    assert a.frechet_distance(b) == pytest.approx(frechet_distance(a.mean, a.cov, b.mean, b.cov))


def test_save_load_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 4))
    stats = GaussianStats.from_features(x)
    path = stats.save(tmp_path / "stats")
    assert path.name == "stats.npz" and not list(tmp_path.glob("*.tmp"))
    with np.load(path) as data:
        assert set(data.files) == {"mu", "sigma", "n"}
        np.testing.assert_array_equal(data["sigma"], stats.cov)
    loaded = GaussianStats.load(path)
    assert loaded.n == 50
    np.testing.assert_allclose(loaded.cov, stats.cov, rtol=1e-15)
    # A loaded file with a count keeps streaming correctly.
    more = rng.normal(size=(30, 4))
    loaded.update(more)
    assert loaded.n == 80
    np.testing.assert_allclose(loaded.cov, np.cov(np.concatenate([x, more]), rowvar=False), rtol=1e-12)


def test_load_plain_pytorch_fid_file(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    path = tmp_path / "fid_stats.npz"
    np.savez_compressed(path, mu=x.mean(0), sigma=np.cov(x, rowvar=False))  # what pytorch-fid writes
    stats = GaussianStats.load(path)
    assert stats.n is None and stats.dim == 3
    np.testing.assert_array_equal(stats.cov, np.cov(x, rowvar=False))
    assert stats.frechet_distance(GaussianStats.from_features(x)) < 1e-9
    with pytest.raises(ValueError, match="update: these statistics were loaded without a sample count"):
        stats.update(x)
    with pytest.raises(ValueError, match="other: these statistics were loaded without a sample count"):
        GaussianStats(3).update(x).merge(stats)


def test_load_bad_files(tmp_path):
    with pytest.raises(ValueError, match="path: no such statistics file"):
        GaussianStats.load(tmp_path / "missing.npz")
    np.savez(tmp_path / "wrong.npz", mean=np.zeros(2))
    with pytest.raises(ValueError, match=r"must hold arrays 'mu' and 'sigma'.*got \['mean'\]"):
        GaussianStats.load(tmp_path / "wrong.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="could not read"):
        GaussianStats.load(tmp_path / "junk.npz")
    np.savez(tmp_path / "shape.npz", mu=np.zeros(3), sigma=np.eye(2))
    with pytest.raises(ValueError, match=r"cov: expected shape \(3, 3\)"):
        GaussianStats.load(tmp_path / "shape.npz")


def test_gaussian_stats_bad_input():
    stats = GaussianStats(3)
    with pytest.raises(ValueError, match="mean: no samples yet"):
        stats.mean  # noqa: B018
    stats.update(np.ones((1, 3)))
    with pytest.raises(ValueError, match="cov: need at least 2 samples for a covariance, got n = 1"):
        stats.cov  # noqa: B018
    with pytest.raises(ValueError, match="batch: expected feature vectors of dimension 3, got 4"):
        stats.update(np.ones((2, 4)))
    with pytest.raises(ValueError, match="batch: features must be finite"):
        stats.update(np.array([[0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"batch: expected a batch of feature vectors of shape \(B, d\)"):
        stats.update(np.ones(3))
    with pytest.raises(ValueError, match="dim: must be finite and > 0, got 0"):
        GaussianStats(0)
    with pytest.raises(ValueError, match="dim: must be an integer, got 3.0"):
        GaussianStats(3.0)
    with pytest.raises(ValueError, match="other: feature dimensions differ"):
        stats.merge(GaussianStats(2).update(np.ones((2, 2))))
    with pytest.raises(ValueError, match="other: expected GaussianStats"):
        stats.merge(np.ones(3))
    with pytest.raises(ValueError, match="n: must be finite and > 0, got 0"):
        GaussianStats.from_moments(np.zeros(2), np.eye(2), n=0)
    with pytest.raises(ValueError, match="n: must be an integer, got True"):
        GaussianStats.from_moments(np.zeros(2), np.eye(2), n=True)
    assert stats.n == 1  # failed updates changed nothing


def test_sync_without_process_group_is_a_copy():
    stats = GaussianStats.from_features(np.random.default_rng(0).normal(size=(10, 2)))
    synced = stats.sync()
    assert synced is not stats and synced.n == 10
    np.testing.assert_array_equal(synced.cov, stats.cov)
    synced.update(np.zeros((1, 2)))
    assert stats.n == 10


def test_no_warning_for_full_rank():
    rng = np.random.default_rng(0)
    mu1, s1 = well_conditioned(32, 200, rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        frechet_distance(mu1, s1, mu1 + 1, s1 * 2)
