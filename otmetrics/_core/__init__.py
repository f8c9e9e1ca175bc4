"""The private core of otmetrics, shared by both wings (transport and generative evaluation).

- :mod:`.arrays`: numpy/torch conversion ("numpy in, numpy out; torch in, torch out");
- :mod:`.validation`: argument checks that raise ``ValueError`` naming the argument;
- :mod:`.warnings`: the warning classes (public as ``otmetrics.OTMetricsWarning`` and subclasses);
- :mod:`.deprecation`: renamed arguments and changed defaults, for one release;
- :mod:`.rounding`: directed-rounding bounds shared by the certificates and the critic;
- :mod:`.distributed`: ``torch.distributed`` collectives (no-ops in a single process);
- :mod:`.legacy`: the module paths of otmetrics 0.1, kept importable for one release.

Nothing here imports torch at import time, and nothing here imports the wings.
"""
