"""Exact EMD: otmetrics.emd (with its certificate) against POT and scipy's linprog, side by side.

Run: ``.venv/bin/python benchmarks/bench_exact.py [--quick]``. Prints Markdown tables with ratios
(> 1 means otmetrics is faster, except for the overhead column, where it is a cost factor).
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import ot
from scipy.optimize import linprog

sys.path.insert(0, os.path.dirname(__file__))
import otmetrics  # noqa: E402
from _timing import machine, table, timeit  # noqa: E402


def problem(n, m=None, seed=0, d=2):
    r = np.random.default_rng(seed)
    m = m or n
    x, y = r.normal(size=(n, d)), r.normal(size=(m, d)) + 0.5
    return np.full(n, 1 / n), np.full(m, 1 / m), ot.dist(x, y, metric="euclidean")


def overhead(sizes, repeat):
    rows = []
    for n in sizes:
        a, b, C = problem(n, seed=n)
        t_ours = timeit(lambda: otmetrics.emd(a, b, C), repeat=repeat)
        t_pot = timeit(lambda: ot.emd2(a, b, C), repeat=repeat)
        res = otmetrics.emd(a, b, C)
        rows.append([n, t_pot * 1e3, t_ours * 1e3, t_ours / t_pot, f"{res.certificate.relative_gap:.1e}",
                     abs(res.cost - ot.emd2(a, b, C))])
    return table(["n = m", "ot.emd2 (ms)", "otmetrics.emd + certificate (ms)", "overhead factor",
                  "certified relative gap", "abs. difference"], rows)


def batches(configs, repeat):
    rows = []
    for batch, n in configs:
        Cs = np.stack([problem(n, seed=s)[2] for s in range(batch)])
        a = np.full(n, 1 / n)
        t_loop = timeit(lambda: [ot.emd2(a, a, C) for C in Cs], repeat=repeat)
        t_ours = timeit(lambda: otmetrics.emd(a, a, Cs), repeat=repeat)
        t_serial = timeit(lambda: otmetrics.emd(a, a, Cs, n_threads=1), repeat=repeat)
        rows.append([batch, n, t_loop * 1e3, t_serial * 1e3, t_ours * 1e3, t_loop / t_ours])
    return table(["B", "n", "loop of ot.emd2 (ms)", "otmetrics.emd, 1 thread (ms)",
                  f"otmetrics.emd, {os.cpu_count()} threads (ms)", "speed-up vs loop"], rows)


def lp_solvers(sizes, repeat):
    rows = []
    for n in sizes:
        a, b, C = problem(n, seed=n + 1)
        A = np.zeros((2 * n, n * n))
        for i in range(n):
            A[i, i * n:(i + 1) * n] = 1
            A[n + i, i::n] = 1

        def dense_linprog():
            return linprog(C.ravel(), A_eq=A, b_eq=np.concatenate([a, b]), bounds=(0, None), method="highs")

        t_lin = timeit(dense_linprog, repeat=max(1, repeat // 2))
        t_highs = timeit(lambda: otmetrics.emd(a, b, C, backend="highs"), repeat=max(1, repeat // 2))
        t_ns = timeit(lambda: otmetrics.emd(a, b, C), repeat=repeat)
        ref = dense_linprog().fun
        ours_h = otmetrics.emd(a, b, C, backend="highs").cost
        ours_n = otmetrics.emd(a, b, C).cost
        rows.append([n, t_lin * 1e3, t_highs * 1e3, t_ns * 1e3, t_lin / t_ns,
                     f"{abs(ours_h - ours_n) / ours_n:.1e}", f"{abs(ref - ours_n) / ours_n:.1e}"])
    return table(["n = m", "scipy linprog, dense A (ms)", "emd backend='highs' (ms)",
                  "emd network simplex (ms)", "speed-up vs linprog", "highs vs simplex (rel)",
                  "linprog vs simplex (rel)"], rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else 7
    print(f"Machine: {machine()}\n")
    print("### Overhead of the certificate (single problem, 2-D Gaussians, Euclidean cost)\n")
    print(overhead([60] if args.quick else [500, 1500], repeat))
    print("\n### Batches in parallel threads\n")
    print(batches([(4, 40)] if args.quick else [(32, 300), (8, 1000)], repeat))
    print("\n### Against scipy's LP solver\n")
    print(lp_solvers([10] if args.quick else [50, 100], repeat))


if __name__ == "__main__":
    main()
