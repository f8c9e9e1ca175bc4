"""prdc: equal to the prdc package on tie-free data, to a transcription of torch-fidelity's PRC
(k = 3, closed balls), and to an exact brute-force transcription of the definitions on data full
of ties (duplicates, memorised samples, lattices), whatever the block size, dtype and backend."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import otmetrics
from otmetrics import PRDCResult, prdc
from otmetrics.generative.neighbours import DistanceBlocks, kth_neighbour_radii, tree_sum

prdc_package = pytest.importorskip("prdc")

KEYS = ("precision", "recall", "density", "coverage")


def package(real, fake, k):
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the sizes
        out = prdc_package.compute_prdc(real, fake, k)
    return {key: float(out[key]) for key in KEYS}


def brute_force(real, fake, k, closed=False):
    """The definitions, with exact squared distances (integer data: every sum is exact)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)

    def sq(a, b):
        return ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)

    def radii(a):
        d = sq(a, a)
        np.fill_diagonal(d, np.inf)
        return np.sort(d, axis=1)[:, k - 1]

    rr, rf, cross = radii(real), radii(fake), sq(real, fake)
    inside = (cross <= rr[:, None]) if closed else (cross < rr[:, None])   # fake j in the ball of real i
    inside_fake = (cross <= rf[None, :]) if closed else (cross < rf[None, :])
    return {"precision": inside.any(0).mean(), "recall": inside_fake.any(1).mean(),
            "density": inside.sum(0).mean() / k, "coverage": inside.any(1).mean()}


def fidelity_prc(fake, real, k=3):
    """torch-fidelity 0.4's calculate_precision_recall_full (input1 = generated, input2 = real):
    radii are kthvalue(k + 1) of the distances including the point itself, balls are closed.
    Distances without the matrix-product shortcut, so that integer data ties exactly."""
    f, r = torch.as_tensor(fake, dtype=torch.float64), torch.as_tensor(real, dtype=torch.float64)

    def cdist(a, b):
        return torch.cdist(a, b, compute_mode="donot_use_mm_for_euclid_dist")

    nn_fake = cdist(f, f).kthvalue(k + 1, dim=1).values
    nn_real = cdist(r, r).kthvalue(k + 1, dim=1).values
    real_to_fake = cdist(r, f)
    recall = (real_to_fake <= nn_fake).any(dim=1).double().mean().item()
    precision = (real_to_fake.T <= nn_real).any(dim=1).double().mean().item()
    return precision, recall


def values(result: PRDCResult):
    return {key: float(getattr(result, key)) for key in KEYS}


def tied_data(seed=0, n=60, m=50, d=4, span=3):
    """Small integer coordinates: many exactly equal distances, duplicated points, and generated
    samples that copy real ones (a memorising generator)."""
    rng = np.random.default_rng(seed)
    real = rng.integers(-span, span + 1, size=(n, d)).astype(np.float64)
    fake = rng.integers(-span, span + 1, size=(m, d)).astype(np.float64)
    fake[: m // 3] = real[rng.choice(n, m // 3, replace=False)]  # memorised
    real[-5:] = real[:5]                                          # duplicated
    return real, fake


# ------------------------------------------------------------------------------------------------
# The references
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, m, d, k", [(40, 50, 2, 1), (120, 90, 5, 5), (300, 260, 16, 3),
                                        (200, 220, 64, 10)])
def test_equals_the_prdc_package_on_tie_free_data(n, m, d, k):
    rng = np.random.default_rng(n + d)
    real = rng.normal(size=(n, d))
    fake = rng.normal(size=(m, d)) * 1.2 + 0.2
    expected = package(real, fake, k)
    for chunk in (None, 7, 64):  # one block, and many (the blocked passes, their edges)
        assert values(prdc(real, fake, k=k, chunk_size=chunk)) == pytest.approx(expected, rel=1e-12, abs=0)
    # float32 features are compared in float32, and decided exactly near the radii
    real, fake = real.astype(np.float32), fake.astype(np.float32)
    f32 = prdc(real, fake, k=k, chunk_size=50)
    assert values(f32) == pytest.approx(package(real, fake, k), rel=1e-12)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(4, 40), m=st.integers(4, 40), d=st.integers(1, 6), k=st.integers(1, 3),
       chunk=st.integers(2, 50), seed=st.integers(0, 10_000), dtype=st.sampled_from(["float32", "float64"]))
def test_random_shapes_equal_the_package_and_the_definitions(n, m, d, k, chunk, seed, dtype):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n, d)).astype(dtype)
    fake = (rng.normal(size=(m, d)) + rng.normal() * 0.5).astype(dtype)
    ours = values(prdc(real, fake, k=k, chunk_size=chunk))
    assert ours == pytest.approx(brute_force(real, fake, k), abs=1e-15)
    if min(n, m) >= k + 2:  # the package's argpartition fails with exactly k + 1 points
        assert ours == pytest.approx(package(real, fake, k), abs=1e-12)


def test_k_plus_one_points_are_enough():
    rng = np.random.default_rng(9)
    real, fake = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))
    assert values(prdc(real, fake, k=3)) == pytest.approx(brute_force(real, fake, 3), abs=1e-15)
    with pytest.raises(ValueError, match="out of bounds"):  # the reference needs k + 2
        package(real, fake, 3)


def test_k3_is_torch_fidelity_prc():
    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(150, 6)), rng.normal(size=(130, 6)) + 0.3
    for ball in ("open", "closed"):  # tie-free: both conventions agree
        result = prdc(real, fake, k=3, ball=ball)
        assert (result.precision, result.recall) == pytest.approx(fidelity_prc(fake, real), abs=1e-15)
    # with ties (memorised samples sit exactly on the radii), only the closed balls are torch-fidelity's
    for seed in range(3):
        real, fake = tied_data(seed)
        closed = prdc(real, fake, k=3, ball="closed")
        assert (closed.precision, closed.recall) == pytest.approx(fidelity_prc(fake, real), abs=1e-15)
    # points every 10 on a line, the generated ones continuing the real ones: with k = 1 every
    # radius is 10 and the nearest generated point (40) is exactly 10 from the last real one (30)
    real = np.stack([np.arange(0.0, 40, 10), np.zeros(4)], 1)
    fake = real + [40.0, 0.0]
    assert fidelity_prc(fake, real, k=1) == (0.25, 0.25)
    closed, opened = prdc(real, fake, k=1, ball="closed"), prdc(real, fake, k=1)
    assert (closed.precision, closed.recall, closed.density, closed.coverage) == (0.25, 0.25, 0.25, 0.25)
    assert (opened.precision, opened.recall, opened.density, opened.coverage) == (0.0, 0.0, 0.0, 0.0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("ball", ["open", "closed"])
def test_ties_duplicates_and_memorised_samples_are_exact(seed, ball):
    real, fake = tied_data(seed)
    expected = brute_force(real, fake, 5, closed=ball == "closed")
    for dtype in (np.float64, np.float32):
        for chunk in (None, 9):
            result = prdc(real.astype(dtype), fake.astype(dtype), k=5, ball=ball, chunk_size=chunk)
            assert values(result) == pytest.approx(expected, abs=1e-15)
            assert result.recomputed > 0  # the ties were decided on exact distances


def test_degenerate_sets(monkeypatch):
    # every real point identical: radii 0, an open ball holds nothing, a closed one its copies
    real = np.ones((10, 3))
    fake = np.concatenate([np.ones((4, 3)), np.zeros((6, 3))])
    assert values(prdc(real, fake, k=2)) == brute_force(real, fake, 2)
    assert values(prdc(real, fake, k=2)) == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0}
    closed = values(prdc(real, fake, k=2, ball="closed"))
    assert closed == brute_force(real, fake, 2, closed=True)
    assert closed["precision"] == 0.4 and closed["coverage"] == 1.0 and closed["density"] == 4 * 10 / 2 / 10
    # one-hot vectors: every distance ties (sqrt 2), more ties than candidates kept per row, so the
    # radii are resolved by the second, scanning pass
    import otmetrics.generative.neighbours as neighbours

    scanned = []
    scan = neighbours._kth_by_scan
    monkeypatch.setattr(neighbours, "_kth_by_scan", lambda *a: scanned.append(len(a[2])) or scan(*a))
    eye = np.eye(40)
    real, fake = eye[np.arange(40) % 40], eye[(np.arange(30) * 7) % 40]
    for ball in ("open", "closed"):
        expected = brute_force(real, fake, 3, ball == "closed")
        assert values(prdc(real, fake, k=3, ball=ball, chunk_size=16)) == expected
    assert scanned == [40, 30, 40, 30]


def test_diagonal_blocks_by_sub_blocks():
    # chunks of 512 rows: the diagonal blocks are computed by 128-row sub-blocks on and above
    # their diagonal (the edges: 700 = 512 + 188 rows, sub-blocks of 128 and 60)
    real, fake = tied_data(11, n=700, m=650, d=5, span=4)
    for ball in ("open", "closed"):
        expected = brute_force(real, fake, 4, closed=ball == "closed")
        assert values(prdc(real, fake, k=4, ball=ball, chunk_size=512)) == pytest.approx(expected, abs=1e-15)


def test_the_generator_copying_the_real_set():
    real = np.random.default_rng(5).normal(size=(80, 4))
    result = prdc(real, real.copy(), k=5)
    assert values(result) == pytest.approx(brute_force(real, real, 5), abs=1e-15)
    assert (result.precision, result.recall, result.coverage) == (1.0, 1.0, 1.0)


def test_invariances():
    real, fake = tied_data(7, d=3)
    base = values(prdc(real, fake, k=4))
    rng = np.random.default_rng(0)
    shift = rng.integers(-1000, 1000, size=3).astype(np.float64)  # exact: integer data
    assert values(prdc(real + shift, fake + shift, k=4)) == base
    assert values(prdc(real[rng.permutation(len(real))], fake[rng.permutation(len(fake))], k=4)) == base
    assert values(prdc(real * 4.0, fake * 4.0, k=4)) == base  # a power of two: exact
    # swapping the roles swaps precision/recall... only for the ball-free part: check the definitions
    assert values(prdc(fake, real, k=4)) == brute_force(fake, real, 4)


def test_radius_bounds_hold_and_exact_radii_are_the_kth_distances():
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(size=(70, 5)).astype(np.float32))
    blocks = DistanceBlocks([x], torch.float32)
    radii = kth_neighbour_radii(blocks, 0, 4, chunk=16)
    exact = radii.exact(torch.arange(70))
    expected = brute_force_radii = np.sort(((x.double()[:, None] - x.double()[None]) ** 2).sum(-1).numpy()
                                           + np.diag(np.full(70, np.inf)), axis=1)[:, 3]
    np.testing.assert_allclose(exact.numpy(), brute_force_radii, rtol=1e-15)
    assert bool((radii.lower <= exact).all() and (exact <= radii.upper).all())
    assert float((radii.upper - radii.lower).max()) < 1e-3 * float(expected.min())


def test_tree_sum_is_the_same_for_a_row_wherever_it_is():
    rng = np.random.default_rng(0)
    rows = torch.from_numpy(rng.normal(size=(33, 1000)))
    alone = torch.stack([tree_sum(rows[i:i + 1])[0] for i in range(33)])
    assert torch.equal(tree_sum(rows), alone)
    assert bool(((tree_sum(rows) - rows.sum(1)).abs() <= 1e-14 * rows.abs().sum(1)).all())


# ------------------------------------------------------------------------------------------------
# Types, devices, results
# ------------------------------------------------------------------------------------------------
def test_numpy_floats_torch_tensors_and_the_result():
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(50, 3)), rng.normal(size=(40, 3))
    result = prdc(real, fake, k=3)
    assert isinstance(result, PRDCResult) and isinstance(result.precision, float)
    assert (result.k, result.n_real, result.n_fake, result.ball) == (3, 50, 40, "open")
    assert result.as_dict() == values(result)
    t = prdc(torch.from_numpy(real).float(), torch.from_numpy(fake).float(), k=3)
    assert t.precision.dtype == torch.float32 and t.precision.ndim == 0
    assert values(t) == pytest.approx(values(result), abs=1e-7)
    assert otmetrics.prdc is prdc and otmetrics.PRDCResult is PRDCResult
    with pytest.raises(dataclasses_frozen_error()):
        result.precision = 0.0


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_equals_cpu():
    real, fake = tied_data(8, n=300, m=280, d=8)
    for dtype in (torch.float32, torch.float64):
        gpu = prdc(torch.from_numpy(real).to("cuda", dtype), torch.from_numpy(fake).to("cuda", dtype), k=5,
                   chunk_size=64)
        assert gpu.precision.device.type == "cuda"
        assert values(gpu) == pytest.approx(brute_force(real, fake, 5), abs=1e-7)


# ------------------------------------------------------------------------------------------------
# Bad input
# ------------------------------------------------------------------------------------------------
def test_bad_input():
    rng = np.random.default_rng(0)
    real, fake = rng.normal(size=(10, 3)), rng.normal(size=(12, 3))
    with pytest.raises(ValueError, match=r"real: need at least k \+ 1 = 6 samples .* got 5"):
        prdc(real[:5], fake)
    with pytest.raises(ValueError, match=r"fake: need at least k \+ 1 = 11 samples .* got 10"):
        prdc(np.concatenate([real, real]), fake[:10], k=10)
    with pytest.raises(ValueError, match="fake: expected points of dimension 3, got 2"):
        prdc(real, fake[:, :2])
    bad = fake.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match="fake: coordinates must be finite, got nan"):
        prdc(real, bad)
    bad[4, 1] = np.inf
    with pytest.raises(ValueError, match="fake: coordinates must be finite, got inf"):
        prdc(real, bad)
    with pytest.raises(ValueError, match="k: must be finite and > 0, got 0"):
        prdc(real, fake, k=0)
    with pytest.raises(ValueError, match="k: must be an integer, got 2.5"):
        prdc(real, fake, k=2.5)
    with pytest.raises(ValueError, match="ball: must be 'open' or 'closed', got 'half'"):
        prdc(real, fake, ball="half")
    with pytest.raises(ValueError, match="chunk_size: must be finite and > 0, got 0"):
        prdc(real, fake, chunk_size=0)
    with pytest.raises(ValueError, match="real: expected 1 or 2 dimension"):
        prdc(real[None], fake)
