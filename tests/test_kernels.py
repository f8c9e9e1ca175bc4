"""mmd, kid, kernels and the median heuristic: reference formulas, GeomLoss, properties, bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.distance import cdist, pdist

from otmetrics import kid, mmd
from otmetrics.generative.kernels import kernel_matrix, median_bandwidth, resolve_kernel
from otmetrics.generative.kid import kid_subset_indices, kid_values_by_gram, kid_values_by_subsets


# ------------------------------------------------------------------------------------------------
# References written from the papers, with explicit double sums
# ------------------------------------------------------------------------------------------------
def ref_kernel(a, b, kernel, sigma=None, degree=3, gamma=None, coef0=1.0):
    if kernel == "gaussian":
        return np.exp(-cdist(a, b, "sqeuclidean") / (2 * sigma**2))
    if kernel == "laplacian":
        return np.exp(-cdist(a, b) / sigma)
    gamma = 1.0 / a.shape[1] if gamma is None else gamma
    return (gamma * a @ b.T + coef0) ** degree


def ref_mmd2(x, y, estimator, **kw):
    """Gretton et al. (2012): eq. 3 (unbiased, i != j), eq. 2 (biased), eq. 5 (linear)."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = ref_kernel(x, x, **kw), ref_kernel(y, y, **kw), ref_kernel(x, y, **kw)
    if estimator == "unbiased":
        off_x = sum(kxx[i, j] for i in range(m) for j in range(m) if i != j)
        off_y = sum(kyy[i, j] for i in range(n) for j in range(n) if i != j)
        return off_x / (m * (m - 1)) + off_y / (n * (n - 1)) - 2 * kxy.sum() / (m * n)
    if estimator == "biased":
        return kxx.sum() / m**2 + kyy.sum() / n**2 - 2 * kxy.sum() / (m * n)
    total = 0.0
    pairs = m // 2
    for i in range(pairs):
        x1, x2, y1, y2 = x[2 * i], x[2 * i + 1], y[2 * i], y[2 * i + 1]
        k = lambda a, b: ref_kernel(a[None], b[None], **kw)[0, 0]  # noqa: E731
        total += k(x1, x2) + k(y1, y2) - k(x1, y2) - k(x2, y1)
    return total / pairs


def ref_kid(x, y, subsets, subset_size, seed, degree=3, gamma=None, coef0=1.0):
    """Binkowski et al. (2018): the unbiased MMD^2 with k(a, b) = (a.b / d + 1)^3 on random subsets;
    subsets drawn with RandomState(seed).choice(..., replace=False) alternately for x and y (the
    reference code's and torch-fidelity's order); mean and std with ddof = 0."""
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        a = x[rng.choice(len(x), subset_size, replace=False)]
        b = y[rng.choice(len(y), subset_size, replace=False)]
        values.append(ref_mmd2(a, b, "unbiased", kernel="polynomial", degree=degree, gamma=gamma,
                               coef0=coef0))
    return float(np.mean(values)), float(np.std(values))


# ------------------------------------------------------------------------------------------------
# mmd against the reference
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimator", ["unbiased", "biased", "linear"])
@pytest.mark.parametrize("kernel,kw", [
    ("gaussian", {"bandwidth": 0.8}),
    ("laplacian", {"bandwidth": 1.7}),
    ("polynomial", {"degree": 2, "gamma": 0.3, "coef0": 0.5}),
])
def test_mmd_matches_reference_formulas(estimator, kernel, kw):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 3))
    y = rng.normal(size=(24 if estimator == "linear" else 17, 3)) * 1.3 + 0.4
    ref_kw = {"kernel": kernel}
    if kernel == "polynomial":
        ref_kw.update(degree=kw["degree"], gamma=kw["gamma"], coef0=kw["coef0"])
    else:
        ref_kw["sigma"] = kw["bandwidth"]
    got = mmd(x, y, kernel=kernel, estimator=estimator, **kw)
    assert isinstance(got, float)
    assert got == pytest.approx(ref_mmd2(x, y, estimator, **ref_kw), rel=1e-10, abs=1e-13)


def test_gaussian_biased_is_twice_geomloss():
    geomloss = pytest.importorskip("geomloss")
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(60, 4)), rng.normal(size=(45, 4)) + 0.3
    loss = geomloss.SamplesLoss("gaussian", blur=0.9, backend="tensorized")
    expected = 2 * float(loss(torch.from_numpy(x), torch.from_numpy(y)))
    got = mmd(x, y, kernel="gaussian", bandwidth=0.9, estimator="biased")
    assert got == pytest.approx(expected, rel=1e-12)


@settings(max_examples=20, deadline=None)
@given(m=st.integers(2, 40), n=st.integers(2, 40), block=st.integers(1, 9), seed=st.integers(0, 2**32 - 1),
       kernel=st.sampled_from(["gaussian", "laplacian", "polynomial"]))
def test_blocked_sums_equal_one_block(m, n, block, seed, kernel):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(m, 3)), rng.normal(size=(n, 3)) + 0.2
    kw = {} if kernel == "polynomial" else {"bandwidth": 1.1}
    for estimator in ("unbiased", "biased"):
        whole = mmd(x, y, kernel=kernel, estimator=estimator, chunk_size=10_000, **kw)
        blocked = mmd(x, y, kernel=kernel, estimator=estimator, chunk_size=block, **kw)
        assert blocked == pytest.approx(whole, rel=1e-11, abs=1e-13)


def test_list_of_bandwidths_sums_kernels():
    # MMD^2 is linear in the kernel: the multi-scale kernel's value is the sum of the values.
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 2)), rng.normal(size=(35, 2)) + 0.5
    widths = [0.3, 1.0, 3.0]
    total = sum(mmd(x, y, bandwidth=w) for w in widths)
    assert mmd(x, y, bandwidth=widths) == pytest.approx(total, rel=1e-12)


def test_median_bandwidth_is_the_default():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(40, 3)), rng.normal(size=(30, 3)) * 2
    sigma = np.median(pdist(np.concatenate([x, y])))
    assert median_bandwidth(x, y) == pytest.approx(sigma, rel=1e-14)
    assert mmd(x, y) == mmd(x, y, bandwidth="median") == pytest.approx(mmd(x, y, bandwidth=sigma), rel=1e-14)


def test_median_bandwidth_subsample_is_seeded_and_close():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(3000, 2))
    full = np.median(pdist(x))
    a = median_bandwidth(x, max_samples=500, seed=1)
    assert a == median_bandwidth(x, max_samples=500, seed=1)
    assert a != median_bandwidth(x, max_samples=500, seed=2)
    assert a == pytest.approx(full, rel=0.05)


def test_median_bandwidth_ignores_duplicates():
    x = np.array([[0.0], [0.0], [0.0], [1.0], [3.0]])  # positive distances: 1,1,1,3,3,3,2
    assert median_bandwidth(x) == 2.0
    assert median_bandwidth(np.zeros((4, 2))) == 1.0  # all equal: any bandwidth gives MMD 0


# ------------------------------------------------------------------------------------------------
# mmd properties
# ------------------------------------------------------------------------------------------------
@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), kernel=st.sampled_from(["gaussian", "laplacian"]))
def test_mmd_properties(seed, kernel):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(25, 3)), rng.normal(size=(20, 3)) + rng.normal(size=3)
    kw = {"kernel": kernel, "bandwidth": 1.3}
    base = mmd(x, y, **kw)
    assert mmd(y, x, **kw) == pytest.approx(base, rel=1e-10, abs=1e-13)                  # symmetric
    assert mmd(x[::-1], y[rng.permutation(20)], **kw) == pytest.approx(base, rel=1e-10, abs=1e-13)
    shift = rng.normal(size=3) * 100
    assert mmd(x + shift, y + shift, **kw) == pytest.approx(base, rel=1e-8, abs=1e-10)   # translation
    assert mmd(x, y, estimator="biased", **kw) >= 0                                      # a squared norm
    assert mmd(x, x, estimator="biased", **kw) == pytest.approx(0.0, abs=1e-12)


def test_unbiased_is_centred_and_biased_is_not():
    # Same distribution: the unbiased estimator averages to ~0, the biased one to ~2(1 - E k)/n > 0.
    rng = np.random.default_rng(5)
    unbiased, biased = [], []
    for _ in range(200):
        x, y = rng.normal(size=(20, 2)), rng.normal(size=(20, 2))
        unbiased.append(mmd(x, y, bandwidth=1.0))
        biased.append(mmd(x, y, bandwidth=1.0, estimator="biased"))
    se = np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < 4 * se
    assert np.mean(biased) > 10 * se
    assert min(unbiased) < 0  # it can be negative


def test_mmd_detects_a_shift():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(300, 2))
    assert mmd(x, rng.normal(size=(300, 2)) + 1.0) > 20 * abs(mmd(x, rng.normal(size=(300, 2))))


def test_kernel_matrix_values_and_types():
    x = np.array([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(kernel_matrix(x, kernel="laplacian", bandwidth=5.0),
                               [[1, np.exp(-1)], [np.exp(-1), 1]])
    np.testing.assert_allclose(kernel_matrix(x, x[:1], kernel="polynomial"), [[1.0], [1.0]])
    k = kernel_matrix(torch.tensor(x, dtype=torch.float32), kernel="gaussian", bandwidth=5.0)
    assert k.dtype == torch.float32 and k.shape == (2, 2)
    assert float(k[0, 1]) == pytest.approx(np.exp(-0.5), rel=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mmd_torch_in_torch_out(dtype):
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(30, 3)) + 0.5
    out = mmd(torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype), bandwidth=1.0)
    assert isinstance(out, torch.Tensor) and out.dtype == dtype and out.ndim == 0
    rounded = [torch.tensor(v, dtype=dtype).double().numpy() for v in (x, y)]
    expected = mmd(*rounded, bandwidth=1.0)
    assert float(out) == pytest.approx(expected, rel=1e-6)  # float32 only in the final cast


# ------------------------------------------------------------------------------------------------
# mmd is differentiable
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("estimator", ["unbiased", "biased", "linear"])
@pytest.mark.parametrize("kernel,kw", [
    ("gaussian", {"bandwidth": [0.7, 2.0]}),
    ("laplacian", {"bandwidth": 1.3}),
    ("polynomial", {"degree": 3, "gamma": 0.4, "coef0": 0.5}),
])
def test_mmd_gradient_matches_finite_differences(estimator, kernel, kw):
    rng = np.random.default_rng(20)
    x = torch.tensor(rng.normal(size=(7, 2)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(7 if estimator == "linear" else 5, 2)) + 0.5, requires_grad=True)
    # chunk_size=3: diagonal, off-diagonal and ragged blocks, each recomputed in the backward pass.
    def f(a, b):
        return mmd(a, b, kernel=kernel, estimator=estimator, chunk_size=3, **kw)

    value = f(x, y)
    assert value.requires_grad and value.dtype == torch.float64
    assert float(value.detach()) == pytest.approx(f(x.detach().numpy(), y.detach().numpy()), rel=1e-12,
                                                  abs=1e-15)
    assert torch.autograd.gradcheck(f, (x, y), eps=1e-6, atol=1e-7, rtol=1e-5)


def laplacian_mmd_gradient(x, y, sigma):
    """d/dx_i of the unbiased MMD^2 with k(u, v) = exp(-|u - v| / sigma), from the formula:
    dk(u, v)/du = -k (u - v) / (sigma |u - v|), taken as 0 where u = v (the symmetric subgradient)."""
    m, n = len(x), len(y)

    def dk(u, v):
        r = np.linalg.norm(u - v)
        return np.zeros_like(u) if r == 0 else -np.exp(-r / sigma) * (u - v) / (sigma * r)

    grad = np.zeros_like(x)
    for i in range(m):
        grad[i] += 2 * sum(dk(x[i], x[j]) for j in range(m) if j != i) / (m * (m - 1))
        grad[i] -= 2 * sum(dk(x[i], y[j]) for j in range(n)) / (m * n)
    return grad


def test_laplacian_gradient_at_coincident_points_is_finite_and_exact():
    # Repeated points in x and a point shared with y: |u - v| = 0 where the kernel has its kink.
    rng = np.random.default_rng(21)
    x = rng.normal(size=(6, 3))
    x[3] = x[1]
    y = rng.normal(size=(5, 3))
    y[2] = x[0]
    xt = torch.tensor(x, requires_grad=True)
    mmd(xt, torch.tensor(y), kernel="laplacian", bandwidth=1.5, chunk_size=4).backward()
    assert torch.isfinite(xt.grad).all()
    np.testing.assert_allclose(xt.grad.numpy(), laplacian_mmd_gradient(x, y, 1.5), rtol=1e-10, atol=1e-14)


def test_mmd_float32_gradient_and_no_grad_mode():
    rng = np.random.default_rng(22)
    x = torch.tensor(rng.normal(size=(20, 2)), dtype=torch.float32, requires_grad=True)
    y = torch.tensor(rng.normal(size=(20, 2)) + 1.0, dtype=torch.float32)
    loss = mmd(x, y, bandwidth=1.0)
    assert loss.dtype == torch.float32 and loss.requires_grad
    loss.backward()
    assert x.grad.dtype == torch.float32
    x64 = x.detach().double().requires_grad_()
    mmd(x64, y.double(), bandwidth=1.0).backward()
    np.testing.assert_allclose(x.grad.numpy(), x64.grad.numpy(), rtol=1e-5, atol=1e-7)
    # Gradient descent on the samples lowers the MMD (it is a usable loss).
    with torch.no_grad():
        stepped = x - 0.5 * x.grad / x.grad.norm()
        assert not mmd(x, y, bandwidth=1.0).requires_grad   # no graph under no_grad
    assert float(mmd(stepped, y, bandwidth=1.0)) < float(loss.detach())


def test_kernel_matrix_is_differentiable():
    rng = np.random.default_rng(23)
    x = torch.tensor(rng.normal(size=(4, 2)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(3, 2)), requires_grad=True)
    for kw in ({"kernel": "gaussian", "bandwidth": 1.0}, {"kernel": "laplacian", "bandwidth": 0.8},
               {"kernel": "polynomial", "degree": 2}):
        assert torch.autograd.gradcheck(lambda a, b: kernel_matrix(a, b, **kw), (x, y), eps=1e-6, atol=1e-7)
    # The diagonal of K(x, x) is a constant for radial kernels: its gradient is 0, not NaN.
    k = kernel_matrix(x, kernel="laplacian", bandwidth=1.0)
    (grad,) = torch.autograd.grad(k.diagonal().sum(), x)
    assert torch.equal(grad, torch.zeros_like(grad))


def test_mmd_backward_stays_in_bounded_memory():
    """Forward and backward with n = 3,000 per set in blocks of 256 rows: recording every block
    would keep some 300 blocks of 0.5 MB, twice over (hundreds of MB); the blocks recomputed in
    the backward pass keep the peak growth at a few blocks."""
    code = textwrap.dedent("""
        import json, numpy as np, torch
        torch.set_num_threads(1)
        from otmetrics import mmd

        def status(key):
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key))

        rng = np.random.default_rng(0)
        x = torch.tensor(rng.normal(size=(3000, 2)), requires_grad=True)
        y = torch.tensor(rng.normal(size=(3000, 2)) + 0.1)
        small = torch.tensor(rng.normal(size=(300, 2)), requires_grad=True)
        mmd(small, y[:300], bandwidth=1.0, chunk_size=256).backward()  # first-call allocations
        before = status("VmRSS:")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        value = mmd(x, y, bandwidth=1.0, chunk_size=256)
        value.backward()
        print(json.dumps({"value": float(value), "grad_norm": float(x.grad.norm()),
                          "peak_growth_mb": status("VmHWM:") - before}))
    """)
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("needs Linux's /proc/self/clear_refs to measure the peak memory")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["peak_growth_mb"] < 32
    assert result["value"] > 0 and result["grad_norm"] > 0


@pytest.mark.parametrize("call,match", [
    (lambda x, y: mmd(x, y, kernel="cosine"), "kernel: must be one of gaussian, laplacian, polynomial"),
    (lambda x, y: mmd(x, y, estimator="fast"), "estimator: must be one of unbiased, biased, linear"),
    (lambda x, y: mmd(x, y, bandwidth=0.0), "bandwidth: must be finite and > 0, got 0.0"),
    (lambda x, y: mmd(x, y, bandwidth=float("nan")), "bandwidth: must be finite and > 0, got nan"),
    (lambda x, y: mmd(x, y, bandwidth=[]), "bandwidth: the list of bandwidths must not be empty"),
    (lambda x, y: mmd(x, y, bandwidth=[1.0, -1.0]), "bandwidth: must be finite and > 0, got -1.0"),
    (lambda x, y: mmd(x, y, bandwidth="mean"), "bandwidth: must be a positive number, 'median'"),
    (lambda x, y: mmd(x, y, kernel="polynomial", bandwidth=1.0),
     "bandwidth: the polynomial kernel has no bandwidth"),
    (lambda x, y: mmd(x, y, gamma=1.0), "gamma: only the polynomial kernel has this parameter"),
    (lambda x, y: mmd(x, y, kernel="polynomial", degree=0), "degree: must be finite and > 0, got 0"),
    (lambda x, y: mmd(x, y, kernel="polynomial", degree=2.0), "degree: must be an integer, got 2.0"),
    (lambda x, y: mmd(x, y, kernel="polynomial", coef0=-1.0), "coef0: must be finite and >= 0, got -1.0"),
    (lambda x, y: mmd(x, y, kernel="polynomial", gamma=0.0), "gamma: must be finite and > 0, got 0.0"),
    (lambda x, y: mmd(x, y[:5], estimator="linear"), r"y: the linear estimator .* \(6\), got 5"),
    (lambda x, y: mmd(x[:1], y), "x: need at least 2 samples, got 1"),
    (lambda x, y: mmd(x, y[:, :2]), "y: expected points of dimension 3, got 2"),
    (lambda x, y: mmd(x, np.where(y > 0, np.nan, y)), "y: coordinates must be finite, got nan"),
    (lambda x, y: mmd(x, torch.from_numpy(y) / 0), "y: coordinates must be finite, got"),
    (lambda x, y: mmd(x[None], y), r"x: expected 1 or 2 dimension\(s\), got 3 \(shape \(1, 6, 3\)\)"),
    (lambda x, y: mmd(x[:, :0], y), r"x: must not be empty, got shape \(6, 0\)"),
    (lambda x, y: mmd(x, y, chunk_size=0), "chunk_size: must be finite and > 0, got 0"),
    (lambda x, y: mmd(x, y, chunk_size=2.5), "chunk_size: must be an integer, got 2.5"),
    (lambda x, y: median_bandwidth(x, max_samples=1), "max_samples: must be an integer >= 2, got 1"),
])
def test_mmd_bad_input(call, match):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=match):
        call(rng.normal(size=(6, 3)), rng.normal(size=(6, 3)))


def test_deprecated_block_size_warns_and_gives_the_same_value():
    # block_size was the name of chunk_size until 0.2 (rows per chunk of the blocked kernel sums).
    rng = np.random.default_rng(4)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(25, 3)) + 0.2
    value = mmd(x, y, bandwidth=1.0, chunk_size=7)
    with pytest.warns(DeprecationWarning, match=r"mmd\(block_size=\.\.\.\) is deprecated; use chunk_size=") \
            as caught:
        assert mmd(x, y, bandwidth=1.0, block_size=7) == value
    assert caught[0].filename == __file__
    with pytest.raises(ValueError, match="block_size: deprecated alias of chunk_size; pass only chunk_size, "
                                         "got both"):
        mmd(x, y, chunk_size=7, block_size=7)


def test_mmd_large_n_stays_in_bounded_memory():
    """n = 5,000 per set: one dense float64 kernel matrix takes 200 MB (the three 600 MB). With
    blocks of 512 rows the peak memory of the process grows by a small fraction of one of them.
    (The default blocks of ~4M entries bound it the same way for any n; the benchmark runs
    n = 50,000.)"""
    # The peak resident memory of this process (VmHWM), reset just before the call through
    # /proc/self/clear_refs ("5"). (ru_maxrss would not do: Linux carries it over from the parent
    # across fork and exec.)
    code = textwrap.dedent("""
        import json, numpy as np, torch
        torch.set_num_threads(1)
        from otmetrics import mmd

        def status(key):
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key))

        rng = np.random.default_rng(0)
        x, y = rng.normal(size=(5000, 2)), rng.normal(size=(5000, 2)) + 0.05
        mmd(x[:10], y[:10], bandwidth=1.0)  # first-call allocations
        before = status("VmRSS:")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        value = mmd(x, y, bandwidth=1.0, chunk_size=512)
        print(json.dumps({"value": value, "peak_growth_mb": status("VmHWM:") - before}))
    """)
    if not os.access("/proc/self/clear_refs", os.W_OK):
        pytest.skip("needs Linux's /proc/self/clear_refs to measure the peak memory")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["peak_growth_mb"] < 64
    assert 0 < result["value"] < 0.01  # a small shift: a small positive MMD^2


# ------------------------------------------------------------------------------------------------
# kid
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("nx,ny,subsets,size", [(60, 50, 7, 20), (15, 12, 40, 10)])
def test_kid_matches_the_reference_formula(nx, ny, subsets, size):
    rng = np.random.default_rng(nx)
    x = np.abs(rng.normal(size=(nx, 16)))  # Inception features are non-negative (after a ReLU)
    y = np.abs(rng.normal(size=(ny, 16)) * 1.2)
    mean, std = kid(x, y, subsets=subsets, subset_size=size, seed=3)
    ref_mean, ref_std = ref_kid(x, y, subsets, size, seed=3)
    assert mean == pytest.approx(ref_mean, rel=1e-10)
    assert std == pytest.approx(ref_std, rel=1e-8)


def test_kid_both_evaluation_orders_agree():
    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(80, 10)), rng.normal(size=(70, 10)) + 0.2
    spec = resolve_kernel("polynomial", None, 3, None, 1, None, None, 10)
    ix, iy = kid_subset_indices(80, 70, 9, 30, 0)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    by_subsets = kid_values_by_subsets(xt, yt, ix, iy, spec)
    by_gram = kid_values_by_gram(xt, yt, ix, iy, spec)
    np.testing.assert_allclose(by_gram.numpy(), by_subsets.numpy(), rtol=1e-11, atol=1e-14)


def test_kid_is_seeded_and_reproducible():
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(50, 4)), rng.normal(size=(50, 4))
    assert kid(x, y, subsets=5, subset_size=10, seed=1) == kid(x, y, subsets=5, subset_size=10, seed=1)
    assert kid(x, y, subsets=5, subset_size=10, seed=1) != kid(x, y, subsets=5, subset_size=10, seed=2)


def test_kid_std_is_ddof_zero():
    rng = np.random.default_rng(10)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(30, 3)) + 1
    spec = resolve_kernel("polynomial", None, 3, None, 1, None, None, 3)
    ix, iy = kid_subset_indices(30, 30, 2, 10, 0)
    values = kid_values_by_subsets(torch.from_numpy(x), torch.from_numpy(y), ix, iy, spec).numpy()
    mean, std = kid(x, y, subsets=2, subset_size=10, seed=0)
    assert std == pytest.approx(abs(values[0] - values[1]) / 2, rel=1e-12)
    assert mean == pytest.approx(values.mean(), rel=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kid_torch_in_torch_out(dtype):
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(30, 3)) + 0.3
    xt, yt = torch.tensor(x, dtype=dtype), torch.tensor(y, dtype=dtype)
    mean, std = kid(xt, yt, subsets=3, subset_size=10)
    for value in (mean, std):
        assert isinstance(value, torch.Tensor) and value.ndim == 0
        assert value.dtype == dtype and value.device == xt.device
    # The same numbers as numpy on the rows as the tensors hold them (float64 arithmetic on the
    # float32 values), rounded once to the tensors' dtype.
    ref = kid(xt.double().numpy(), yt.double().numpy(), subsets=3, subset_size=10)
    rel = 2.0 ** -23 if dtype == torch.float32 else 1e-12
    assert float(mean) == pytest.approx(ref[0], rel=rel)
    assert float(std) == pytest.approx(ref[1], rel=rel)
    # A tensor and an array: the tensor decides the output type.
    assert kid(x, yt, subsets=3, subset_size=10)[0].dtype == dtype


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_kid_and_mmd_on_cuda_match_numpy():
    rng = np.random.default_rng(12)
    x, y = rng.normal(size=(200, 16)), rng.normal(size=(150, 16)) + 0.2
    xc, yc = torch.tensor(x, device="cuda"), torch.tensor(y, device="cuda")
    for subset_size in (20, 100):  # both evaluation orders
        mean, std = kid(xc, yc, subsets=30, subset_size=subset_size)
        assert mean.device.type == "cuda" and mean.dtype == torch.float64
        ref = kid(x, y, subsets=30, subset_size=subset_size)
        assert (float(mean), float(std)) == pytest.approx(ref, rel=1e-10)
    value = mmd(xc, yc, kernel="laplacian", bandwidth=2.0)
    assert value.device.type == "cuda"
    assert float(value) == pytest.approx(mmd(x, y, kernel="laplacian", bandwidth=2.0), rel=1e-10)


def test_kid_and_other_metrics_are_detached():
    # KID is documented as not differentiable: a tensor that requires grad is accepted and the
    # result does not require grad.
    rng = np.random.default_rng(13)
    x = torch.tensor(rng.normal(size=(20, 3)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(20, 3)))
    mean, std = kid(x, y, subsets=2, subset_size=10)
    assert not mean.requires_grad and not std.requires_grad


@pytest.mark.parametrize("kw,match", [
    ({"subset_size": 31}, r"subset_size: must be at most the number of samples in x \(30\), got 31"),
    ({"subset_size": 1}, "subset_size: must be an integer >= 2"),
    ({"subset_size": 10.0}, "subset_size: must be an integer, got 10.0"),
    ({"subsets": 0}, "subsets: must be finite and > 0, got 0"),
    ({"degree": 1.5}, "degree: must be an integer, got 1.5"),
    ({"gamma": -1.0}, "gamma: must be finite and > 0, got -1.0"),
    ({"coef0": -0.5}, "coef0: must be finite and >= 0, got -0.5"),
    ({"seed": -1}, "seed: must be finite and >= 0, got -1"),
    ({"seed": True}, "seed: must be an integer, got True"),
])
def test_kid_bad_options(kw, match):
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=match):
        kid(rng.normal(size=(30, 3)), rng.normal(size=(40, 3)), **{"subset_size": 10, **kw})


def test_kid_subset_larger_than_y_and_bad_data():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(30, 3)), rng.normal(size=(20, 3))
    with pytest.raises(ValueError, match=r"subset_size: must be at most the number of samples in y \(20\)"):
        kid(x, y, subset_size=25)
    with pytest.raises(ValueError, match="x: coordinates must be finite, got nan"):
        kid(np.full((30, 3), np.nan), y, subset_size=10)
    with pytest.raises(ValueError, match="y: expected points of dimension 3, got 2"):
        kid(x, y[:, :2], subset_size=10)
    with pytest.raises(ValueError, match="y: need at least 2 samples, got 1"):
        kid(x, y[:1], subset_size=10)
