"""The parallel-lines example: W1 is continuous in theta, JS and TV jump, KL is infinite.

P_0 is the uniform law on the segment {0} x [0, 1], P_theta the same segment moved to x = theta.
For theta != 0 the two supports are disjoint, so JS = log 2, TV = 1 and KL = +inf whatever
theta is, while W1 = |theta| shrinks smoothly to 0. Here W1 is the exact EMD between 200 points
of each segment (``otmetrics.wasserstein``), and JS/TV are computed on a 2-D histogram grid of
bin width 0.02 (the bin around x = 0 is [-0.01, 0.01)): the two histograms share bins only
when both segments fall in the same column of bins.

Run ``python docs/figures/parallel_lines.py`` to rewrite ``docs/img/parallel_lines.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _style import ACCENT, GREY, IMG_DIR, SOURCE, TARGET, pyplot, save  # noqa: E402

BIN = 0.02


def segment(theta: float, n: int = 200) -> np.ndarray:
    """``n`` evenly spread points of the segment {theta} x [0, 1]."""
    z = (np.arange(n) + 0.5) / n
    return np.stack([np.full(n, theta), z], axis=1)


def histogram(points: np.ndarray) -> np.ndarray:
    """The points' histogram on a fixed grid of [-1.1, 1.1] x [0, 1] (bin width BIN)."""
    edges_x = np.arange(-1.11, 1.11 + BIN / 2, BIN)  # x = 0 sits in the middle of a bin
    edges_z = np.arange(0.0, 1.0 + BIN / 2, BIN)
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=[edges_x, edges_z])
    return (counts / counts.sum()).ravel()


def curves(thetas):
    import otmetrics

    base = segment(0.0)
    p = histogram(base)
    w1, js, tv = [], [], []
    for theta in thetas:
        moved = segment(theta)
        q = histogram(moved)
        w1.append(float(otmetrics.wasserstein(base, moved, p=1)))
        js.append(float(otmetrics.js_divergence(p, q)))
        tv.append(float(otmetrics.total_variation(p, q)))
    return np.array(w1), np.array(js), np.array(tv)


def main(out_dir=IMG_DIR) -> list[Path]:
    thetas = np.linspace(-1.0, 1.0, 80)  # theta = 0 excluded: it is drawn as a point
    w1, js, tv = curves(thetas)
    w0, js0, tv0 = curves([0.0])
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.0, 3.2), gridspec_kw={"width_ratios": [1, 1.6]})
    theta = 0.6
    left.plot([0, 0], [0, 1], color=SOURCE, lw=4, label=r"$P_0$")
    left.plot([theta, theta], [0, 1], color=TARGET, lw=4, label=r"$P_\theta$")
    left.annotate("", xy=(theta, 0.5), xytext=(0, 0.5), arrowprops=dict(arrowstyle="->", color=GREY))
    left.text(theta / 2, 0.54, r"$\theta$", ha="center", color=GREY)
    left.set_xlim(-0.5, 1.1)
    left.set_ylim(-0.1, 1.15)
    left.set_xlabel("first coordinate")
    left.set_ylabel(r"$Z \sim U[0, 1]$")
    left.legend(loc="upper right")
    left.set_title("two parallel segments")
    for side in (thetas < 0, thetas > 0):  # two branches: the jump at 0 is not a line
        first = side[0]
        right.plot(thetas[side], w1[side], color=SOURCE, lw=2,
                   label=r"$W_1(P_0, P_\theta) = |\theta|$" if first else None)
        right.plot(thetas[side], js[side], color=TARGET, lw=2, label=r"$JS$ ($\log 2$)" if first else None)
        right.plot(thetas[side], tv[side], color=ACCENT, lw=1.5, ls="--", label=r"$TV$ (1)" if first else None)
    right.scatter([0, 0, 0], [w0[0], js0[0], tv0[0]], color=[SOURCE, TARGET, ACCENT], zorder=3, s=18)
    right.text(0.06, 0.03, r"all three are 0 at $\theta = 0$", color=GREY, fontsize=8.5)
    right.axhline(np.log(2), color=GREY, lw=0.6, ls=":")
    right.set_xlabel(r"$\theta$")
    right.set_ylim(-0.05, 1.2)
    right.legend(loc="lower right", fontsize=8.5, bbox_to_anchor=(1.0, 0.12))
    right.set_title(r"only $W_1$ says how far apart they are ($KL = +\infty$ for every $\theta \neq 0$)")
    fig.tight_layout()
    return [save(fig, out_dir, "parallel_lines.png")]


if __name__ == "__main__":
    for path in main():
        print(path)
