"""Sinkhorn benchmark: otmetrics.sinkhorn against POT, GeomLoss and the exact LP, side by side in one process.

Sections (each prints a markdown table; ratios are "their time / our time"; ``--threads 1`` for the
single-thread figures of the issue):

1. **Batch against POT**: ``B`` problems of ``n x n`` points from 2-D Gaussians, ``eps``, ``tol`` (default 16,
   512, 0.1, 1e-6), on the benchmark's draw (seed 0) and a harder one (seed 6, plain iterations up to ~3,200
   per problem): otmetrics (defaults, and the plain loop as on 0.2's main: ``acceleration=None,
   eps_scaling=None``) against a loop over POT's ``ot.sinkhorn2`` on torch tensors and on numpy arrays, with
   its default method (``sinkhorn``, Sinkhorn-Knopp on the kernel) and ``sinkhorn_log``. POT is held to the
   same stopping criterion: its rule (the 2-norm of one marginal's error ``< stopThr``, checked every 10
   iterations; the other marginal is exact) is run with the loosest ``stopThr`` in ``tol, tol/4, tol/16, ...``
   whose plan meets the same L1 tolerance as ours (``|P1 - a|_1 + |P^T 1 - b|_1 <= tol``), found
   per problem in an untimed run; only the final run is timed.
2. **Iterations at small eps**: 150-point 2-D clouds, ``eps = 0.02``, ``tol = 1e-6``, 10 seeds: iterations of
   the plain loop against the defaults (and over-relaxation alone), median ratio, and runs that hit
   ``max_iter``.
3. **Time to accuracy for W2^2**: a 4-blob mixture against a noisy ring, ``n = 1,500`` points each: the exact
   value (network simplex), GeomLoss's tensorized ``SamplesLoss`` on its ``blur``/``scaling`` grid (up to
   0.99), POT's ``sinkhorn2`` (log domain, torch) and otmetrics' ``sinkhorn(...).cost`` on an ``(eps, tol)``
   grid: relative error against seconds, the frontier comparison (at each error GeomLoss reaches, our
   fastest run at least as accurate) and the time to ``1e-4``. ``--plot PATH`` draws the curves.
4. **Where the exact LP wins**: the same distributions for ``n`` from 250 to 4,000: the network simplex
   against our fastest run reaching relative errors 1e-2 and 1e-3.
5. **Online point clouds**: peak extra memory (resident set, measured in a subprocess) and time per iteration,
   ``n = m = 20,000`` points in 3-D, float32 (``--online-n``).
6. **Sharded over 2 gloo processes** (``process_group=``): equality with one process (converged, float64) and
   peak memory per rank against one process, ``--sharded-n`` points in 3-D.
7. With ``--device cuda``: section 1 on the GPU, the dense iteration's time and the fraction of the GPU's
   memory bandwidth it reaches, and ``n = m = 10^5`` online.

Usage::

    python benchmarks/bench_sinkhorn.py --threads 1                # CPU, everything (tens of minutes)
    python benchmarks/bench_sinkhorn.py --quick                    # small sizes: a smoke test
    python benchmarks/bench_sinkhorn.py --sections 3 --threads 1 \
        --plot docs/img/sinkhorn_time_to_accuracy.png
    python benchmarks/bench_sinkhorn.py --device cuda --sections 1,5,7

POT and GeomLoss are optional: their rows are skipped when they are not installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings

if "--threads" in sys.argv:  # numpy's BLAS (POT on numpy arrays) gets the same number of threads
    _threads = sys.argv[sys.argv.index("--threads") + 1]
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import otmetrics  # noqa: E402
from otmetrics import ConvergenceWarning, PointCloud, cost_matrix, sinkhorn  # noqa: E402

try:
    import ot
except ImportError:  # POT is optional here
    ot = None
try:
    import geomloss
except ImportError:
    geomloss = None

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
PLAIN = dict(acceleration=None, eps_scaling=None)  # the loop of otmetrics 0.2 (main before issue 11)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


#: The clock of :func:`timed`: the process's CPU time with one thread (robust to other jobs on a shared
#: machine, which stretch wall times), wall time otherwise (set in ``main``).
CLOCK = time.perf_counter


def timed(fn, device, repeat=1):
    """(best time over ``repeat`` runs by :data:`CLOCK`, last result)."""
    best, out = float("inf"), None
    for _ in range(repeat):
        sync(device)
        start = CLOCK()
        out = fn()
        sync(device)
        best = min(best, CLOCK() - start)
    return best, out


def gaussians(batch, n, dim, seed, device, dtype):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, dim, generator=gen, dtype=torch.float64)
    y = torch.randn(batch, n, dim, generator=gen, dtype=torch.float64) * 0.6 + 1.0
    return x.to(device, dtype), y.to(device, dtype)


def blobs_and_ring(n, seed=0):
    """A mixture of 4 Gaussian blobs and a noisy ring of radius 3 (``n`` points each, 2-D, float64)."""
    rng = np.random.default_rng(seed)
    centres = np.array([[-2.0, -2.0], [-2.0, 2.0], [2.0, -2.0], [2.0, 2.0]])
    x = centres[rng.integers(0, 4, n)] + 0.4 * rng.normal(size=(n, 2))
    theta = rng.uniform(0, 2 * np.pi, n)
    y = 3.0 * np.stack([np.cos(theta), np.sin(theta)], 1) + 0.2 * rng.normal(size=(n, 2))
    return torch.as_tensor(x), torch.as_tensor(y)


def marginal_error(plan, a, b):
    return float(np.abs(plan.sum(1) - a).sum() + np.abs(plan.sum(0) - b).sum())


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    print("\n".join(lines) + "\n", flush=True)


def fmt(t):
    return f"{t * 1e3:.1f} ms" if t < 1 else f"{t:.2f} s"


@contextlib.contextmanager
def quiet():
    """Ignore warnings (the anchors' convergence notices) inside the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# ------------------------------------------------------------------------------------------------
# 1. the batch against POT
# ------------------------------------------------------------------------------------------------
def pot_stop(a, b, C, eps, tol, method):
    """The loosest stopThr in tol * 4^-k for which POT's plan meets the L1 tolerance, and its iterations."""
    stop = tol
    for _ in range(14):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan, log = ot.sinkhorn(a, b, C, eps, method=method, stopThr=stop, numItermax=1_000_000, log=True)
        plan = plan.cpu().numpy() if torch.is_tensor(plan) else plan
        a_np = a.cpu().numpy() if torch.is_tensor(a) else a
        if marginal_error(plan, a_np, a_np) <= tol:
            return stop, int(log["niter"])
        stop /= 4
    return stop, int(log["niter"])


def pot_loop(C, eps, tol, backend, method, problems):
    """Seconds for POT's ``sinkhorn2`` over ``problems`` problems of the batch ``C`` (held to ``tol``)."""
    n = C.shape[-1]
    total, iters = 0.0, []
    for k in range(problems):
        Ck = C[k].double().cpu()
        w = torch.full((n,), 1.0 / n, dtype=torch.float64)
        if backend == "numpy":
            Ck, w = Ck.numpy(), w.numpy()
        stop, it = pot_stop(w, w, Ck, eps, tol, method)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = CLOCK()
            ot.sinkhorn2(w, w, Ck, eps, method=method, stopThr=stop, numItermax=1_000_000)
            total += CLOCK() - start
        iters.append(it)
    return total, np.array(iters)


def section_batch(args, device, dtype):
    B, n, eps, tol = args.batch, args.n, args.eps, args.tol
    for seed in args.draws:
        x, y = gaussians(B, n, 2, seed, device, dtype)
        C = cost_matrix(x, y, p=2)
        print(f"## 1. Batch against POT: B={B}, n=m={n}, 2-D Gaussians (seed {seed}), eps={eps}, tol={tol} "
              f"(L1 marginal error), {dtype}, {device}, {torch.get_num_threads()} thread(s)\n")
        rows = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t_ours, res = timed(lambda: sinkhorn(None, None, C, eps, tol=tol, max_iter=args.max_iter), device,
                                repeat=args.repeat)
            t_plain, plain = timed(lambda: sinkhorn(None, None, C, eps, tol=tol, max_iter=args.max_iter,
                                                    **PLAIN), device, repeat=args.repeat)
        for name, t, r in (("otmetrics.sinkhorn (defaults)", t_ours, res),
                           ("otmetrics, plain loop (acceleration=None, eps_scaling=None)", t_plain, plain)):
            it = np.atleast_1d(r.n_iter)
            flag = "" if np.all(r.converged) else f" ({int(np.sum(~np.atleast_1d(r.converged)))} at max_iter)"
            rows.append([name, fmt(t), f"{t / t_ours:.1f}x", f"{it.min()}-{it.max()} (mean {it.mean():.0f})",
                         f"{np.max(r.marginal_error):.2g}{flag}"])
        if ot is not None and device.type == "cpu":
            for backend, method, k in (("torch", "sinkhorn", B),
                                       ("numpy", "sinkhorn", args.pot_numpy_problems),
                                       ("torch", "sinkhorn_log", args.pot_log_problems),
                                       ("numpy", "sinkhorn_log", args.pot_log_problems)):
                k = min(B, k)
                if k <= 0:
                    continue
                t_pot, iters = pot_loop(C, eps, tol, backend, method, k)
                t_pot *= B / k
                note = "" if k == B else f" (timed on {k} problems, x{B / k:g})"
                rows.append([f"loop over POT ot.sinkhorn2({backend}, method={method!r}){note}", fmt(t_pot),
                             f"**{t_pot / t_ours:.1f}x**",
                             f"{iters.min()}-{iters.max()} (mean {iters.mean():.0f})",
                             "<= tol (stopThr tuned)"])
        table(["solver", "time", "time / ours", "iterations per problem", "max L1 marginal error"], rows)


# ------------------------------------------------------------------------------------------------
# 2. iterations at small eps
# ------------------------------------------------------------------------------------------------
def section_iterations(args):
    n, eps, tol = 150, 0.02, 1e-6
    print(f"## 2. Iterations to tol={tol} at eps={eps}: {n}-point 2-D clouds (x ~ N(0, I), "
          f"y ~ 0.6 N(0, I) + 1), uniform weights, float64\n")
    rows, plain_its, ours_its, sor_its, stuck = [], [], [], [], 0
    for seed in range(args.seeds):
        x, y = gaussians(1, n, 2, seed, torch.device("cpu"), torch.float64)
        C = cost_matrix(x[0], y[0], p=2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            plain = sinkhorn(None, None, C, eps, tol=tol, max_iter=args.max_iter, **PLAIN)
            t0 = time.perf_counter()
            ours = sinkhorn(None, None, C, eps, tol=tol, max_iter=args.max_iter)
            t_ours = time.perf_counter() - t0
            sor = sinkhorn(None, None, C, eps, tol=tol, max_iter=args.max_iter, eps_scaling=None)
        stuck += int(plain.converged and not (ours.converged and sor.converged))
        plain_its.append(plain.n_iter)
        ours_its.append(ours.n_iter)
        sor_its.append(sor.n_iter)
        rows.append([seed, f"{plain.n_iter}{'' if plain.converged else ' (max_iter)'}", ours.n_iter,
                     f"{plain.n_iter / ours.n_iter:.1f}x", sor.n_iter, f"{plain.n_iter / sor.n_iter:.1f}x",
                     fmt(t_ours)])
    table(["seed", "plain loop", "defaults", "ratio", "over-relaxation only (eps_scaling=None)", "ratio",
           "time (defaults)"], rows)
    med = np.median(plain_its)
    print(f"median iterations: plain {med:.0f}, defaults {np.median(ours_its):.0f} "
          f"(**{med / np.median(ours_its):.1f}x fewer**), over-relaxation only {np.median(sor_its):.0f} "
          f"({med / np.median(sor_its):.1f}x); runs that converge plain but not accelerated: {stuck}\n")


# ------------------------------------------------------------------------------------------------
# 3. time to accuracy for W2^2
# ------------------------------------------------------------------------------------------------
def _ours_run(x, y, eps, tol, repeat=1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t, res = timed(lambda: sinkhorn(None, None, PointCloud(x, y), eps, tol=tol, max_iter=200_000),
                       torch.device("cpu"), repeat=repeat)
    return t, float(res.cost), res


def section_time_to_accuracy(args):
    n = args.w2_n
    x, y = blobs_and_ring(n)
    print(f"## 3. Time to accuracy for W2^2: 4 Gaussian blobs against a noisy ring, n=m={n}, 2-D, float64, "
          f"{torch.get_num_threads()} thread(s)\n")
    with quiet():
        backend = "network_simplex" if ot is not None else "highs"
        t_exact, exact = timed(lambda: otmetrics.emd(None, None, PointCloud(x, y, p=2), backend=backend),
                               torch.device("cpu"))
    W = float(exact.cost)
    print(f"exact W2^2 = {W:.10f} (otmetrics.emd, {backend}, from the points): {fmt(t_exact)}\n")
    curves = {"otmetrics": [], "GeomLoss": [], "POT": []}
    rows = []
    for eps in args.w2_eps:
        for tol in args.w2_tol:
            t, value, res = _ours_run(x, y, eps, tol, args.repeat)
            err = abs(value / W - 1)
            curves["otmetrics"].append((t, err))
            rows.append([f"otmetrics sinkhorn(...).cost, eps={eps:g}, tol={tol:g}", fmt(t), f"{err:.2e}",
                         f"{res.n_iter} iterations" + ("" if res.converged else " (max_iter)")])
    if geomloss is not None:
        for blur in args.geomloss_blur:
            for scaling in args.geomloss_scaling:
                loss = geomloss.SamplesLoss("sinkhorn", p=2, blur=blur, scaling=scaling, backend="tensorized")
                t, value = timed(lambda loss=loss: 2 * float(loss(x, y)), torch.device("cpu"))
                err = abs(value / W - 1)
                curves["GeomLoss"].append((t, err))
                rows.append([f"GeomLoss SamplesLoss(blur={blur:g}, scaling={scaling:g}), x2", fmt(t),
                             f"{err:.2e}", f"eps = 2 blur^2 = {2 * blur ** 2:.2g}, debiased"])
    if ot is not None:
        a = torch.full((n,), 1.0 / n, dtype=torch.float64)
        for reg in args.pot_reg:
            for stop in (1e-3 / n ** 0.5, 1e-5 / n ** 0.5):
                def run(reg=reg, stop=stop):
                    M = cost_matrix(x, y, p=2)
                    return float(ot.sinkhorn2(a, a, M, reg, method="sinkhorn_log", stopThr=stop,
                                              numItermax=args.pot_max_iter))
                with quiet():
                    t, value = timed(run, torch.device("cpu"))
                err = abs(value / W - 1)
                curves["POT"].append((t, err))
                rows.append([f"POT sinkhorn2(torch, sinkhorn_log), reg={reg:g}, stopThr={stop:.1g}", fmt(t),
                             f"{err:.2e}", f"numItermax={args.pot_max_iter}"])
    table(["estimator of W2^2", "time", "relative error", "notes"], rows)

    ours = sorted(curves["otmetrics"])
    compare = []
    for t_g, e_g in sorted(curves["GeomLoss"]):
        faster = [t for t, e in ours if e <= e_g]
        best = min(faster) if faster else float("nan")
        compare.append([f"{e_g:.2e}", fmt(t_g), fmt(best) if faster else "not reached",
                        f"**{t_g / best:.0f}x**" if faster else "-"])
    if compare:
        print("At each relative error GeomLoss reaches, our fastest run at least as accurate:\n")
        table(["GeomLoss relative error", "GeomLoss time", "otmetrics time", "GeomLoss time / ours"], compare)
    hit = [t for t, e in ours if e <= 1e-4]
    print(f"relative error <= 1e-4: otmetrics in {fmt(min(hit)) if hit else 'not reached'}; exact LP "
          f"{fmt(t_exact)}\n")
    if args.plot:
        plot_curves(curves, t_exact, args.plot, n)


def _frontier(points):
    out, best = [], float("inf")
    for t, e in sorted(points):
        if e < best:
            out.append((t, e))
            best = e
    return out


def plot_curves(curves, t_exact, path, n):
    sys.path.insert(0, os.path.join(ROOT, "docs", "figures"))
    from _style import ACCENT, GREY, SOURCE, TARGET, pyplot

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, colour, marker in (("otmetrics", SOURCE, "o"), ("GeomLoss", TARGET, "s"), ("POT", ACCENT, "^")):
        pts = curves[name]
        if not pts:
            continue
        t, e = np.array(pts).T
        ax.scatter(t, np.maximum(e, 1e-9), s=14, color=colour, marker=marker, alpha=0.45)
        ft, fe = np.array(_frontier(pts)).T
        ax.step(ft, np.maximum(fe, 1e-9), where="post", color=colour, label=name)
    ax.axvline(t_exact, color=GREY, ls="--", lw=1, label="exact LP (network simplex)")
    ax.set(xscale="log", yscale="log", xlabel="seconds (one thread)", ylabel="relative error of W2^2",
           title=f"Time to accuracy: 4 blobs against a noisy ring, n = {n}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"(plot written to {path})\n")


# ------------------------------------------------------------------------------------------------
# 4. where the exact LP wins
# ------------------------------------------------------------------------------------------------
#: (eps, tol) tried in this order (increasing accuracy and cost) until a target error is met.
_LADDER = ((0.1, 1e-3), (0.03, 1e-3), (0.01, 1e-4), (3e-3, 1e-4), (1e-3, 1e-5), (5e-4, 1e-5), (3e-4, 1e-6))


def section_crossover(args):
    print("## 4. Exact LP against Sinkhorn on the CPU: the same blobs and ring, n points each, "
          f"{torch.get_num_threads()} thread(s)\n")
    rows = []
    for n in args.crossover_n:
        x, y = blobs_and_ring(n, seed=n)
        with quiet():
            t_exact, exact = timed(lambda: otmetrics.emd(None, None, PointCloud(x, y, p=2),
                                                         backend="network_simplex"), torch.device("cpu"))
        W = float(exact.cost)
        row = [n, fmt(t_exact)]
        for target in (1e-2, 1e-3):
            found = None
            for eps, tol in _LADDER:
                t, value, _ = _ours_run(x, y, eps, tol)
                if abs(value / W - 1) <= target:
                    found = (t, eps, tol)
                    break
            row.append(f"{fmt(found[0])} (eps={found[1]:g}, tol={found[2]:g})" if found else "not reached")
            row.append(f"{t_exact / found[0]:.2f}" if found else "-")
        rows.append(row)
    table(["n", "exact LP", "Sinkhorn to 1e-2", "LP time / Sinkhorn time", "Sinkhorn to 1e-3",
           "LP time / Sinkhorn time"], rows)


# ------------------------------------------------------------------------------------------------
# 5. online memory and time per iteration
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
    print(f"## 5. Online point cloud: n=m={n}, 3-D, {dtype}, {device} (fresh subprocess)\n")
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
# 6. sharded over gloo processes
# ------------------------------------------------------------------------------------------------
_SHARDED_CHILD = textwrap.dedent("""
    import json, sys, time, warnings
    import torch
    sys.path.insert(0, {root!r})
    import otmetrics
    rank, world, port, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    torch.set_num_threads(1)
    group = None
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{{port}}", rank=rank, world_size=world)
        group = dist.group.WORLD
    gen = torch.Generator().manual_seed(0)
    n = {n}
    x = torch.randn(n, 3, generator=gen, dtype=torch.float64)
    y = torch.randn(n, 3, generator=gen, dtype=torch.float64) + 1.0
    rows = slice(rank * n // world, (rank + 1) * n // world)
    warnings.simplefilter("ignore")
    small = otmetrics.PointCloud(x[:50], y[:50], online=True)
    otmetrics.sinkhorn(None, None, small, 1.0, max_iter=2)  # load kernels, warm the allocator
    def status_kb(key):
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith(key))
    before = status_kb("VmRSS:")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    t = time.perf_counter()
    res = otmetrics.sinkhorn(None, None, otmetrics.PointCloud(x[rows], y, online=True), {eps}, tol={tol},
                             max_iter={max_iter}, process_group=group)
    elapsed = time.perf_counter() - t
    extra = (status_kb("VmHWM:") - before) / 1024
    with open(out, "w") as fh:
        json.dump(dict(cost=float(res.cost), f=res.potentials[0].tolist(), g=res.potentials[1].tolist(),
                       n_iter=int(res.n_iter), error=float(res.marginal_error), rss_extra_mb=extra,
                       seconds=elapsed), fh)
    if group is not None:
        dist.barrier()
        dist.destroy_process_group()
    import os
    os._exit(0)
""")


def sharded_run(n, world, eps, tol, max_iter):
    code = _SHARDED_CHILD.format(root=ROOT, n=n, eps=eps, tol=tol, max_iter=max_iter)
    with tempfile.TemporaryDirectory() as tmp:
        script = os.path.join(tmp, "child.py")
        with open(script, "w") as fh:
            fh.write(code)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = str(s.getsockname()[1])
        env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": "1"}
        outs = [os.path.join(tmp, f"out{r}.json") for r in range(world)]
        procs = [subprocess.Popen([sys.executable, script, str(r), str(world), port, outs[r]], env=env,
                                  stderr=subprocess.PIPE, text=True) for r in range(world)]
        for p in procs:
            _, err = p.communicate(timeout=3600)
            if p.returncode != 0:
                raise RuntimeError(err[-3000:])
        return [json.load(open(path)) for path in outs]


def section_sharded(args):
    print("## 6. Sharded over 2 gloo processes (process_group=, online, float64, 3-D), 1 thread per rank\n")
    rows = []
    runs = ((args.sharded_n_equal, 1.0, 1e-10, 10_000), (args.sharded_n, 1.0, 1e-30, 3))
    for n, eps, tol, max_iter in runs:
        one = sharded_run(n, 1, eps, tol, max_iter)[0]
        two = sharded_run(n, 2, eps, tol, max_iter)
        f = np.concatenate([r["f"] for r in two])
        df = float(np.abs(f - np.array(one["f"])).max())
        dg = max(float(np.abs(np.array(r["g"]) - np.array(one["g"])).max()) for r in two)
        dc = max(abs(r["cost"] - one["cost"]) / abs(one["cost"]) for r in two)
        points_mb = (n // 2 + n) * 3 * 8 / 2**20
        what = f"to tol={tol:g}" if max_iter > 3 else f"{max_iter} iterations"
        rows.append([f"n=m={n}, {what}",
                     f"{one['n_iter']} / {two[0]['n_iter']}", f"{dc:.1e}", f"{df:.1e} / {dg:.1e}",
                     f"{one['rss_extra_mb']:.0f} MB", " / ".join(f"{r['rss_extra_mb']:.0f} MB" for r in two),
                     f"{points_mb:.1f} MB", f"{fmt(one['seconds'])} / {fmt(max(r['seconds'] for r in two))}"])
    table(["problem", "iterations (1 / 2 processes)", "relative cost difference", "max |f| / |g| difference",
           "extra memory, 1 process", "extra memory per rank", "points per rank (n/2 + m) d",
           "time (1 / 2 processes)"], rows)


# ------------------------------------------------------------------------------------------------
# 7. GPU bandwidth of the dense iteration
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
    print(f"## 7. Dense iteration on {name}: memory bandwidth\n")
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
def floats(text):
    return [float(v) for v in text.split(",") if v.strip()]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test that runs everything")
    parser.add_argument("--sections", default="1,2,3,4,5,6,7")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs (sections 1, 3)")
    parser.add_argument("--clock", default="auto", choices=["auto", "cpu", "wall"],
                        help="auto: CPU seconds of the process with --threads 1 on the CPU, else wall")
    # 1
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("-n", type=int, default=512)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--draws", default="0,6", help="seeds of the batch (0: the usual draw; 6: harder)")
    parser.add_argument("--pot-numpy-problems", type=int, default=16, help="POT on numpy: time this many")
    parser.add_argument("--pot-log-problems", type=int, default=4, help="POT sinkhorn_log: time this many")
    # 2
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--max-iter", type=int, default=100_000)
    # 3
    parser.add_argument("--w2-n", type=int, default=1500)
    parser.add_argument("--w2-eps", default="0.3,0.1,0.05,0.03,0.02,0.01,0.005,0.003,0.001,0.0005,0.0003")
    parser.add_argument("--w2-tol", default="1e-2,1e-3,1e-4,1e-5,1e-6")
    parser.add_argument("--geomloss-blur", default="0.1,0.05,0.02,0.01")
    parser.add_argument("--geomloss-scaling", default="0.5,0.7,0.9,0.95,0.99")
    parser.add_argument("--pot-reg", default="0.3,0.1,0.03")
    parser.add_argument("--pot-max-iter", type=int, default=20_000)
    parser.add_argument("--plot", default=None, help="write the time-to-accuracy plot to this PNG")
    # 4
    parser.add_argument("--crossover-n", default="250,500,1000,2000,4000")
    # 5, 6
    parser.add_argument("--online-n", type=int, default=20_000)
    parser.add_argument("--online-n-gpu", type=int, default=100_000)
    parser.add_argument("--sharded-n", type=int, default=20_000)
    parser.add_argument("--sharded-n-equal", type=int, default=2_000)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch, args.n, args.repeat, args.seeds = 4, 64, 1, 2
        args.pot_numpy_problems = args.pot_log_problems = 1
        args.w2_n, args.w2_eps, args.w2_tol = 300, "0.1,0.01", "1e-4"
        args.geomloss_blur, args.geomloss_scaling, args.pot_reg = "0.1", "0.5,0.9", "0.1"
        args.crossover_n = "200,400"
        args.online_n, args.online_n_gpu, args.sharded_n, args.sharded_n_equal = 2000, 5000, 2000, 300
    args.draws = [int(v) for v in args.draws.split(",")]
    args.w2_eps, args.w2_tol = floats(args.w2_eps), floats(args.w2_tol)
    args.geomloss_blur, args.geomloss_scaling = floats(args.geomloss_blur), floats(args.geomloss_scaling)
    args.pot_reg = floats(args.pot_reg)
    args.crossover_n = [int(v) for v in floats(args.crossover_n)]
    global CLOCK
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu" or (args.clock == "auto" and args.threads == 1 and args.device == "cpu"):
        CLOCK = time.process_time
    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)
    sections = {int(s) for s in args.sections.split(",")}

    print(f"# bench_sinkhorn: clock {'CPU time of the process' if CLOCK is time.process_time else 'wall'}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"POT {getattr(ot, '__version__', 'absent')}, "
          f"GeomLoss {getattr(geomloss, '__version__', 'absent')}, "
          f"load average {os.getloadavg()[0]:.1f}" + (f", {torch.cuda.get_device_name(device)}"
                                                      if device.type == "cuda" else "") + "\n")
    if 1 in sections:
        section_batch(args, device, dtype)
    if device.type == "cpu":
        if 2 in sections:
            section_iterations(args)
        if 3 in sections:
            section_time_to_accuracy(args)
        if 4 in sections:
            section_crossover(args)
    if 5 in sections:
        section_online(args, device)
    if 6 in sections and device.type == "cpu" and torch.distributed.is_available():
        section_sharded(args)
    if 7 in sections and (device.type == "cuda" or args.quick):
        section_bandwidth(args, device, sizes=((16, 512), (16, 2048), (16, 4096), (4, 8192)) if not args.quick
                          else ((4, 128),))
    print(f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
