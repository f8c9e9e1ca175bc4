"""1-D Wasserstein: otmetrics.wasserstein_1d against scipy.stats and POT, side by side.

Run: ``.venv/bin/python benchmarks/bench_1d.py [--quick]``. Ratios > 1 mean otmetrics is faster.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import ot
import scipy.stats

sys.path.insert(0, os.path.dirname(__file__))
import otmetrics  # noqa: E402
from _timing import machine, table, timeit  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    repeat = 1 if args.quick else 5
    r = np.random.default_rng(0)
    print(f"Machine: {machine()}\n")

    rows = []
    cases = [("equal weights, n = m", 10**4, 10**4, False)] if args.quick else [
        ("equal weights, n = m", 10**6, 10**6, False),
        ("equal weights, n != m", 10**6, 7 * 10**5, False),
        ("random weights, n != m", 10**6, 7 * 10**5, True),
    ]
    for label, n, m, weighted in cases:
        u, v = r.normal(size=n), r.normal(size=m) * 1.5 + 0.2
        wu = r.random(n) if weighted else None
        wv = r.random(m) if weighted else None
        t_ours = timeit(lambda: otmetrics.wasserstein_1d(u, v, wu, wv, p=1), repeat=repeat)
        t_scipy = timeit(lambda: scipy.stats.wasserstein_distance(u, v, wu, wv), repeat=repeat)
        t_sort = timeit(lambda: (np.sort(u), np.sort(v)), repeat=repeat)
        ours, ref = otmetrics.wasserstein_1d(u, v, wu, wv, p=1), scipy.stats.wasserstein_distance(u, v, wu, wv)
        rows.append([label, n, m, t_scipy * 1e3, t_ours * 1e3, t_sort * 1e3, t_scipy / t_ours, t_ours / t_sort,
                     f"{abs(ours - ref) / ref:.1e}"])
    print("### p = 1 against scipy.stats.wasserstein_distance\n")
    print(table(["case", "n", "m", "scipy (ms)", "otmetrics (ms)", "np.sort of both (ms)", "speed-up vs scipy",
                 "otmetrics / sorting", "relative difference"], rows))

    rows = []
    n = 10**4 if args.quick else 10**6
    u, v = r.normal(size=n), r.normal(size=n) + 1
    wu, wv = np.full(n, 1 / n), np.full(n, 1 / n)
    t_ours = timeit(lambda: otmetrics.wasserstein_1d(u, v, p=2), repeat=repeat)
    t_pot = timeit(lambda: ot.wasserstein_1d(u, v, wu, wv, p=2), repeat=repeat)
    diff = abs(otmetrics.wasserstein_1d(u, v, p=2) ** 2 - ot.wasserstein_1d(u, v, wu, wv, p=2))
    rows.append(["p = 2, equal weights", n, t_pot * 1e3, t_ours * 1e3, t_pot / t_ours, f"{diff:.1e}"])
    batch, k = (10, 100) if args.quick else (1000, 1000)
    U, V = r.normal(size=(batch, k)), r.normal(size=(batch, k)) + 1
    t_ours = timeit(lambda: otmetrics.wasserstein_1d(U, V, p=2), repeat=repeat)
    t_pot = timeit(lambda: ot.wasserstein_1d(U.T, V.T, p=2), repeat=repeat)  # POT batches on trailing axes
    diff = np.abs(otmetrics.wasserstein_1d(U, V, p=2) ** 2 - ot.wasserstein_1d(U.T, V.T, p=2)).max()
    rows.append([f"p = 2, batch of {batch}", k, t_pot * 1e3, t_ours * 1e3, t_pot / t_ours, f"{diff:.1e}"])
    t_scipy = timeit(lambda: [scipy.stats.wasserstein_distance(U[i], V[i]) for i in range(batch)], repeat=repeat)
    t_ours = timeit(lambda: otmetrics.wasserstein_1d(U, V, p=1), repeat=repeat)
    rows.append([f"p = 1, batch of {batch} (scipy: a loop)", k, t_scipy * 1e3, t_ours * 1e3, t_scipy / t_ours, "-"])
    print("\n### Against POT (W_p^p) and batches\n")
    print(table(["case", "n per problem", "reference (ms)", "otmetrics (ms)", "speed-up", "max abs. difference"], rows))


if __name__ == "__main__":
    main()
