"""The GPU run (issue 13): environment, CUDA tests, Sinkhorn, features, exact EMD, in one report.

    bash benchmarks/gpu.sh OUT                          # on the GPU machine: installs .whl/, then this
    python benchmarks/bench_gpu.py --out OUT            # the same without the installation
    python benchmarks/bench_gpu.py --dry-run --out OUT  # tiny sizes on the CPU: checks the script (< 1 min)
    python benchmarks/bench_gpu.py --sections dense,emd --out OUT   # some sections only

Sections, in this order (each one is timed, and a section that fails is recorded and skipped, so
that one failure does not lose the rest of a short GPU session):

- ``env``: device, driver (nvidia-smi), torch / CUDA / cuDNN / triton versions, TF32 settings, anchors;
- ``cuda-tests``: ``pytest -m cuda`` (log in ``pytest-cuda.log``);
- ``dense``: Sinkhorn's dense batched loop (B = 16, n = m = 4096), float32 and float64: time per
  iteration (difference of two runs with fixed iteration counts) and the fraction of the memory bandwidth
  it reaches (two reads of the ``B x n x m`` kernel per iteration) against a device-to-device copy
  measured in the same run and the nominal peak;
- ``online``: online point clouds, n = m = 100,000 in 3-D and 64-D, float32: time per iteration and peak
  extra device memory, beside flash-sinkhorn's alternating solver at the same size (if it imports);
- ``geomloss``: time-to-accuracy of the dense batch against GeomLoss tensorized (and KeOps online if
  pykeops imports) at equal eps and equal iterations, errors against a float64 reference at that eps;
- ``flash``: flash-sinkhorn's own benchmark setting (d = 64, eps = 0.1, 100 iterations, n = 10,000 and
  50,000, its data) against otmetrics' online solver and GeomLoss, values compared;
- ``features``: FIDInceptionV3 images/s at batch 256 (float32 with TF32 off, then on) against
  torch-fidelity's InceptionV3 on the same random weights, and the largest feature difference;
- ``emd``: exact EMD on device tensors: results stay on the device, the host round trip timed;
- ``suite``: the whole test suite, ``pytest -n 8`` under a time limit (log in ``pytest-suite.log``).

Anchors (POT, GeomLoss, pykeops, flash-sinkhorn, torch-fidelity) are optional: a missing one gives a
line in the report. The report is ``report.md`` and ``report.json`` in ``--out``, rewritten after each
section (a session cut short keeps what was measured).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
import types
import warnings
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import otmetrics  # noqa: E402
from otmetrics import FIDInceptionV3, PointCloud, cost_matrix, emd, sinkhorn  # noqa: E402

SECTIONS = ("env", "cuda-tests", "dense", "online", "geomloss", "flash", "features", "emd", "suite")

#: Nominal peak memory bandwidth (bytes/s) of common data-centre GPUs, matched on the device name.
NOMINAL_BANDWIDTH = {"H200": 4.8e12, "H100 SXM": 3.35e12, "H100 NVL": 3.9e12, "H100 PCIe": 2.0e12,
                     "H100": 3.35e12, "A100-SXM4-80GB": 2.04e12, "A100": 1.56e12, "L40S": 0.864e12}


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
class Report:
    """Sections of tables and notes, written to ``report.json`` and ``report.md`` after each change."""

    def __init__(self, out: Path, title: str):
        self.out, self.title, self.sections = out, title, {}

    def section(self, name: str, heading: str) -> dict:
        self.sections[name] = {"heading": heading, "tables": [], "notes": [], "data": {}, "status": "running"}
        return self.sections[name]

    def write(self):
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "report.json").write_text(json.dumps({"title": self.title, "sections": self.sections},
                                                         indent=1, default=str))
        lines = [f"# {self.title}", ""]
        for sec in self.sections.values():
            lines += [f"## {sec['heading']} ({sec['status']})", ""]
            for caption, header, rows in sec["tables"]:
                if caption:
                    lines += [f"**{caption}**", ""]
                lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                lines += ["| " + " | ".join(fmt(c) for c in row) + " |" for row in rows]
                lines.append("")
            lines += [f"- {note}" for note in sec["notes"]]
            lines.append("")
        (self.out / "report.md").write_text("\n".join(lines))


def fmt(x) -> str:
    if isinstance(x, float):
        if math.isnan(x) or math.isinf(x):
            return str(x)
        return f"{x:.4g}" if abs(x) >= 1e-3 or x == 0 else f"{x:.2e}"
    return str(x)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn, device, repeat=2, warmup=1):
    """(fastest wall time of ``repeat`` runs after ``warmup`` runs, last result), device synchronised."""
    out = None
    for _ in range(warmup):
        out = fn()
    sync(device)
    best = float("inf")
    for _ in range(repeat):
        sync(device)
        start = time.perf_counter()
        out = fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best, out


def optional(name):
    """The module, or None when it does not import (any error: a broken anchor is a missing one)."""
    try:
        return importlib.import_module(name)
    except Exception:  # noqa: BLE001 (ImportError, but also a CUDA/compiler error at import)
        return None


def version_of(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


@contextlib.contextmanager
def tf32(enabled: bool):
    """TF32 on (cuBLAS and cuDNN) or off (full IEEE float32) for the block, restored afterwards."""
    saved = (torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32)
    torch.set_float32_matmul_precision("high" if enabled else "highest")
    torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cudnn.allow_tf32 = saved[1]


def quiet_sinkhorn(*args, **kwargs):
    """``otmetrics.sinkhorn`` with the ConvergenceWarning of fixed-iteration runs silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", otmetrics.ConvergenceWarning)
        return sinkhorn(*args, **kwargs)


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def host(t):
    return t.detach().to("cpu", torch.float64).numpy() if torch.is_tensor(t) else np.asarray(t, np.float64)


def gaussians(batch, n, dim, seed, device, dtype):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, dim, generator=gen, dtype=torch.float64)
    y = torch.randn(batch, n, dim, generator=gen, dtype=torch.float64) * 0.6 + 1.0
    return x.to(device, dtype), y.to(device, dtype)


# ------------------------------------------------------------------------------------------------
# env
# ------------------------------------------------------------------------------------------------
def section_env(args, rep, device):
    sec = rep.section("env", "Environment")
    smi = "nvidia-smi not found"
    with contextlib.suppress(Exception):
        query = "--query-gpu=name,driver_version,memory.total,clocks.max.memory"
        smi = subprocess.run(["nvidia-smi", query, "--format=csv,noheader"], capture_output=True, text=True,
                             timeout=30).stdout.strip()
    commit = "unknown"
    with contextlib.suppress(Exception):
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip() or "unknown (no .git)"
    info = {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
        or platform.machine(),
        "nvidia-smi (name, driver, memory, max memory clock)": smi,
        "capability": ".".join(map(str, torch.cuda.get_device_capability(device))) if device.type == "cuda"
        else "-",
        "python": platform.python_version(), "cpus": os.cpu_count(),
        "torch": torch.__version__, "CUDA (torch build)": torch.version.cuda,
        "cuDNN": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "float32 matmul precision": torch.get_float32_matmul_precision(),
        "cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "otmetrics commit": commit,
    }
    for dist in ("numpy", "scipy", "triton", "POT", "geomloss", "pykeops", "flash-sinkhorn", "torch-fidelity",
                 "hypothesis", "pytest", "pytest-xdist", "transformers", "torchvision", "dcor"):
        info[dist] = version_of(dist)
    sec["data"] = info
    sec["tables"].append(("", ["item", "value"], [[k, v] for k, v in info.items()]))


# ------------------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------------------
def run_pytest(rep, name, heading, pytest_args, log, timeout):
    sec = rep.section(name, heading)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *pytest_args]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
        text, code = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        text = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        text, code = text + f"\n[killed after {timeout} s]", "timeout"
    seconds = time.perf_counter() - start
    (rep.out / log).write_text(text)
    pattern = r"^=*\s*\d+ (passed|failed|skipped|deselected|errors?|xfailed|xpassed|warnings?)\b.* in [\d.]+s"
    summary = [ln.strip("= ") for ln in text.splitlines() if re.match(pattern, ln)]
    failed = [ln for ln in text.splitlines() if ln.startswith(("FAILED", "ERROR"))]
    sec["data"] = {"command": " ".join(cmd[1:]), "returncode": code, "seconds": seconds,
                   "summary": summary[-1] if summary else (text.strip().splitlines() or [""])[-1],
                   "failed": failed}
    sec["tables"].append(("", ["command", "exit code", "summary", "wall (s)"],
                          [[f"`python {' '.join(cmd[1:])}`", code, sec["data"]["summary"], seconds]]))
    sec["notes"] += failed[:40] or ["no failures or errors"]
    sec["notes"].append(f"full log: {log}")


# ------------------------------------------------------------------------------------------------
# dense batched loop: time per iteration and bandwidth
# ------------------------------------------------------------------------------------------------
def copy_bandwidth(device, numel):
    """Device-to-device copy bandwidth (bytes read + written per second), best of 3 x 10 copies."""
    x = torch.ones(numel, dtype=torch.float32, device=device)
    y = torch.empty_like(x)

    def copies():
        for _ in range(10):
            y.copy_(x)

    seconds, _ = best_time(copies, device, repeat=3)
    return 2 * numel * 4 * 10 / seconds


def nominal_bandwidth(name):
    for key, value in NOMINAL_BANDWIDTH.items():
        if all(part in name for part in key.split()):
            return key, value
    return None, None


def per_iteration(run, device, i1, i2, repeat):
    """Seconds per iteration: the difference of two runs of ``i1`` and ``i2`` iterations (setup cancels)."""
    t1, _ = best_time(lambda: run(i1), device, repeat=repeat)
    t2, res = best_time(lambda: run(i2), device, repeat=repeat, warmup=0)
    return (t2 - t1) / (i2 - i1), res


def section_dense(args, rep, device):
    B, n = args.dense_batch, args.dense_n
    sec = rep.section("dense", f"Sinkhorn, dense batched loop: B = {B}, n = m = {n}")
    name = rep.sections.get("env", {}).get("data", {}).get("device", str(device))
    key, peak = nominal_bandwidth(name) if device.type == "cuda" else (None, None)
    copy = copy_bandwidth(device, args.copy_numel)
    rows = []
    for dtype in (torch.float32, torch.float64):
        x, y = gaussians(B, n, 2, 1, device, dtype)
        C = cost_matrix(x, y, p=2)

        def run(iters):
            return quiet_sinkhorn(None, None, C, 0.1, tol=1e-30, max_iter=iters)

        seconds, res = per_iteration(run, device, args.dense_iters[0], args.dense_iters[1], args.repeat)
        moved = 2 * B * n * n * C.element_size()
        rows.append([str(dtype).split(".")[1], seconds * 1e6, moved / seconds / 1e12,
                     moved / seconds / peak if peak else "-", moved / seconds / copy,
                     bool(torch.isfinite(res.cost).all()), float(np.max(res.marginal_error))])
        sec["data"][str(dtype)] = {"per_iteration_s": seconds, "bytes_per_iteration": moved}
    sec["data"].update(copy_bandwidth_Bps=copy, nominal=key, nominal_Bps=peak)
    sec["tables"].append(("", ["dtype", "time per iteration (us)", "kernel bytes / time (TB/s)",
                               f"of nominal peak ({key or 'unknown'})", "of measured copy", "finite cost",
                               f"marginal error after {args.dense_iters[1]} it."], rows))
    sec["notes"].append(f"measured device-to-device copy: {copy / 1e12:.3f} TB/s (read + write); "
                        f"nominal peak: {peak / 1e12 if peak else float('nan'):.2f} TB/s")
    i1, i2 = args.dense_iters
    sec["notes"].append(f"time per iteration = (t({i2} it.) - t({i1} it.)) / {i2 - i1}, "
                        f"best of {args.repeat}; eps = 0.1, 2-D Gaussians, |x - y|^2; "
                        "bytes = two reads of the B x n x m kernel")
    # TF32 policy: what a process-wide "high" matmul precision does to a float32 Sinkhorn cost
    x, y = gaussians(4, min(n, 1024), 2, 2, device, torch.float32)
    values = {}
    for mode in (False, True):
        with tf32(mode):
            values[mode] = host(quiet_sinkhorn(None, None, PointCloud(x, y, online=True), 0.1, tol=1e-4).cost)
    ref = PointCloud(x.double(), y.double(), online=True)
    ref = host(quiet_sinkhorn(None, None, ref, 0.1, tol=1e-8).cost)
    sec["tables"].append((f"TF32 policy: online float32 cost (B = 4, n = m = {x.shape[1]}, eps = 0.1) "
                          "against float64", ["matmul precision", "max relative error of the cost"],
                          [["highest (default)", rel(values[False], ref)],
                           ["high (TF32)", rel(values[True], ref)]]))


# ------------------------------------------------------------------------------------------------
# online point clouds, n = m = 100,000
# ------------------------------------------------------------------------------------------------
def flash_loss(flash, eps, iters, *, allow_tf32, backend="alternating"):
    return flash.SamplesLoss("sinkhorn", backend=backend, use_epsilon_scaling=False, eps=eps, n_iters=iters,
                             debias=False, potentials=False, normalize=False, autotune=True,
                             last_extrapolation=False, allow_tf32=allow_tf32)


def flash_available(device):
    if device.type != "cuda":
        return None, "flash-sinkhorn: skipped (CUDA and Triton only)"
    flash = optional("flash_sinkhorn")
    return flash, None if flash else "flash-sinkhorn: skipped (does not import)"


def section_online(args, rep, device):
    sec = rep.section("online", f"Sinkhorn, online point clouds: n = m = {args.online_n}, float32")
    flash, why = flash_available(device)
    if why:
        sec["notes"].append(why)
    rows = []
    n = args.online_n
    for dim in (3, 64):
        gen = torch.Generator().manual_seed(dim)
        x = torch.randn(n, dim, generator=gen).to(device)
        y = (torch.randn(n, dim, generator=gen) * 0.8 + 0.5).to(device)
        eps = 0.05 * 2 * dim  # 5% of the mean cost
        geom = PointCloud(x, y, online=True)
        if device.type == "cuda":
            sync(device)
            torch.cuda.reset_peak_memory_stats(device)
            before = torch.cuda.memory_allocated(device)
        seconds, res = per_iteration(lambda it: quiet_sinkhorn(None, None, geom, eps, tol=1e-30, max_iter=it),
                                     device, 1, 1 + args.online_iters, repeat=1)
        extra = float("nan")
        if device.type == "cuda":
            extra = (torch.cuda.max_memory_allocated(device) - before) / 2**20
        row = [f"{dim}-D", eps, seconds * 1e3, extra, n * n * 4 / 2**20, float(res.objective)]
        if flash is not None:
            a = torch.full((n,), 1.0 / n, device=device)

            def run(it, allow):
                return flash_loss(flash, eps, it, allow_tf32=allow)(a, x, a, y)

            for allow in (False, True):  # its iterations take milliseconds: time 20 of them
                fs, _ = per_iteration(lambda it: run(it, allow), device, 10, 30, repeat=1)
                value = run(1 + args.online_iters, allow)  # the values after equal iterations
                row += [fs * 1e3, seconds / fs, rel(float(res.objective), float(value))]
        rows.append(row)
    header = ["data", "eps", "otmetrics: ms per iteration", "peak extra device memory (MB)",
              "a dense float32 cost would take (MB)", f"objective after {1 + args.online_iters} it."]
    if flash is not None:
        for mode in ("TF32 off", "TF32 on (its default)"):
            header += [f"flash-sinkhorn alternating, {mode}: ms per iteration", "ratio otmetrics / flash",
                       "relative difference of the values (equal iterations)"]
    sec["tables"].append(("", header, rows))
    sec["notes"].append(f"x ~ N(0, I), y ~ N(0.5, 0.64 I); time per iteration = difference of runs of 1 and "
                        f"{1 + args.online_iters} iterations (flash-sinkhorn: 10 and 30), values after "
                        f"{1 + args.online_iters} iterations from zero potentials")


# ------------------------------------------------------------------------------------------------
# time-to-accuracy against GeomLoss (dense batch)
# ------------------------------------------------------------------------------------------------
def geomloss_iterations(geomloss_module, x, y, blur, scaling):
    """The number of c-transform pairs GeomLoss runs: its epsilon schedule plus the final extrapolation."""
    from geomloss._legacy.sinkhorn_divergence import scaling_parameters

    diameter, _, eps_list, _ = scaling_parameters(x, y, 2, blur, None, None, scaling)
    return len(eps_list) + 1, float(diameter)


def section_geomloss(args, rep, device):
    B, n, blur = args.tta_batch, args.tta_n, 0.05
    sec = rep.section("geomloss", f"Sinkhorn time-to-accuracy against GeomLoss: B = {B}, n = m = {n}, 2-D, "
                                  f"eps = 2 blur^2 = {2 * blur ** 2:g}")
    geomloss = optional("geomloss")
    keops = optional("pykeops.torch") if geomloss else None
    if geomloss is None:
        sec["notes"].append("GeomLoss: skipped (does not import)")
    if keops is None:
        sec["notes"].append("GeomLoss online (KeOps): skipped (pykeops does not import)")
    eps = 2 * blur ** 2  # GeomLoss's cost is |x - y|^2 / 2 at eps = blur^2: ours is twice both
    x, y = gaussians(B, n, 2, 3, device, torch.float32)
    reference = quiet_sinkhorn(None, None, PointCloud(x.double(), y.double()), eps, tol=1e-7,
                               eps_scaling=0.5, max_iter=args.tta_max_iter)
    ref = host(reference.objective)
    rows = [["otmetrics, float64 reference", "tol=1e-7, eps_scaling=0.5", int(np.max(reference.n_iter)),
             float("nan"), 0.0, float(np.max(reference.marginal_error)), bool(np.all(reference.converged))]]
    for tol in (1e-3, 1e-4):
        t, res = best_time(lambda: quiet_sinkhorn(None, None, PointCloud(x, y), eps, tol=tol, eps_scaling=0.5,
                                                  max_iter=args.tta_max_iter), device, repeat=1, warmup=0)
        rows.append(["otmetrics float32", f"tol={tol:g}, eps_scaling=0.5", int(np.max(res.n_iter)), t,
                     rel(host(res.objective), ref), float(np.max(res.marginal_error)),
                     bool(np.all(res.converged))])
    for scaling in args.tta_scalings:
        if geomloss is None:
            break
        iters, diameter = geomloss_iterations(geomloss, x, y, blur, scaling)
        for backend in ("tensorized", "online") if keops else ("tensorized",):
            loss = geomloss.SamplesLoss("sinkhorn", p=2, blur=blur, scaling=scaling, debias=False,
                                        backend=backend)
            t, value = best_time(lambda: loss(x, y), device, repeat=args.repeat)
            rows.append([f"GeomLoss {backend}", f"blur={blur}, scaling={scaling}", iters, t,
                         rel(2 * host(value), ref), "not reported", "-"])
        # equal eps, equal iterations, the same schedule (GeomLoss's diameter^p start, factor scaling^p)
        t, res = best_time(lambda: quiet_sinkhorn(None, None, PointCloud(x, y), eps, tol=1e-30,
                                                  eps_scaling=scaling ** 2, eps_init=2 * diameter ** 2,
                                                  max_iter=iters), device, repeat=args.repeat)
        rows.append(["otmetrics float32, equal iterations", f"eps_scaling={scaling ** 2:g} from 2 diameter^2",
                     int(np.max(res.n_iter)), t, rel(host(res.objective), ref),
                     float(np.max(res.marginal_error)), "-"])
    sec["tables"].append(("", ["method", "settings", "iterations (max over the batch)", "time (s)",
                               "max relative error vs reference OT_eps", "max marginal error", "converged"],
                          rows))
    sec["notes"].append("values: OT_eps(a, b) without debiasing (GeomLoss debias=False, doubled to our cost "
                        "|x - y|^2); reference: otmetrics float64 to tol 1e-7 at the same eps; runs to a "
                        "tolerance are timed once (no warm-up), the others best of --repeat after a warm-up")


# ------------------------------------------------------------------------------------------------
# flash-sinkhorn's benchmark setting
# ------------------------------------------------------------------------------------------------
def flash_data(n, d, device):
    """flash-sinkhorn's benchmark data: seed 0, N(0, I) clouds, weights rand + 0.1, normalised."""
    torch.manual_seed(0)
    x = torch.randn(n, d, device=device)
    y = torch.randn(n, d, device=device)
    a = torch.rand(n, device=device) + 0.1
    b = torch.rand(n, device=device) + 0.1
    return x, y, a / a.sum(), b / b.sum()


def geomloss_fixed(x, y, a, b, eps, iters):
    """GeomLoss tensorized with ``iters`` iterations at a fixed eps (flash-sinkhorn's comparison code)."""
    from geomloss._legacy.sinkhorn_divergence import log_weights, sinkhorn_loop
    from geomloss._legacy.sinkhorn_samples import softmin_tensorized

    C = ((x * x).sum(-1)[:, None] + (y * y).sum(-1)[None] - 2 * x @ y.T)[None]
    _, _, g_ab, f_ba = sinkhorn_loop(softmin_tensorized, log_weights(a)[None], log_weights(b)[None], None,
                                     None, C, C.transpose(1, 2), [eps] * iters, rho=None, debias=False,
                                     last_extrapolation=False)
    return float((a * f_ba[0]).sum() + (b * g_ab[0]).sum())


def section_flash(args, rep, device):
    d, eps, iters = 64, 0.1, args.flash_iters
    sec = rep.section("flash", f"flash-sinkhorn's setting: d = {d}, eps = {eps}, {iters} iterations, float32")
    flash, why = flash_available(device)
    geomloss = optional("geomloss")
    if why:
        sec["notes"].append(why)
    rows = []
    for n in args.flash_sizes:
        x, y, a, b = flash_data(n, d, device)
        t_ours, res = best_time(lambda: quiet_sinkhorn(a, b, PointCloud(x, y, online=True), eps, tol=1e-30,
                                                       max_iter=iters), device, repeat=args.repeat)
        ours = float(res.objective)
        rows.append([n, "otmetrics online (alternating)", t_ours, 1.0, ours, 0.0])
        anchors = []
        if flash is not None:
            for backend, allow in (("alternating", False), ("alternating", True), ("symmetric", True)):
                fn = flash_loss(flash, eps, iters, allow_tf32=allow, backend=backend)
                anchors.append((f"flash-sinkhorn {backend}, TF32 {'on' if allow else 'off'}",
                                lambda fn=fn: float(fn(a, x, b, y))))
        if geomloss is not None and n <= args.geomloss_max_n:
            anchors.append(("GeomLoss tensorized (its symmetric loop)",
                            lambda: geomloss_fixed(x, y, a, b, eps, iters)))
        for label, fn in anchors:
            t, value = best_time(fn, device, repeat=args.repeat)
            rows.append([n, label, t, t / t_ours, value, rel(value, ours)])
        sec["data"][n] = {"marginal_error_after": float(res.marginal_error)}
        sec["notes"].append(f"n = {n}: otmetrics' marginal error after {iters} iterations: "
                            f"{float(res.marginal_error):.3g} (the same iterations bring every method there)")
        del res
    sec["tables"].append(("", ["n = m", "method", "time (s)", "time / otmetrics", f"value after {iters} it.",
                               "relative difference to otmetrics"], rows))
    if geomloss is None:
        sec["notes"].append("GeomLoss: skipped (does not import)")
    sec["notes"].append(f"GeomLoss tensorized up to n = {args.geomloss_max_n} (a dense cost, as in "
                        "flash-sinkhorn's benchmark); every run from zero potentials, no epsilon scaling")


# ------------------------------------------------------------------------------------------------
# feature extraction
# ------------------------------------------------------------------------------------------------
_UNPACKED: list = []


def torch_fidelity_inception(src):
    """torch-fidelity's FeatureExtractorInceptionV3 class, loaded without its package ``__init__``.

    The package imports torchvision at the top; only the network module is needed. ``src`` is a folder
    holding ``torch_fidelity/`` (an installed or unpacked copy); without it the installed package is
    found, else a torch-fidelity wheel in ``.whl/`` is unpacked to a temporary folder.
    """
    if src is None:
        spec = importlib.util.find_spec("torch_fidelity")
        if spec is not None and spec.submodule_search_locations:
            src = str(Path(list(spec.submodule_search_locations)[0]).parent)
    if src is None:
        wheels = sorted((ROOT / ".whl").glob("torch_fidelity-*.whl"))
        if not wheels:
            return None
        _UNPACKED.append(tempfile.TemporaryDirectory(prefix="torch-fidelity-"))  # removed at exit
        src = _UNPACKED[-1].name
        with zipfile.ZipFile(wheels[-1]) as wheel:
            wheel.extractall(src)
    package = types.ModuleType("torch_fidelity")
    package.__path__ = [str(Path(src) / "torch_fidelity")]
    saved = sys.modules.get("torch_fidelity")
    sys.modules["torch_fidelity"] = package
    try:
        module = importlib.import_module("torch_fidelity.feature_extractor_inceptionv3")
        return module.FeatureExtractorInceptionV3
    except Exception:  # noqa: BLE001
        return None
    finally:
        if saved is not None:
            sys.modules["torch_fidelity"] = saved
        else:
            sys.modules.pop("torch_fidelity", None)


def section_features(args, rep, device):
    batch = args.feature_batch
    sec = rep.section("features", f"FIDInceptionV3 against torch-fidelity: batch {batch}, 299 x 299 uint8")
    anchor = torch_fidelity_inception(args.torch_fidelity_src)
    if anchor is None:
        sec["notes"].append("torch-fidelity: skipped (neither installed nor a wheel in .whl/)")
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        path = Path(tmp) / "random-fid-weights.pth"
        torch.save(FIDInceptionV3(pretrained=False).state_dict(), path)
        images = torch.randint(0, 256, (batch, 3, 299, 299), dtype=torch.uint8,
                               generator=torch.Generator().manual_seed(1)).to(device)
        theirs = None
        if anchor is not None:
            theirs = anchor("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path))
            theirs = theirs.to(device).eval()
        rows = []
        for mode in (False, True):
            ours = FIDInceptionV3(path, resize="tf1", tf32=mode).to(device)
            with tf32(mode), torch.inference_mode():
                warmup = 0 if args.dry_run else 1  # a forward pass on the CPU takes seconds
                t, f_ours = best_time(lambda: ours(images), device, repeat=args.repeat, warmup=warmup)
                row = ["on" if mode else "off", batch / t]
                if theirs is not None:
                    t2, (f_theirs,) = best_time(lambda: theirs(images), device, repeat=args.repeat,
                                                warmup=warmup)
                    diff = float((f_ours - f_theirs).abs().max())
                    scale = float(f_theirs.abs().max())
                    row += [batch / t2, t2 / t, diff, diff / scale]
                    sec["data"][f"tf32_{mode}"] = {"max_abs_difference": diff, "max_abs_feature": scale}
            rows.append(row)
    header = ["TF32", "otmetrics images/s"]
    if theirs is not None:
        header += ["torch-fidelity images/s", "speed-up", "max |feature difference|",
                   "relative to max |feature|"]
        off = sec["data"]["tf32_False"]
        sec["notes"].append(f"TF32 off: features equal to 1e-4: {off['max_abs_difference'] <= 1e-4}, "
                            f"to 1e-4 of the largest feature: "
                            f"{off['max_abs_difference'] <= 1e-4 * off['max_abs_feature']}")
    sec["tables"].append(("", header, rows))
    sec["notes"].append("same random weights (FIDInceptionV3(pretrained=False), seed 0) loaded by both; "
                        "otmetrics resize='tf1' (torch-fidelity's resize); TF32 on = cuDNN allow_tf32 and "
                        "matmul precision 'high' for both, and FIDInceptionV3(tf32=True)")


# ------------------------------------------------------------------------------------------------
# exact EMD on device tensors
# ------------------------------------------------------------------------------------------------
def section_emd(args, rep, device):
    sec = rep.section("emd", "Exact EMD on device tensors")
    rows = []
    for B, n in args.emd_sizes:
        x, y = gaussians(B, n, 2, 4, device, torch.float64)
        C = cost_matrix(x, y, p=2)
        C = C[0] if B == 1 else C
        t_dev, res = best_time(lambda: emd(None, None, C), device, repeat=args.repeat)
        C_cpu = C.cpu()
        t_cpu, res_cpu = best_time(lambda: emd(None, None, C_cpu), torch.device("cpu"), repeat=args.repeat)
        t_down, _ = best_time(lambda: C.cpu(), device, repeat=args.repeat)
        plan_cpu = res_cpu.plan
        t_up, _ = best_time(lambda: plan_cpu.to(device), device, repeat=args.repeat)
        on_device = all(t.device == C.device for t in (res.cost, res.plan, *res.potentials))
        rows.append([B, n, t_dev, t_cpu, t_dev / t_cpu, (t_down + t_up) * 1e3, on_device,
                     rel(host(res.cost), host(res_cpu.cost)), bool(np.all(host(res.converged)))])
    sec["tables"].append(("", ["B", "n = m", f"emd on {device.type} tensors (s)", "emd on CPU tensors (s)",
                               "ratio", "host round trip: cost down + plan up (ms)", "results on the device",
                               "relative difference of the costs", "converged and certified"], rows))
    sec["notes"].append("the network simplex runs on the host: device tensors are copied down, solved, and "
                        "the plan, potentials and cost copied back; the round trip is the transfer share")


# ------------------------------------------------------------------------------------------------
def parse_sizes(text):
    return [tuple(int(v) for v in item.split("x")) for item in text.split(",") if item]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="gpu-report", help="folder of report.md, report.json and the logs")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes (the CPU check of the script)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated, of {SECTIONS}")
    parser.add_argument("--repeat", type=int, default=2, help="timed runs per figure (best is kept)")
    parser.add_argument("--workers", type=int, default=8, help="pytest-xdist workers of the whole suite")
    parser.add_argument("--suite-timeout", type=int, default=240, help="seconds for the whole suite")
    parser.add_argument("--cuda-tests-timeout", type=int, default=240)
    parser.add_argument("--torch-fidelity-src", default=None, metavar="DIR")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's; 1 in a dry run, for shared machines)")
    args = parser.parse_args(argv)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    full = dict(dense_batch=16, dense_n=4096, dense_iters=(20, 220), copy_numel=2**28, online_n=100_000,
                online_iters=2, tta_batch=16, tta_n=2048, tta_max_iter=10_000, tta_scalings=(0.5, 0.9),
                flash_iters=100,
                flash_sizes=(10_000, 50_000), geomloss_max_n=20_000, feature_batch=256,
                emd_sizes="1x1000,1x2000,8x500")
    tiny = dict(dense_batch=2, dense_n=64, dense_iters=(2, 12), copy_numel=2**18, online_n=300,
                online_iters=2, tta_batch=2, tta_n=64, tta_max_iter=2000, tta_scalings=(0.5,), flash_iters=10,
                flash_sizes=(200,), geomloss_max_n=20_000, feature_batch=1, emd_sizes="1x40,2x20")
    for key, value in (tiny if args.dry_run else full).items():
        setattr(args, key, value)
    args.emd_sizes = parse_sizes(args.emd_sizes)
    if args.dry_run:
        args.repeat = 1
        args.threads = args.threads or 1
    if args.threads:
        torch.set_num_threads(args.threads)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"--sections: unknown {sorted(unknown)}; choose from {SECTIONS}")
    out = Path(args.out)
    rep = Report(out, f"otmetrics GPU run ({'dry run, ' if args.dry_run else ''}{device.type}, "
                      f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})")
    suite_args = ["-n", str(args.workers), "-q"] if version_of("pytest-xdist") != "absent" else ["-q"]
    runners = {
        "env": lambda: section_env(args, rep, device),
        "cuda-tests": lambda: run_pytest(rep, "cuda-tests", "Tests marked cuda", ["-m", "cuda", "-q", "-rA"],
                                         "pytest-cuda.log", args.cuda_tests_timeout),
        "dense": lambda: section_dense(args, rep, device),
        "online": lambda: section_online(args, rep, device),
        "geomloss": lambda: section_geomloss(args, rep, device),
        "flash": lambda: section_flash(args, rep, device),
        "features": lambda: section_features(args, rep, device),
        "emd": lambda: section_emd(args, rep, device),
        "suite": lambda: run_pytest(rep, "suite", "The whole suite", suite_args, "pytest-suite.log",
                                    args.suite_timeout),
    }
    failures = 0
    for name in SECTIONS:
        if name not in sections:
            continue
        if name == "suite" and args.dry_run:
            rep.section("suite", "The whole suite")["notes"].append("skipped in --dry-run")
            rep.sections["suite"]["status"] = "skipped"
            continue
        start = time.perf_counter()
        print(f"[bench_gpu] {name} ...", flush=True)
        try:
            runners[name]()
            status = "done"
        except Exception as exc:  # noqa: BLE001 (record it, go on with the next section)
            failures += 1
            status = f"failed: {type(exc).__name__}: {exc}"[:300]
            sec = rep.sections.get(name) or rep.section(name, name)
            sec["notes"].append("traceback: " + traceback.format_exc()[-2000:].replace("\n", " / "))
        finally:
            if device.type == "cuda":
                torch.cuda.empty_cache()
        rep.sections[name]["status"] = f"{status}, {time.perf_counter() - start:.1f} s"
        rep.write()
        print(f"[bench_gpu] {name}: {rep.sections[name]['status']}", flush=True)
    rep.write()
    print((out / "report.md").read_text())
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
