r"""The streaming metrics of otmetrics as ``torchmetrics.Metric`` objects: :class:`TorchMetricsAdapter`.

An adapter rather than a common base class: the otmetrics objects keep working without
torchmetrics (an optional dependency, imported only here), keep their own state and its
distributed synchronisation (``FD`` all-reduces ``O(d^2)`` float64 statistics, where
torchmetrics' list states would all-gather every feature row), their ``merge`` rules (fixed real
statistics, extractors) and their result types; the adapter gives them what ``MetricCollection``
and Lightning's ``self.log`` expect of a ``torchmetrics.Metric``.
"""

from __future__ import annotations

try:
    import torch
    from torchmetrics import Metric
except ImportError as _exc:  # pragma: no cover - torchmetrics is a development dependency
    raise ImportError("otmetrics.TorchMetricsAdapter needs torchmetrics: "
                      "pip install 'otmetrics[torchmetrics]'") from _exc

from ..fd_infinity import FDInfinityResult
from ..prdc import PRDCResult

__all__ = ["TorchMetricsAdapter"]

#: Whether a larger value is better, by the wrapped class's name (``None``: several values).
_HIGHER_IS_BETTER = {"FID": False, "FD": False, "FDInfinity": False, "KID": False, "MMD": False,
                     "CMMD": False, "InceptionScore": True, "PRDC": None}


class TorchMetricsAdapter(Metric):
    r"""A ``torchmetrics.Metric`` that runs an otmetrics streaming metric.

    ``update``, ``compute`` and ``reset`` are the wrapped object's; ``compute`` returns float64
    tensors on the adapter's device: a 0-d tensor for one value (FD, FID, CMMD, MMD,
    FD-infinity's ``value``), a dict ``{"mean", "std"}`` for KID and the Inception Score, a dict
    ``{"precision", "recall", "density", "coverage"}`` for PRDC, or the entry ``output`` of that
    dict. Works in ``torchmetrics.MetricCollection`` and with Lightning's ``self.log`` /
    ``self.log_dict``.

    Parameters
    ----------
    metric : FD, FID, FDInfinity, CMMD, PRDC, KID, MMD or InceptionScore
        The otmetrics object (its extractor, device, distributed settings and options are its
        own).
    output : str, optional
        Return only this entry of a multi-valued result (e.g. ``"precision"``, ``"mean"``): one
        scalar, as ``self.log(name, adapter)`` needs.

    Notes
    -----
    - **Synchronisation** is the wrapped object's: its ``compute`` combines the states of all
      ``torch.distributed`` ranks (a collective: every rank calls it, as Lightning does at the
      end of an epoch). The adapter registers no torchmetrics state and turns torchmetrics' own
      synchronisation off, so nothing is gathered twice; ``MetricCollection`` never puts it in a
      compute group with another metric (groups need registered states).
    - **forward** (``adapter(batch, real=...)``) only updates and returns ``None``: these metrics
      are defined on whole sets, a per-batch value would be meaningless and expensive.
    - **Devices**: the wrapped object keeps its own ``device`` (give ``device=`` when building it);
      moving the adapter with ``.to()`` moves neither its extractor nor its state.
    - ``reset`` follows the wrapped object's rules (e.g. ``reset_real=False`` keeps the real
      statistics; fixed ``real_stats`` are always kept). ``merge_state`` accepts another adapter
      or an otmetrics object and calls ``merge``.

    Examples
    --------
    >>> import torch
    >>> from torchmetrics import MetricCollection
    >>> from otmetrics import FD, PRDC, TorchMetricsAdapter
    >>> metrics = MetricCollection({"fd": TorchMetricsAdapter(FD()),
    ...                             "prdc": TorchMetricsAdapter(PRDC(k=3))})
    >>> gen = torch.Generator().manual_seed(0)
    >>> for _ in range(3):
    ...     metrics.update(torch.randn(50, 4, generator=gen), real=True)
    ...     metrics.update(torch.randn(50, 4, generator=gen) + 0.5, real=False)
    >>> values = metrics.compute()
    >>> sorted(values)
    ['coverage', 'density', 'fd', 'precision', 'recall']
    >>> bool(values["fd"] > 0.5)
    True
    """

    full_state_update = False
    is_differentiable = False

    def __init__(self, metric, *, output: str | None = None):
        super().__init__(sync_on_compute=False, dist_sync_on_step=False)
        for method in ("update", "compute", "reset", "merge"):
            if not callable(getattr(metric, method, None)):
                raise ValueError(f"metric: expected an otmetrics streaming metric (update, compute, reset, "
                                 f"merge), got {type(metric).__name__}")
        if output is not None and not isinstance(output, str):
            raise ValueError(f"output: must be the name of an entry of the result, got {output!r}")
        self.metric = metric
        self.output = output
        # A class constant in torchmetrics (read by MetricTracker); per instance here, by the metric.
        self.__dict__["higher_is_better"] = _HIGHER_IS_BETTER.get(type(metric).__name__)

    def update(self, *args, **kwargs) -> None:
        """The wrapped object's ``update``."""
        self.metric.update(*args, **kwargs)

    def compute(self):
        """The wrapped object's ``compute``, as float64 tensors (see the class)."""
        value = self.metric.compute()
        if isinstance(value, PRDCResult):
            value = value.as_dict()
        elif isinstance(value, FDInfinityResult):
            value = value.value
        elif isinstance(value, tuple):
            value = dict(zip(("mean", "std"), value))
        if isinstance(value, dict):
            value = {key: self._tensor(v) for key, v in value.items()}
            if self.output is not None:
                if self.output not in value:
                    raise ValueError(f"output: {type(self.metric).__name__} gives {', '.join(value)}, got "
                                     f"{self.output!r}")
                return value[self.output]
            return value
        if self.output is not None:
            raise ValueError(f"output: {type(self.metric).__name__} gives one value, got {self.output!r}")
        return self._tensor(value)

    def _tensor(self, value):
        return torch.as_tensor(float(value), dtype=torch.float64, device=self.device)

    def reset(self) -> None:
        """torchmetrics' reset and the wrapped object's."""
        super().reset()
        self.metric.reset()

    def forward(self, *args, **kwargs):
        """Update only (set-level metrics have no meaningful per-batch value); returns ``None``."""
        self.update(*args, **kwargs)
        return None

    def merge_state(self, incoming_state) -> None:
        """Merge another adapter's (or otmetrics object's) state into this one."""
        other = incoming_state.metric if isinstance(incoming_state, TorchMetricsAdapter) else incoming_state
        self.metric.merge(other)
        self._computed = None
