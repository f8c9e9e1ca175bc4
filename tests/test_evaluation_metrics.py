"""The streaming FD, FDInfinity, CMMD and PRDC: equal to their functions on all data, merge/reset,
extractors by registered name (the FID Inception with random weights, and small extractors
registered here), statistics that record their extractor, the torchmetrics adapter in a
MetricCollection, and torch.distributed with two gloo processes (equal to one process to 1e-9)."""

from __future__ import annotations

import json
import pickle
import sys
import textwrap
import types

import numpy as np
import pytest
import torch

import otmetrics
from gloo_ranks import run_ranks
from otmetrics import (CMMD, FD, FID, KID, PRDC, FDInfinity, GaussianStats, cmmd, fd_infinity,
                       frechet_distance, prdc)
from otmetrics.generative.features import registry



def data(seed=0, n_real=120, n_fake=100, d=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n_real, d)), rng.normal(size=(n_fake, d)) * 1.2 + 0.3


def fd_of(real, fake):
    a, b = GaussianStats.from_features(real), GaussianStats.from_features(fake)
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


class Linear(torch.nn.Module):
    """A small extractor: a fixed linear map of flattened inputs, recording how it was built."""

    built: list = []

    def __init__(self, dim=3, scale=1.0, normalize=None):
        super().__init__()
        Linear.built.append({"dim": dim, "scale": scale, "normalize": normalize})
        weight = torch.randn(dim, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        self.weight = torch.nn.Parameter(weight * scale, requires_grad=False)
        self.normalize = bool(normalize)

    def forward(self, x):
        out = x.flatten(1).to(self.weight.dtype) @ self.weight.T
        return out / out.norm(dim=1, keepdim=True) if self.normalize else out


@pytest.fixture
def registered(monkeypatch):
    """Two extractors registered under test names (the registry is restored afterwards)."""
    module = types.ModuleType("otmetrics_test_extractors")
    module.Linear = Linear
    monkeypatch.setitem(sys.modules, "otmetrics_test_extractors", module)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register_extractor("linear-a", "otmetrics_test_extractors:Linear", kwargs={"dim": 3}, dim=3,
                                description="test")
    registry.register_extractor("clip-test", "otmetrics_test_extractors:Linear",
                                kwargs={"dim": 3, "scale": 2.0}, dim=3, description="named like CLIP")
    Linear.built.clear()
    return Linear


# ------------------------------------------------------------------------------------------------
# Equal to the functions; merge, reset
# ------------------------------------------------------------------------------------------------
def test_streaming_objects_equal_their_functions():
    real, fake = data()
    fd, fdi = FD(), FDInfinity(num_points=6, seed=3)
    cm, pr = CMMD(chunk_size=16), PRDC(k=4, ball="closed", chunk_size=16)
    for batch in np.array_split(real, 5):
        for metric in (fd, fdi, cm, pr):
            metric.update(batch, real=True)
    for batch in np.array_split(fake, 3):
        for metric in (fd, fdi, cm, pr):
            metric.update(torch.from_numpy(batch), real=False)   # arrays and tensors mix
    assert fd.compute() == pytest.approx(fd_of(real, fake), rel=1e-10)
    result = fdi.compute()
    expected = fd_infinity(real, fake, num_points=6, seed=3)
    assert isinstance(result.value, float) and result.value == pytest.approx(expected.value, rel=1e-10)
    np.testing.assert_array_equal(result.n, expected.n)
    assert cm.compute() == pytest.approx(cmmd(real, fake), rel=1e-12)
    got = pr.compute()
    assert isinstance(got.precision, float)
    assert got.as_dict() == prdc(real, fake, k=4, ball="closed").as_dict()
    # compute() leaves the state alone
    for metric in (fd, cm):
        metric.update(fake[:10], real=False)
    assert cm.compute() == pytest.approx(cmmd(real, np.concatenate([fake, fake[:10]])), rel=1e-12)


def test_fid_is_fd_on_the_inception_and_fd_takes_any_name(registered):
    assert issubclass(FID, FD) and otmetrics.FD is FD
    fid, fd = FID(), FD()
    real, fake = data(1)
    for metric in (fid, fd):
        metric.update(real, real=True)
        metric.update(fake, real=False)
    assert fid.compute() == fd.compute()
    with pytest.raises(ValueError, match=r"feature_extractor: FID is defined on 'inception' features, got "
                                         r"'linear-a' \(otmetrics.FD takes any extractor\)"):
        FID("linear-a")
    metric = FD("linear-a")
    assert metric.extractor_name == "linear-a" and metric.real.extractor == "linear-a"
    assert repr(metric) == "FD(n_real=0, n_fake=0, extractor='linear-a')"
    images = torch.rand(20, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    metric.update(images[:12], real=True)
    metric.update(images[8:], real=False)
    w = metric.feature_extractor.weight.detach()
    assert metric.compute() == pytest.approx(fd_of((images[:12] @ w.T).numpy(), (images[8:] @ w.T).numpy()),
                                             rel=1e-10)


def test_merge_and_reset(tmp_path):
    real, fake = data(2)
    for cls, kwargs in ((FDInfinity, {"num_points": 4}), (CMMD, {}), (PRDC, {"k": 3})):
        a, b = cls(**kwargs), cls(**kwargs)
        a.update(real[:50], real=True)
        b.update(real[50:], real=True)
        a.update(fake[:30], real=False)
        b.update(fake[30:], real=False)
        assert a.merge(b) is a and (a.n_real, a.n_fake) == (120, 100)
        one = cls(**kwargs)
        one.update(real, real=True)
        one.update(fake, real=False)
        if cls is PRDC:
            assert a.compute() == one.compute()
        elif cls is CMMD:
            assert a.compute() == pytest.approx(one.compute(), rel=1e-12)
        else:
            assert a.compute().value == pytest.approx(one.compute().value, rel=1e-10)
        a.reset()
        assert (a.n_fake, a.n_real) in ((0, 0), (0, None))
        with pytest.raises(ValueError, match="other: expected a"):
            a.merge(FD())
    # fixed real statistics (a file) for FD-infinity; reset keeps them
    path = GaussianStats.from_features(real).save(tmp_path / "real.npz")
    metric = FDInfinity(real_stats=path, num_points=5, reset_real=True)
    metric.update(fake, real=False)
    assert metric.compute().value == pytest.approx(fd_infinity(real, fake, num_points=5).value, rel=1e-10)
    metric.reset()
    assert metric.n_fake == 0 and metric.real.n == 120
    with pytest.raises(ValueError, match="real: the real statistics were given at construction"):
        metric.update(real, real=True)
    kept = CMMD(reset_real=False)
    kept.update(real, real=True)
    kept.update(fake, real=False)
    kept.reset()
    assert (kept.n_real, kept.n_fake) == (120, 0)


# ------------------------------------------------------------------------------------------------
# Extractors by name; statistics that record their extractor
# ------------------------------------------------------------------------------------------------
def test_extractors_by_registered_name(registered):
    FD("linear-a", extractor_kwargs={"scale": 3.0})
    KID("linear-a", subsets=2, subset_size=2)
    CMMD("clip-test")                                     # CLIP embeddings are normalised for CMMD
    CMMD("clip-test", extractor_kwargs={"normalize": False})
    FD("clip-test")
    assert [(b["scale"], b["normalize"]) for b in registered.built] == [
        (3.0, None), (1.0, None), (2.0, True), (2.0, False), (2.0, None)]
    with pytest.raises(ValueError, match="feature_extractor: unknown extractor 'dino-x'; known: .*inception"):
        FD("dino-x")
    with pytest.raises(ValueError, match="extractor_kwargs: only used to build a named feature_extractor"):
        FD(lambda x: x, extractor_kwargs={"weights": "w.pth"})
    with pytest.raises(ValueError, match="extractor_kwargs: must be a dict, got list"):
        FD("linear-a", extractor_kwargs=[1])
    with pytest.raises(ValueError, match=r"feature_extractor: InceptionScore is defined on 'inception'"):
        otmetrics.InceptionScore("linear-a")


def test_statistics_record_their_extractor(registered, tmp_path):
    images = torch.rand(12, 6, dtype=torch.float64)
    dino = FD("linear-a")
    dino.update(images, real=True)
    path = dino.real.save(tmp_path / "linear.npz")
    loaded = GaussianStats.load(path)
    assert loaded.extractor == "linear-a" and "extractor='linear-a'" in repr(loaded)
    with np.load(path) as saved:                           # pytorch-fid reads mu and sigma as before
        assert sorted(saved.files) == ["extractor", "mu", "n", "sigma"]
    # the same statistics for the same extractor: accepted; for another: refused, naming both
    same = FD("linear-a", real_stats=path)
    same.update(images[:6], real=False)
    assert np.isfinite(same.compute())
    with pytest.raises(ValueError, match="real_stats: statistics of the 'linear-a' features, but the "
                                         "feature_extractor is 'clip-test'"):
        FD("clip-test", real_stats=path)
    with pytest.raises(ValueError, match="other: computed on the features of another extractor, got "
                                         "'clip-test' and 'linear-a'"):
        FD("linear-a").merge(FD("clip-test"))
    other = GaussianStats.from_features(np.random.default_rng(0).normal(size=(5, 3)), extractor="clip-test")
    with pytest.raises(ValueError, match="other: statistics of the 'clip-test' features cannot be combined "
                                         "with statistics of the 'linear-a' features"):
        loaded.merge(other)
    # unknown (e.g. pytorch-fid's files) combines with anything, and takes the name it meets
    unknown = GaussianStats.from_features(np.random.default_rng(1).normal(size=(5, 3)))
    assert unknown.merge(other).extractor == "clip-test"
    with pytest.raises(ValueError, match="extractor: must be a feature extractor's name or None, got 3"):
        GaussianStats(extractor=3)


def test_inception_by_name_bad_images_and_weights_of_another_network(tmp_path):
    torch.manual_seed(0)
    fd = FD("inception", extractor_kwargs={"pretrained": False})
    assert type(fd.feature_extractor).__name__ == "FIDInceptionV3" and fd.extractor_name == "inception"
    with pytest.raises(ValueError, match=r"images: floating images must lie in \[0, 1\], got min 0, max 255"):
        fd.update(torch.linspace(0, 255, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8), real=True)
    with pytest.raises(ValueError, match=r"images: expected a batch of shape \(N, 3, H, W\)"):
        fd.update(torch.zeros(2, 8, 8, 3, dtype=torch.uint8), real=True)
    other = torch.nn.Sequential(torch.nn.Linear(4, 4))
    torch.save(other.state_dict(), tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not the FID InceptionV3 layout"):
        FD("inception", extractor_kwargs={"weights": str(tmp_path / "other.pth")})


def test_bad_input_of_the_objects():
    real, fake = data(3)
    with pytest.raises(ValueError, match="k: must be finite and > 0, got 0"):
        PRDC(k=0)
    with pytest.raises(ValueError, match="ball: must be 'open' or 'closed', got 'ajar'"):
        PRDC(ball="ajar")
    with pytest.raises(ValueError, match="num_points: must be an integer >= 2"):
        FDInfinity(num_points=1)
    with pytest.raises(ValueError, match="chunk_size: must be finite and > 0, got 0"):
        CMMD(chunk_size=0)
    metric = PRDC(k=5)
    metric.update(real[:4], real=True)
    metric.update(fake, real=False)
    with pytest.raises(ValueError, match=r"real: need at least k \+ 1 = 6 samples"):
        metric.compute()
    with pytest.raises(ValueError, match=r"batch: expected feature vectors of dimension 5 \(as the real"):
        metric.update(fake[:, :3], real=False)
    nan = fake.copy()
    nan[2, 1] = np.nan
    for metric in (FD(), FDInfinity(), CMMD(), PRDC()):
        with pytest.raises(ValueError, match="batch: features must be finite, got NaN or infinity in row 2"):
            metric.update(nan, real=False)
    empty = FDInfinity()
    empty.update(fake, real=False)
    with pytest.raises(ValueError, match="real: need at least 2 samples for a covariance, got 0"):
        empty.compute()


def test_pickles_round_trip():
    real, fake = data(4)
    for metric in (FD(), FID(), FDInfinity(num_points=3), CMMD(), PRDC()):
        metric.update(real, real=True)
        metric.update(fake, real=False)
        again = pickle.loads(pickle.dumps(metric))
        first, second = metric.compute(), again.compute()
        assert (first == second) if not hasattr(first, "value") else first.value == second.value


# ------------------------------------------------------------------------------------------------
# torchmetrics
# ------------------------------------------------------------------------------------------------
def test_torchmetrics_metric_collection():
    from torchmetrics import MetricCollection

    from otmetrics import TorchMetricsAdapter

    real, fake = data(5)
    collection = MetricCollection({
        "fd": TorchMetricsAdapter(FD()), "fd_inf": TorchMetricsAdapter(FDInfinity(num_points=4)),
        "cmmd": TorchMetricsAdapter(CMMD()), "prdc": TorchMetricsAdapter(PRDC(k=3)),
        "kid": TorchMetricsAdapter(KID(subsets=3, subset_size=20)),
        "fd_small": TorchMetricsAdapter(FD()),              # the same kind of state, more data
    })
    for batch in np.array_split(real, 3):
        collection.update(torch.from_numpy(batch), real=True)
    collection["fd_small"].update(torch.from_numpy(real[:30]), real=True)
    for batch in np.array_split(fake, 2):
        assert collection["cmmd"](torch.from_numpy(batch), real=False) is None   # forward: update only
        for name in ("fd", "fd_inf", "prdc", "kid", "fd_small"):
            collection[name].update(torch.from_numpy(batch), real=False)
    values = collection.compute()
    assert sorted(values) == ["cmmd", "coverage", "density", "fd", "fd_inf", "fd_small", "mean", "precision",
                              "recall", "std"]
    assert all(v.dtype == torch.float64 and v.ndim == 0 for v in values.values())
    assert float(values["fd"]) == pytest.approx(fd_of(real, fake), rel=1e-10)
    more = np.concatenate([real, real[:30]])      # no compute group shared its state with "fd"
    assert float(values["fd_small"]) == pytest.approx(fd_of(more, fake), rel=1e-10)
    assert float(values["cmmd"]) == pytest.approx(cmmd(real, fake), rel=1e-12)
    assert float(values["precision"]) == prdc(real, fake, k=3).precision
    assert float(values["fd_inf"]) == pytest.approx(fd_infinity(real, fake, num_points=4).value, rel=1e-10)
    collection.reset()
    assert collection["fd"].metric.n_fake == 0 and collection["prdc"].metric.n_real == 0


def test_torchmetrics_adapter_details():
    from otmetrics import TorchMetricsAdapter

    real, fake = data(6)
    one = TorchMetricsAdapter(PRDC(k=3), output="recall")
    assert one.higher_is_better is None and TorchMetricsAdapter(FD()).higher_is_better is False
    a, b = TorchMetricsAdapter(FD()), TorchMetricsAdapter(FD())
    for adapter, rows in ((a, slice(0, 60)), (b, slice(60, None))):
        adapter.update(torch.from_numpy(real[rows]), real=True)
        adapter.update(torch.from_numpy(fake[rows]), real=False)
    a.merge_state(b)
    assert float(a.compute()) == pytest.approx(fd_of(real, fake), rel=1e-10)
    one.update(real, real=True)
    one.update(fake, real=False)
    assert float(one.compute()) == prdc(real, fake, k=3).recall
    for adapter, message in ((TorchMetricsAdapter(one.metric, output="f1"),
                              "output: PRDC gives precision, recall, density, coverage, got 'f1'"),
                             (TorchMetricsAdapter(a.metric, output="mean"),
                              "output: FD gives one value, got 'mean'")):
        adapter.update(real[:5], real=True)     # (computing before any update would warn)
        with pytest.raises(ValueError, match=message):
            adapter.compute()
    with pytest.raises(ValueError, match="metric: expected an otmetrics streaming metric"):
        TorchMetricsAdapter(lambda x: x)
    with pytest.raises(ValueError, match="output: must be the name of an entry of the result, got 3"):
        TorchMetricsAdapter(one.metric, output=3)


# ------------------------------------------------------------------------------------------------
# Two processes (gloo on 127.0.0.1)
# ------------------------------------------------------------------------------------------------
WORKER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import torch
    import torch.distributed as dist
    from otmetrics import CMMD, FD, PRDC, FDInfinity

    rank, world = int(sys.argv[1]), int(sys.argv[2])
    port, data_path, out_path = sys.argv[3], sys.argv[4], sys.argv[5]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    d = np.load(data_path)
    real, fake = d["real"], d["fake"]
    shards = json.loads(str(d["shards"]))[rank]
    metrics = {"fd": FD(), "fd_inf": FDInfinity(num_points=5, seed=2), "cmmd": CMMD(), "prdc": PRDC(k=4)}
    for metric in metrics.values():
        a, b = shards["real"]
        for batch in np.array_split(real[a:b], 2):
            if len(batch):
                metric.update(torch.from_numpy(batch), real=True)
        a, b = shards["fake"]
        for batch in np.array_split(fake[a:b], 3):
            if len(batch):
                metric.update(torch.from_numpy(batch), real=False)
    result = {"fd": metrics["fd"].compute(), "fd_inf": metrics["fd_inf"].compute().value,
              "cmmd": metrics["cmmd"].compute(), "prdc": metrics["prdc"].compute().as_dict(),
              "local_fake": metrics["prdc"].n_fake}
    dist.barrier()
    dist.destroy_process_group()
    with open(out_path, "w") as f:
        json.dump(result, f)
""")



def test_two_gloo_processes_equal_one_process(tmp_path):
    real, fake = data(7, n_real=90, n_fake=80, d=4)
    shards = [{"real": [0, 90], "fake": [0, 35]}, {"real": [90, 90], "fake": [35, 80]}]  # rank 1: no real
    np.savez(tmp_path / "data.npz", real=real, fake=fake, shards=json.dumps(shards))
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    results = run_ranks(script, tmp_path / "data.npz", tmp_path)
    expected = {"fd": fd_of(real, fake), "fd_inf": fd_infinity(real, fake, num_points=5, seed=2).value,
                "cmmd": cmmd(real, fake), "prdc": prdc(real, fake, k=4).as_dict()}
    for result in results:
        for key in ("fd", "fd_inf", "cmmd"):
            assert result[key] == pytest.approx(expected[key], rel=1e-9)
        assert result["prdc"] == expected["prdc"]
    assert [r["local_fake"] for r in results] == [35, 45]  # the local state is not replaced
