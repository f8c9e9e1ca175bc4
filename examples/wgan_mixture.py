"""GAN vs WGAN on a ring of 8 Gaussians, measured with otmetrics as training goes.

The mode-collapse setting of the GAN literature (Metz et al. 2017; Gulrajani et al. 2017): the data
is a mixture of 8 Gaussians (standard deviation 0.05) on the circle of radius 2 — the sampler of
the package's demo, ``otmetrics.demo.ring_of_gaussians`` — and the generator an MLP from 8-D
Gaussian noise to the plane. Three ways to train it:

- ``gan``: the standard GAN loss (a discriminator with the binary cross-entropy, the generator with
  the non-saturating loss ``-log D(G(z))``), Adam(2e-4, betas (0.5, 0.999));
- ``clipping``: WGAN, Algorithm 1 of Arjovsky et al. (2017) with its defaults (RMSProp 5e-5, clip
  0.01, batch 64, 5 critic steps per generator step);
- ``gp``: WGAN-GP (Gulrajani et al. 2017: penalty 10, Adam 1e-4, betas (0, 0.9), 5 critic steps);
- ``groupsort`` (not run unless asked: ``--methods gan clipping gp groupsort``): WGAN with the
  1-Lipschitz GroupSort critic of :mod:`otmetrics.critic` (Adam 1e-3, 5 critic steps, no clipping or
  penalty; the generator as in WGAN-GP).

The critics come from :mod:`otmetrics.critic` (``make_critic``, ``make_optimizer``, ``critic_loss``,
``clip_weights_``, ``METHODS``). Every ``--eval-every`` generator steps the generator is measured
with otmetrics against fresh data samples:

- the exact W1 of the two sample sets (``otmetrics.wasserstein``, network simplex, certified);
- the Sinkhorn divergence with cost ``|x - y|`` and ``eps = 0.05`` (``otmetrics.sinkhorn_divergence``);
- the squared MMD, Gaussian kernel, median bandwidth (``otmetrics.mmd``);
- JS(data, generator) and KL(generator || data) on a 60 x 60 histogram grid over ``[-3, 3]^2``
  (``otmetrics.js_divergence``, ``otmetrics.kl_divergence``); the data histogram holds the exact
  bin probabilities of the mixture, the generator's is counted from its samples;
- modes covered (a mode counts when at least 1% of the samples lie within 3 standard deviations
  of it) and the share of such "high-quality" samples.

Outputs in ``OUT_DIR``: ``samples.png`` (generated points at five moments of training),
``metrics.png`` (the curves), ``metrics.json`` (every number). A few minutes on a CPU core with the
defaults; ``--quick`` runs a few seconds (the smoke test).

Run: ``.venv/bin/python examples/wgan_mixture.py OUT_DIR [--steps 2000] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy.special import ndtr
from torch import nn

import otmetrics
from otmetrics.critic import METHODS, clip_weights_, critic_loss, make_critic, make_optimizer, torch_threads
from otmetrics.demo import CENTRES, STD, ring_of_gaussians

MODES = len(CENTRES)
GRID = np.linspace(-3.0, 3.0, 61)  # 60 x 60 bins of width 0.1
LATENT = 8
TRAINERS = ("gan", "clipping", "gp", "groupsort")
LABELS = {"gan": "GAN (standard loss)", "clipping": "WGAN (weight clipping)", "gp": "WGAN-GP",
          "groupsort": "WGAN, GroupSort critic"}


# ----------------------------------------------------------------------------------------------
# Data, generator, histograms
# ----------------------------------------------------------------------------------------------
def sample_data(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` points of the ring of 8 Gaussians (:func:`otmetrics.demo.ring_of_gaussians`)."""
    return ring_of_gaussians(n, rng)


def data_histogram() -> np.ndarray:
    """Exact probabilities of the mixture in each grid bin (renormalised to the grid)."""
    probs = np.zeros((len(GRID) - 1, len(GRID) - 1))
    for cx, cy in CENTRES:
        px = np.diff(ndtr((GRID - cx) / STD))
        py = np.diff(ndtr((GRID - cy) / STD))
        probs += np.outer(px, py) / MODES
    return probs / probs.sum()


def sample_histogram(points: np.ndarray) -> np.ndarray:
    """Counts of the points in the grid bins (points outside the grid are dropped), normalised."""
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=[GRID, GRID])
    total = counts.sum()
    return counts / total if total > 0 else np.full_like(counts, 1.0 / counts.size)


def make_generator(width: int, depth: int) -> nn.Module:
    layers, size = [], LATENT
    for _ in range(depth):
        layers += [nn.Linear(size, width), nn.ReLU()]
        size = width
    layers.append(nn.Linear(size, 2))
    return nn.Sequential(*layers)


# ----------------------------------------------------------------------------------------------
# The measurements (all with otmetrics)
# ----------------------------------------------------------------------------------------------
def evaluate(fake: np.ndarray, real: np.ndarray, data_hist: np.ndarray) -> dict:
    gen_hist = sample_histogram(fake)
    with warnings.catch_warnings():
        # a short run may leave Sinkhorn a few iterations short; the value is still reported
        warnings.simplefilter("ignore", otmetrics.ConvergenceWarning)
        sinkhorn = otmetrics.sinkhorn_divergence(fake, real, eps=0.05, p=1)
    dist = np.linalg.norm(fake[:, None, :] - CENTRES[None], axis=-1)
    near = dist.min(1) <= 3 * STD
    per_mode = np.bincount(dist.argmin(1)[near], minlength=MODES)
    return {
        "w1": float(otmetrics.wasserstein(fake, real, p=1)),
        "sinkhorn": float(sinkhorn),
        "mmd2": float(otmetrics.mmd(fake, real)),
        "js": float(otmetrics.js_divergence(data_hist.ravel(), gen_hist.ravel())),
        "kl": float(otmetrics.kl_divergence(gen_hist.ravel(), data_hist.ravel())),
        "modes": int((per_mode >= 0.01 * len(fake)).sum()),
        "quality": float(near.mean()),
    }


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------
def train(trainer: str, args, bar) -> dict:
    """Train one generator; return its metric curves and sample snapshots."""
    seed = args.seed
    rng = np.random.default_rng(seed)
    gen_torch = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = make_generator(args.width, args.depth)
    batch = 64
    if trainer == "gan":
        critic = make_critic("gp", 2, width=args.width, depth=args.depth, seed=seed + 1)  # an MLP: logits
        opt_d = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.999))
        opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999))
        n_critic = 1
    elif trainer == "groupsort":  # a 1-Lipschitz critic by construction: no clipping, no penalty
        critic = make_critic("groupsort", 2, width=args.width // 2, depth=args.depth, seed=seed + 1)
        opt_d = torch.optim.Adam(critic.parameters(), lr=1e-3, betas=(0.5, 0.9))
        opt_g = torch.optim.Adam(generator.parameters(), lr=1e-4, betas=(0.0, 0.9))
        n_critic = 5
    else:
        cfg = METHODS[trainer]
        critic = make_critic(trainer, 2, width=args.width, depth=args.depth, seed=seed + 1)
        opt_d = make_optimizer(trainer, critic.parameters())
        opt_g = make_optimizer(trainer, generator.parameters())  # the same optimizer and lr (the papers)
        n_critic, batch = cfg.n_critic, cfg.batch_size
    bce = nn.BCEWithLogitsLoss()
    data_hist = data_histogram()
    eval_real = sample_data(args.n_eval, np.random.default_rng(10_000 + seed))
    eval_noise = torch.randn(args.n_eval, LATENT, generator=gen_torch)
    snapshot_steps = set(np.linspace(0, args.steps, 5).round().astype(int).tolist())
    curves: dict[str, list] = {"step": [], "critic": []}
    snapshots = {}

    def measure(step, critic_value):
        with torch.no_grad():
            fake = generator(eval_noise).double().numpy()
        for key, value in evaluate(fake, eval_real, data_hist).items():
            curves.setdefault(key, []).append(value)
        curves["step"].append(step)
        curves["critic"].append(critic_value)
        if step in snapshot_steps:
            snapshots[step] = fake[:500].tolist()
        bar.set_postfix(method=trainer, w1=f"{curves['w1'][-1]:.3f}", js=f"{curves['js'][-1]:.3f}")

    critic_value = float("nan")
    measure(0, critic_value)
    for step in range(1, args.steps + 1):
        for _ in range(n_critic):
            real = torch.from_numpy(sample_data(batch, rng)).float()
            with torch.no_grad():
                fake = generator(torch.randn(batch, LATENT, generator=gen_torch))
            if trainer == "gan":
                logits = critic(torch.cat([real, fake]))
                labels = torch.cat([torch.ones(batch), torch.zeros(batch)])
                loss = bce(logits, labels)
                critic_value = float(-loss.detach())
            else:
                gp_weight = METHODS[trainer].gp_weight or 0.0  # None for clipping, groupsort
                loss, objective, _ = critic_loss(critic, real, fake, gp_weight=gp_weight, generator=gen_torch)
                critic_value = float(objective)
            opt_d.zero_grad(set_to_none=True)
            loss.backward()
            opt_d.step()
            if trainer == "clipping":
                clip_weights_(critic, METHODS["clipping"].clip_value)
        out = critic(generator(torch.randn(batch, LATENT, generator=gen_torch)))
        g_loss = bce(out, torch.ones(batch)) if trainer == "gan" else -out.mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        bar.update(1)
        if step % args.eval_every == 0 or step == args.steps or step in snapshot_steps:
            measure(step, critic_value)
    return {"curves": curves, "snapshots": snapshots}


# ----------------------------------------------------------------------------------------------
# Plots
# ----------------------------------------------------------------------------------------------
def plot(results: dict, out: Path, steps: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trainers = list(results)
    for result in results.values():  # from metrics.json the snapshot steps are strings
        result["snapshots"] = {int(k): v for k, v in result["snapshots"].items()}
    snap_steps = sorted({int(s) for r in results.values() for s in r["snapshots"]})
    fig, axes = plt.subplots(len(trainers), len(snap_steps), squeeze=False,
                             figsize=(2.4 * len(snap_steps), 2.4 * len(trainers)))
    for i, trainer in enumerate(trainers):
        for j, step in enumerate(snap_steps):
            ax = axes[i, j]
            ax.scatter(CENTRES[:, 0], CENTRES[:, 1], s=60, facecolors="none", edgecolors="0.6", linewidths=1)
            pts = np.asarray(results[trainer]["snapshots"].get(step, np.zeros((0, 2))))
            if len(pts):
                ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.5, color=f"C{i}")
            ax.set(xlim=(-3, 3), ylim=(-3, 3), xticks=[], yticks=[], aspect="equal")
            if i == 0:
                ax.set_title(f"step {step}")
            if j == 0:
                ax.set_ylabel(LABELS[trainer], fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "samples.png", dpi=110)
    plt.close(fig)

    panels = [("w1", "exact W1 (samples)", False), ("sinkhorn", "Sinkhorn divergence (p=1, eps=0.05)", False),
              ("mmd2", "MMD² (Gaussian, median bandwidth)", True), ("js", "JS(data, gen), histogram", False),
              ("kl", "KL(gen ‖ data), histogram", True), ("modes", "modes covered (of 8)", False)]
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    for ax, (key, title, log) in zip(axes.ravel(), panels):
        for i, trainer in enumerate(trainers):
            c = results[trainer]["curves"]
            values = np.asarray(c[key], dtype=float)
            finite = np.isfinite(values)
            ax.plot(np.asarray(c["step"])[finite], values[finite], color=f"C{i}", label=LABELS[trainer])
            if (~finite).any():  # KL = inf (generator mass where the data has none): x at the top
                ax.plot(np.asarray(c["step"])[~finite], np.full((~finite).sum(), 0.97 - 0.03 * i), "x",
                        color=f"C{i}", transform=ax.get_xaxis_transform(), clip_on=False)
        if key == "kl":
            ax.text(0.01, 0.97, "x: inf", transform=ax.transAxes, fontsize=8, va="top")
        if key == "js":
            ax.axhline(math.log(2), color="k", linestyle="--", linewidth=1, label="log 2")
        if key == "mmd2":  # the unbiased estimate dips below 0 near equality: symmetric log scale
            ax.set_yscale("symlog", linthresh=1e-4)
        elif log:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("generator step")
    axes[0, 0].legend(fontsize=8)
    axes[1, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "metrics.png", dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------------------
def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="output directory (created)")
    parser.add_argument("--steps", type=int, default=2000, help="generator steps per method")
    parser.add_argument("--eval-every", type=int, default=100, help="generator steps between measurements")
    parser.add_argument("--n-eval", type=int, default=500, help="samples per side for the measurements")
    parser.add_argument("--width", type=int, default=128, help="units per hidden layer (generator, critic)")
    parser.add_argument("--depth", type=int, default=3, help="hidden layers (generator, critic)")
    parser.add_argument("--methods", nargs="+", default=["gan", "clipping", "gp"], choices=TRAINERS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (small networks: 1)")
    parser.add_argument("--quick", action="store_true", help="a few seconds: the smoke test")
    parser.add_argument("--replot", action="store_true",
                        help="redraw the PNGs from OUT/metrics.json without training")
    args = parser.parse_args(argv)
    if args.replot:
        saved = json.loads((args.out / "metrics.json").read_text())
        plot(saved["results"], args.out, saved["settings"]["steps"])
        return saved
    if args.quick:
        args.steps, args.eval_every, args.n_eval, args.width, args.depth = 20, 10, 100, 16, 2
    for name in ("steps", "eval_every", "n_eval", "width", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be >= 1, got {getattr(args, name)}")
    args.out.mkdir(parents=True, exist_ok=True)

    from tqdm.auto import tqdm

    results, start = {}, time.perf_counter()
    # torch's thread count is global to the process: set for the training, restored afterwards
    with torch_threads(args.threads), \
            tqdm(total=args.steps * len(args.methods), desc="wgan_mixture", file=sys.stderr) as bar:
        for trainer in args.methods:
            results[trainer] = train(trainer, args, bar)
    elapsed = time.perf_counter() - start
    plot(results, args.out, args.steps)
    summary = {"settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "seconds": elapsed, "results": results}
    (args.out / "metrics.json").write_text(json.dumps(summary, allow_nan=True))

    print(f"{'method':26s} {'W1':>7s} {'Sinkhorn':>9s} {'MMD2':>9s} {'JS':>6s} {'KL':>8s} {'modes':>5s}")
    for trainer, result in results.items():
        c = result["curves"]
        print(f"{LABELS[trainer]:26s} {c['w1'][-1]:7.3f} {c['sinkhorn'][-1]:9.4f} {c['mmd2'][-1]:9.2e} "
              f"{c['js'][-1]:6.3f} {c['kl'][-1]:8.3g} {c['modes'][-1]:5d}")
    print(f"{elapsed:.0f} s; plots and numbers in {args.out}")
    return summary


if __name__ == "__main__":
    main()
