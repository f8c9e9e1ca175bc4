"""Generative-model metrics against their reference implementations, side by side in one process.

Sections (each prints a table with times, ratios and the agreement of the values):

1. Fréchet distance at d = 1024 and 2048: otmetrics.frechet_distance against pytorch-fid's route
   (scipy.linalg.sqrtm of S1 S2, re-implemented here: pytorch-fid itself imports torchvision) and
   the eigvals route of torchmetrics/torch-fidelity (torchmetrics' own _compute_fid when it
   imports, else the same formula in numpy).
2. Singular covariances (fewer samples than dimensions): values, warnings, and what identical
   statistics give in each route.
3. KID: otmetrics.kid against torch-fidelity's algorithm (numpy, float32 features as it keeps
   them, re-implemented) and torchmetrics' poly_mmd per subset, on the same subsets.
4. MMD: throughput of the blocked unbiased estimator, against a dense torch implementation and
   GeomLoss (tensorized); and n = 50,000 points in a subprocess with its peak memory.

Usage::

    python benchmarks/bench_generative.py              # everything, CPU
    python benchmarks/bench_generative.py --quick      # smaller sizes, no n = 50,000 run
    python benchmarks/bench_generative.py --cuda       # also the CUDA routes (needs a GPU)
    python benchmarks/bench_generative.py --threads 2  # BLAS/torch threads (default 1)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import textwrap
import time
import warnings


def _threads_from_argv(default: int = 1) -> int:
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return default


# BLAS threads are fixed before numpy/torch load their libraries. One thread by default: on a
# shared machine, multi-threaded BLAS fighting other jobs for cores makes timings meaningless
# (a 512 x 512 Cholesky took 1.1 s with 2 OpenBLAS threads on a busy 2-core VM, 3 ms with one).
THREADS = _threads_from_argv()
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

import numpy as np  # noqa: E402
import scipy.linalg  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(THREADS)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from otmetrics import NumericalWarning, frechet_distance, kid, mmd  # noqa: E402
from otmetrics.generative.kid import kid_subset_indices  # noqa: E402

try:  # torchmetrics is a fair anchor when it imports without torchvision
    from torchmetrics.image.fid import _compute_fid as tm_compute_fid
    from torchmetrics.image.kid import poly_mmd as tm_poly_mmd
except Exception:  # pragma: no cover - optional
    tm_compute_fid = tm_poly_mmd = None


def best_time(fn, repeat):
    """The smallest CPU time of ``repeat`` calls (and the value of the last).

    CPU time of this process, not wall time: with one BLAS/torch thread (the default) it equals
    the wall time on a quiet machine, and it does not grow when other jobs share the cores, so
    ratios measured on a busy machine stay meaningful. With ``--threads N > 1`` or ``--cuda`` the
    wall time is used instead.
    """
    clock = time.process_time if (THREADS == 1 and not CUDA_TIMING) else time.perf_counter
    best, value = float("inf"), None
    for _ in range(repeat):
        t0 = clock()
        value = fn()
        best = min(best, clock() - t0)
    return best, value


CUDA_TIMING = False


def table(rows, header):
    widths = [max(len(str(r[i])) for r in rows + [header]) for i in range(len(header))]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)))
    print()


# ------------------------------------------------------------------------------------------------
# Fréchet distance
# ------------------------------------------------------------------------------------------------
def sqrtm_route(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's calculate_frechet_distance (its algorithm, without the torchvision import)."""
    diff = mu1 - mu2
    covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
    retried = False
    if not np.isfinite(covmean).all():
        retried = True
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    imag = 0.0
    if np.iscomplexobj(covmean):
        imag = float(np.max(np.abs(covmean.imag)))
        covmean = covmean.real
    value = float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))
    return value, imag, retried


def eigvals_route(mu1, sigma1, mu2, sigma2):
    """torchmetrics' _compute_fid (float64 tensors), or the same formula in numpy."""
    if tm_compute_fid is not None:
        t = [torch.from_numpy(v) for v in (mu1, sigma1, mu2, sigma2)]
        return float(tm_compute_fid(*t))
    ev = np.linalg.eigvals(sigma1 @ sigma2)
    trace_sqrt = np.sqrt(ev + 0j).real.sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def random_rotation(d, rng):
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def inception_like_stats(d, n, rng, q, shift=0.0):
    """Moments of n samples whose covariance has a power-law spectrum (as pool3 features have;
    condition number ~1e5) in the eigenvector basis ``q``."""
    spectrum = np.arange(1, d + 1, dtype=float) ** -1.5
    x = (rng.normal(size=(n, d)) * np.sqrt(spectrum)) @ q.T + shift
    return x.mean(0), np.cov(x, rowvar=False)


def bench_frechet(dims, cuda):
    print("## Fréchet distance (FID from statistics)\n")
    rng = np.random.default_rng(0)
    rows = []
    cases = []
    for d in dims:
        q = random_rotation(d, rng)
        # Two samples of one distribution (a good generator: small FID, nearly equal covariances,
        # where S1 S2 has a wide spectrum), and a shifted distribution with other eigenvectors.
        cases.append((d, "same law", inception_like_stats(d, 3 * d, rng, q),
                      inception_like_stats(d, 3 * d, rng, q)))
        cases.append((d, "other law", inception_like_stats(d, 3 * d, rng, q),
                      inception_like_stats(d, 3 * d, rng, random_rotation(d, rng), shift=0.01)))
    for d, label, (mu1, s1), (mu2, s2) in cases:
        d = f"{d} ({label})"
        repeat_slow = 1 if "2048" in d else 2
        t_ours, v_ours = best_time(lambda: frechet_distance(mu1, s1, mu2, s2), 3)
        t_sqrtm, (v_sqrtm, imag, _) = best_time(lambda: sqrtm_route(mu1, s1, mu2, s2), repeat_slow)
        t_eig, v_eig = best_time(lambda: eigvals_route(mu1, s1, mu2, s2), repeat_slow)
        eig_name = "eigvals (torchmetrics)" if tm_compute_fid is not None else "eigvals (numpy)"
        rows.append([d, "otmetrics", f"{t_ours:.3f}", "1.0x", f"{v_ours:.10g}", "-"])
        rows.append([d, "sqrtm (pytorch-fid)", f"{t_sqrtm:.3f}", f"{t_sqrtm / t_ours:.1f}x slower",
                     f"{v_sqrtm:.10g}", f"{abs(v_sqrtm - v_ours) / v_ours:.1e}"])
        rows.append([d, eig_name, f"{t_eig:.3f}", f"{t_eig / t_ours:.1f}x slower", f"{v_eig:.10g}",
                     f"{abs(v_eig - v_ours) / v_ours:.1e}"])
        if cuda:
            t = [torch.from_numpy(v).cuda() for v in (mu1, s1, mu2, s2)]
            frechet_distance(*t)
            torch.cuda.synchronize()

            def ours_cuda():
                out = frechet_distance(*t)
                torch.cuda.synchronize()
                return float(out)

            t_gpu, v_gpu = best_time(ours_cuda, 3)
            rows.append([d, "otmetrics (cuda)", f"{t_gpu:.3f}", f"{t_gpu / t_ours:.2f}x", f"{v_gpu:.10g}",
                         f"{abs(v_gpu - v_ours) / v_ours:.1e}"])
            if tm_compute_fid is not None:
                def tm_cuda():
                    out = tm_compute_fid(*t)
                    torch.cuda.synchronize()
                    return float(out)

                tm_cuda()
                t_tm, v_tm = best_time(tm_cuda, 3)
                rows.append([d, "eigvals (torchmetrics, cuda)", f"{t_tm:.3f}",
                             f"{t_tm / t_gpu:.1f}x ours-cuda",
                             f"{v_tm:.10g}", f"{abs(v_tm - v_ours) / v_ours:.1e}"])
        print(f"d={d}: sqrtm imaginary part discarded: max |imag| = {imag:.1e}")
    print()
    table(rows, ["d", "route", "seconds", "vs otmetrics", "value", "rel. diff"])


def bench_singular(d):
    print(f"## Singular covariances (d = {d}, 500 and 800 samples)\n")
    rng = np.random.default_rng(1)
    x = np.abs(rng.normal(size=(800, d)))
    y = np.abs(rng.normal(size=(500, d)) * 1.1)
    mu1, s1 = x.mean(0), np.cov(x, rowvar=False)
    mu2, s2 = y.mean(0), np.cov(y, rowvar=False)
    rows = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t, v = best_time(lambda: frechet_distance(mu1, s1, mu2, s2), 1)
        t_same, v_same = best_time(lambda: frechet_distance(mu1, s1, mu1, s1), 1)
    n_warn = sum(issubclass(w.category, NumericalWarning) for w in caught)
    rows.append(["otmetrics", f"{t:.3f}", f"{v:.10g}", f"{v_same:.2e}", f"{n_warn} NumericalWarning(s)"])
    t, (v, imag, retried) = best_time(lambda: sqrtm_route(mu1, s1, mu2, s2), 1)
    v_same, imag_same, retried_same = sqrtm_route(mu1, s1, mu1, s1)
    rows.append(["sqrtm (pytorch-fid)", f"{t:.3f}", f"{v:.10g}", f"{v_same:.2e}",
                 f"|imag| {max(imag, imag_same):.1e}, eps retry: {retried or retried_same}"])
    t, v = best_time(lambda: eigvals_route(mu1, s1, mu2, s2), 1)
    v_same = eigvals_route(mu1, s1, mu1, s1)
    rows.append(["eigvals", f"{t:.3f}", f"{v:.10g}", f"{v_same:.2e}", "no check"])
    table(rows, ["route", "seconds", "FID", "FID(S1, S1) (exact: 0)", "diagnostics"])


# ------------------------------------------------------------------------------------------------
# KID
# ------------------------------------------------------------------------------------------------
def torch_fidelity_kid(x, y, subsets, subset_size, seed):
    """torch-fidelity's kid_features_to_metric: numpy loop, features in their float32 dtype."""
    rng = np.random.RandomState(seed)
    values = np.zeros(subsets)
    for i in range(subsets):
        f1 = x[rng.choice(len(x), subset_size, replace=False)]
        f2 = y[rng.choice(len(y), subset_size, replace=False)]
        gamma = 1.0 / f1.shape[1]
        k11 = (f1 @ f1.T * gamma + 1) ** 3
        k22 = (f2 @ f2.T * gamma + 1) ** 3
        k12 = (f1 @ f2.T * gamma + 1) ** 3
        m = subset_size
        values[i] = ((k11.sum() - np.trace(k11) + k22.sum() - np.trace(k22)) / (m * (m - 1))
                     - 2 * k12.sum() / (m * m))
    return float(values.mean()), float(values.std())


def torchmetrics_kid(x, y, subsets, subset_size, seed):
    """torchmetrics' poly_mmd on each subset (the same subsets as ours; float32 as it stores them)."""
    ix, iy = kid_subset_indices(len(x), len(y), subsets, subset_size, seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    values = torch.stack([tm_poly_mmd(xt[torch.from_numpy(a)], yt[torch.from_numpy(b)])
                          for a, b in zip(ix, iy)])
    return float(values.mean()), float(values.std(unbiased=False))


def bench_kid(cases):
    print("## KID (polynomial kernel, unbiased MMD² over subsets)\n")
    rows = []
    for n, d, subsets, size in cases:
        rng = np.random.default_rng(2)
        x = np.abs(rng.normal(size=(n, d))).astype(np.float32)
        y = np.abs(rng.normal(size=(n, d)) * 1.05).astype(np.float32)
        t_ours, (m_ours, s_ours) = best_time(lambda: kid(x, y, subsets=subsets, subset_size=size, seed=0), 1)
        t_tf, (m_tf, _) = best_time(lambda: torch_fidelity_kid(x, y, subsets, size, 0), 1)
        label = f"n={n}, d={d}, {subsets}x{size}"
        rows.append([label, "otmetrics (float64)", f"{t_ours:.2f}", f"{subsets / t_ours:.1f}", "1.0x",
                     f"{m_ours:.6e}", "-"])
        rows.append([label, "torch-fidelity alg. (float32)", f"{t_tf:.2f}", f"{subsets / t_tf:.1f}",
                     f"{t_tf / t_ours:.1f}x", f"{m_tf:.6e}", f"{abs(m_tf - m_ours) / abs(m_ours):.1e}"])
        if tm_poly_mmd is not None:
            t_tm, (m_tm, _) = best_time(lambda: torchmetrics_kid(x, y, subsets, size, 0), 1)
            rows.append([label, "torchmetrics poly_mmd (float32)", f"{t_tm:.2f}", f"{subsets / t_tm:.1f}",
                         f"{t_tm / t_ours:.1f}x", f"{m_tm:.6e}", f"{abs(m_tm - m_ours) / abs(m_ours):.1e}"])
    table(rows, ["case", "implementation", "seconds", "subsets/s", "time vs ours", "KID mean", "rel. diff"])


# ------------------------------------------------------------------------------------------------
# MMD
# ------------------------------------------------------------------------------------------------
def dense_unbiased_mmd(x, y, sigma):
    """The textbook implementation: three dense kernel matrices in memory (torch, float64)."""
    def k(a, b):
        return torch.exp(-torch.cdist(a, b).pow(2) / (2 * sigma**2))

    m, n = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - kxx.trace()) / (m * (m - 1)) + (kyy.sum() - kyy.trace()) / (n * (n - 1))
                 - 2 * kxy.mean())


def bench_mmd(sizes, d, large):
    print(f"## MMD² (gaussian kernel, d = {d})\n")
    rows = []
    for n in sizes:
        rng = np.random.default_rng(3)
        x, y = rng.normal(size=(n, d)), rng.normal(size=(n, d)) + 0.05
        sigma = float(np.sqrt(d))
        evaluations = 3 * n * n  # kernel values the estimator uses (xx, yy, xy; ours evaluates ~2/3 of
        # them, the within-sample matrices being symmetric)
        t_ours, v_ours = best_time(lambda: mmd(x, y, bandwidth=sigma), 1)
        rows.append([n, "otmetrics unbiased (blocked)", f"{t_ours:.2f}", f"{evaluations / t_ours / 1e6:.0f}",
                     "1.0x", f"{v_ours:.8e}", "-"])
        if n <= 10_000:
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            t_dense, v_dense = best_time(lambda: dense_unbiased_mmd(xt, yt, sigma), 1)
            rows.append([n, "dense torch (3 n x n matrices)", f"{t_dense:.2f}",
                         f"{evaluations / t_dense / 1e6:.0f}", f"{t_dense / t_ours:.1f}x", f"{v_dense:.8e}",
                         f"{abs(v_dense - v_ours) / abs(v_ours):.1e}"])
            try:
                import geomloss

                loss = geomloss.SamplesLoss("gaussian", blur=sigma, backend="tensorized")
                t_gl, v_gl = best_time(lambda: 2 * float(loss(xt, yt)), 1)
                v_b = mmd(x, y, bandwidth=sigma, estimator="biased")
                rows.append([n, "GeomLoss tensorized (biased, x2)", f"{t_gl:.2f}",
                             f"{evaluations / t_gl / 1e6:.0f}", f"{t_gl / t_ours:.1f}x", f"{v_gl:.8e}",
                             f"{abs(v_gl - v_b) / abs(v_b):.1e} vs our biased"])
            except ImportError:  # pragma: no cover
                pass
    table(rows, ["n per set", "implementation", "seconds", "M kernel values/s", "time vs ours", "MMD²",
                 "rel. diff"])
    if large:
        # Peak resident memory from /proc/self/status (VmHWM), reset before the call through
        # /proc/self/clear_refs; ru_maxrss would carry this process's peak over to the child.
        code = textwrap.dedent(f"""
            import json, sys, time, numpy as np, torch
            torch.set_num_threads({THREADS})
            sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r})
            from otmetrics import mmd

            def status(key):
                with open("/proc/self/status") as f:
                    return next(int(line.split()[1]) / 1024 for line in f if line.startswith(key))

            rng = np.random.default_rng(0)
            x, y = rng.normal(size=(50000, {d})), rng.normal(size=(50000, {d})) + 0.02
            mmd(x[:10], y[:10], bandwidth=1.0)
            before = status("VmRSS:")
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            t0, c0 = time.perf_counter(), time.process_time()
            value = mmd(x, y, bandwidth={float(np.sqrt(d))})
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(json.dumps(dict(value=value, seconds=seconds, cpu=cpu, rss_before_mb=before,
                                  peak_mb=status("VmHWM:"))))
        """)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if out.returncode:
            print(out.stderr)
        else:
            r = json.loads(out.stdout.strip().splitlines()[-1])
            dense_gb = 3 * 50000**2 * 8 / 1e9
            print(f"n = 50,000 per set, d = {d}: MMD² = {r['value']:.6e} in {r['cpu']:.1f} CPU s "
                  f"({r['seconds']:.1f} s wall; {3 * 50000**2 / r['cpu'] / 1e6:.0f} M kernel values per "
                  f"CPU s); peak resident memory {r['peak_mb']:.0f} MB, of which {r['rss_before_mb']:.0f} MB "
                  f"before the call (interpreter, torch, the inputs); three dense kernel matrices would need "
                  f"{dense_gb:.0f} GB.\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dims", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--quick", action="store_true", help="smaller problems; skip n = 50,000")
    parser.add_argument("--cuda", action="store_true", help="also time otmetrics/torchmetrics on CUDA")
    parser.add_argument("--threads", type=int, default=1, help="BLAS and torch threads (default 1)")
    parser.add_argument("--sections", nargs="+", default=["frechet", "singular", "kid", "mmd"],
                        choices=["frechet", "singular", "kid", "mmd"], help="what to run (default: all)")
    args = parser.parse_args()
    if args.cuda and not torch.cuda.is_available():
        parser.error("--cuda: no CUDA device")
    global CUDA_TIMING
    CUDA_TIMING = args.cuda
    print(f"# bench_generative: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), numpy {np.__version__}, "
          f"scipy {scipy.__version__}, torchmetrics {'yes' if tm_compute_fid else 'no'}; "
          f"times: {'wall' if (THREADS > 1 or args.cuda) else 'CPU'} seconds, best of the repeats\n")
    dims = sorted({min(d, 512) for d in args.dims}) if args.quick else args.dims
    if "frechet" in args.sections:
        bench_frechet(dims, args.cuda)
    if "singular" in args.sections:
        bench_singular(512 if args.quick else 2048)
    if "kid" in args.sections:
        kid_cases = [(1500, 2048, 100, 1000)] if not args.quick else [(600, 256, 20, 200)]
        if not args.quick:
            kid_cases.append((10000, 2048, 50, 1000))
        bench_kid(kid_cases)
    if "mmd" in args.sections:
        bench_mmd([2000] if args.quick else [5000, 20000], 64, large=not args.quick)


if __name__ == "__main__":
    main()
