"""The commands fd, cmmd, prdc, fd-inf and `all --features`: equal to the library on the same
features, statistics files that record their extractor, usage errors.

Folders go through the real FID InceptionV3 with generated weights (as in test_cli.py) or through
small extractors registered here under test names."""

from __future__ import annotations

import json
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

import otmetrics
from otmetrics import (FIDInceptionV3, GaussianStats, cmmd, fd_infinity, frechet_distance, image_features,
                       kid, prdc)
from otmetrics.cli import build_parser, main
from otmetrics.generative.features import registry


class MeanColours(torch.nn.Module):
    """A test extractor: the mean colour of four quadrants (12 features), from uint8 images."""

    def __init__(self, normalize=False, weights=None):
        super().__init__()
        self.normalize, self.weights = normalize, weights
        self.scale = torch.nn.Parameter(torch.ones(()), requires_grad=False)

    def forward(self, x):
        assert x.dtype == torch.uint8  # the command hands over the images as they are decoded
        x = x.double() / 255
        h, w = x.shape[2] // 2, x.shape[3] // 2
        parts = [x[:, :, :h, :w], x[:, :, :h, w:], x[:, :, h:, :w], x[:, :, h:, w:]]
        out = torch.cat([p.mean(dim=(2, 3)) for p in parts], 1) * self.scale
        return out / out.norm(dim=1, keepdim=True) if self.normalize else out


@pytest.fixture(autouse=True)
def environment(monkeypatch, tmp_path):
    monkeypatch.delenv("OTMETRICS_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.delenv("OTMETRICS_DEBUG", raising=False)
    monkeypatch.setenv("OTMETRICS_CACHE_DIR", str(tmp_path / "no-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setenv("OTMETRICS_INCEPTION_URL", "http://127.0.0.1:9/pt_inception-2015-12-05-6726825d.pth")
    module = types.ModuleType("otmetrics_test_cli_extractors")
    module.MeanColours = MeanColours
    monkeypatch.setitem(sys.modules, "otmetrics_test_cli_extractors", module)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register_extractor("quadrants", "otmetrics_test_cli_extractors:MeanColours", dim=12,
                                description="test")
    registry.register_extractor("clip-quadrants", "otmetrics_test_cli_extractors:MeanColours", dim=12,
                                description="test, named like a CLIP encoder")
    for name in ("dinov2-vitl14", "clip-vit-l-14-336px"):  # the defaults, until their modules exist
        if name not in registry.extractor_names():
            registry.register_extractor(name, "otmetrics_test_cli_extractors:MeanColours", dim=12,
                                        description="stand-in")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli-metrics")
    torch.manual_seed(0)
    weights = root / "weights.pth"
    torch.save(FIDInceptionV3(pretrained=False).state_dict(), weights)
    rng = np.random.default_rng(0)
    for name, offset, count in (("real", 0, 24), ("fake", 60, 20), ("small", 30, 3)):
        for i in range(count):
            pixels = np.clip(rng.integers(0, 180, (16 + 2 * (i % 3), 20, 3)) + offset, 0,
                             255).astype(np.uint8)
            path = root / name / f"{i:02d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path)
    quadrants = {name: image_features(root / name, MeanColours(), device="cpu", progress=False,
                                      preprocess=lambda x: x) for name in ("real", "fake")}
    return types.SimpleNamespace(root=root, weights=str(weights), real=str(root / "real"),
                                 fake=str(root / "fake"),
                                 quadrants=quadrants)


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def one_line_error(status, err, expected_status, *needles):
    assert status == expected_status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[0], lines[0]


def fd_of(a, b):
    sa, sb = GaussianStats.from_features(a), GaussianStats.from_features(b)
    return frechet_distance(sa.mean, sa.cov, sb.mean, sb.cov)


# ----------------------------------------------------------------------------------------------
# Results equal the library's
# ----------------------------------------------------------------------------------------------
def test_fd_on_a_named_extractor_and_on_the_inception(capsys, data):
    status, out, err = run(capsys, "fd", "--features", "quadrants", data.real, data.fake, "--json",
                           "--no-progress", "--device", "cpu")
    assert status == 0, err
    result = json.loads(out)
    assert list(result) == ["fd", "features"] and result["features"] == "quadrants"
    assert result["fd"] == pytest.approx(fd_of(data.quadrants["real"], data.quadrants["fake"]), rel=1e-9)
    # the default extractor is the Inception: `fd` is then `fid`
    np.save(data.root / "r.npy", data.quadrants["real"])
    np.save(data.root / "f.npy", data.quadrants["fake"])
    status, out, err = run(capsys, "fd", data.root / "r.npy", data.root / "f.npy", "--json")
    assert status == 0, err
    status, fid_out, _ = run(capsys, "fid", data.root / "r.npy", data.root / "f.npy", "--json")
    assert json.loads(out) == {"fd": json.loads(fid_out)["fid"], "features": "inception"}


def test_cmmd_prdc_and_fd_inf_from_feature_files(capsys, tmp_path):
    rng = np.random.default_rng(1)
    real, fake = rng.normal(size=(300, 6)), rng.normal(size=(250, 6)) * 1.1 + 0.2
    np.save(tmp_path / "real.npy", real)
    np.save(tmp_path / "fake.npy", fake)
    status, out, _ = run(capsys, "cmmd", tmp_path / "real.npy", tmp_path / "fake.npy", "--json")
    assert status == 0
    assert json.loads(out) == {"cmmd": pytest.approx(cmmd(real, fake), rel=1e-12),
                               "features": "clip-vit-l-14-336px"}
    status, out, _ = run(capsys, "prdc", tmp_path / "real.npy", tmp_path / "fake.npy", "--k", 3, "--ball",
                         "closed",
                         "--json")
    assert status == 0
    expected = prdc(real, fake, k=3, ball="closed").as_dict()
    assert json.loads(out) == {**expected, "k": 3, "features": "dinov2-vitl14"}
    GaussianStats.from_features(real).save(tmp_path / "real.npz")
    status, out, _ = run(capsys, "fd-inf", tmp_path / "real.npz", tmp_path / "fake.npy", "--num-points", 5,
                         "--seed", 4, "--json")
    assert status == 0
    values = fd_infinity(real, fake, num_points=5, seed=4)
    assert json.loads(out) == {"fd_infinity": pytest.approx(values.value, rel=1e-10),
                               "fd": pytest.approx(values.fd[-1], rel=1e-10), "n": 250,
                               "features": "inception"}
    status, out, _ = run(capsys, "prdc", tmp_path / "real.npy", tmp_path / "fake.npy")   # text
    assert status == 0 and out.splitlines()[0].startswith("precision: ") and "k: 5" in out


def test_cmmd_on_folders_normalises_clip_embeddings(capsys, data):
    status, out, err = run(capsys, "cmmd", "--features", "clip-quadrants", data.real, data.fake, "--json",
                           "--no-progress", "--device", "cpu")
    assert status == 0, err
    unit = {k: v / np.linalg.norm(v, axis=1, keepdims=True) for k, v in data.quadrants.items()}
    assert json.loads(out)["cmmd"] == pytest.approx(cmmd(unit["real"], unit["fake"]), rel=1e-9)
    status, out, _ = run(capsys, "cmmd", "--features", "quadrants", data.real, data.fake, "--json",
                         "--no-progress",
                         "--device", "cpu")
    assert json.loads(out)["cmmd"] == pytest.approx(cmmd(data.quadrants["real"], data.quadrants["fake"]),
                                                    rel=1e-9)


def test_prdc_and_fd_inf_on_folders(capsys, data):
    status, out, err = run(capsys, "prdc", "--features", "quadrants", data.real, data.fake, "--k", 2,
                           "--json",
                           "--no-progress", "--device", "cpu")
    assert status == 0, err
    assert json.loads(out) == {**prdc(data.quadrants["real"], data.quadrants["fake"], k=2).as_dict(), "k": 2,
                               "features": "quadrants"}
    status, out, err = run(capsys, "fd-inf", "--features", "quadrants", data.real, data.fake, "--num-points",
                           3,
                           "--json", "--no-progress", "--device", "cpu")
    assert status == 0, err
    # 20 generated images in 12 dimensions: the smallest subsets are degenerate, and the command says so
    assert err.startswith("otmetrics: warning: fake: 2 of the 3 subsets (sizes 2 to 11) give a singular")
    with pytest.warns(otmetrics.NumericalWarning, match="singular covariance"):
        expected = fd_infinity(data.quadrants["real"], data.quadrants["fake"], num_points=3)
    assert json.loads(out)["fd_infinity"] == pytest.approx(expected.value, rel=1e-9)


def test_all_with_features(capsys, data, monkeypatch):
    monkeypatch.setenv("OTMETRICS_INCEPTION_WEIGHTS", data.weights)   # the IS still needs the Inception
    small = data.root / "small"  # the Inception runs on these 3 images only (for the IS)
    status, out, err = run(capsys, "all", small, data.real, "--features", "quadrants", "--subsets", 3,
                           "--subset-size", 3, "--splits", 1, "--json", "--no-progress", "--device", "cpu")
    assert status == 0, err
    result = json.loads(out)
    assert list(result) == ["fd", "kid_mean", "kid_std", "is_mean", "is_std", "features"]
    q, mine = data.quadrants, image_features(small, MeanColours(), device="cpu", progress=False,
                                             preprocess=lambda x: x)
    with pytest.warns(otmetrics.NumericalWarning, match="singular"):   # 3 images in 12 dimensions
        assert result["fd"] == pytest.approx(fd_of(mine, q["real"]), rel=1e-9)
    assert result["kid_mean"] == pytest.approx(kid(mine, q["real"], subsets=3, subset_size=3)[0], rel=1e-9)
    logits = image_features(small, FIDInceptionV3(data.weights, output="logits_unbiased"), device="cpu",
                            progress=False)
    assert result["is_mean"] == pytest.approx(otmetrics.inception_score(logits, splits=1,
                                                                        from_logits=True)[0],
                                              rel=1e-6)
    assert "warning" in err  # the singular covariance, on one line


# ----------------------------------------------------------------------------------------------
# Statistics files per extractor
# ----------------------------------------------------------------------------------------------
def test_statistics_files_record_their_extractor(capsys, data, tmp_path):
    stats = tmp_path / "real_quadrants.npz"
    status, out, err = run(capsys, "fd", "--features", "quadrants", "--save-stats", data.real, stats,
                           "--no-progress", "--device", "cpu")
    assert status == 0, err
    assert out.strip() == f"saved the statistics of quadrants of 24 images (12 features) to {stats}"
    assert GaussianStats.load(stats).extractor == "quadrants"
    status, out, err = run(capsys, "fd", "--features", "quadrants", stats, data.fake, "--json",
                           "--no-progress",
                           "--device", "cpu")
    assert status == 0, err
    assert json.loads(out)["fd"] == pytest.approx(fd_of(data.quadrants["real"], data.quadrants["fake"]),
                                                  rel=1e-9)
    # the statistics of one extractor against the features of another: refused, both named
    status, _, err = run(capsys, "fd", "--features", "clip-quadrants", stats, data.fake, "--no-progress")
    one_line_error(status, err, 1, f"path: '{stats}' holds statistics of the 'quadrants' features, but the "
                                   "command computes 'clip-quadrants' features")
    other = tmp_path / "other.npz"
    GaussianStats.from_features(data.quadrants["fake"], extractor="clip-quadrants").save(other)
    status, _, err = run(capsys, "fd", "--features", "quadrants", stats, other)
    one_line_error(status, err, 1, "paths: the statistics files come from different feature extractors: "
                                   f"'quadrants' in '{stats}' and 'clip-quadrants' in '{other}'")
    # a file that does not say (pytorch-fid's format) is taken at its word, with a warning
    plain = tmp_path / "plain.npz"
    np.savez(plain, mu=data.quadrants["real"].mean(0), sigma=np.cov(data.quadrants["real"], rowvar=False))
    status, out, err = run(capsys, "fd", "--features", "quadrants", plain, data.fake, "--no-progress",
                           "--device", "cpu")
    assert status == 0 and out.startswith("fd: ")
    assert err.strip() == (f"otmetrics: warning: path: '{plain}' does not record its feature extractor; it "
                           "is taken to hold quadrants statistics")


# ----------------------------------------------------------------------------------------------
# Usage errors
# ----------------------------------------------------------------------------------------------
def test_usage_errors(capsys, data, tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(0).normal(size=(10, 12)))
    status, _, err = run(capsys, "fd", "--features", "vgg16", data.real, data.fake)
    one_line_error(status, err, 2, "--features: unknown extractor 'vgg16'; known: ", "inception", "quadrants")
    stats = tmp_path / "s.npz"
    np.savez(stats, mu=np.zeros(12), sigma=np.eye(12))
    for command, name in (("prdc", "PRDC"), ("cmmd", "CMMD")):
        status, _, err = run(capsys, command, stats, tmp_path / "x.npy")
        one_line_error(status, err, 2, f"path: '{stats}' is a statistics file",
                       f"{name} needs an image folder")
    status, _, err = run(capsys, "fd-inf", tmp_path / "x.npy", stats)
    one_line_error(status, err, 2, "FD-infinity (for FAKE) needs an image folder or a features .npy")
    status, _, err = run(capsys, "prdc", tmp_path / "x.npy", tmp_path / "x.npy", "--k", 0)
    one_line_error(status, err, 2, "--k: must be >= 1, got 0")
    status, _, err = run(capsys, "prdc", tmp_path / "x.npy", tmp_path / "x.npy", "--k", 10)
    one_line_error(status, err, 1, "real: need at least k + 1 = 11 samples")
    status, _, err = run(capsys, "fd-inf", tmp_path / "x.npy", tmp_path / "x.npy", "--num-points", 1)
    one_line_error(status, err, 1, "num_points: must be an integer >= 2")
    status, _, err = run(capsys, "prdc", tmp_path / "x.npy", tmp_path / "x.npy", "--ball", "ajar")
    one_line_error(status, err, 2, "--ball")
    status, _, err = run(capsys, "fd", "--features", "quadrants", data.real, data.fake, "--resize", "tf1")
    one_line_error(status, err, 2, "--resize: the extractor 'quadrants' takes no resize")
    other = tmp_path / "other.pth"
    torch.save(torch.nn.Linear(3, 3).state_dict(), other)
    status, _, err = run(capsys, "fd", data.real, data.fake, "--weights", other, "--no-progress")
    one_line_error(status, err, 1, "not the FID InceptionV3 layout")


def test_help_of_every_command(capsys):
    for command in ("fid", "fd", "kid", "cmmd", "prdc", "fd-inf", "is", "all"):
        status, out, _ = run(capsys, command, "--help")
        assert status == 0 and out.startswith(f"usage: otmetrics {command}")
    status, out, _ = run(capsys, "prdc", "--help")
    assert "REAL FAKE" in out


def test_help_names_every_extractor():
    parser = build_parser()
    fd = next(a for a in parser._subparsers._group_actions[0].choices["fd"]._actions if a.dest == "features")
    assert "inception" in fd.help and "quadrants" in fd.help
