"""Streaming FID/KID/IS/MMD: equal to the functions on all data, merge/reset, extractors, and
torch.distributed with two gloo processes on 127.0.0.1 (the same values as one process, to 1e-9)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
import torch

import otmetrics
from gloo_ranks import run_ranks
from otmetrics import (FID, KID, MMD, GaussianStats, InceptionScore, frechet_distance, inception_score, kid,
                       mmd)



def data(seed=0, n_real=100, n_fake=90, d=6):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(n_real, d))
    fake = rng.normal(size=(n_fake, d)) * 1.2 + 0.3
    return real, fake


def fid_of(real, fake):
    a, b = GaussianStats.from_features(real), GaussianStats.from_features(fake)
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)


# ------------------------------------------------------------------------------------------------
# One process
# ------------------------------------------------------------------------------------------------
def test_fid_streaming_equals_the_function():
    real, fake = data()
    fid = FID()
    for batch in np.array_split(real, 7):
        fid.update(batch, real=True)
    for batch in np.array_split(fake, 3):
        fid.update(torch.from_numpy(batch), real=False)  # numpy and tensors mix
    assert (fid.n_real, fid.n_fake) == (100, 90)
    value = fid.compute()
    assert isinstance(value, float)
    assert value == pytest.approx(fid_of(real, fake), rel=1e-10)
    # compute() leaves the state alone: more updates keep streaming.
    fid.update(fake[:10], real=False)
    assert fid.compute() == pytest.approx(fid_of(real, np.concatenate([fake, fake[:10]])), rel=1e-10)


def test_fid_merge_reset_and_reset_real():
    real, fake = data(1)
    a, b = FID(), FID()
    a.update(real[:40], real=True)
    a.update(fake[:20], real=False)
    b.update(real[40:], real=True)
    b.update(fake[20:], real=False)
    assert a.merge(b) is a
    assert a.compute() == pytest.approx(fid_of(real, fake), rel=1e-10)
    a.reset()
    assert (a.n_real, a.n_fake) == (0, 0)
    keep = FID(reset_real=False)
    keep.update(real, real=True)
    keep.update(fake, real=False)
    keep.reset()
    assert (keep.n_real, keep.n_fake) == (100, 0)
    keep.update(fake[:50], real=False)
    assert keep.compute() == pytest.approx(fid_of(real, fake[:50]), rel=1e-10)


def test_fid_with_precomputed_real_stats(tmp_path):
    real, fake = data(2)
    path = tmp_path / "real.npz"
    np.savez(path, mu=real.mean(0), sigma=np.cov(real, rowvar=False))  # a pytorch-fid file
    for source in (path, str(path), GaussianStats.from_features(real)):
        fid = FID(real_stats=source)
        fid.update(fake, real=False)
        assert fid.compute() == pytest.approx(fid_of(real, fake), rel=1e-10)
        fid.reset()
        assert fid.n_fake == 0 and fid.real.dim == 6
    with pytest.raises(ValueError, match="real: the real statistics were given at construction"):
        FID(real_stats=path).update(real, real=True)


def test_fid_merge_never_drops_or_mixes_real_statistics(tmp_path):
    real, fake = data(10, n_real=50)
    fixed = GaussianStats.from_features(real)
    a = FID(real_stats=fixed)
    a.update(fake[:30], real=False)
    # The other object holds real samples: they cannot join fixed statistics.
    b = FID()
    b.update(real[:20], real=True)
    b.update(fake[30:], real=False)
    with pytest.raises(ValueError, match="other: holds real samples but this object's real statistics "
                                         "are fixed"):
        a.merge(b)
    assert (a.n_real, a.n_fake) == (50, 30)  # nothing was merged, not even the generated samples
    # Both fixed, to the same statistics (here: one from memory, one through a file): the
    # generated samples merge.
    path = fixed.save(tmp_path / "real.npz")
    c = FID(real_stats=path)
    c.update(fake[30:], real=False)
    assert a.merge(c) is a and (a.n_real, a.n_fake) == (50, 90)
    assert a.compute() == pytest.approx(fid_of(real, fake), rel=1e-10)
    # Both fixed, to different statistics: refused.
    d = FID(real_stats=GaussianStats.from_features(real[:40]))
    d.update(fake[:10], real=False)
    with pytest.raises(ValueError, match=r"other: its fixed real statistics \(real_stats\) differ from "
                                         r"this object's, got max \|mean difference\|"):
        a.merge(d)
    assert a.n_fake == 90
    # Fixed in the other object only: refused, as before.
    with pytest.raises(ValueError, match="other: has fixed real statistics"):
        b.merge(a)
    # A real set of another dimension: refused before anything is merged.
    e = FID()
    e.update(fake[:5], real=False)
    f = FID()
    f.update(np.ones((4, 3)) * np.arange(4)[:, None], real=True)
    with pytest.raises(ValueError, match=r"other: feature dimensions differ, got 6 \(this object's "
                                         r"generated\), 3 \(other's real\)"):
        e.merge(f)
    assert (e.n_real, e.n_fake) == (0, 5)


def test_kid_compute_passes_float32_rows_without_a_float64_copy(monkeypatch):
    import otmetrics.generative.metrics as metrics_module

    real, fake = data(11, n_real=60, n_fake=50)
    r32, f32 = torch.from_numpy(real).float(), torch.from_numpy(fake).float()
    seen = []
    original = metrics_module.kid_values

    def spy(x, y, **kw):
        seen.append((x.dtype, y.dtype, x.data_ptr()))
        return original(x, y, **kw)

    monkeypatch.setattr(metrics_module, "kid_values", spy)
    metric = KID(subsets=4, subset_size=20, seed=1)
    metric.update(r32, real=True)
    metric.update(f32, real=False)
    mean, std = metric.compute()
    assert seen[-1][:2] == (torch.float32, torch.float32)
    assert seen[-1][2] == metric._real.chunks[0].data_ptr()  # one batch: the stored rows themselves
    # float64 arithmetic on the float32 values, returned without rounding to float32.
    ref = kid(r32.double().numpy(), f32.double().numpy(), subsets=4, subset_size=20, seed=1)
    assert (mean, std) == pytest.approx(ref, rel=1e-12)


def test_rows_are_concatenated_on_one_device_and_dtype():
    from otmetrics.generative.streaming import RowBuffer

    rows = RowBuffer()
    rows.add(torch.zeros((2, 3), dtype=torch.float32), "batch")
    rows.add(torch.ones((1, 3), dtype=torch.float64), "batch")
    both = rows.cat()
    assert both.dtype == torch.float64 and both.shape == (3, 3) and float(both.sum()) == 3.0
    # The meta device stands in for a second device (CUDA runs the real case below): the first
    # chunk's device wins, also when the dtypes differ.
    mixed = RowBuffer()
    mixed.add(torch.empty((2, 3), dtype=torch.float32, device="meta"), "batch")
    mixed.add(torch.ones((4, 3), dtype=torch.float64), "batch")
    out = mixed.cat()
    assert out.device.type == "meta" and out.dtype == torch.float64 and out.shape == (6, 3)
    half = RowBuffer()
    half.add(torch.zeros((1, 2), dtype=torch.float16), "batch")
    half.add(torch.zeros((1, 2), dtype=torch.float32), "batch")
    assert half.cat().dtype == torch.float32  # the widest dtype present, not always float64


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_rows_from_two_devices_and_dtypes_on_cuda():
    real, fake = data(13, n_real=60, n_fake=60)
    metric = MMD(bandwidth=1.0)
    metric.update(torch.from_numpy(real[:30]).float().cuda(), real=True)
    metric.update(torch.from_numpy(real[30:]), real=True)  # float64, on the CPU
    metric.update(torch.from_numpy(fake), real=False)
    r = np.concatenate([torch.from_numpy(real[:30]).float().double().numpy(), real[30:]])
    assert metric.compute() == pytest.approx(mmd(r, fake, bandwidth=1.0), rel=1e-10)


class _Mixer(torch.nn.Module):
    """A feature extractor with a dropout layer: the metric must put it in eval mode."""

    def __init__(self, d):
        super().__init__()
        self.lin = torch.nn.Linear(d, d, dtype=torch.float64)
        self.drop = torch.nn.Dropout(0.9)

    def forward(self, x):
        return self.drop(self.lin(x))[:, :, None, None]  # (B, d, 1, 1): flattened by the metric


def test_fid_with_a_module_extractor():
    torch.manual_seed(0)
    real, fake = data(3)
    net = _Mixer(6)
    fid = FID(net, device="cpu")
    assert not net.training
    fid.update(torch.from_numpy(real), real=True)
    fid.update(fake, real=False)  # numpy batches reach the module as tensors
    with torch.no_grad():
        fr = net.lin(torch.from_numpy(real)).numpy()
        ff = net.lin(torch.from_numpy(fake)).numpy()
    assert fid.real.dim == 6
    assert fid.compute() == pytest.approx(fid_of(fr, ff), rel=1e-9)


def test_callable_extractor_and_its_errors():
    real, fake = data(4)
    fid = FID(lambda x: x[:, :3] * 2)
    fid.update(torch.from_numpy(real), real=True)
    fid.update(torch.from_numpy(fake), real=False)
    assert fid.compute() == pytest.approx(fid_of(real[:, :3] * 2, fake[:, :3] * 2), rel=1e-10)
    match = "feature_extractor: must return one tensor of features, got a tuple"
    with pytest.raises(ValueError, match=match):
        FID(lambda x: (x, x)).update(torch.from_numpy(real), real=True)
    with pytest.raises(ValueError, match="batch: features must be finite, got NaN or infinity in row 1"):
        FID(lambda x: torch.log(x[:, :2])).update(torch.tensor([[1.0, 1.0], [0.0, -1.0]]), real=True)
    with pytest.raises(ValueError, match="feature_extractor: must be None, a registered name, a torch"):
        FID(42)
    with pytest.raises(ValueError, match=r"feature_extractor: FID is defined on 'inception' features, got "
                                         r"'resnet' \(otmetrics.FD takes any extractor\)"):
        FID("resnet")


def test_inception_by_name_picks_the_right_output(monkeypatch):
    import otmetrics.generative.features.inception

    built = []

    class FakeInception(torch.nn.Module):
        def __init__(self, output="pool3"):
            super().__init__()
            built.append(output)
            self.scale = torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            return x.flatten(1) * self.scale

    monkeypatch.setattr(otmetrics.generative.features.inception, "FIDInceptionV3", FakeInception)
    FID("inception")
    KID("inception")
    metric = InceptionScore("inception", splits=1)
    assert built == ["pool3", "pool3", "logits_unbiased"]
    assert metric.from_logits  # the logits of the FID InceptionV3
    metric.update(torch.tensor([[5.0, 0.0], [0.0, 5.0]]))
    assert metric.compute()[0] == pytest.approx(
        inception_score(np.array([[5.0, 0.0], [0.0, 5.0]]), splits=1, from_logits=True)[0], rel=1e-12)


def test_kid_mmd_and_is_streaming_equal_the_functions():
    real, fake = data(5, n_real=80, n_fake=70)
    k = KID(subsets=6, subset_size=30, seed=4)
    m = MMD(kernel="laplacian", bandwidth=2.0)
    for batch in np.array_split(real, 5):
        k.update(batch, real=True)
        m.update(batch, real=True)
    for batch in np.array_split(fake, 2):
        k.update(batch, real=False)
        m.update(batch, real=False)
    assert k.compute() == pytest.approx(kid(real, fake, subsets=6, subset_size=30, seed=4), rel=1e-12)
    assert m.compute() == pytest.approx(mmd(real, fake, kernel="laplacian", bandwidth=2.0), rel=1e-12)
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(45, 7)) * 3
    metric = InceptionScore(splits=4, from_logits=True)
    for batch in np.array_split(logits, 6):
        metric.update(batch)
    assert metric.n == 45
    assert metric.compute() == pytest.approx(inception_score(logits, splits=4, from_logits=True), rel=1e-12)


def test_merge_and_reset_of_row_metrics():
    real, fake = data(6, n_real=60, n_fake=60)
    a, b = MMD(bandwidth=1.0), MMD(bandwidth=1.0)
    a.update(real[:25], real=True)
    b.update(real[25:], real=True)
    a.update(fake[:10], real=False)
    b.update(fake[10:], real=False)
    a.merge(b)
    assert (a.n_real, a.n_fake) == (60, 60)
    assert a.compute() == pytest.approx(mmd(real, fake, bandwidth=1.0), rel=1e-12)
    with pytest.raises(ValueError, match="other: expected a MMD object, got KID"):
        a.merge(KID())
    kept = KID(subsets=2, subset_size=10, reset_real=False)
    kept.update(real, real=True)
    kept.update(fake, real=False)
    kept.reset()
    assert (kept.n_real, kept.n_fake) == (60, 0)
    p = InceptionScore(splits=2)
    q = InceptionScore(splits=2)
    p.update(np.eye(3)[[0, 1, 2]])
    q.update(np.eye(3)[[2, 1, 0]])
    p.merge(q)
    assert p.n == 6 and p.compute()[0] == pytest.approx(3.0)
    p.reset()
    assert p.n == 0


def test_metric_bad_input():
    real, fake = data(7)
    fid = FID()
    fid.update(real, real=True)
    match = r"batch: expected feature vectors of dimension 6 \(as the real ones\), got 4"
    with pytest.raises(ValueError, match=match):
        fid.update(fake[:, :4], real=False)
    with pytest.raises(ValueError, match="real: must be True or False"):
        fid.update(fake, real=1)
    with pytest.raises(ValueError, match=r"batch: expected feature vectors of shape \(B, d\)"):
        fid.update(fake[None], real=False)
    nan = fake.copy()
    nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="batch: features must be finite, got NaN or infinity in row 3"):
        fid.update(nan, real=False)
    fid.update(fake[:1], real=False)
    with pytest.raises(ValueError, match="fake: need at least 2 samples for a covariance, got 1"):
        fid.compute()
    k = KID(subsets=2, subset_size=10)
    k.update(real, real=True)
    with pytest.raises(ValueError, match="fake: need at least 2 samples, got 0"):
        k.compute()
    k.update(fake[:5], real=False)
    with pytest.raises(ValueError, match=r"subset_size: must be at most the number of samples in y \(5\)"):
        k.compute()
    with pytest.raises(ValueError, match="subset_size: must be an integer >= 2"):
        KID(subset_size=1)
    with pytest.raises(ValueError, match="subset_size: must be an integer, got 10.0"):
        KID(subset_size=10.0)
    with pytest.raises(ValueError, match="subsets: must be finite and > 0, got 0"):
        KID(subsets=0)
    with pytest.raises(ValueError, match="kernel: must be one of"):
        MMD(kernel="rbf")
    with pytest.raises(ValueError, match="splits: must be finite and > 0, got 0"):
        InceptionScore(splits=0)
    with pytest.raises(ValueError, match="splits: must be an integer, got 2.5"):
        InceptionScore(splits=2.5)
    with pytest.raises(ValueError, match="rows: need at least 2 samples, got 0"):
        InceptionScore().compute()


def test_fid_singular_warns_through_the_metric():
    rng = np.random.default_rng(8)
    fid = FID()
    fid.update(rng.normal(size=(5, 10)), real=True)
    fid.update(rng.normal(size=(50, 10)), real=False)
    with pytest.warns(otmetrics.NumericalWarning, match="cov1: the covariance matrix is singular"):
        assert np.isfinite(fid.compute())


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_fid_and_kid_on_cuda_match_cpu():
    real, fake = data(9, n_real=300, n_fake=300, d=32)
    fid = FID(device="cuda")
    k = KID(subsets=5, subset_size=100, device="cuda")
    for metric in (fid, k):
        metric.update(torch.from_numpy(real).float(), real=True)
        metric.update(torch.from_numpy(fake).float(), real=False)
    assert fid.real.mean.device.type == "cuda"
    r32, f32 = (torch.from_numpy(v).float().double().numpy() for v in (real, fake))
    assert fid.compute() == pytest.approx(fid_of(r32, f32), rel=1e-9)
    assert k.compute() == pytest.approx(kid(r32, f32, subsets=5, subset_size=100), rel=1e-9)


# ------------------------------------------------------------------------------------------------
# Two processes (gloo on 127.0.0.1)
# ------------------------------------------------------------------------------------------------
WORKER = textwrap.dedent("""
    import json, sys
    import numpy as np
    import torch
    import torch.distributed as dist
    from otmetrics import FID, KID, MMD, InceptionScore

    rank, world = int(sys.argv[1]), int(sys.argv[2])
    port, data_path, out_path = sys.argv[3], sys.argv[4], sys.argv[5]
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    d = np.load(data_path)
    real, fake, probs = d["real"], d["fake"], d["probs"]
    shards = json.loads(str(d["shards"]))[rank]

    def feed(metric, rows, real_flag, pieces=3):
        for batch in np.array_split(rows, pieces):
            if len(batch):
                if real_flag is None:
                    metric.update(torch.from_numpy(batch))
                else:
                    metric.update(torch.from_numpy(batch), real=real_flag)

    fid, kid = FID(), KID(subsets=8, subset_size=40, seed=5)
    mmd, isc = MMD(bandwidth=1.5), InceptionScore(splits=5)
    a, b = shards["fid_real"]; feed(fid, real[a:b], True)
    a, b = shards["fid_fake"]; feed(fid, fake[a:b], False)
    for metric in (kid, mmd):
        a, b = shards["real"]; feed(metric, real[a:b], True)
        a, b = shards["fake"]; feed(metric, fake[a:b], False)
    a, b = shards["probs"]; feed(isc, probs[a:b], None)
    result = {"fid": fid.compute(), "kid": list(kid.compute()), "mmd": mmd.compute(),
              "is": list(isc.compute()),
              "local_fid_real": fid.n_real, "local_kid_real": kid.n_real}
    dist.barrier()
    dist.destroy_process_group()
    with open(out_path, "w") as f:
        json.dump(result, f)
""")



def test_two_gloo_processes_equal_one_process(tmp_path):
    rng = np.random.default_rng(12)
    real = rng.normal(size=(100, 5))
    fake = rng.normal(size=(90, 5)) * 1.3 + 0.2
    logits = rng.normal(size=(70, 9)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    shards = [
        # rank 0 holds every real sample of FID; rank 1 none (its statistics are empty).
        {"fid_real": [0, 100], "fid_fake": [0, 30], "real": [0, 45], "fake": [0, 50], "probs": [0, 33]},
        {"fid_real": [100, 100], "fid_fake": [30, 90], "real": [45, 100], "fake": [50, 90],
         "probs": [33, 70]},
    ]
    np.savez(tmp_path / "data.npz", real=real, fake=fake, probs=probs, shards=json.dumps(shards))
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    results = run_ranks(script, tmp_path / "data.npz", tmp_path)

    # One process, fed the rows in rank order.
    ref = {
        "fid": fid_of(real, fake),
        "kid": list(kid(real, fake, subsets=8, subset_size=40, seed=5)),
        "mmd": mmd(real, fake, bandwidth=1.5),
        "is": list(inception_score(probs, splits=5)),
    }
    for result in results:
        assert result["fid"] == pytest.approx(ref["fid"], rel=1e-9)
        assert result["kid"] == pytest.approx(ref["kid"], rel=1e-9)
        assert result["mmd"] == pytest.approx(ref["mmd"], rel=1e-9)
        assert result["is"] == pytest.approx(ref["is"], rel=1e-9)
    # The local state was not replaced by the synchronised one.
    assert [r["local_fid_real"] for r in results] == [100, 0]
    assert [r["local_kid_real"] for r in results] == [45, 55]
