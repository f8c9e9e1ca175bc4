"""Sliced, max-sliced and energy distances against POT, dcor and scipy, side by side.

Run: ``.venv/bin/python benchmarks/bench_sliced.py [--quick] [--section sliced|max|energy]``.
Ratios > 1 mean otmetrics is faster (or uses less memory). Every row also gives the agreement
with the reference on the same input (the same directions for the sliced distances).
"""

from __future__ import annotations

import argparse
import os
import sys
import tracemalloc
import warnings

import numpy as np
import ot
import scipy
import scipy.stats

sys.path.insert(0, os.path.dirname(__file__))
import otmetrics  # noqa: E402
from _timing import machine, table, timeit  # noqa: E402


def peak_mb(fn) -> float:
    """Peak traced (numpy/Python) memory of one call, in MB."""
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def sliced_section(quick: bool, repeat: int, rng):
    cases = [(1000, 1000, 3, 50, False), (2000, 1500, 10, 100, True)] if quick else [
        (1000, 1000, 3, 50, False),
        (10_000, 10_000, 10, 200, False),
        (10_000, 7_000, 10, 200, False),
        (10_000, 7_000, 10, 200, True),
        (100_000, 100_000, 3, 100, False),
        (5_000, 5_000, 512, 500, False),
    ]
    rows = []
    for n, m, d, L, weighted in cases:
        x, y = rng.normal(size=(n, d)), rng.normal(size=(m, d)) * 1.2 + 0.3
        a, b = (rng.random(n), rng.random(m)) if weighted else (None, None)
        an, bn = (a / a.sum(), b / b.sum()) if weighted else (None, None)
        theta = otmetrics.random_projections(d, L, seed=0)
        def ours():
            return otmetrics.sliced_wasserstein(x, y, a=a, b=b, projections=theta)

        def pot():
            return ot.sliced_wasserstein_distance(x, y, an, bn, projections=theta.T)

        t_ours, t_pot = timeit(ours, repeat=repeat), timeit(pot, repeat=repeat)
        rows.append([n, m, d, L, "random" if weighted else "uniform", t_pot * 1e3, t_ours * 1e3,
                     t_pot / t_ours, f"{abs(ours() - pot()):.1e}"])
    print("### Sliced Wasserstein (p = 2) against ot.sliced_wasserstein_distance, the same directions\n")
    print(table(["n", "m", "d", "L", "weights", "POT (ms)", "otmetrics (ms)", "speed-up", "abs. difference"],
                rows))

    import torch

    n, d, L = (2000, 10, 100) if quick else (20_000, 32, 200)
    x, y = torch.randn(n, d, dtype=torch.float64), torch.randn(n, d, dtype=torch.float64) + 0.3
    theta = torch.tensor(otmetrics.random_projections(d, L, seed=0))

    def ours_backward():
        xt = x.clone().requires_grad_(True)
        otmetrics.sliced_wasserstein(xt, y, projections=theta).backward()

    def pot_backward():
        xt = x.clone().requires_grad_(True)
        ot.sliced_wasserstein_distance(xt, y, projections=theta.T).backward()

    t_ours, t_pot = timeit(ours_backward, repeat=repeat), timeit(pot_backward, repeat=repeat)
    diff = abs(otmetrics.sliced_wasserstein(x, y, projections=theta).item()
               - ot.sliced_wasserstein_distance(x, y, projections=theta.T).item())
    print("\n#### torch (CPU, float64), value and gradient\n")
    print(table(["n = m", "d", "L", "POT (ms)", "otmetrics (ms)", "speed-up", "abs. difference"],
                [[n, d, L, t_pot * 1e3, t_ours * 1e3, t_pot / t_ours, f"{diff:.1e}"]]))


def max_section(quick: bool, repeat: int, rng):
    cases = [(500, 5, 50), (1000, 20, 50)] if quick else [(1000, 5, 50), (5000, 20, 50), (5000, 100, 50),
                                                          (5000, 100, 500)]
    rows = []
    for n, d, L in cases:
        x = rng.normal(size=(n, d))
        y = rng.normal(size=(n, d)) * np.r_[1.5, np.ones(d - 1)]  # differs along the first axis only
        theta = otmetrics.random_projections(d, L, seed=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", otmetrics.ConvergenceWarning)
            result = otmetrics.max_sliced_wasserstein(x, y, projections=theta)
            single = otmetrics.max_sliced_wasserstein(x, y, projections=theta, n_starts=1)
            t_ours = timeit(lambda: otmetrics.max_sliced_wasserstein(x, y, projections=theta), repeat=repeat)
            t_single = timeit(lambda: otmetrics.max_sliced_wasserstein(x, y, projections=theta, n_starts=1),
                              repeat=repeat)
        t_pot = timeit(lambda: ot.max_sliced_wasserstein_distance(x, y, projections=theta.T), repeat=repeat)
        ref = ot.max_sliced_wasserstein_distance(x, y, projections=theta.T)
        sw = otmetrics.sliced_wasserstein(x, y, projections=theta)
        rows.append([n, d, L, t_pot * 1e3, t_single * 1e3, t_ours * 1e3, sw, ref, single.value, result.value,
                     result.value / ref, abs(result.direction[0]), int(result.n_iter), bool(result.converged),
                     f"{result.gradient_norm:.1e}", f"{abs(result.start_value - ref):.1e}"])
    print("### Max-sliced Wasserstein (p = 2): POT's best random direction against our ascent from it\n")
    print("Clouds that differ along the first axis only (standard deviation 1.5 against 1): the optimal "
          "direction is close to e_1.\n")
    print(table(["n = m", "d", "L", "POT (ms)", "otmetrics, 1 start (ms)", "otmetrics, 5 starts (ms)",
                 "sliced", "POT max-sliced", "otmetrics, 1 start", "otmetrics, 5 starts", "5 starts / POT",
                 "abs(direction_1)", "iterations", "converged", "gradient_norm", "start vs POT"], rows))


def energy_section(quick: bool, repeat: int, rng):
    import dcor

    dims = 3
    sizes = [500, 1500] if quick else [1000, 3000, 6000]
    rows = []
    for n in sizes:
        x, y = rng.normal(size=(n, dims)), rng.normal(size=(n, dims)) + 0.1
        t_ours = timeit(lambda: otmetrics.energy_distance(x, y), repeat=repeat)
        t_ref = timeit(lambda: dcor.energy_distance(x, y), repeat=repeat)
        m_ours = peak_mb(lambda: otmetrics.energy_distance(x, y))
        m_ref = peak_mb(lambda: dcor.energy_distance(x, y))
        ours, ref = otmetrics.energy_distance(x, y), dcor.energy_distance(x, y)
        rows.append([n, dims, t_ref * 1e3, t_ours * 1e3, t_ref / t_ours, m_ref, m_ours, m_ref / m_ours,
                     f"{abs(ours - ref) / ref:.1e}"])
    big = 6000 if quick else 30_000
    x, y = rng.normal(size=(big, dims)), rng.normal(size=(big, dims)) + 0.1
    t_ours = timeit(lambda: otmetrics.energy_distance(x, y), repeat=1, warmup=0)
    m_ours = peak_mb(lambda: otmetrics.energy_distance(x, y))
    dense = f"- (3 x n^2 x 8 B = {3 * big**2 * 8 / 2**30:.1f} GB)"
    rows.append([big, dims, dense, t_ours * 1e3, "-", "-", m_ours, "-", "-"])
    print(f"### Energy distance against dcor {dcor.__version__} (d = {dims})\n")
    print(table(["n = m", "d", "dcor (ms)", "otmetrics (ms)", "speed-up", "dcor peak (MB)",
                 "otmetrics peak (MB)", "memory ratio", "relative difference"], rows))

    rows = []
    for n in ([2000] if quick else [5000, 10**6]):
        u, v = rng.normal(size=n), rng.normal(size=n) + 0.1
        wu, wv = rng.random(n), rng.random(n)
        t_ours = timeit(lambda: otmetrics.energy_distance(u, v, a=wu, b=wv), repeat=repeat)
        t_scipy = timeit(lambda: scipy.stats.energy_distance(u, v, wu, wv), repeat=repeat)
        ours = np.sqrt(otmetrics.energy_distance(u, v, a=wu, b=wv))
        diff = abs(ours - scipy.stats.energy_distance(u, v, wu, wv))
        row = [n, t_scipy * 1e3, t_ours * 1e3, t_scipy / t_ours, f"{diff:.1e}"]
        if n <= 5000:
            t_dcor = timeit(lambda: dcor.energy_distance(u, v), repeat=repeat)
            t_unw = timeit(lambda: otmetrics.energy_distance(u, v), repeat=repeat)
            row += [t_dcor * 1e3, t_dcor / t_unw]
        else:
            row += ["-", "-"]
        rows.append(row)
    print("\n#### On the line (d = 1, sorting): against scipy (weighted; scipy returns sqrt(E)) and dcor\n")
    print(table(["n = m", "scipy (ms)", "otmetrics (ms)", "speed-up vs scipy", "abs. difference of sqrt(E)",
                 "dcor, unweighted (ms)", "speed-up vs dcor"], rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repetition")
    parser.add_argument("--section", choices=["sliced", "max", "energy"], action="append",
                        help="run only these sections (repeatable); all by default")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else 5
    sections = args.section or ["sliced", "max", "energy"]
    import torch

    print(f"Machine: {machine()}")
    print(f"POT {ot.__version__}, scipy {scipy.__version__}, torch threads {torch.get_num_threads()}, "
          f"load average {os.getloadavg()[0]:.2f}\n")
    rng = np.random.default_rng(0)
    for name in sections:
        section = {"sliced": sliced_section, "max": max_section, "energy": energy_section}[name]
        section(args.quick, repeat, rng)
        print()


if __name__ == "__main__":
    main()
