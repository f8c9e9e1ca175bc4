"""Ground costs: pairwise distances and cost matrices, numpy and torch, validation."""

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist

from otmetrics import PointCloud, cost_matrix, pairwise_distances


@pytest.mark.parametrize("metric", ["euclidean", "cityblock", "chebyshev"])
@pytest.mark.parametrize("p", [1.0, 1.5, 2.0, 3.0])
def test_matches_scipy_and_torch(metric, p):
    r = np.random.default_rng(0)
    x, y = r.normal(size=(7, 3)), r.normal(size=(5, 3))
    ref = cdist(x, y, metric=metric) ** p
    np.testing.assert_allclose(cost_matrix(x, y, p=p, metric=metric), ref, rtol=1e-13)
    out = cost_matrix(torch.tensor(x), torch.tensor(y), p=p, metric=metric)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-12)


def test_batched_point_clouds():
    r = np.random.default_rng(1)
    x, y = r.normal(size=(3, 6, 2)), r.normal(size=(3, 4, 2))
    geom = PointCloud(x, y, p=1)
    assert geom.shape == (3, 6, 4) and geom.batched
    np.testing.assert_allclose(geom.cost_matrix()[2], cdist(x[2], y[2]))
    assert pairwise_distances(x, y).shape == (3, 6, 4)


def test_squared_euclidean_is_exact_and_differentiable_at_coincident_points():
    x = torch.tensor([[0.0, 0.0], [1.0, 2.0]], requires_grad=True)
    c = cost_matrix(x, x.detach(), p=2)
    assert c[1, 0].item() == 5.0 and c[0, 0].item() == 0.0
    c.sum().backward()
    assert torch.isfinite(x.grad).all()


def test_point_cloud_validation():
    with pytest.raises(ValueError, match=r"^y: points must have the dimension of x \(2\), got 3"):
        PointCloud(np.zeros((3, 2)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match=r"^x: coordinates must be finite"):
        PointCloud(np.array([[np.nan, 0.0]]))
    with pytest.raises(ValueError, match=r"^p: must be a finite number >= 1"):
        PointCloud(np.zeros((3, 2)), p=0)
    with pytest.raises(ValueError, match=r"^metric: must be one of"):
        PointCloud(np.zeros((3, 2)), metric="cosine")
    with pytest.raises(ValueError, match=r"^y: batch size 2 differs from that of x \(3\)"):
        PointCloud(np.zeros((3, 4, 2)), np.zeros((2, 4, 2)))
    with pytest.raises(ValueError, match=r"^chunk_size: must be finite and > 0"):
        PointCloud(np.zeros((3, 2)), chunk_size=0)
    with pytest.raises(ValueError, match=r"^chunk_size: must be an integer"):
        PointCloud(np.zeros((3, 2)), chunk_size="a")
    assert "PointCloud(shape=(3, 3)" in repr(PointCloud(np.zeros((3, 2))))


@pytest.mark.parametrize("fn", [pairwise_distances, cost_matrix])
@pytest.mark.parametrize(
    "x, y, match",
    [
        ([[np.nan]], [[0.0]], r"^x: coordinates must be finite"),
        (np.zeros((3, 2)), np.zeros((3, 3)), r"^y: points must have the dimension of x \(2\), got 3"),
        (np.zeros((2, 3, 2)), np.zeros((3, 2)), r"^y: expected 3 dimensions like x, got 2"),
        (np.zeros((0, 2)), np.zeros((3, 2)), r"^x: must not be empty"),
        (np.zeros((3, 2)), [[np.inf, 0.0]], r"^y: coordinates must be finite"),
    ],
)
def test_bad_points(fn, x, y, match):
    with pytest.raises(ValueError, match=match):
        fn(x, y) if fn is pairwise_distances else fn(x, y, p=1)


def test_one_dimensional_points_and_mixed_types_keep_the_tensor_dtype():
    np.testing.assert_allclose(cost_matrix([0.0, 1.0], [3.0], p=1), [[3.0], [2.0]])
    out = cost_matrix(np.array([[0.0, 0.0]]), torch.tensor([[3.0, 4.0]], dtype=torch.float32), p=2)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.item() == 25.0
    out = pairwise_distances(torch.tensor([[0.0, 0.0]], dtype=torch.float32), np.array([[3.0, 4.0]]))
    assert out.dtype == torch.float32 and out.item() == 5.0


def test_large_batched_squared_costs_do_not_build_a_huge_temporary():
    # B * n * m * d above the 2**26 bound: falls back to cdist (same values)
    x = torch.zeros(70, 100, 100, dtype=torch.float64)
    y = torch.ones(70, 100, 100, dtype=torch.float64)
    out = cost_matrix(x, y, p=2)
    assert out.shape == (70, 100, 100)
    torch.testing.assert_close(out, torch.full((70, 100, 100), 100.0, dtype=torch.float64))
