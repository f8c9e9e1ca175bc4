"""Iterations of the accelerated Sinkhorn (the defaults) against the plain loop on many problems.

The adaptive over-relaxation must not be slower than plain Sinkhorn where it matters: this script counts
the iterations to a tolerance on three families and prints the totals, the median and smallest speed-up,
and how many problems took more than 1.5x plain Sinkhorn's iterations.

- 200 random cost matrices of 3-11 rows and columns, costs uniform on [0, 1] or [0, 10], random weights
  (one zero weight in every other problem), eps in {0.3, 0.1, 0.03, 0.01}, tol 1e-9;
- 40 pairs of 2-D Gaussian clouds of 50-199 points, squared Euclidean cost, eps in {0.3, 0.1, 0.03},
  tol 1e-9;
- the 10 clouds of ``bench_sinkhorn.py --sections 2`` (150 points, eps = 0.02, tol 1e-6).

Run: ``python benchmarks/bench_sinkhorn_robustness.py`` (about a minute on one core).
"""

from __future__ import annotations

import os
import platform

import numpy as np
import torch

from otmetrics import PointCloud, sinkhorn


def matrices():
    for seed in range(200):
        rng = np.random.default_rng(seed)
        n, m = rng.integers(3, 12, 2)
        C = rng.random((n, m)) * rng.choice([1, 10])
        a, b = rng.random(n), rng.random(m)
        if seed % 2:
            a[0] = 0.0
        yield a / a.sum(), b / b.sum(), C, float(rng.choice([0.3, 0.1, 0.03, 0.01])), 1e-9


def clouds():
    for seed in range(40):
        rng = np.random.default_rng(seed)
        n, m = rng.integers(50, 200, 2)
        x = rng.normal(size=(n, 2))
        y = rng.normal(size=(m, 2)) * rng.uniform(0.5, 2) + rng.uniform(0, 2)
        yield None, None, PointCloud(x, y, p=2), float(rng.choice([0.3, 0.1, 0.03])), 1e-9


def benchmark_clouds():
    for seed in range(10):
        rng = np.random.default_rng(seed)
        x, y = rng.normal(size=(150, 2)), 0.6 * rng.normal(size=(150, 2)) + 1
        yield None, None, PointCloud(x, y, p=2), 0.02, 1e-6


def main():
    torch.set_num_threads(1)
    print(f"# Sinkhorn iterations, defaults against the plain loop ({platform.machine()}, "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f})\n")
    print("| problems | iterations (defaults) | iterations (plain) | median speed-up | smallest | "
          "over 1.5x plain | not converged |")
    print("|---|---|---|---|---|---|---|")
    for name, family in (("200 small cost matrices", matrices), ("40 point clouds", clouds),
                         ("10 clouds at eps = 0.02", benchmark_clouds)):
        fast, plain, slower, failed = [], [], 0, 0
        for a, b, cost, eps, tol in family():
            acc = sinkhorn(a, b, cost, eps, tol=tol, max_iter=100_000, eps_scaling=None)
            ref = sinkhorn(a, b, cost, eps, tol=tol, max_iter=100_000, acceleration=None, eps_scaling=None)
            failed += not bool(acc.converged)
            fast.append(int(acc.n_iter))
            plain.append(int(ref.n_iter))
            slower += acc.n_iter > 1.5 * ref.n_iter and acc.n_iter > 100
        ratio = np.asarray(plain) / np.asarray(fast)
        print(f"| {name} | {sum(fast):,} | {sum(plain):,} | {np.median(ratio):.2f}x | {ratio.min():.2f}x | "
              f"{slower} | {failed} |")


if __name__ == "__main__":
    main()
