"""Energy distance: dcor and scipy under their conventions, the two algorithms, properties, blocks and
memory, gradients (coincident points too), batches, bad input."""

import tracemalloc

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import otmetrics
from otmetrics import energy_distance

try:  # the reference implementation (a development dependency, absent from some test machines)
    import dcor
except ImportError:
    dcor = None


def dcor_energy_distance(x, y):
    """``dcor.energy_distance(x, y)``, or, where dcor is not installed, a transcription of its formula.

    dcor's default is the V-statistic with uniform weights and exponent 1 (Szekely's E):
    ``2 mean|x_i - y_j| - mean|x_i - x_k| - mean|y_j - y_l|``, 1-D inputs being samples on the line.
    """
    if dcor is not None:
        return dcor.energy_distance(x, y)
    x, y = (np.asarray(v, dtype=np.float64) for v in (x, y))
    x, y = (v[:, None] if v.ndim == 1 else v for v in (x, y))
    mean_distance = lambda u, v: np.linalg.norm(u[:, None] - v[None], axis=-1).mean()  # noqa: E731
    return 2 * mean_distance(x, y) - mean_distance(x, x) - mean_distance(y, y)


def test_the_transcription_is_dcors_formula():
    real = pytest.importorskip("dcor")
    rng = np.random.default_rng(1)
    global dcor
    saved, dcor = dcor, None  # the transcription, as on a machine without dcor
    try:
        for x, y in ((rng.normal(size=(9, 3)), rng.normal(size=(5, 3)) + 0.5),
                     (rng.normal(size=7), rng.normal(size=4))):
            assert dcor_energy_distance(x, y) == pytest.approx(real.energy_distance(x, y), rel=1e-13)
    finally:
        dcor = saved


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.integers(1, 5), st.integers(0, 2**31))
def test_equals_dcor(n, m, d, seed):
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 1.3 + 0.4
    ref = dcor_energy_distance(x, y)  # V-statistic, uniform weights: Szekely's E
    assert energy_distance(x, y) == pytest.approx(ref, rel=1e-12, abs=1e-13)
    assert energy_distance(x, y, chunk_size=3) == pytest.approx(ref, rel=1e-12, abs=1e-13)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 30), st.integers(1, 30), st.booleans(), st.integers(0, 2**31))
def test_on_the_line_scipy_is_the_square_root(n, m, ties, seed):
    rng = np.random.default_rng(seed)
    u, v = rng.normal(size=n), rng.normal(size=m) + 0.3
    if ties:
        u, v = np.round(u), np.round(v)
    wu, wv = rng.random(n) + 0.01, rng.random(m) + 0.01
    ref = scipy.stats.energy_distance(u, v, wu, wv)  # sqrt(2 int (F - G)^2) = sqrt(E)
    assert np.sqrt(energy_distance(u, v, a=wu, b=wv)) == pytest.approx(ref, rel=1e-12, abs=1e-13)
    # the sorting route (d = 1) and the pairwise route (the same points in the plane) agree
    pairwise = energy_distance(np.c_[u, np.zeros(n)], np.c_[v, np.zeros(m)], a=wu, b=wv)
    assert energy_distance(u, v, a=wu, b=wv) == pytest.approx(pairwise, rel=1e-12, abs=1e-13)
    assert energy_distance(u, v) == pytest.approx(dcor_energy_distance(u, v), rel=1e-12, abs=1e-13)


def test_worked_values_and_weights():
    assert energy_distance([[0.0, 0.0]], [[3.0, 4.0]]) == 10.0
    assert energy_distance([0.0, 1.0], [2.0]) == 2.5
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    # a point twice is a point of weight 2; a point of weight 0 does not count; a scale changes nothing
    a = np.array([2.0, 1, 1, 1, 1, 1, 0])
    assert energy_distance(x, y, a=a) == pytest.approx(
        dcor_energy_distance(np.concatenate([x[:6], x[:1]]), y), rel=1e-12)
    assert energy_distance(x, y, a=5 * a) == pytest.approx(energy_distance(x, y, a=a), rel=1e-13)
    # Szekely's E is the squared MMD of the distance kernel -|x - y|: the biased MMD of that kernel
    d = lambda u, v: np.linalg.norm(u[:, None] - v[None], axis=-1)  # noqa: E731
    mmd = 2 * d(x, y).mean() - d(x, x).mean() - d(y, y).mean()
    assert energy_distance(x, y) == pytest.approx(mmd, rel=1e-13)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 10), st.integers(1, 4), st.integers(0, 2**31))
def test_metric_properties_and_invariances(n, d, seed):
    rng = np.random.default_rng(seed)
    x, y, z = rng.normal(size=(n, d)), rng.normal(size=(n + 2, d)) + 0.5, rng.normal(size=(n + 1, d)) * 2
    e = energy_distance
    assert e(x, y) >= 0 and e(x, y) == pytest.approx(e(y, x), rel=1e-12, abs=1e-14)
    assert e(x, x) == pytest.approx(0.0, abs=1e-12) and e(x, x[::-1]) == pytest.approx(0.0, abs=1e-12)
    assert np.sqrt(e(x, z)) <= np.sqrt(e(x, y)) + np.sqrt(e(y, z)) + 1e-9  # sqrt(E) is a metric
    shift, scale = rng.normal(size=d), 2.5
    rotation, _ = np.linalg.qr(rng.normal(size=(d, d)))
    assert e(x + shift, y + shift) == pytest.approx(e(x, y), rel=1e-9, abs=1e-12)
    assert e(x @ rotation.T, y @ rotation.T) == pytest.approx(e(x, y), rel=1e-9, abs=1e-12)
    assert e(scale * x, scale * y) == pytest.approx(scale * e(x, y), rel=1e-9, abs=1e-12)


def test_sinkhorn_divergence_tends_to_half_the_energy_distance():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(15, 2)), rng.normal(size=(12, 2)) + 0.7
    s = otmetrics.sinkhorn_divergence(x, y, eps=1e5, p=1, tol=1e-12)
    assert s == pytest.approx(energy_distance(x, y) / 2, rel=1e-3)


def test_blocks_bound_memory():
    rng = np.random.default_rng(2)
    n = 3000
    x, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 3))
    tracemalloc.start()
    value = energy_distance(x, y, chunk_size=50)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < n * n * 8 / 10  # a tenth of one n x n matrix; a block is 50 x 3000
    assert value == pytest.approx(energy_distance(x, y, chunk_size=1000), rel=1e-12)


@pytest.mark.parametrize("d", [1, 3])
def test_gradients(d):
    rng = np.random.default_rng(3)
    x = torch.tensor(rng.normal(size=(8, d)), requires_grad=True)
    y = torch.tensor(rng.normal(size=(6, d)) + 0.5, requires_grad=True)
    a = torch.tensor(rng.random(8) + 0.1, requires_grad=True)
    b = torch.tensor(rng.random(6) + 0.1, requires_grad=True)
    # chunk_size=3: the backward pass runs over several blocks, diagonal and off-diagonal
    assert torch.autograd.gradcheck(lambda x, y, a, b: energy_distance(x, y, a=a, b=b, chunk_size=3),
                                    (x, y, a, b))


@pytest.mark.parametrize("d", [1, 3])
def test_coincident_points_have_a_zero_not_a_nan_gradient(d):
    rng = np.random.default_rng(4)
    base = rng.normal(size=(5, d))
    x = torch.tensor(np.concatenate([base, base[:2]]), requires_grad=True)  # repeated points in x
    y = torch.tensor(np.concatenate([base[2:], rng.normal(size=(3, d))]))    # shared with y
    energy_distance(x, y, chunk_size=2).backward()
    assert torch.isfinite(x.grad).all()
    # the same as the gradient with the zero distances' contributions dropped (a subgradient)
    xr = x.detach().clone().requires_grad_(True)
    diff_xy = xr[:, None] - y[None]
    diff_xx = xr[:, None] - xr[None]
    safe = lambda diff: torch.where(  # noqa: E731
        (diff != 0).any(-1), diff.pow(2).sum(-1).clamp_min(1e-300).sqrt(), torch.zeros(()))
    (2 * safe(diff_xy).mean() - safe(diff_xx).mean()).backward()
    torch.testing.assert_close(x.grad, xr.grad)
    identical = torch.tensor(base, requires_grad=True)
    value = energy_distance(identical, torch.tensor(base))
    value.backward()
    assert value.item() == 0.0 and torch.equal(identical.grad, torch.zeros_like(identical))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_torch_in_torch_out(dtype):
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(20, 3)), rng.normal(size=(15, 3)) + 0.2
    for d in (1, 3):
        value = energy_distance(torch.tensor(x[:, :d], dtype=dtype), torch.tensor(y[:, :d], dtype=dtype))
        assert value.dtype == dtype and value.shape == ()
        assert value.item() == pytest.approx(energy_distance(x[:, :d], y[:, :d]),
                                             rel=1e-5 if dtype == torch.float32 else 1e-12)


def test_batches():
    rng = np.random.default_rng(6)
    X, Y, B = rng.normal(size=(2, 3, 10, 2)), rng.normal(size=(3, 8, 2)), rng.random((3, 8))
    assert energy_distance(X[0, 0], Y[0]) == pytest.approx(dcor_energy_distance(X[0, 0], Y[0]), rel=1e-12)
    for backend in (np.asarray, torch.tensor):
        out = energy_distance(backend(X), backend(Y), b=backend(B), chunk_size=4)
        assert tuple(out.shape) == (2, 3)
        for i in range(2):
            for j in range(3):
                assert float(out[i, j]) == pytest.approx(energy_distance(X[i, j], Y[j], b=B[j]), rel=1e-12)
    # on the line too
    U, V = rng.normal(size=(4, 9)), rng.normal(size=(4, 7))
    out = energy_distance(U[..., None], V[..., None])
    np.testing.assert_allclose(out, [dcor_energy_distance(u, v) for u, v in zip(U, V)], rtol=1e-12)


def test_huge_and_tiny_coordinates():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(6, 2)), rng.normal(size=(4, 2))
    for scale in (2.0**700, 2.0**-700):
        for d in (1, 2):
            assert energy_distance(x[:, :d] * scale, y[:, :d] * scale) == pytest.approx(
                energy_distance(x[:, :d], y[:, :d]) * scale, rel=1e-13)


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (([[np.nan, 0.0]], [[0.0, 0.0]]), {}, r"^x: coordinates must be finite, got nan"),
        (([[0.0, 0.0]], [[0.0, np.inf]]), {}, r"^y: coordinates must be finite, got inf"),
        ((np.zeros((3, 2)), np.zeros((3, 3))), {}, r"^y: points must have the dimension of x \(2\), got 3"),
        ((np.zeros((0, 2)), np.zeros((3, 2))), {}, r"^x: must not be empty"),
        ((np.zeros((2, 3, 2)), np.zeros((4, 3, 2))), {}, r"^y: batch shape \(4,\) does not broadcast"),
        ((np.zeros((3, 2)), np.zeros((2, 2))), {"a": [1.0, -1.0, 1.0]}, r"^a: weights must be non-negative"),
        ((np.zeros((3, 2)), np.zeros((2, 2))), {"b": [1.0, 1.0, 1.0]}, r"^b: expected 2 weights"),
        ((np.zeros((3, 2)), np.zeros((2, 2))), {"b": [0.0, 0.0]}, r"^b: total mass must be positive"),
        ((np.zeros((2, 3, 2)), np.zeros((2, 2))), {"a": np.ones((4, 3))}, r"^a: batch shape \(4,\) does not"),
        ((np.zeros((3, 2)), np.zeros((2, 2))), {"chunk_size": 0}, r"^chunk_size: must be finite and > 0"),
        ((1.0, [1.0]), {}, r"^x: expected points of shape"),
    ],
)
def test_bad_input(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        energy_distance(*args, **kwargs)


def test_energy_in_d_dimensions_is_c_d_times_the_average_on_lines():
    # |x| = c_d E_theta |<theta, x>|, so E(mu, nu) = c_d E_theta E(theta#mu, theta#nu) (Monte Carlo here)
    from scipy.special import gammaln

    rng = np.random.default_rng(8)
    x, y = rng.normal(size=(60, 5)), rng.normal(size=(50, 5)) * 1.3 + 0.2
    c = np.sqrt(np.pi) * np.exp(gammaln(3.0) - gammaln(2.5))
    theta = otmetrics.random_projections(5, 20_000, seed=2)
    on_lines = energy_distance((theta @ x.T)[..., None], (theta @ y.T)[..., None])
    assert energy_distance(x, y) == pytest.approx(c * on_lines.mean(), rel=0.02)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("d", [1, 3])
def test_cuda_matches_cpu(d):
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(2, 400, d)), rng.normal(size=(2, 300, d)) + 0.2
    xt = torch.tensor(x, device="cuda", requires_grad=True)
    gpu = energy_distance(xt, torch.tensor(y, device="cuda"), chunk_size=64)
    assert gpu.device.type == "cuda"
    np.testing.assert_allclose(gpu.detach().cpu().numpy(), energy_distance(x, y), rtol=1e-12)
    gpu.sum().backward()
    assert xt.grad.device.type == "cuda" and torch.isfinite(xt.grad).all()
