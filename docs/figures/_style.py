"""Shared look of the documentation figures (imported by the scripts in this folder)."""

from __future__ import annotations

import sys
from pathlib import Path

#: Where the pictures are checked in, relative to this file.
IMG_DIR = Path(__file__).resolve().parents[1] / "img"

SOURCE = "#3b6fb6"  # the first measure (alpha, P, a)
TARGET = "#e07b39"  # the second measure (beta, Q, b)
ACCENT = "#2a9d5b"  # a third curve
GREY = "#6b6b6b"


def pyplot():
    """matplotlib.pyplot with a non-interactive backend and the docs' style."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({
        "figure.dpi": 100,
        "savefig.dpi": 110,
        "font.size": 10,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 10.5,
        "legend.frameon": False,
    })
    return plt


def save(fig, out_dir, name: str) -> Path:
    """Save ``fig`` as ``out_dir/name`` (PNG), close it, and return the path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / name
    fig.savefig(path, bbox_inches="tight", metadata={"Software": None})
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
