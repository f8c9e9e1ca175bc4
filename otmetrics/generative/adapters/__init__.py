"""Adapters of the streaming metrics to other frameworks, loaded on first use (they import their
framework, and torch, at import time): :mod:`.torchmetrics_adapter` (``torchmetrics.Metric``, for
``MetricCollection`` and Lightning)."""
