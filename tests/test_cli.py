"""The otmetrics command: results equal the library's on the same images, files, options, errors.

The real FID weights cannot be downloaded here: the command runs the real FIDInceptionV3 with a
generated weight file in the exact layout. Two images per folder keep the 299x299 forward passes
affordable on a CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
import types

import numpy as np
import pytest
import torch
from PIL import Image

from otmetrics import (FIDInceptionV3, GaussianStats, NumericalWarning, frechet_distance, image_features,
                       inception_score, kid)
from otmetrics.cli import main




@pytest.fixture(autouse=True)
def no_weights_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("OTMETRICS_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.delenv("OTMETRICS_DEBUG", raising=False)
    monkeypatch.setenv("OTMETRICS_CACHE_DIR", str(tmp_path / "no-cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    monkeypatch.setenv("OTMETRICS_INCEPTION_URL", "http://127.0.0.1:9/pt_inception-2015-12-05-6726825d.pth")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    net = FIDInceptionV3(pretrained=False)
    with torch.no_grad():
        net.fc.bias.uniform_(-1, 1)
    weights = root / "weights.pth"
    torch.save(net.state_dict(), weights)
    rng = np.random.default_rng(0)
    for name, offset in (("real", 0), ("fake", 90)):
        for i in range(2):
            pixels = np.clip(rng.integers(0, 160, (24 + 8 * i, 30, 3)) + offset, 0, 255).astype(np.uint8)
            path = root / name / ("sub" if i else "") / f"{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path)
    reference = {}
    for name in ("real", "fake"):
        reference[name] = dict(zip(("pool2", "pool3", "logits"), image_features(
            root / name, net, device="cpu", progress=False, output=("pool2", "pool3", "logits_unbiased"))))
    return types.SimpleNamespace(root=root, weights=str(weights), real=str(root / "real"),
                                 fake=str(root / "fake"), reference=reference)


def run(capsys, *argv):
    status = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_line_error(status, err, expected_status, *needles):
    assert status == expected_status
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0]


# ----------------------------------------------------------------------------------------------
# Results equal the library's
# ----------------------------------------------------------------------------------------------
def test_all_metrics_in_one_pass_equal_the_library(capsys, data):
    # --dims 192 keeps the covariances small (the eigen-decompositions of 2048 x 2048 matrices
    # would dominate the test's time); the IS still runs the whole network.
    status, out, err = run(capsys, "all", data.real, data.fake, "--weights", data.weights, "--device", "cpu",
                           "--dims", 192, "--subsets", 4, "--subset-size", 2, "--splits", 2, "--json",
                           "--no-progress")
    assert status == 0, err
    result = json.loads(out)
    assert list(result) == ["fid", "kid_mean", "kid_std", "is_mean", "is_std"]
    real, fake = data.reference["real"], data.reference["fake"]
    with pytest.warns(NumericalWarning, match="singular"):  # 2 samples in 192 dimensions
        fid = frechet_distance(real["pool2"].mean(0), np.cov(real["pool2"], rowvar=False),
                               fake["pool2"].mean(0), np.cov(fake["pool2"], rowvar=False))
    assert result["fid"] == pytest.approx(fid, rel=1e-6) and result["fid"] > 0
    kid_mean, kid_std = kid(real["pool2"], fake["pool2"], subsets=4, subset_size=2, seed=0)
    assert result["kid_mean"] == pytest.approx(kid_mean, rel=1e-6)
    assert result["kid_std"] == pytest.approx(kid_std, rel=1e-6, abs=1e-12)
    is_mean, is_std = inception_score(real["logits"], splits=2, from_logits=True)
    assert result["is_mean"] == pytest.approx(is_mean, rel=1e-6)
    assert result["is_std"] == pytest.approx(is_std, rel=1e-6, abs=1e-12)
    # the command reports the same warnings, one line each
    warnings = [line for line in err.splitlines() if line]
    assert warnings and all(line.startswith("otmetrics: warning: ") for line in warnings)


def test_save_stats_writes_pytorch_fid_files(capsys, data, monkeypatch, tmp_path):
    monkeypatch.setenv("OTMETRICS_INCEPTION_WEIGHTS", data.weights)  # the weights from the environment
    target = tmp_path / "real_stats"
    status, out, err = run(capsys, "fid", "--save-stats", data.real, target, "--device", "cpu",
                           "--no-progress")
    assert status == 0, err
    assert out.strip() == f"saved the statistics of 2 images (2048 features) to {target}.npz"
    with np.load(f"{target}.npz") as saved:  # pytorch-fid's keys
        real = data.reference["real"]["pool3"]
        np.testing.assert_allclose(saved["mu"], real.mean(0), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(saved["sigma"], np.cov(real, rowvar=False), rtol=1e-5, atol=1e-9)
        assert int(saved["n"]) == 2
    # an existing output is not overwritten
    status, _, err = run(capsys, "fid", "--save-stats", data.real, target, "--no-progress")
    assert_one_line_error(status, err, 2, "exists already")


def test_dims_selects_an_earlier_layer(capsys, data, tmp_path):
    target = tmp_path / "pool1.npz"
    status, out, err = run(capsys, "fid", "--save-stats", data.fake, target, "--dims", 64, "--weights",
                           data.weights, "--device", "cpu", "--no-progress", "--json")
    assert status == 0, err
    assert json.loads(out) == {"stats_file": str(target), "n": 2, "dim": 64}
    net = FIDInceptionV3(data.weights, output="pool1")
    pool1 = {name: image_features(getattr(data, name), net, device="cpu", progress=False)
             for name in ("real", "fake")}
    with np.load(target) as saved:
        np.testing.assert_allclose(saved["mu"], pool1["fake"].mean(0), rtol=1e-6)
    # a statistics file against an image folder, in text
    status, out, err = run(capsys, "fid", data.real, target, "--dims", 64, "--weights", data.weights,
                           "--device", "cpu", "--no-progress")
    assert status == 0, err
    with pytest.warns(NumericalWarning):
        expected = GaussianStats.from_features(pool1["real"]).frechet_distance(GaussianStats.load(target))
    assert out.startswith("fid: ") and float(out.split()[1]) == pytest.approx(expected, rel=1e-6)
    # identical statistics
    status, out, _ = run(capsys, "fid", target, target)
    assert status == 0 and abs(float(out.split()[1])) < 1e-9


def test_inception_score_command(capsys, data):
    status, out, err = run(capsys, "is", data.fake, "--weights", data.weights, "--splits", 1, "--json",
                           "--device", "cpu", "--no-progress")
    assert status == 0, err
    result = json.loads(out)
    assert list(result) == ["is_mean", "is_std"]
    expected = inception_score(data.reference["fake"]["logits"], splits=1, from_logits=True)
    assert result["is_mean"] == pytest.approx(expected[0], rel=1e-6) and result["is_std"] == 0


def test_feature_files_for_kid_and_fid(capsys, tmp_path):
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(50, 5)) + 1
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    status, out, _ = run(capsys, "kid", tmp_path / "x.npy", tmp_path / "y.npy", "--subsets", 10,
                         "--subset-size", 20, "--seed", 3, "--json")
    assert status == 0
    assert json.loads(out) == pytest.approx(dict(zip(("kid_mean", "kid_std"),
                                                     kid(x, y, subsets=10, subset_size=20, seed=3))))
    status, out, _ = run(capsys, "fid", tmp_path / "x.npy", tmp_path / "y.npy")
    expected = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert status == 0 and out.startswith("fid: ")
    assert float(out.split()[1]) == pytest.approx(expected, rel=1e-9)


# ----------------------------------------------------------------------------------------------
# Errors: one line on stderr, a non-zero status, no traceback
# ----------------------------------------------------------------------------------------------
def test_missing_empty_and_unreadable_inputs(capsys, data, tmp_path):
    status, _, err = run(capsys, "fid", data.real, tmp_path / "missing", "--weights", data.weights)
    assert_one_line_error(status, err, 1, "no such file or folder", "missing")
    (tmp_path / "empty").mkdir()
    status, _, err = run(capsys, "fid", data.real, tmp_path / "empty", "--weights", data.weights)
    assert_one_line_error(status, err, 1, "no image files")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.jpg").write_bytes(b"not a jpeg")
    status, _, err = run(capsys, "is", bad, "--weights", data.weights, "--no-progress", "--device", "cpu")
    assert_one_line_error(status, err, 1, "source: could not read image", "broken.jpg")


def test_weight_problems(capsys, data, tmp_path):
    status, _, err = run(capsys, "is", data.real, "--weights", tmp_path / "nope.pth")
    assert_one_line_error(status, err, 1, "no such file", "nope.pth")
    broken = {k: v for k, v in torch.load(data.weights, weights_only=True).items() if not k.startswith("fc.")}
    torch.save(broken, tmp_path / "broken.pth")
    status, _, err = run(capsys, "is", data.real, "--weights", tmp_path / "broken.pth")
    assert_one_line_error(status, err, 1, "not the FID InceptionV3 layout", "fc.weight")
    # nothing given, nothing cached, and the download address unreachable: say how to get the file
    status, _, err = run(capsys, "is", data.real, "--no-progress")
    assert_one_line_error(status, err, 1, "could not download", "curl", "--weights",
                          "OTMETRICS_INCEPTION_WEIGHTS")


def test_usage_errors(capsys, data, tmp_path):
    status, _, err = run(capsys, "fid", data.real)
    assert_one_line_error(status, err, 2, "required")
    status, _, err = run(capsys, "fid", data.real, data.fake, "--dims", 100)
    assert_one_line_error(status, err, 2, "--dims")
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.startswith("otmetrics ")
    status, _, err = run(capsys, "kid", data.real, data.fake, "--batch-size", 0)
    assert_one_line_error(status, err, 2, "--batch-size: must be >= 1")
    stats = tmp_path / "s.npz"
    np.savez(stats, mu=np.zeros(3), sigma=np.eye(3))
    status, _, err = run(capsys, "kid", stats, data.real)
    assert_one_line_error(status, err, 2, f"path: '{stats}' is a statistics file", "KID")
    np.save(tmp_path / "f.npy", np.ones((3, 2048)))
    status, _, err = run(capsys, "is", tmp_path / "f.npy")
    assert_one_line_error(status, err, 2, "path: ", "f.npy' is a features file", "Inception Score")


def test_bad_feature_files(capsys, tmp_path):
    five, six = tmp_path / "five.npy", tmp_path / "six.npy"
    np.save(five, np.ones((4, 5)) + np.arange(5) * np.arange(4)[:, None])
    np.save(six, np.ones((4, 6)) + np.arange(6) * np.arange(4)[:, None])
    fid_and_kid = (("fid",), ("kid", "--subset-size", 2))
    for command, *options in fid_and_kid:
        status, _, err = run(capsys, command, five, six, *options)
        assert_one_line_error(status, err, 1, "paths: the inputs have features of different dimensions: "
                              f"5 in '{five}' and 6 in '{six}'")
    # the second input is an image folder (2048 features by default): found before any image is read
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "broken.png").write_bytes(b"not decoded: the dimensions differ first")
    status, _, err = run(capsys, "fid", five, folder)
    assert_one_line_error(status, err, 1, f"5 in '{five}' and 2048 in '{folder}'")
    nan = np.ones((4, 5))
    nan[2, 1] = np.nan
    nan[3, 0] = np.inf
    np.save(tmp_path / "nan.npy", nan)
    for command, *options in fid_and_kid:  # named by the file, not by the library's argument name
        status, _, err = run(capsys, command, tmp_path / "nan.npy", five, *options)
        assert_one_line_error(status, err, 1, "path: ", "nan.npy' holds non-finite features",
                              "(NaN or infinity) in 2 row(s), the first is row 2")
        assert "batch" not in err
    np.save(tmp_path / "flat.npy", np.ones(5))
    status, _, err = run(capsys, "fid", tmp_path / "flat.npy", five)
    assert_one_line_error(status, err, 1, "path: ", "(N, d)")
    np.save(tmp_path / "empty.npy", np.ones((0, 5)))
    status, _, err = run(capsys, "fid", tmp_path / "empty.npy", five)
    assert_one_line_error(status, err, 1, "path: ", "empty.npy' holds no features")
    np.save(tmp_path / "complex.npy", np.ones((4, 5), dtype=complex))
    status, _, err = run(capsys, "fid", tmp_path / "complex.npy", five)
    assert_one_line_error(status, err, 1, "path: ", "must hold real numbers, got dtype complex128")


# ----------------------------------------------------------------------------------------------
# The demo subcommand and python -m otmetrics
# ----------------------------------------------------------------------------------------------
def test_demo_is_dispatched_with_its_arguments(capsys, monkeypatch):
    calls = []
    fake = types.ModuleType("otmetrics.demo")
    fake.main = lambda argv: calls.append(argv) or 3
    monkeypatch.setitem(sys.modules, "otmetrics.demo", fake)
    assert main(["demo", "--quick", "x"]) == 3
    assert calls == [["--quick", "x"]]
    monkeypatch.setitem(sys.modules, "otmetrics.demo", None)  # as if the module were missing
    status, _, err = run(capsys, "demo")
    assert_one_line_error(status, err, 1, "demo is not part of this installation")


def test_python_dash_m(tmp_path):
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, mu=np.zeros(2), sigma=np.eye(2))
    np.savez(b, mu=np.array([3.0, 4.0]), sigma=np.eye(2))
    done = subprocess.run([sys.executable, "-m", "otmetrics", "fid", str(a), str(b), "--json"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"fid": pytest.approx(25.0)}  # |mu1 - mu2|^2, equal covariances
