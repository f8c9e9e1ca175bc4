"""An exact transport plan drawn between two point clouds.

Source: 30 points from two blobs with random weights; target: 24 points on an arc, uniform
weights. The plan is the exact one for the cost |x - y| (``otmetrics.emd`` on a
``PointCloud``, p=1); each segment joins x_i to y_j with a width proportional to the mass P_ij
it carries. Two segments of an optimal plan for this cost never cross (if they did, swapping a
little mass between them would be cheaper, by the triangle inequality), and the plan has at most
n + m - 1 non-zero entries (it is a vertex of the transport polytope): most points send their
mass to one or two partners.

Run ``python docs/figures/transport_plan.py`` to rewrite ``docs/img/transport_plan.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _style import GREY, IMG_DIR, SOURCE, TARGET, pyplot, save  # noqa: E402


def clouds(seed: int = 3):
    """The two weighted point clouds of the picture."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal([-1.6, 0.7], 0.28, size=(15, 2)), rng.normal([-1.2, -0.9], 0.3, size=(15, 2))])
    a = rng.uniform(0.5, 1.5, size=len(x))
    a /= a.sum()
    angles = np.linspace(-0.62 * np.pi, 0.62 * np.pi, 24)
    y = np.stack([0.9 + 1.25 * np.cos(angles), 1.25 * np.sin(angles)], axis=1) + rng.normal(0, 0.03, (24, 2))
    b = np.full(len(y), 1.0 / len(y))
    return x, a, y, b


def proper_crossings(x, y, rows, cols) -> int:
    """How many pairs of plan segments [x_i, y_j] cross at an interior point of both."""
    def side(p, q, r):
        return (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])

    segments = [(x[i], y[j]) for i, j in zip(rows, cols)]
    count = 0
    for k, (p1, p2) in enumerate(segments):
        for q1, q2 in segments[k + 1:]:
            if side(q1, q2, p1) * side(q1, q2, p2) < -1e-12 and side(p1, p2, q1) * side(p1, p2, q2) < -1e-12:
                count += 1
    return count


def main(out_dir=IMG_DIR) -> list[Path]:
    import otmetrics

    x, a, y, b = clouds()
    result = otmetrics.emd(a, b, otmetrics.PointCloud(x, y, p=1))
    assert result.converged
    plan = result.plan
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 4.6))
    rows, cols = np.nonzero(plan > 1e-12)
    assert proper_crossings(x, y, rows, cols) == 0  # what the picture claims
    widths = plan[rows, cols] / plan.max()
    for i, j, w in zip(rows, cols, widths):
        ax.plot([x[i, 0], y[j, 0]], [x[i, 1], y[j, 1]], color=GREY, lw=0.4 + 3.2 * w, alpha=0.35 + 0.5 * w,
                solid_capstyle="round", zorder=1)
    ax.scatter(x[:, 0], x[:, 1], s=2400 * a, color=SOURCE, edgecolor="white", lw=0.6, zorder=2,
               label=r"source $x_i$ (area $\propto a_i$)")
    ax.scatter(y[:, 0], y[:, 1], s=2400 * b, color=TARGET, marker="s", edgecolor="white", lw=0.6, zorder=2,
               label=r"target $y_j$ (uniform $b_j$)")
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.02), ncol=2, fontsize=9)
    ax.set_title(f"Exact plan for the cost $|x-y|$: $W_1$ = {float(result.cost):.3f}, {len(rows)} non-zero "
                 f"entries (n + m - 1 = {len(x) + len(y) - 1})", fontsize=9.5)
    return [save(fig, out_dir, "transport_plan.png")]


if __name__ == "__main__":
    for path in main():
        print(path)
