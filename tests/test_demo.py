"""The demo (`make demo`, `otmetrics demo`) runs end to end in its short form."""

import os

import pytest

from otmetrics import demo


# --quick trains for 10 steps and fits the critic for 30: the solvers are told to stop early and say
# so; what is tested here is that the whole pipeline runs and the certified bound holds.
@pytest.mark.filterwarnings("ignore::otmetrics.ConvergenceWarning")
def test_demo_quick_runs_and_writes_its_plots(tmp_path, capsys):
    out = tmp_path / "plots"
    assert demo.main(["--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    for row in demo.ROWS:
        assert row.name in text
    assert "certified lower bound stayed below the exact W1 for every sampler: True" in text
    assert sorted(os.listdir(out)) == ["samples.png", "training.png", "transport_plan.png"]


def test_mode_posterior_is_a_distribution_and_the_ring_has_eight_modes():
    import numpy as np

    rng = np.random.default_rng(0)
    x = demo.ring_of_gaussians(800, rng)
    post = demo.mode_posterior(x)
    np.testing.assert_allclose(post.sum(1), 1.0)
    assert len(np.unique(post.argmax(1))) == 8
    collapsed = demo.mode_posterior(demo.ring_of_gaussians(300, rng, modes=[0, 1]))
    assert set(np.unique(collapsed.argmax(1))) == {0, 1}
