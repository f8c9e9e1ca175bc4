"""The otmetrics demo: a toy trained generator evaluated with every metric of the package.

``otmetrics demo`` (or ``make demo``, or ``python -m otmetrics demo``):

1. draws "data" from the ring of 8 Gaussians, the mode-collapse example of the GAN literature;
2. trains a small MLP generator on it by gradient descent on the debiased Sinkhorn divergence
   (gradients by the envelope theorem, no back-propagation through Sinkhorn iterations);
3. evaluates four samplers against held-out data — the trained generator, the same network
   untrained, a mode-collapsed sampler (3 of 8 modes) and a second real sample (the floor each
   metric has from sampling noise alone) — with every metric: exact W1 and W2 with their
   certificates, a 1-D W1, the Sinkhorn divergence, MMD, KID, the Frechet distance and its
   extrapolation to infinitely many samples (FD-infinity), the CMMD formula, precision / recall /
   density / coverage, an Inception-Score analogue (the mixture's posterior over its 8 modes
   stands in for the Inception classifier), KL/JS/TV on a histogram grid, and the certified
   WGAN-critic lower bound on W1;
4. prints one table and writes plots into the folder it names.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["main", "ring_of_gaussians", "mode_posterior"]

N_MODES = 8
RADIUS = 2.0
STD = 0.05
#: The means of the mixture components, ``(8, 2)``: component ``k`` at angle ``2 pi k / 8``.
CENTRES = RADIUS * np.stack([np.cos(2 * np.pi * np.arange(N_MODES) / N_MODES),
                             np.sin(2 * np.pi * np.arange(N_MODES) / N_MODES)], 1)


def ring_of_gaussians(n: int, rng: np.random.Generator, modes=None) -> np.ndarray:
    """``n`` samples of the mixture of 8 Gaussians (std 0.05) on the circle of radius 2.

    ``modes`` restricts the sampler to a subset of the components (a mode-collapsed generator).

    Examples
    --------
    >>> x = ring_of_gaussians(1000, np.random.default_rng(0))
    >>> x.shape, bool(abs(np.hypot(x[:, 0], x[:, 1]).mean() - 2.0) < 0.01)
    ((1000, 2), True)
    """
    modes = np.arange(N_MODES) if modes is None else np.asarray(modes)
    k = rng.choice(modes, size=n)
    return CENTRES[k] + STD * rng.normal(size=(n, 2))


def mode_posterior(x: np.ndarray) -> np.ndarray:
    """Posterior probabilities of the 8 mixture components given points ``x`` ``(n, 2)``.

    It plays the role of the Inception classifier in the Inception Score: a sharp posterior means a
    sample clearly belongs to one mode, a uniform marginal over samples means all modes are covered.
    A small floor keeps far-away samples from being assigned with certainty to a mode.

    Examples
    --------
    >>> post = mode_posterior(CENTRES[[0, 3]])
    >>> post.argmax(1).tolist(), bool(np.allclose(post.sum(1), 1.0))
    ([0, 3], True)
    """
    sq = ((x[:, None, :] - CENTRES[None, :, :]) ** 2).sum(-1)
    logits = -sq / (2 * (4 * STD) ** 2)
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    return 0.98 * p + 0.02 / N_MODES


# ----------------------------------------------------------------------------------------------
# The trained generator
# ----------------------------------------------------------------------------------------------
def _make_generator(seed: int):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(8, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 2),
    ).double()


def _sample(generator, n: int, seed: int) -> np.ndarray:
    import torch

    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return generator(torch.randn(n, 8, generator=g, dtype=torch.float64)).numpy()


def train_generator(data: np.ndarray, *, steps: int, batch: int, eps: float, seed: int, log=print):
    """Fit the generator by Adam on the debiased Sinkhorn divergence to minibatches of ``data``."""
    import torch

    import otmetrics

    generator = _make_generator(seed)
    untrained = _make_generator(seed)
    optimizer = torch.optim.Adam(generator.parameters(), lr=2e-3)
    rng = np.random.default_rng(seed)
    data_t = torch.from_numpy(data)
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        z = torch.randn(batch, 8, dtype=torch.float64)
        real = data_t[rng.choice(len(data), size=batch, replace=False)]
        loss = otmetrics.sinkhorn_divergence(generator(z), real, eps, p=2, tol=1e-3)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if (step + 1) % max(1, steps // 5) == 0:
            log(f"  step {step + 1:4d}/{steps}: Sinkhorn divergence {losses[-1]:.4f} "
                f"({time.perf_counter() - start:.1f} s)")
    return generator, untrained, np.array(losses)


# ----------------------------------------------------------------------------------------------
# Every metric
# ----------------------------------------------------------------------------------------------
@dataclass
class Row:
    name: str
    better: str  # "lower" or "higher"
    note: str


ROWS = [
    Row("W1 exact (EMD)", "lower", "network simplex; certified"),
    Row("  certificate: relative gap", "lower", "duality gap of the W1 problem"),
    Row("W2 exact", "lower", "network simplex"),
    Row("W1 of the x-coordinate (1-D)", "lower", "quantile closed form"),
    Row("Sinkhorn divergence", "lower", "debiased, eps = 0.1, |x-y|^2"),
    Row("MMD^2 (Gaussian, median)", "lower", "unbiased estimator"),
    Row("KID", "lower", "cubic kernel, 50 seeded subsets"),
    Row("Frechet distance", "lower", "FID formula on the 2-D points"),
    Row("FD-infinity", "lower", "FD extrapolated to N = inf (dgm-eval)"),
    Row("CMMD formula", "lower", "1000 MMD^2, Gaussian sigma 10, biased"),
    Row("Precision (k=5)", "higher", "fidelity: samples on the data"),
    Row("Recall (k=5)", "higher", "diversity: data reached by samples"),
    Row("Density (k=5)", "higher", "fidelity, outlier-robust (~1 if equal)"),
    Row("Coverage (k=5)", "higher", "data balls hit: mode coverage"),
    Row("Mode score (IS analogue)", "higher", "8 = all modes, sharp"),
    Row("KL(data | model) on grid", "lower", "inf when a cell of data is missed"),
    Row("JS on grid", "lower", "log 2 = 0.693 for disjoint supports"),
    Row("TV on grid", "lower", "1 for disjoint supports"),
    Row("Critic W1 lower bound", "lower", "GroupSort critic, certified <= W1"),
]


def evaluate(model: np.ndarray, data: np.ndarray, *, critic_steps: int, seed: int,
             kid_subset_size: int = 500) -> dict:
    """Every metric of the package between ``model`` samples and ``data`` samples."""
    import otmetrics
    from otmetrics.critic import estimate_w1

    out = {}
    w1 = otmetrics.emd(None, None, otmetrics.PointCloud(model, data, p=1))
    out["W1 exact (EMD)"] = w1.cost
    out["  certificate: relative gap"] = w1.certificate.relative_gap
    out["W2 exact"] = otmetrics.wasserstein(model, data, p=2)
    out["W1 of the x-coordinate (1-D)"] = otmetrics.wasserstein_1d(model[:, 0], data[:, 0], p=1)
    # a ConvergenceWarning would say if one of its three problems missed tol
    out["Sinkhorn divergence"] = otmetrics.sinkhorn_divergence(model, data, 0.1, p=2, tol=1e-4)
    out["MMD^2 (Gaussian, median)"] = otmetrics.mmd(model, data, kernel="gaussian", bandwidth="median")
    kid_mean, _ = otmetrics.kid(model, data, subsets=50, subset_size=kid_subset_size, seed=seed)
    out["KID"] = kid_mean
    stats_m, stats_d = otmetrics.GaussianStats(2), otmetrics.GaussianStats(2)
    stats_m.update(model)
    stats_d.update(data)
    out["Frechet distance"] = otmetrics.frechet_distance(stats_m.mean, stats_m.cov, stats_d.mean, stats_d.cov)
    out["FD-infinity"] = otmetrics.fd_infinity(data, model, seed=seed).value
    out["CMMD formula"] = otmetrics.cmmd(data, model)
    quality = otmetrics.prdc(data, model, k=5)
    for name in ("precision", "recall", "density", "coverage"):
        out[f"{name.capitalize()} (k=5)"] = getattr(quality, name)
    out["Mode score (IS analogue)"] = otmetrics.inception_score(mode_posterior(model), splits=1)[0]
    edges = np.linspace(-3, 3, 31)
    h_model = np.histogram2d(model[:, 0], model[:, 1], bins=[edges, edges])[0].ravel() + 0.0
    h_data = np.histogram2d(data[:, 0], data[:, 1], bins=[edges, edges])[0].ravel() + 0.0
    if h_model.sum() == 0:  # every sample fell outside the grid
        h_model[0] = 1.0
    out["KL(data | model) on grid"] = otmetrics.kl_divergence(h_data, h_model)
    out["JS on grid"] = otmetrics.js_divergence(h_data, h_model)
    out["TV on grid"] = otmetrics.total_variation(h_data, h_model)
    critic = estimate_w1(model, data, steps=critic_steps, seed=seed)
    out["Critic W1 lower bound"] = critic.certified
    out["_critic_holds"] = critic.certified <= w1.cost + 1e-9
    out["_plan"] = w1.plan
    return out


def _fmt(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "NO"
    value = float(value)
    if math.isinf(value):
        return "inf"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.4f}"


def format_table(results: dict) -> str:
    names = list(results)
    width = max(len(r.name) for r in ROWS) + 2
    header = "metric".ljust(width) + "".join(n.rjust(16) for n in names) + "   better   note"
    lines = [header, "-" * len(header)]
    for row in ROWS:
        cells = "".join(_fmt(results[n][row.name]).rjust(16) for n in names)
        lines.append(row.name.ljust(width) + cells + f"   {row.better:<7}  {row.note}")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Plots
# ----------------------------------------------------------------------------------------------
def write_plots(out_dir: str, data: np.ndarray, samples: dict, results: dict,
                losses: np.ndarray) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    os.makedirs(out_dir, exist_ok=True)
    written = []

    fig, axes = plt.subplots(1, len(samples), figsize=(4 * len(samples), 4), sharex=True, sharey=True)
    for ax, (name, pts) in zip(np.atleast_1d(axes), samples.items()):
        ax.scatter(data[:, 0], data[:, 1], s=3, c="0.7", label="data")
        ax.scatter(pts[:, 0], pts[:, 1], s=3, c="C3", label=name)
        ax.set_title(f"{name}\nW1 = {results[name]['W1 exact (EMD)']:.3f}")
        ax.set_aspect("equal")
        ax.set_xlim(-3, 3)
        ax.set_ylim(-3, 3)
    np.atleast_1d(axes)[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "samples.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path)

    fig, ax = plt.subplots(figsize=(5, 5))
    model = samples["trained"]
    plan = results["trained"]["_plan"]
    shown = np.arange(0, len(model), max(1, len(model) // 150))
    for i in shown:
        j = int(np.argmax(plan[i]))
        ax.plot([model[i, 0], data[j, 0]], [model[i, 1], data[j, 1]], c="0.5", lw=0.5)
    ax.scatter(data[:, 0], data[:, 1], s=3, c="C0", label="data")
    ax.scatter(model[:, 0], model[:, 1], s=3, c="C3", label="trained generator")
    ax.set_title("Optimal W1 plan: where 150 generated samples go")
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = os.path.join(out_dir, "transport_plan.png")
    fig.savefig(path, dpi=90)
    plt.close(fig)
    written.append(path)

    if len(losses):
        fig, ax = plt.subplots(figsize=(6, 3.5))
        ax.plot(losses, lw=1)
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("Sinkhorn divergence (minibatch)")
        ax.set_title("Training the generator")
        fig.tight_layout()
        path = os.path.join(out_dir, "training.png")
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


# ----------------------------------------------------------------------------------------------
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="otmetrics demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="demo-output", help="folder for the plots (default: demo-output)")
    parser.add_argument("--n", type=int, default=1000, help="samples per sampler (default: 1000)")
    parser.add_argument("--steps", type=int, default=300, help="generator training steps (default: 300)")
    parser.add_argument("--critic-steps", type=int, default=300, help="critic training steps (default: 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.steps, args.critic_steps = 200, 10, 30
    if args.n < 20:
        parser.error("--n: must be at least 20")

    from otmetrics.critic import torch_threads

    # small networks and 1000-point problems: threads cost more than they give (restored on return)
    with torch_threads(1):
        return _run(args)


def _run(args) -> int:
    start = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    train = ring_of_gaussians(4 * args.n, rng)
    data = ring_of_gaussians(args.n, rng)
    print(f"otmetrics demo: ring of {N_MODES} Gaussians, {args.n} samples per sampler\n")
    print(f"Training a generator on the Sinkhorn divergence ({args.steps} steps):")
    generator, untrained, losses = train_generator(train, steps=args.steps, batch=min(256, args.n), eps=0.1,
                                                   seed=args.seed)
    samples = {
        "trained": _sample(generator, args.n, args.seed + 1),
        "untrained": _sample(untrained, args.n, args.seed + 1),
        "mode-collapsed": ring_of_gaussians(args.n, rng, modes=[0, 1, 2]),
        "real (2nd draw)": ring_of_gaussians(args.n, rng),
    }
    print("\nEvaluating every sampler against held-out data...")
    results = {name: evaluate(pts, data, critic_steps=args.critic_steps, seed=args.seed,
                              kid_subset_size=min(500, args.n // 2))
               for name, pts in samples.items()}
    print()
    print(format_table(results))
    held = all(r["_critic_holds"] for r in results.values())
    print(f"\nThe critic's certified lower bound stayed below the exact W1 for every sampler: {held}")
    written = write_plots(args.out, data, samples, results, losses)
    if written:
        print(f"Plots written to {os.path.abspath(args.out)}/: "
              + ", ".join(os.path.basename(p) for p in written))
    else:
        print("matplotlib is not installed: no plots (pip install 'otmetrics[plots]')")
    print(f"Done in {time.perf_counter() - start:.1f} s.")
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
