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
    with pytest.raises(ValueError, match=r"^chunk_size: must be a positive integer"):
        PointCloud(np.zeros((3, 2)), chunk_size=0)
    assert "PointCloud(shape=(3, 3)" in repr(PointCloud(np.zeros((3, 2))))
