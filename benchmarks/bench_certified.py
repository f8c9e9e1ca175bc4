"""Benchmark: the proven bracket of certified_wasserstein against the exact LP (POT's network simplex).

For each size n (n = m points in d dimensions, x ~ N(0, I), y ~ N(1, I), cost |x - y|^p), in a fresh
subprocess each (so that the peak resident memory is the run's own):

1. ``otmetrics.certified_wasserstein(x, y, p=p, rtol=rtol, max_time=...)``: the bracket after every entropic
   solve (relative width against the elapsed time), the final bracket, its time, the peak extra resident
   memory (``VmHWM`` reset just before the run, minus the resident set before it);
2. where it fits (n <= --lp-max): ``ot.emd2`` on the dense float64 matrix ``ot.dist(x, y) ** (p / 2)``
   (time including the matrix, peak extra memory), and whether the exact value lies in the bracket.

Run:  python benchmarks/bench_certified.py                       # n = 1000, 2000, 5000, 10000, 20000
      python benchmarks/bench_certified.py --sizes 1000,2000 --lp-max 2000 --threads 2
      python benchmarks/bench_certified.py --sizes 20000 --max-time 600 --lp-max 0   # the target run

Target (issue 12): n = m = 20,000 in 3-D, relative width 1% in under 10 minutes on 2 cores, under 300 MB
extra peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _timing import machine, table  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

_PRELUDE = """
import json, os, sys, time, warnings
sys.path.insert(0, {root!r})
threads = {threads}
if threads:
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
import numpy as np
import torch
if threads:
    torch.set_num_threads(threads)
rng = np.random.default_rng({seed})
x = rng.normal(size=({n}, {dim}))
y = rng.normal(size=({n}, {dim})) + 1.0

def status_kb(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key))

def reset_peak():
    with open("/proc/self/clear_refs", "w") as fh:   # VmHWM back to the current resident set
        fh.write("5")
    return status_kb("VmRSS:")
"""

_CERTIFIED = _PRELUDE + """
import otmetrics
warnings.simplefilter("ignore")
otmetrics.certified_wasserstein(x[:50], y[:50], p={p}, rtol=0.1)        # load the code paths
before = reset_peak()
start = time.perf_counter()
bracket = otmetrics.certified_wasserstein(x, y, p={p}, rtol={rtol}, max_time={max_time})
seconds = time.perf_counter() - start
extra = (status_kb("VmHWM:") - before) / 1024
stages, elapsed, lo, hi = [], 0.0, -float("inf"), float("inf")
for s in bracket.stages:
    elapsed += s.seconds
    lo, hi = max(lo, s.lower), min(hi, s.upper)
    stages.append(dict(eps=s.eps, n_iter=s.n_iter, seconds=elapsed, lower=lo, upper=hi,
                       rel=(hi - lo) / lo if lo > 0 else float("inf")))
print("RESULT", json.dumps(dict(lower=bracket.lower, upper=bracket.upper, rel=bracket.relative_width,
                                converged=bracket.converged, seconds=seconds, n_iter=bracket.n_iter,
                                extra_mb=extra, stages=stages)))
"""

_LP = _PRELUDE + """
import ot
before = reset_peak()
start = time.perf_counter()
C = ot.dist(x, y) ** ({p} / 2)
value = ot.emd2(np.full({n}, 1 / {n}), np.full({n}, 1 / {n}), C, numItermax=10**9)
seconds = time.perf_counter() - start
extra = (status_kb("VmHWM:") - before) / 1024
print("RESULT", json.dumps(dict(value=float(value), seconds=seconds, extra_mb=extra)))
"""


def run_child(template, timeout, **fields):
    code = textwrap.dedent(template.format(root=ROOT, **fields))
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"over {timeout:.0f} s"}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")][-1]
    return json.loads(line.split(" ", 1)[1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,2000,5000,10000,20000")
    parser.add_argument("--dim", type=int, default=3)
    parser.add_argument("--p", type=float, default=2.0)
    parser.add_argument("--rtol", type=float, default=1e-2)
    parser.add_argument("--max-time", type=float, default=600.0, help="seconds per certified run")
    parser.add_argument("--lp-max", type=int, default=5000, help="largest n for the LP (0: none)")
    parser.add_argument("--lp-timeout", type=float, default=1800.0)
    parser.add_argument("--threads", type=int, default=0, help="torch/BLAS threads (0: the default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]

    import numpy
    import torch

    try:
        import ot
        pot = f"POT {ot.__version__}"
    except ImportError:
        pot = "POT not installed (no LP column)"
        args.lp_max = 0
    print(f"# certified_wasserstein against the exact LP\n\n{machine()}, {pot}; threads: "
          f"{args.threads or torch.get_num_threads()}; load average {os.getloadavg()}")
    print(f"d = {args.dim}, p = {args.p:g}, rtol = {args.rtol:g}, max_time = {args.max_time:g} s, "
          f"numpy {numpy.__version__}\n")
    rows, traces = [], []
    for n in sizes:
        fields = dict(threads=args.threads, seed=args.seed, n=n, dim=args.dim, p=args.p)
        cert = run_child(_CERTIFIED, args.max_time * 3 + 600, rtol=args.rtol, max_time=args.max_time,
                         **fields)
        lp = run_child(_LP, args.lp_timeout, **fields) if n <= args.lp_max else {"error": "not run"}
        if "error" in cert:
            rows.append([n, cert["error"]] + ["-"] * 5 + [lp.get("error", "-"), "-", "-", "-", "-"])
            continue
        has_lp = "value" in lp
        inside = ("yes" if cert["lower"] <= lp["value"] <= cert["upper"] else "NO") if has_lp else "-"
        rows.append([n, f"[{cert['lower']:.8g}, {cert['upper']:.8g}]", f"{cert['rel']:.2e}",
                     "yes" if cert["converged"] else "no", cert["seconds"], cert["n_iter"], cert["extra_mb"],
                     f"{lp['value']:.8g}" if has_lp else lp["error"], lp.get("seconds", "-"),
                     lp.get("extra_mb", "-"), f"{lp['seconds'] / cert['seconds']:.2f}" if has_lp else "-",
                     inside])
        traces.append((n, cert["stages"]))
        print(f"n={n}: bracket {rows[-1][1]}, relative width {rows[-1][2]} in {cert['seconds']:.1f} s; "
              f"LP: {rows[-1][7]}", flush=True)
    print("\n## Final brackets (W_p^p) beside the LP\n")
    print(table(["n = m", "bracket", "rel. width", "reached rtol", "time (s)", "Sinkhorn iterations",
                 "extra peak (MB)", "LP value (ot.emd2)", "LP time (s)", "LP extra peak (MB)",
                 "LP time / ours", "LP value in bracket"], rows))
    print("\n## Relative width against time (after each entropic solve)\n")
    for n, stages in traces:
        print(f"n = {n}: " + ", ".join(f"{s['seconds']:.1f} s: {s['rel']:.2e} (eps {s['eps']:.2g}, "
                                       f"{s['n_iter']} it.)" for s in stages))


if __name__ == "__main__":
    main()
