"""The moving-boxes example: two transport plans for six boxes, and what each costs.

Six boxes stand at positions 1, 2, 3 (three, one and two boxes); they must end up at positions
7, 8, 9, 10 (one, one, two and two boxes). Moving one box costs the distance it travels, so a
plan's cost is the sum over boxes of |from - to|. The exact optimum comes from ``otmetrics.emd``
with unnormalised weights (box counts); the two plans drawn are the two tables of the theory
page. Because every box moves right, every plan costs the same here: the sum of the target
positions minus the sum of the source positions.

Run ``python docs/figures/moving_boxes.py`` to rewrite ``docs/img/moving_boxes.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _style import GREY, IMG_DIR, SOURCE, TARGET, pyplot, save  # noqa: E402

SOURCES = np.array([1.0, 2.0, 3.0])
SOURCE_BOXES = np.array([3.0, 1.0, 2.0])
TARGETS = np.array([7.0, 8.0, 9.0, 10.0])
TARGET_BOXES = np.array([1.0, 1.0, 2.0, 2.0])

#: The two plans of the theory page: PLANS[k][i, j] boxes go from SOURCES[i] to TARGETS[j].
PLANS = {
    r"plan $\gamma_1$": np.array([[1, 0, 0, 2], [0, 1, 0, 0], [0, 0, 2, 0]], dtype=float),
    r"plan $\gamma_2$": np.array([[1, 0, 0, 2], [0, 0, 1, 0], [0, 1, 1, 0]], dtype=float),
}


def optimal_cost() -> float:
    """The exact optimum, from otmetrics (cost = number of boxes x distance)."""
    import otmetrics

    cost = np.abs(SOURCES[:, None] - TARGETS[None, :])
    return float(otmetrics.emd(SOURCE_BOXES, TARGET_BOXES, cost).cost)


def _draw_plan(ax, plan, title):
    cost = np.abs(SOURCES[:, None] - TARGETS[None, :])
    total = float((plan * cost).sum())
    left = {i: 0 for i in range(len(SOURCES))}   # boxes already drawn in each source stack
    right = {j: 0 for j in range(len(TARGETS))}  # boxes already drawn in each target stack
    size = 0.8
    for i, x in enumerate(SOURCES):  # the source stacks
        for k in range(int(SOURCE_BOXES[i])):
            ax.add_patch(_box(x, k, size, SOURCE, filled=True))
    for j, y in enumerate(TARGETS):  # the empty places waiting for boxes
        for k in range(int(TARGET_BOXES[j])):
            ax.add_patch(_box(y, k, size, TARGET, filled=False))
    for i, j in zip(*np.nonzero(plan)):
        for _ in range(int(plan[i, j])):
            h0, h1 = left[i] + 0.5, right[j] + 0.5
            ax.annotate(
                "", xy=(TARGETS[j], h1), xytext=(SOURCES[i] + size / 2, h0),
                arrowprops=dict(arrowstyle="-|>", color=GREY, lw=0.9, alpha=0.55, shrinkA=0, shrinkB=9,
                                connectionstyle="arc3,rad=-0.12"),
            )
            # each box says where it goes; each place says where its box comes from
            ax.text(SOURCES[i], h0, f"\u2192{TARGETS[j]:g}", ha="center", va="center", color="white",
                    fontsize=8.5, fontweight="bold")
            ax.text(TARGETS[j], h1, f"{SOURCES[i]:g}\u2192", ha="center", va="center", color=TARGET,
                    fontsize=8.5)
            left[i] += 1
            right[j] += 1
    ax.set_xlim(0.2, 10.8)
    ax.set_ylim(-0.3, 3.6)
    ax.set_xticks(np.concatenate([SOURCES, TARGETS]))
    ax.set_yticks([])
    ax.spines["left"].set_visible(False)
    ax.set_title(f"{title}: cost = {total:g}")


def _box(x, level, size, colour, filled):
    from matplotlib.patches import Rectangle

    return Rectangle((x - size / 2, level + 0.05), size, 0.9, facecolor=colour if filled else "none",
                     edgecolor=colour, lw=1.4, ls="-" if filled else "--", alpha=0.85 if filled else 1.0)


def main(out_dir=IMG_DIR) -> list[Path]:
    plt = pyplot()
    best = optimal_cost()
    fig, axes = plt.subplots(1, 2, figsize=(9.0, 2.9), sharey=True)
    for ax, (title, plan) in zip(axes, PLANS.items()):
        assert np.allclose(plan.sum(1), SOURCE_BOXES) and np.allclose(plan.sum(0), TARGET_BOXES)
        _draw_plan(ax, plan, title)
    fig.suptitle(f"Six boxes move from positions 1-3 to 7-10; the exact optimum (otmetrics.emd) is {best:g}",
                 fontsize=10.5, y=1.04)
    return [save(fig, out_dir, "moving_boxes.png")]


if __name__ == "__main__":
    for path in main():
        print(path)
