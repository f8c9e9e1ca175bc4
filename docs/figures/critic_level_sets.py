"""Level sets of trained WGAN critics, next to what is proven about them.

P: 400 points of a ring of 8 Gaussians; Q: 400 points of one Gaussian in the middle (the
mode-collapse setting of the WGAN study). For each method of ``otmetrics.critic.estimate_w1`` —
the 1-Lipschitz GroupSort network (the default), weight clipping and the gradient penalty of the
WGAN papers — the panel shows the critic's level sets over the samples and, in the title, the
dual objective ("value"), the proven Lipschitz bound L, and the certified lower bound on the
exact W1 of the samples (given in the figure title, from ``otmetrics.wasserstein``).

The GroupSort critic has L <= 1, so its value is itself a lower bound and it reaches W1. The
clipped critic is L-Lipschitz for a tiny, unknown-in-advance L: its raw value is meaningless
without dividing by L. The gradient-penalty critic is only softly Lipschitz: its value can exceed
W1. The certified bounds (c-transform of the critic on the samples) hold for all three.

Run ``python docs/figures/critic_level_sets.py`` to rewrite ``docs/img/critic_level_sets.png``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _style import IMG_DIR, SOURCE, TARGET, pyplot, save  # noqa: E402

METHODS = ("groupsort", "clipping", "gp")


def samples(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    angles = rng.integers(0, 8, n) * np.pi / 4
    x = np.stack([2.0 * np.cos(angles), 2.0 * np.sin(angles)], axis=1) + rng.normal(0.0, 0.2, (n, 2))
    y = rng.normal(0.0, 0.6, (n, 2))
    return x, y


def critics(x, y, quick: bool):
    """One trained critic per method (short training and no c-transform bound when ``quick``)."""
    import otmetrics.critic

    settings = {"groupsort": 20, "clipping": 40, "gp": 40} if quick else {}
    estimates = {}
    for method in METHODS:
        with warnings.catch_warnings():
            # an unconverged critic is reported in its panel's title ("not converged")
            warnings.simplefilter("ignore", otmetrics.ConvergenceWarning)
            estimates[method] = otmetrics.critic.estimate_w1(
                x, y, method=method, seed=0, steps=settings.get(method), certify=not quick, n_threads=1)
    return estimates


def _rounded(value: float, up: bool, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits, rounded up or down, so that a printed upper
    (lower) bound is still an upper (lower) bound."""
    if value == 0:
        return "0"
    exponent = digits - 1 - int(np.floor(np.log10(abs(value))))
    scaled = value * 10.0**exponent
    return f"{(np.ceil(scaled) if up else np.floor(scaled)) / 10.0**exponent:.{digits}g}"


def main(out_dir=IMG_DIR, quick: bool = False) -> list[Path]:
    import otmetrics

    x, y = samples(60 if quick else 400)
    exact = float(otmetrics.wasserstein(x, y, p=1))
    estimates = critics(x, y, quick)
    plt = pyplot()
    fig, axes = plt.subplots(1, len(METHODS), figsize=(11.5, 4.1))
    grid = np.linspace(-3.2, 3.2, 41 if quick else 161)
    gx, gy = np.meshgrid(grid, grid)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    names = {"groupsort": "GroupSort (1-Lipschitz)", "clipping": "weight clipping", "gp": "gradient penalty"}
    for ax, method in zip(axes, METHODS):
        estimate = estimates[method]
        values = np.asarray(estimate.critic(points)).reshape(gx.shape)
        ax.contourf(gx, gy, values, levels=14, cmap="RdBu_r", alpha=0.75)
        ax.contour(gx, gy, values, levels=14, colors="k", linewidths=0.3, alpha=0.5)
        ax.scatter(x[:, 0], x[:, 1], s=4, color=SOURCE, edgecolor="none", label="P: ring of 8 Gaussians")
        ax.scatter(y[:, 0], y[:, 1], s=4, color=TARGET, edgecolor="none", label="Q: one Gaussian")
        status = "" if estimate.converged else ", not converged"
        ax.set_title(f"{names[method]}{status}\nvalue {estimate.value:.4g}, L <= {_rounded(estimate.lipschitz_bound, up=True)}, "
                     f"certified >= {_rounded(estimate.certified, up=False)}", fontsize=9)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].legend(loc="lower left", fontsize=7.5, markerscale=3)
    fig.suptitle(f"Level sets of trained critics (red: high); exact $W_1$ of the samples = {exact:.3f}",
                 fontsize=10.5, y=1.02)
    return [save(fig, out_dir, "critic_level_sets.png")]


if __name__ == "__main__":
    for path in main():
        print(path)
