"""Entropic transport plans (otmetrics.sinkhorn) as eps shrinks, next to the exact plan.

Source: 60 sorted points of a two-component mixture on the line; target: 60 sorted points of
a Gaussian; uniform weights; cost |x - y|^2. Each panel shows the plan P as an image (rows:
source points, columns: target points). At large eps the plan is blurred towards the
independent coupling a b^T; as eps -> 0 it concentrates on the exact, monotone plan (right).

Run ``python docs/figures/sinkhorn_eps.py`` to rewrite ``docs/img/sinkhorn_eps.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _style import IMG_DIR, pyplot, save  # noqa: E402

#: eps as a fraction of the median cost.
EPS_FRACTIONS = (0.5, 0.05, 0.01)


def problem(n: int = 60, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = np.sort(np.concatenate([rng.normal(-1.0, 0.3, n // 2), rng.normal(1.2, 0.5, n - n // 2)]))
    y = np.sort(rng.normal(0.3, 0.6, n))
    cost = (x[:, None] - y[None, :]) ** 2
    a = np.full(n, 1.0 / n)
    return a, a.copy(), cost


def entropic_plan(a, b, cost, eps):
    """The entropic plan at ``eps`` (``otmetrics.sinkhorn``, run to a tight tolerance)."""
    import otmetrics

    result = otmetrics.sinkhorn(a, b, cost, eps, tol=1e-8, max_iter=100_000)
    assert result.converged
    return result.plan


def main(out_dir=IMG_DIR) -> list[Path]:
    import otmetrics

    a, b, cost = problem()
    median = float(np.median(cost))
    exact = otmetrics.emd(a, b, cost)
    panels = [(f"eps = {f:g} x median cost", entropic_plan(a, b, cost, f * median)) for f in EPS_FRACTIONS]
    panels.append(("exact (otmetrics.emd)", exact.plan))
    plt = pyplot()
    from matplotlib.colors import PowerNorm

    fig, axes = plt.subplots(1, len(panels), figsize=(10.0, 2.9))
    for ax, (title, plan) in zip(axes, panels):
        transport = float((plan * cost).sum())
        # each panel on its own colour scale (white = 0, square-root scale): blurred plans have small entries
        norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=float(plan.max()))
        ax.imshow(plan, cmap="Blues", norm=norm, interpolation="nearest")
        ax.set_title(f"{title}\n<C, P> = {transport:.4f}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_ylabel("source $x_i$ (sorted)")
    for ax in axes:
        ax.set_xlabel("target $y_j$ (sorted)")
    fig.suptitle("Entropic plans approach the exact plan as eps shrinks "
                 f"(exact cost {float(exact.cost):.4f})", fontsize=10.5, y=1.04)
    return [save(fig, out_dir, "sinkhorn_eps.png")]


if __name__ == "__main__":
    for path in main():
        print(path)
