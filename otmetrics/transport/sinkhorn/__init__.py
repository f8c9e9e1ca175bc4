"""Entropic transport: :func:`~otmetrics.sinkhorn`, :func:`~otmetrics.sinkhorn_divergence`.

- :mod:`.api`: the two solvers and :class:`~otmetrics.SinkhornResult`;
- :mod:`.problem`: validated inputs as batched tensors, and results back in the caller's type;
- :mod:`.envelope`: the objective as a differentiable function (envelope theorem);
- :mod:`.options`: the solver options (annealing, acceleration, checks) and their defaults;
- :mod:`.loop`: the iterations, with per-problem stopping;
- :mod:`.relaxation`: safeguarded over-relaxation and its adaptive factor;
- :mod:`.kernel`: the scaling form on stored costs, dense or truncated;
- :mod:`.softmin`: the log-sum-exp reductions of a cost, dense or online;
- :mod:`.sharded`: point clouds sharded over ``torch.distributed`` ranks.
"""
