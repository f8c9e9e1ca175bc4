"""Smoke test of examples/wgan_mixture.py: the shortened study runs and writes what it promises."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from otmetrics import demo

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "wgan_mixture.py"


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("wgan_mixture", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_study_writes_plots_and_metrics(example, tmp_path):
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the caller's setting, which main (--threads 1) must give back
    try:
        summary = example.main([str(tmp_path / "out"), "--quick",
                                "--methods", "gan", "clipping", "gp", "groupsort"])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    out = tmp_path / "out"
    for name in ("samples.png", "metrics.png"):
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["settings"]["quick"] is True
    (out / "metrics.png").unlink()
    example.main([str(out), "--replot"])  # the plots again, from metrics.json alone
    assert (out / "metrics.png").stat().st_size > 10_000
    assert set(summary["results"]) == {"gan", "clipping", "gp", "groupsort"}
    for result in summary["results"].values():
        curves = result["curves"]
        assert curves["step"] == [0, 5, 10, 15, 20]  # every 10 steps, and at the snapshots
        w1 = np.asarray(curves["w1"])
        assert np.all(w1 > 0) and np.all(np.isfinite(w1))
        # the untrained generator sits near the origin, the data on the circle of radius 2
        assert 1.0 < w1[0] < 2.5
        assert all(0 <= js <= math.log(2) + 1e-12 for js in curves["js"])
        assert all(kl >= 0 for kl in curves["kl"])  # inf allowed: mass where the data has (almost) none
        assert all(0 <= m <= 8 for m in curves["modes"])
        assert sorted(int(s) for s in result["snapshots"]) == [0, 5, 10, 15, 20]


def test_the_data_is_the_package_sampler(example):
    """One ring-of-Gaussians sampler: the example draws from otmetrics.demo.ring_of_gaussians."""
    assert example.CENTRES is demo.CENTRES and example.STD == demo.STD == 0.05 and example.MODES == 8
    for n in (1, 500):
        drawn = example.sample_data(n, np.random.default_rng(5))
        assert np.array_equal(drawn, demo.ring_of_gaussians(n, np.random.default_rng(5)))
    np.testing.assert_allclose(np.linalg.norm(demo.CENTRES, axis=1), 2.0)  # radius 2


def test_data_histogram_is_the_mixture(example):
    hist = example.data_histogram()
    assert hist.shape == (60, 60) and hist.sum() == pytest.approx(1.0)
    samples = example.sample_data(200_000, np.random.default_rng(0))
    counted = example.sample_histogram(samples)
    assert np.abs(counted - hist).sum() < 0.05  # sampling noise only
    # the ring is symmetric under the quarter turn: each quadrant holds a quarter of the mass
    quadrants = [hist[:30, :30].sum(), hist[30:, :30].sum(), hist[:30, 30:].sum(), hist[30:, 30:].sum()]
    assert quadrants == pytest.approx([0.25] * 4, abs=1e-12)


def test_measurements_on_the_data_itself(example):
    rng = np.random.default_rng(1)
    real, fake = example.sample_data(1000, rng), example.sample_data(1000, rng)
    metrics = example.evaluate(fake, real, example.data_histogram())
    assert metrics["modes"] == 8 and metrics["quality"] > 0.95
    # only sampling noise (at 1000 points per side: W1 ~ 0.1, JS ~ 0.02)
    assert metrics["w1"] < 0.3 and metrics["js"] < 0.1
    blob = 0.01 * rng.normal(size=(1000, 2))  # a collapsed generator at the centre
    far = example.evaluate(blob, real, example.data_histogram())
    assert far["js"] == pytest.approx(math.log(2), abs=1e-9)  # disjoint supports: JS saturates
    assert far["kl"] > 100 and far["modes"] == 0
    assert far["w1"] == pytest.approx(2.0, abs=0.1)


def test_bad_arguments(example, tmp_path):
    with pytest.raises(SystemExit):
        example.main([str(tmp_path), "--steps", "0"])
    with pytest.raises(SystemExit):
        example.main([str(tmp_path), "--methods", "vae"])
