"""PRDC and CMMD against their reference implementations, side by side.

Sections (each prints a Markdown table; ratios are "their time / our time", "their memory / ours"):

1. ``otmetrics.prdc`` against the ``prdc`` package (``compute_prdc``, Naeem et al.'s reference) on
   the same float32 features: wall and CPU time (``time.process_time``, all threads; with
   ``--threads 1`` it does not grow when other jobs share the cores), extra peak memory (VmHWM of
   a fresh subprocess, reset to the resident size just before the call), the four values and
   whether they agree. Default sizes
   10,000 x 10,000 at d = 1024 (the issue's target: at least 5x faster, under 500 MB extra), plus a
   small setting (2,000 x 2,000 at d = 256).
2. ``otmetrics.cmmd`` against the reference formula (google-research's ``cmmd/distance.py``,
   transcribed in numpy: the three dense kernel matrices, in float32 as its JAX code computes by
   default, and in float64) on L2-normalised embeddings (d = 768, as CLIP ViT-L/14): time and
   agreement.

Usage::

    python benchmarks/bench_prdc.py                      # everything (minutes)
    python benchmarks/bench_prdc.py --quick              # the small settings only
    python benchmarks/bench_prdc.py --section prdc --n 10000 --d 1024
    python benchmarks/bench_prdc.py --device cuda        # otmetrics on the GPU (the prdc package is CPU-only)
    python benchmarks/bench_prdc.py --threads 2          # torch/BLAS threads (default: all cores)

The ``prdc`` package is a development dependency; its rows are skipped when it is not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)  # this checkout's otmetrics, whatever is installed
from _timing import machine, table  # noqa: E402

_CHILD = textwrap.dedent("""
    import contextlib, io, json, os, sys, time
    threads = {threads}
    if threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)
    import numpy as np
    import torch
    if threads:
        torch.set_num_threads(threads)
    sys.path.insert(0, {root!r})
    rng = np.random.default_rng({seed})
    n, m, d = {n}, {m}, {d}
    real = rng.standard_normal((n, d), dtype=np.float32)
    # a generator that is close but not equal: scaled, shifted, one direction stretched
    fake = rng.standard_normal((m, d), dtype=np.float32) * np.float32(1.05) + np.float32(0.02)
    fake[:, 0] *= 2

    def status_kb(key):
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith(key))

    which = {which!r}
    if which == "prdc":
        import prdc
        def run():
            with contextlib.redirect_stdout(io.StringIO()):
                out = prdc.compute_prdc(real, fake, {k})
            return {{key: float(value) for key, value in out.items()}}
        run_small = lambda: prdc.compute_prdc(real[:50], fake[:50], {k})
    else:
        import otmetrics
        device = torch.device({device!r})
        # numpy on the CPU (float64 results, as the package's); tensors on a GPU
        xr, xf = (real, fake) if device.type == "cpu" else (torch.from_numpy(real).to(device),
                                                             torch.from_numpy(fake).to(device))
        def run():
            res = otmetrics.prdc(xr, xf, k={k})
            if device.type == "cuda":
                torch.cuda.synchronize()
            return dict(precision=float(res.precision), recall=float(res.recall), density=float(res.density),
                        coverage=float(res.coverage), recomputed=res.recomputed)
        run_small = lambda: otmetrics.prdc(xr[:50], xf[:50], k={k})
    with contextlib.redirect_stdout(io.StringIO()):
        run_small()                                   # imports, thread pools, allocator warm-up
    rss_before = status_kb("VmRSS:")
    with open("/proc/self/clear_refs", "w") as fh:  # VmHWM := VmRSS (the parent's peak is not ours)
        fh.write("5")
    start, cpu = time.perf_counter(), time.process_time()
    values = run()
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    out = dict(values=values, time=elapsed, cpu=cpu, extra_mb=(status_kb("VmHWM:") - rss_before) / 1024)
    print("RESULT", json.dumps(out))
""")


def child(which, args, n, m, d):
    code = _CHILD.format(root=ROOT, threads=args.threads or 0, seed=args.seed, n=n, m=m, d=d, k=args.k,
                         which=which, device=args.device)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    line = [ln for ln in done.stdout.splitlines() if ln.startswith("RESULT")][-1]
    return json.loads(line.split(" ", 1)[1])


def section_prdc(args):
    try:
        import prdc  # noqa: F401
        have_prdc = True
    except ImportError:
        have_prdc = False
    settings = [(2000, 2000, 256)] if args.quick else [(2000, 2000, 256), (args.n, args.n, args.d)]
    for n, m, d in settings:
        print(f"## 1. PRDC: n = m = {n}, d = {d}, float32, k = {args.k}, otmetrics on {args.device}\n")
        ours = child("otmetrics", args, n, m, d)
        rows = [["otmetrics.prdc", f"{ours['time']:.2f} s", "1.0x", f"{ours['cpu']:.2f} s", "1.0x",
                 f"{ours['extra_mb']:.0f} MB", "1.0x"]
                + [f"{ours['values'][key]:.6f}" for key in ("precision", "recall", "density", "coverage")]]
        if have_prdc:
            theirs = child("prdc", args, n, m, d)
            rows.append(["prdc.compute_prdc", f"{theirs['time']:.2f} s",
                         f"{theirs['time'] / ours['time']:.1f}x", f"{theirs['cpu']:.2f} s",
                         f"{theirs['cpu'] / ours['cpu']:.1f}x", f"{theirs['extra_mb']:.0f} MB",
                         f"{theirs['extra_mb'] / max(ours['extra_mb'], 1):.1f}x"]
                        + [f"{theirs['values'][key]:.6f}" for key in ("precision", "recall", "density",
                                                                        "coverage")])
        print(table(["implementation", "wall time", "speed-up", "CPU time", "CPU ratio", "extra peak memory",
                     "memory ratio", "precision", "recall", "density", "coverage"], rows))
        print(f"\notmetrics recomputed {ours['values']['recomputed']} squared distances exactly "
              f"(near-ties of a radius), of {n * n // 2 + m * m // 2 + n * m} pairs.")
        if have_prdc:
            same = all(abs(ours["values"][key] - theirs["values"][key]) <= 1e-12
                       for key in ("precision", "recall", "density", "coverage"))
            print(f"Values equal (to 1e-12; the package rounds density differently): {same}\n", flush=True)
            if not same:
                print("ours:  ", json.dumps(ours["values"]), "\ntheirs:", json.dumps(theirs["values"]), "\n")


def reference_cmmd(x, y, dtype):
    """google-research's cmmd/distance.py, transcribed in numpy: three dense kernel matrices."""
    import numpy as np

    x, y = x.astype(dtype), y.astype(dtype)
    gamma = dtype(1 / (2 * 10.0 ** 2))
    x_sq = np.diag(x @ x.T)
    y_sq = np.diag(y @ y.T)
    k_xx = np.mean(np.exp(-gamma * (-2 * (x @ x.T) + x_sq[:, None] + x_sq[None, :])))
    k_xy = np.mean(np.exp(-gamma * (-2 * (x @ y.T) + x_sq[:, None] + y_sq[None, :])))
    k_yy = np.mean(np.exp(-gamma * (-2 * (y @ y.T) + y_sq[:, None] + y_sq[None, :])))
    return 1000 * float(k_xx + k_yy - 2 * k_xy)


def section_cmmd(args):
    import numpy as np
    import torch

    import otmetrics

    n = 2000 if args.quick else args.cmmd_n
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((n, 768)).astype(np.float32)
    y = (rng.standard_normal((n, 768)) + 0.05 * rng.standard_normal(768)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    print(f"## 2. CMMD: n = m = {n}, d = 768, L2-normalised float32 embeddings\n")
    device = torch.device(args.device)
    xt, yt = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)
    otmetrics.cmmd(xt[:10], yt[:10])
    start = time.perf_counter()
    ours = float(otmetrics.cmmd(xt, yt))
    t_ours = time.perf_counter() - start
    rows = [["otmetrics.cmmd (float64 blocks)", f"{t_ours:.2f} s", "1.0x", f"{ours:.9f}", "-"]]
    for dtype in (np.float32, np.float64):
        start = time.perf_counter()
        value = reference_cmmd(x, y, dtype)
        elapsed = time.perf_counter() - start
        rows.append([f"reference formula ({np.dtype(dtype).name}, dense)", f"{elapsed:.2f} s",
                     f"{elapsed / t_ours:.1f}x", f"{value:.9f}", f"{abs(value - ours) / abs(ours):.1e}"])
    print(table(["implementation", "time", "speed-up", "CMMD", "relative difference to otmetrics"], rows))
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--section", choices=("prdc", "cmmd"), action="append")
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--n", type=int, default=10_000, help="PRDC samples per set (default 10,000)")
    parser.add_argument("--d", type=int, default=1024, help="PRDC feature dimension (default 1024)")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--cmmd-n", type=int, default=10_000, help="CMMD samples per set (default 10,000)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="threads (default: the libraries' own)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    import importlib.metadata as md

    versions = []
    for package in ("prdc", "scikit-learn"):
        try:
            versions.append(f"{package} {md.version(package)}")
        except md.PackageNotFoundError:
            versions.append(f"{package} not installed")
    print(f"# PRDC and CMMD benchmark\n\n{machine()}; {', '.join(versions)}; threads: "
          f"{args.threads or 'default'}\n")
    sections = args.section or ["prdc", "cmmd"]
    if "prdc" in sections:
        section_prdc(args)
    if "cmmd" in sections:
        section_cmmd(args)


if __name__ == "__main__":
    main()
