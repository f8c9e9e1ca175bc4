"""The transport wing: inputs -> measures and a cost -> a solver -> a result with diagnostics -> a number.

- :mod:`.costs`: ground costs ``|x - y|^p`` and the :class:`~otmetrics.PointCloud` geometry;
- :mod:`.exact`: the linear program (network simplex, HiGHS), batches, :class:`~otmetrics.OTResult`;
- :mod:`.certificate`: what is checked about a plan and its potentials;
- :mod:`.oned`: closed forms on the line;
- :mod:`.sliced`, :mod:`.max_sliced`: sliced and max-sliced distances, on the 1-D solver;
- :mod:`.energy`: Székely's energy distance;
- :mod:`.results`: :class:`~otmetrics.TransportResult`, the base of the exact and entropic results;
- :mod:`.sinkhorn`: entropic transport (the solvers, their inputs, the loop, the soft-min operators).

Nothing here imports the generative wing or the critic. The public names are re-exported flat as
``otmetrics.<name>``.
"""
