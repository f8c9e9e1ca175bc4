"""The WGAN critic: otmetrics.critic.estimate_w1 (three methods) against the exact EMD, side by side.

For each pair of sample sets the exact W1 is computed with otmetrics.wasserstein (network simplex,
certified optimal; POT's ``ot.emd2`` is timed beside it), then each critic is trained and its
value, certified lower bound, ratios to the exact value and wall-clock time are printed.

Run: ``.venv/bin/python benchmarks/bench_critic.py [--quick] [--device cuda] [--threads N]``.
Prints Markdown tables. Times: CPU seconds of the process (``time.process_time``, what a busy
shared machine does not inflate much) and wall-clock seconds. torch runs on one thread by default
(``--threads``): the networks are small, and OpenMP threads on oversubscribed cores wait on each
other (30x slower on our shared 2-core VM).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np
import ot
import torch

sys.path.insert(0, os.path.dirname(__file__))
import otmetrics  # noqa: E402
from otmetrics.critic import dual_lower_bound, estimate_w1  # noqa: E402
from _timing import machine, table  # noqa: E402


# ----------------------------------------------------------------------------------------------
# Sample pairs: (x, y, the population W1 or None, description)
# ----------------------------------------------------------------------------------------------
def gaussians_1d(n, rng):
    return rng.normal(0.0, 1.0, (n, 1)), rng.normal(1.0, 2.0, (n, 1)), None, "N(0, 1) vs N(1, 2^2), 1-D"


def translation(n, rng):
    x = rng.normal(size=(n, 2))
    t = np.array([0.5, -0.3])
    return x, x + t, float(np.linalg.norm(t)), "2-D Gaussian vs its translate by t, W1 = |t|"


def parallel_lines(n, rng, theta=1.0):
    x = np.column_stack([np.zeros(n), rng.uniform(size=n)])
    y = np.column_stack([np.full(n, theta), rng.uniform(size=n)])
    return x, y, theta, f"parallel lines {{0}} x U[0,1] vs {{{theta:g}}} x U[0,1], W1 = |theta|"


def ring_vs_gaussian(n, rng):
    angles = 2 * np.pi * rng.integers(0, 8, n) / 8
    x = 2.0 * np.column_stack([np.cos(angles), np.sin(angles)]) + 0.1 * rng.normal(size=(n, 2))
    y = 0.5 * rng.normal(size=(n, 2))
    return x, y, None, "ring of 8 Gaussians (radius 2, std 0.1) vs N(0, 0.5^2 I)"


def gaussians_10d(n, rng):
    x = rng.normal(size=(n, 10))
    y = rng.normal(size=(n, 10)) * np.linspace(0.5, 2.0, 10) + 0.3
    return x, y, None, "10-D: N(0, I) vs N(0.3, diag(0.5..2)^2)"


CASES = {"gaussians_1d": gaussians_1d, "translation": translation, "parallel_lines": parallel_lines,
         "ring_vs_gaussian": ring_vs_gaussian, "gaussians_10d": gaussians_10d}


def exact_w1(x, y):
    """The exact W1 (ours, certified) and the times of ours and of POT's ot.emd2."""
    start = time.perf_counter()
    ours = otmetrics.wasserstein(x, y, p=1)
    t_ours = time.perf_counter() - start
    start = time.perf_counter()
    n, m = len(x), len(y)
    pot = ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), ot.dist(x, y, metric="euclidean"))
    t_pot = time.perf_counter() - start
    assert abs(ours - pot) <= 1e-9 * max(1.0, pot), (ours, pot)
    return ours, t_ours, t_pot


def run(fn, n, methods, seed, device, steps=None):
    rng = np.random.default_rng(seed)
    x, y, population, description = fn(n, rng)
    exact, t_exact, t_pot = exact_w1(x, y)
    # the control: no critic at all, f = 0, and its c-transforms (psi_j = min_i |x_i - y_j|, ...)
    start, cpu = time.perf_counter(), time.process_time()
    zero = dual_lower_bound(x, y, np.zeros(len(x))).value
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    rows = [["none (f = 0)", exact, 0.0, zero, 0.0, zero / exact, "0", "-", zero, cpu, elapsed,
             "yes" if zero <= exact else "**NO**", "-"]]
    for method in methods:
        xs, ys = (torch.as_tensor(x, device=device, dtype=torch.float32),
                  torch.as_tensor(y, device=device, dtype=torch.float32)) if device != "cpu" else (x, y)
        if device != "cpu":  # the exact value is for the float32 samples the critic sees
            exact = otmetrics.wasserstein(xs.double().cpu().numpy(), ys.double().cpu().numpy(), p=1)
        start, cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            est = estimate_w1(xs, ys, method=method, seed=seed, steps=steps)
        if device != "cpu":
            torch.cuda.synchronize()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        held = est.certified <= exact * (1 + 1e-9)  # relative, as validate's bound_held
        warned = any(issubclass(w.category, otmetrics.ConvergenceWarning) for w in caught)
        rows.append([method, exact, est.value, est.certified, est.value / exact, est.certified / exact,
                     f"{est.lipschitz_bound:.6g}", est.certified_lipschitz, est.certified_c_transform, cpu,
                     elapsed, "yes" if held else "**NO**", "no" if warned else "yes"])
    return description, population, (t_exact, t_pot), rows


HEADER = ["method", "exact W1", "value", "certified", "value / exact", "certified / exact", "Lipschitz bound",
          "value / L (certified)", "c-transform (certified)", "CPU (s)", "wall (s)", "certified <= exact",
          "converged"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes and few steps, for a smoke test")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    parser.add_argument("--methods", nargs="*", default=["groupsort", "clipping", "gp"])
    parser.add_argument("--n", type=int, default=500, help="samples per side")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    n = 60 if args.quick else args.n
    steps = 20 if args.quick else None
    print(f"Machine: {machine()}; torch threads: {torch.get_num_threads()}; device: {args.device}\n")
    # one-time costs (torch.optim imports torch._dynamo on first use) stay out of the timings
    estimate_w1(np.zeros((2, 1)), np.ones((2, 1)), steps=1, certify=False)

    summary = []
    for name in args.cases:
        description, population, (t_exact, t_pot), rows = run(CASES[name], n, args.methods, 0, args.device,
                                                               steps)
        pop = "" if population is None else f"; population W1 = {population:g}"
        print(f"### {name}: {description}, n = m = {n}{pop}\n")
        print(f"exact EMD: otmetrics.wasserstein {t_exact:.3f} s (with certificate), ot.emd2 {t_pot:.3f} s\n")
        print(table(HEADER, rows))
        print()
        summary += [[name] + row for row in rows]

    print("### All cases\n")
    print(table(["case"] + HEADER, summary))

    if not args.quick and "groupsort" in args.methods:
        print("\n### GroupSort: certified / exact against the number of steps (ring vs Gaussian, n = 500)\n")
        rows = []
        for steps_k in (100, 250, 500, 1000):
            _, _, _, out = run(ring_vs_gaussian, 500, ["groupsort"], 0, args.device, steps_k)
            rows.append([steps_k] + out[1][1:])
        print(table(["steps"] + HEADER[1:], rows))


if __name__ == "__main__":
    main()
