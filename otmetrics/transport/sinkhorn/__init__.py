"""Entropic transport: :func:`~otmetrics.sinkhorn`, :func:`~otmetrics.sinkhorn_divergence`.

- :mod:`.api`: the two solvers and :class:`~otmetrics.SinkhornResult`;
- :mod:`.problem`: validated inputs as batched tensors, and results back in the caller's type;
- :mod:`.envelope`: the objective as a differentiable function (envelope theorem);
- :mod:`.loop`: the iterations, with per-problem stopping;
- :mod:`.softmin`: the log-sum-exp reductions of a cost, dense or online.
"""
