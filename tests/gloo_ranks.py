"""Run a worker script in several processes joined by a gloo process group on 127.0.0.1 (test helper).

The worker is called as ``python worker.py RANK WORLD PORT DATA OUT`` and writes its results as JSON to
``OUT``; :func:`run_ranks` returns them in rank order, or fails the test with the end of a rank's stderr.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ranks(script: Path, data: Path, out_dir: Path, *, world: int = 2, timeout: float = 180) -> list:
    """Start ``world`` ranks of ``script`` on ``data``; return each rank's JSON output, in rank order."""
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    port = str(free_port())
    outs = [out_dir / f"out{r}.json" for r in range(world)]
    procs = [subprocess.Popen([sys.executable, str(script), str(r), str(world), port, str(data), str(out)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r, out in enumerate(outs)]
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for r, (p, (_, err)) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"rank {r}: {err[-3000:]}"
    return [json.loads(out.read_text()) for out in outs]
