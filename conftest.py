"""Suite-wide settings, for the tests in tests/ and the docstring examples in otmetrics/.

The suite runs under pytest-xdist with one worker per core; torch's own intra-op threads on top of
that oversubscribe the cores (small-network training was measured ~30x slower with 2 torch threads
per worker on a busy 2-core machine). One torch thread per worker.
"""

import torch

torch.set_num_threads(1)
