"""The optimal Kantorovich-Rubinstein critic of two 1-D samples, from the exact dual potentials.

P: 300 points of a two-component mixture; Q: 300 points of a Gaussian; cost |x - y|. The exact
solver returns potentials (u, v) with u_i + v_j <= |x_i - y_j|. The function

    f(z) = min_j ( |z - y_j| - v_j ),   v = c-transform of u,

is 1-Lipschitz everywhere (a minimum of 1-Lipschitz functions) and E_P f - E_Q f equals W1: it is
an optimal critic, the function a WGAN critic tries to learn. Where mass must move right f has
slope -1, where it must move left slope +1.

Run ``python docs/figures/kr_critic.py`` to rewrite ``docs/img/kr_critic.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _style import ACCENT, IMG_DIR, SOURCE, TARGET, pyplot, save  # noqa: E402


def samples(n: int = 300, seed: int = 1):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(-2.0, 0.5, n // 2), rng.normal(1.5, 0.7, n - n // 2)])
    y = rng.normal(0.0, 0.8, n)
    return x, y


def optimal_critic(x, y):
    """An optimal 1-Lipschitz critic ``f`` and W1, from ``otmetrics.emd``'s potentials."""
    import otmetrics

    cost = np.abs(x[:, None] - y[None, :])
    result = otmetrics.emd(None, None, cost)
    u, _ = result.potentials
    v = otmetrics.c_transform(cost, u)  # v_j = min_i |x_i - y_j| - u_i

    def critic(z):
        z = np.asarray(z, dtype=float)
        return (np.abs(z[..., None] - y) - v).min(-1)

    return critic, float(result.cost)


def main(out_dir=IMG_DIR) -> list[Path]:
    x, y = samples()
    f, w1 = optimal_critic(x, y)
    value = float(f(x).mean() - f(y).mean())
    assert abs(value - w1) <= 1e-9 * max(1.0, w1), (value, w1)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7.6, 3.3))
    bins = np.linspace(-4, 4, 49)
    hist = ax.twinx()
    hist.hist(x, bins=bins, color=SOURCE, alpha=0.35, label="sample of P")
    hist.hist(y, bins=bins, color=TARGET, alpha=0.35, label="sample of Q")
    hist.set_yticks([])
    hist.spines["right"].set_visible(False)
    grid = np.linspace(-4, 4, 801)
    ax.plot(grid, f(grid), color=ACCENT, lw=2.2, label="optimal critic f (1-Lipschitz)")
    ax.set_zorder(hist.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")
    handles = ax.get_legend_handles_labels()[0] + hist.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, fontsize=8.5)
    ax.set_title(rf"$E_P f - E_Q f$ = {value:.4f} = $W_1(P, Q)$ from the exact solver", fontsize=10)
    return [save(fig, out_dir, "kr_critic.png")]


if __name__ == "__main__":
    for path in main():
        print(path)
