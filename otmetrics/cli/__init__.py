"""The ``otmetrics`` command: FID, FD on any extractor, KID, CMMD, precision/recall/density/coverage,
FD-infinity and the Inception Score of image folders, and the demo.

::

    otmetrics fid PATH1 PATH2            # each an image folder, a statistics .npz or a features .npy
    otmetrics fid --save-stats FOLDER OUT.npz
    otmetrics fd --features dinov2-vitl14 PATH1 PATH2     # the Frechet distance on any extractor
    otmetrics kid PATH1 PATH2            # image folders or features .npy
    otmetrics cmmd REAL FAKE             # CLIP ViT-L/14@336px embeddings (default)
    otmetrics prdc REAL FAKE [--k 5]     # DINOv2 ViT-L/14 features (default)
    otmetrics fd-inf REAL FAKE           # FD extrapolated to infinitely many samples
    otmetrics is PATH                    # an image folder
    otmetrics all PATH1 PATH2 [--features NAME]   # FID (or FD), KID and the IS of PATH1, one pass
    otmetrics demo [ARGS...]

Common options: ``--batch-size``, ``--device``, ``--weights``, ``--num-workers``, ``--resize``,
``--no-progress``, ``--json`` (one JSON object, keys in ``docs/guide/cli.md``). Errors print one
line on stderr and exit with status 1 (2 for usage errors); warnings print one line each.
``python -m otmetrics`` is the same command.

The package: :mod:`.parser` (the arguments), :mod:`.inputs` (folders, statistics and feature
files, extractors by name), :mod:`.commands` (what each command computes), :mod:`.command`
(:func:`main`: dispatch, errors, warnings).
"""

from __future__ import annotations

from .command import main
from .parser import build_parser

__all__ = ["main", "build_parser"]
