"""The evaluation wing: features -> statistics -> a number, for samples of generative models.

- :mod:`.frechet` and :mod:`.gaussian`: the Fréchet distance (FID) and streaming Gaussian statistics;
- :mod:`.kernels`, :mod:`.mmd`, :mod:`.kid`: kernels, the MMD, the Kernel Inception Distance;
- :mod:`.inception_score`: the Inception Score;
- :mod:`.prdc` (on :mod:`.neighbours`, exact k-nearest-neighbour balls in blocks), :mod:`.cmmd`,
  :mod:`.fd_infinity`: precision/recall/density/coverage, CMMD, FD-infinity;
- :mod:`.streaming`, :mod:`.metrics`, :mod:`.fd_metrics`, :mod:`.row_metrics`: the streaming metric
  objects (update / compute / reset / merge, synchronised across ``torch.distributed`` ranks);
  :mod:`.adapters`: the same objects as ``torchmetrics.Metric`` (loaded on first use);
- :mod:`.features`: the feature extractors, their weight files and image folders.

Nothing here imports the transport wing or the critic. The public names are re-exported flat as
``otmetrics.<name>``.
"""
