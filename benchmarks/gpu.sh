#!/usr/bin/env bash
# The GPU run of issue 13, for a short GPU session: installs the anchors and test tools from the wheels
# in .whl/ (no network needed), then runs benchmarks/bench_gpu.py, which writes report.md and
# report.json (and the pytest logs) into OUT.
#
#   bash benchmarks/gpu.sh OUT                     # everything (about 5 minutes on an H100/H200)
#   bash benchmarks/gpu.sh OUT --sections dense    # any option of bench_gpu.py after OUT
#   bash benchmarks/gpu.sh OUT --dry-run           # tiny sizes (the CPU check)
#
# The wheels go to a folder outside the Python environment (pip --target), put first on PYTHONPATH with
# the repository itself (no editable install: that needs setuptools from the network). .whl/ holds, for
# CPython 3.12 x86-64: POT, geomloss, flash-sinkhorn, torch-fidelity (anchors), hypothesis,
# sortedcontainers, pytest-xdist, execnet (tests). It is git-ignored: the session carries it.
set -u
OUT="${1:-gpu-report}"
shift || true
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
PY="${PYTHON:-$(command -v python || command -v python3)}"
SITE="${OTMETRICS_GPU_SITE:-${TMPDIR:-/tmp}/otmetrics-gpu-site}"

start=$(date +%s)
{
  echo "# gpu.sh $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
  nvidia-smi 2>&1 || echo "nvidia-smi: not available"
  "$PY" -c 'import sys, torch; print(sys.version); print("torch", torch.__version__, "CUDA", torch.version.cuda,
            "available", torch.cuda.is_available())' 2>&1
} > "$OUT/machine.txt"

# the wheels of distributions the environment lacks (one already installed is left as it is)
missing=$("$PY" - <<'PYEOF'
import glob
import importlib.metadata as metadata

for wheel in sorted(glob.glob(".whl/*.whl")):
    name = wheel.split("/")[-1].split("-")[0]
    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        print(wheel)
PYEOF
)
if [ -n "$missing" ]; then
  mkdir -p "$SITE"
  echo "installing into $SITE:" $missing > "$OUT/pip.log"
  # shellcheck disable=SC2086
  if ! "$PY" -m pip install --quiet --no-deps --no-index --disable-pip-version-check --target "$SITE" \
        --upgrade $missing >> "$OUT/pip.log" 2>&1; then
    echo "pip failed: unpacking the wheels instead" | tee -a "$OUT/pip.log"
    for wheel in $missing; do "$PY" -m zipfile -e "$wheel" "$SITE" >> "$OUT/pip.log" 2>&1; done
  fi
else
  echo "nothing to install (every wheel of .whl/ is installed, or there is no .whl/)" > "$OUT/pip.log"
fi
export PYTHONPATH="$ROOT:$SITE${PYTHONPATH:+:$PYTHONPATH}"
echo "wheels installed in $(( $(date +%s) - start )) s" >> "$OUT/pip.log"

"$PY" benchmarks/bench_gpu.py --out "$OUT" "$@" 2>&1 | tee "$OUT/bench_gpu.log"
status=${PIPESTATUS[0]}
echo "gpu.sh: bench_gpu.py exited with $status after $(( $(date +%s) - start )) s; report: $OUT/report.md"
exit "$status"
