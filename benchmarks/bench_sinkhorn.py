"""Sinkhorn benchmark: otmetrics.sinkhorn against POT and GeomLoss, side by side in one process.

Sections (each prints a markdown table; ratios are "their time / our time"):

1. Batch, ``B`` problems of ``n x n`` points from 2-D Gaussians, ``eps``, ``tol``
   (default 16, 512, 0.1, 1e-6):
   otmetrics vs a loop over POT's ``ot.sinkhorn(method="sinkhorn_log")`` run until it reaches the same L1
   marginal tolerance (its ``stopThr`` is tightened until the plan's L1 error is ``<= tol``), and POT's
   batched ``ot.solve_batch(method="log_sinkhorn")``. Iteration counts and measured marginal errors.
2. Accuracy against the exact EMD (``|x - y|^2``, otmetrics.emd) on the same batch: GeomLoss
   ``SamplesLoss("sinkhorn", p=2, backend="tensorized")`` with its defaults and a tight schedule, against
   otmetrics' ``sinkhorn(...).cost`` and ``sinkhorn_divergence`` at several (eps, tol): time and error.
3. Online point clouds: peak extra memory (resident set, measured in a subprocess) and time per iteration,
   ``n = m = 20,000`` points in 3-D, float32 (``--online-n``).
4. With ``--device cuda``: sections 1-2 on the GPU, the dense iteration's time and the fraction of the GPU's
   memory bandwidth it reaches (bytes = two reads of the ``B x n x m`` kernel per iteration), and
   ``n = m = 10^5`` online (time per iteration).

Usage::

    python benchmarks/bench_sinkhorn.py                    # CPU, full sizes (minutes)
    python benchmarks/bench_sinkhorn.py --quick            # CPU, small sizes (a smoke test)
    python benchmarks/bench_sinkhorn.py --device cuda      # GPU

POT and GeomLoss are optional: their columns are skipped when they are not installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import otmetrics  # noqa: E402
from otmetrics import ConvergenceWarning, cost_matrix, sinkhorn, sinkhorn_divergence  # noqa: E402

try:
    import ot
except ImportError:  # POT is optional here
    ot = None
try:
    import geomloss
except ImportError:
    geomloss = None


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device, repeat=1):
    """(best wall time over ``repeat`` runs, last result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best, out


def gaussians(batch, n, dim, seed, device, dtype):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, dim, generator=gen, dtype=torch.float64)
    y = torch.randn(batch, n, dim, generator=gen, dtype=torch.float64) * 0.6 + 1.0
    return x.to(device, dtype), y.to(device, dtype)


def marginal_error(plan, a, b):
    return float(np.abs(plan.sum(1) - a).sum() + np.abs(plan.sum(0) - b).sum())


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    print("\n".join(lines) + "\n", flush=True)


def fmt(t):
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


# ------------------------------------------------------------------------------------------------
# 1. the batch against POT
# ------------------------------------------------------------------------------------------------
def pot_to_tolerance(a, b, C, eps, tol):
    """POT's sinkhorn_log with stopThr tightened until the plan's L1 marginal error is <= tol."""
    stop = tol
    for _ in range(12):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            plan, log = ot.sinkhorn(a, b, C, eps, method="sinkhorn_log", stopThr=stop, numItermax=1_000_000,
                                    log=True)
            elapsed = time.perf_counter() - start
        err = marginal_error(plan, a, b)
        if err <= tol:
            return elapsed, int(log["niter"]), err, stop, float((plan * C).sum())
        stop /= 4
    return elapsed, int(log["niter"]), err, stop, float((plan * C).sum())


def section_batch(args, device, dtype):
    B, n, eps, tol = args.batch, args.n, args.eps, args.tol
    x, y = gaussians(B, n, 2, 0, device, dtype)
    C = cost_matrix(x, y, p=2)
    print(f"## 1. Batch: B={B}, n=m={n}, 2-D Gaussians, eps={eps}, tol={tol} (L1 marginal error), "
          f"{dtype}, {device}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        t_ours, res = timed(lambda: sinkhorn(None, None, C, eps, tol=tol), device, repeat=args.repeat)
    n_iter = np.atleast_1d(res.n_iter)
    rows = [["otmetrics.sinkhorn (batched)", fmt(t_ours), "1.0x",
             f"{n_iter.min()}-{n_iter.max()} (mean {n_iter.mean():.0f})",
             f"{np.max(res.marginal_error):.2g}", f"{float(res.cost.double().mean()):.6f}"]]
    if ot is not None:
        Cn = C.double().cpu().numpy()
        w = np.full(n, 1.0 / n)
        k = min(B, args.pot_problems)
        runs = [pot_to_tolerance(w, w, Cn[i], eps, tol) for i in range(k)]
        t_pot = sum(r[0] for r in runs) * B / k
        iters = np.array([r[1] for r in runs])
        costs = np.array([r[4] for r in runs])
        ours_k = res.cost.double().cpu().numpy()[:k]
        note = "" if k == B else f" (timed on {k} problems, x{B / k:g})"
        rows.append([f"POT sinkhorn_log, loop{note}", fmt(t_pot), f"{t_pot / t_ours:.1f}x",
                     f"{iters.min()}-{iters.max()} (mean {iters.mean():.0f}); stopThr down to "
                     f"{min(r[3] for r in runs):.1g}",
                     f"{max(r[2] for r in runs):.2g}",
                     f"max rel. diff to ours {np.max(np.abs(costs / ours_k - 1)):.1e}"])
        if hasattr(ot, "solve_batch") and device.type == "cpu":
            Ct = torch.as_tensor(Cn)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_batch, out = timed(lambda: ot.solve_batch(Ct, reg=eps, max_iter=100_000, tol=tol,
                                                            method="log_sinkhorn", reg_type="kl"), device)
            plan = np.asarray(out.plan)
            errs = [marginal_error(plan[i], w, w) for i in range(B)]
            rows.append(["POT solve_batch(log_sinkhorn, tol=same)", fmt(t_batch), f"{t_batch / t_ours:.1f}x",
                         "(not reported)", f"{max(errs):.2g}", ""])
    table(["solver", "time", "time / ours", "iterations", "max L1 marginal error", "cost"], rows)
    return t_ours, res


# ------------------------------------------------------------------------------------------------
# 2. accuracy against the exact EMD, and GeomLoss
# ------------------------------------------------------------------------------------------------
def section_accuracy(args, device, dtype):
    B, n = args.batch, args.n
    x, y = gaussians(B, n, 2, 0, device, dtype)
    C = cost_matrix(x, y, p=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        backend = "network_simplex" if ot is not None else "highs"  # without POT: scipy's HiGHS
        exact = np.asarray(otmetrics.emd(None, None, C.double().cpu().numpy(), backend=backend).cost)
    print(f"## 2. Error against the exact EMD (W2^2 with |x-y|^2, otmetrics.emd): B={B}, n=m={n}, {dtype}, "
          f"{device}\n")
    print(f"median cost {float(C.median()):.3f}; mean exact W2^2 {exact.mean():.5f}. GeomLoss's blur b "
          f"is eps = 2 b^2 here (its cost is |x-y|^2/2; its value is doubled).\n")
    rows = []

    def add(name, fn, repeat):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            t, value = timed(fn, device, repeat=repeat)
        value = np.asarray(value.detach().double().cpu().numpy() if torch.is_tensor(value) else value)
        rel = np.abs(value / exact - 1)
        flag = " (not converged)" if any(issubclass(w.category, ConvergenceWarning) for w in caught) else ""
        rows.append([name + flag, fmt(t), f"{rel.mean():.2e}", f"{rel.max():.2e}"])
        return t

    if geomloss is not None:
        for label, blur, scaling in (("GeomLoss defaults (blur=0.05, scaling=0.5)", 0.05, 0.5),
                                     ("GeomLoss tight (blur=0.01, scaling=0.9)", 0.01, 0.9),
                                     ("GeomLoss tighter (blur=0.01, scaling=0.99)", 0.01, 0.99)):
            loss = geomloss.SamplesLoss("sinkhorn", p=2, blur=blur, scaling=scaling, backend="tensorized")
            add(label, lambda loss=loss: 2 * loss(x, y), args.repeat)
    for eps, tol, scaling in args.accuracy_grid:
        add(f"otmetrics sinkhorn(...).cost, eps={eps:g}, tol={tol:g}, eps_scaling={scaling}",
            lambda eps=eps, tol=tol, scaling=scaling: sinkhorn(None, None, C, eps, tol=tol,
                                                               eps_scaling=scaling).cost, args.repeat)
    for eps, tol, scaling in args.divergence_grid:
        add(f"otmetrics sinkhorn_divergence, eps={eps:g}, tol={tol:g}, eps_scaling={scaling}",
            lambda eps=eps, tol=tol, scaling=scaling: sinkhorn_divergence(x, y, eps, tol=tol,
                                                                          eps_scaling=scaling), args.repeat)
    table(["estimator of W2^2", "time", "mean rel. error", "max rel. error"], rows)


# ------------------------------------------------------------------------------------------------
# 3. online memory and time per iteration
# ------------------------------------------------------------------------------------------------
_ONLINE_CHILD = textwrap.dedent("""
    import json, resource, sys, time, warnings
    import torch
    sys.path.insert(0, {root!r})
    import otmetrics
    threads = {threads}
    if threads:
        torch.set_num_threads(threads)
    device = torch.device({device!r})
    dtype = getattr(torch, {dtype!r})
    gen = torch.Generator().manual_seed(0)
    n = {n}
    x = torch.randn(n, 3, generator=gen).to(device, dtype)
    y = (torch.randn(n, 3, generator=gen) + 1).to(device, dtype)
    warnings.simplefilter("ignore")
    small = otmetrics.PointCloud(x[:200], y[:200], online=True)
    otmetrics.sinkhorn(None, None, small, 1.0, max_iter=2)     # load kernels, warm the allocator
    if device.type == "cuda":
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        gpu_before = torch.cuda.memory_allocated()
    def status_kb(key):
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith(key))
    rss_before = status_kb("VmRSS:")
    # reset the peak (VmHWM) to the current RSS: ru_maxrss would carry the parent's peak over
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    geom = otmetrics.PointCloud(x, y, online=True)
    times = []
    for iters in ({i1}, {i2}):
        if device.type == "cuda": torch.cuda.synchronize()
        t = time.perf_counter()
        res = otmetrics.sinkhorn(None, None, geom, {eps}, tol=1e-30, max_iter=iters)
        float(res.cost)
        if device.type == "cuda": torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    rss_after = status_kb("VmHWM:")
    out = dict(rss_extra_mb=max(0, rss_after - rss_before) / 1024, rss_peak_mb=rss_after / 1024,
               per_iter=(times[1] - times[0]) / ({i2} - {i1}),
               total=times[1], finite=bool(torch.isfinite(res.cost)))
    if device.type == "cuda":
        out["gpu_extra_mb"] = (torch.cuda.max_memory_allocated() - gpu_before) / 2**20
    print("RESULT", json.dumps(out))
""")


def online_run(n, device, dtype, threads, eps, i1=1, i2=3):
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    code = _ONLINE_CHILD.format(root=root, threads=threads or 0, device=str(device),
                                dtype=str(dtype).split(".")[1], n=n, i1=i1, i2=i2, eps=eps)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    line = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT")][-1]
    return json.loads(line.split(" ", 1)[1])


def section_online(args, device):
    dtype = torch.float32
    n = args.online_n
    print(f"## 3. Online point cloud: n=m={n}, 3-D, {dtype}, {device} (fresh subprocess)\n")
    r = online_run(n, device, dtype, args.threads, eps=1.0)
    dense_mb = n * n * 4 / 2**20
    rows = [[f"n=m={n}", f"{r['rss_extra_mb']:.0f} MB", f"{dense_mb:.0f} MB", fmt(r["per_iter"]),
             str(r["finite"])]]
    if "gpu_extra_mb" in r:
        rows[0].insert(2, f"{r['gpu_extra_mb']:.0f} MB")
    header = ["problem", "extra host memory (peak RSS - RSS before)", "dense float32 cost would take",
              "time per iteration", "finite"]
    if "gpu_extra_mb" in r:
        header.insert(2, "peak extra GPU memory")
    if device.type == "cuda" and args.online_n_gpu:
        r2 = online_run(args.online_n_gpu, device, dtype, args.threads, eps=1.0)
        rows.append([f"n=m={args.online_n_gpu}", f"{r2['rss_extra_mb']:.0f} MB",
                     f"{r2['gpu_extra_mb']:.0f} MB",
                     f"{args.online_n_gpu ** 2 * 4 / 2**20:.0f} MB", fmt(r2["per_iter"]), str(r2["finite"])])
    table(header, rows)


# ------------------------------------------------------------------------------------------------
# 4. GPU bandwidth of the dense iteration
# ------------------------------------------------------------------------------------------------
_NOMINAL_BANDWIDTH = {"H100 SXM": 3.35e12, "H100 NVL": 3.9e12, "H100 PCIe": 2.0e12, "H100": 3.35e12,
                      "H200": 4.8e12, "A100-SXM4-80GB": 2.04e12, "A100": 1.56e12}


def nominal_bandwidth(name):
    for key, value in _NOMINAL_BANDWIDTH.items():
        if all(part in name for part in key.split()):
            return key, value
    return None, None


def copy_bandwidth(device, numel=2**28):
    """Measured device-to-device copy bandwidth (read + write), bytes/s."""
    x = torch.empty(numel, dtype=torch.float32, device=device)
    y = torch.empty_like(x)
    y.copy_(x)
    sync(device)
    start = time.perf_counter()
    for _ in range(10):
        y.copy_(x)
    sync(device)
    return 2 * x.numel() * 4 * 10 / (time.perf_counter() - start)


def dense_iteration_time(B, n, device, dtype, eps=0.1, i1=20, i2=220):
    x, y = gaussians(B, n, 2, 1, device, dtype)
    C = cost_matrix(x, y, p=2)
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for iters in (i1, i2):
            t, res = timed(lambda: sinkhorn(None, None, C, eps, tol=1e-30, max_iter=iters), device)
            times.append(t)
    return (times[1] - times[0]) / (i2 - i1)


def section_bandwidth(args, device, sizes=((16, 512), (16, 2048), (16, 4096), (4, 8192))):
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    key, peak = nominal_bandwidth(name)
    measured = copy_bandwidth(device, 2**28 if device.type == "cuda" else 2**24)
    print(f"## 4. Dense iteration on {name}: memory bandwidth\n")
    print((f"nominal peak: {peak / 1e12:.2f} TB/s ({key})" if peak else "nominal peak: unknown device")
          + f"; measured copy bandwidth: {measured / 1e12:.3f} TB/s\n")
    rows = []
    for B, n in sizes:
        for dtype in (torch.float32, torch.float64):
            per_iter = dense_iteration_time(B, n, device, dtype)
            moved = 2 * B * n * n * (4 if dtype == torch.float32 else 8)  # two reads of the kernel
            bw = moved / per_iter
            rows.append([f"B={B}, n=m={n}", str(dtype).split(".")[1], f"{per_iter * 1e6:.1f} us",
                         f"{bw / 1e12:.2f} TB/s", f"{bw / peak:.0%}" if peak else "?",
                         f"{bw / measured:.0%}"])
    table(["problem", "dtype", "time per iteration", "kernel bytes / time", "of nominal peak",
           "of measured copy"], rows)


# ------------------------------------------------------------------------------------------------
def parse_grid(text):
    out = []
    for item in text.split(";"):
        if not item.strip():
            continue
        eps, tol, scaling = item.split(",")
        scaling = None if scaling.strip() in ("", "none", "None") else float(scaling)
        out.append((float(eps), float(tol), scaling))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test that runs everything")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("-n", type=int, default=512)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--pot-problems", type=int, default=None,
                        help="time POT on this many problems and scale (default: all)")
    parser.add_argument("--online-n", type=int, default=20_000)
    parser.add_argument("--online-n-gpu", type=int, default=100_000)
    parser.add_argument("--accuracy-grid",
                        default="0.1,1e-6,none;0.02,1e-4,0.5;0.005,1e-3,0.5;0.005,1e-5,0.5",
                        help="eps,tol,eps_scaling;... for sinkhorn(...).cost")
    parser.add_argument("--divergence-grid", default="0.005,1e-3,0.5;0.02,1e-4,0.5",
                        help="eps,tol,eps_scaling;... for sinkhorn_divergence")
    parser.add_argument("--sections", default="1,2,3,4")
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.n, args.repeat = 4, 64, 1
        args.online_n, args.online_n_gpu = 2000, 5000
        args.accuracy_grid = "0.1,1e-6,none;0.02,1e-4,0.5"
        args.divergence_grid = "0.02,1e-4,0.5"
    args.pot_problems = args.pot_problems or args.batch
    args.accuracy_grid = parse_grid(args.accuracy_grid)
    args.divergence_grid = parse_grid(args.divergence_grid)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    sections = {int(s) for s in args.sections.split(",")}

    print(f"# bench_sinkhorn: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"POT {getattr(ot, '__version__', 'absent')}, "
          f"GeomLoss {getattr(geomloss, '__version__', 'absent')}, "
          f"load average {os.getloadavg()[0]:.1f}" + (f", {torch.cuda.get_device_name(device)}"
                                                      if device.type == "cuda" else "") + "\n")
    if 1 in sections:
        section_batch(args, device, dtype)
    if 2 in sections:
        section_accuracy(args, device, dtype)
    if 3 in sections:
        section_online(args, device)
    if 4 in sections and (device.type == "cuda" or args.quick):
        section_bandwidth(args, device, sizes=((16, 512), (16, 2048), (16, 4096), (4, 8192)) if not args.quick
                          else ((4, 128),))
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
