"""The machinery shared by the streaming metric objects of :mod:`otmetrics.generative.metrics`.

- :class:`StreamingMetric`: the base class, with the feature extraction (none, the FID
  InceptionV3 by name, or any module/callable), the device and the distributed switch;
- :class:`RowBuffer`: the growing buffer of feature rows of the row-storing metrics;
- :class:`TwoSetRowsMetric`: the base of the metrics that store a real and a generated set of rows
  (:class:`otmetrics.KID`, :class:`otmetrics.MMD`);
- :func:`check_bool`, :func:`check_same_extractor` and :func:`require_rows`: the checks they
  share.

The state of :class:`otmetrics.FID` is :class:`~otmetrics.GaussianStats`, whose ``sync`` does its
own distributed merge; the row buffers are all-gathered by :meth:`RowBuffer.gathered`.
"""

from __future__ import annotations

import numpy as np

from .._core.arrays import describe, is_tensor, to_numpy

__all__ = ["StreamingMetric", "RowBuffer", "TwoSetRowsMetric", "check_bool", "check_same_extractor",
           "require_rows"]


def check_bool(value, name: str) -> bool:
    """``value`` if it is ``True`` or ``False``; anything else raises ``ValueError`` naming ``name``.

    Examples
    --------
    >>> check_bool(True, "sync")
    True
    """
    if not isinstance(value, bool):
        raise ValueError(f"{name}: must be True or False, got {value!r}")
    return value


class StreamingMetric:
    """The base of the streaming metrics: feature extraction, device handling and the distributed
    switch.

    Parameters
    ----------
    feature_extractor : None, str, torch.nn.Module or callable
        ``None`` (batches are feature vectors); the name of a registered extractor
        (:func:`~otmetrics.generative.features.registry.extractor_names`: ``"inception"``,
        ``"dinov2-vitl14"``, ...), built by
        :func:`~otmetrics.generative.features.registry.build_extractor` with
        ``extractor_kwargs``; or a module or callable mapping a batch to features (a module is put
        in ``eval()`` mode and moved to ``device`` if given).
    device : str or torch.device, optional
        Where the extractor runs and the features are kept (default: the extractor's device, else
        each batch's own).
    sync : bool
        Whether :attr:`distributed` may be true: combine the states of all ranks in ``compute``.
    process_group : optional
        The ``torch.distributed`` group to combine over (default: the whole world).
    inception_output : str, default "pool3"
        The :class:`otmetrics.FIDInceptionV3` output that ``feature_extractor="inception"`` builds
        (unless ``extractor_kwargs`` names one).
    extractor_kwargs : dict, optional
        Keyword arguments of the named extractor, e.g. ``{"weights": "file.pth"}`` or
        ``{"pretrained": False}``; an error with a module or callable.

    Attributes
    ----------
    extractor_name : str or None
        The registered name the extractor was built from, ``None`` for a module, a callable or
        none: statistics and merges of different named extractors are refused.

    Examples
    --------
    >>> metric = StreamingMetric(None, None, True, None)
    >>> metric.extract_features([[1, 2], [3, 4]]).dtype, metric.distributed
    (torch.float64, False)
    """

    #: The registered names a subclass accepts (``None``: every one).
    extractor_names: tuple[str, ...] | None = None
    #: Said after refusing a name outside :attr:`extractor_names`.
    extractor_hint: str = ""
    #: Set from a registered name; ``None`` otherwise (and for objects pickled before it existed).
    extractor_name: str | None = None

    def __init__(self, feature_extractor, device, sync: bool, process_group, *,
                 inception_output: str = "pool3", extractor_kwargs: dict | None = None):
        import torch

        self._sync_enabled = check_bool(sync, "sync")
        self.process_group = process_group
        if isinstance(feature_extractor, str):
            feature_extractor = self._build_named(feature_extractor, inception_output, extractor_kwargs)
        elif extractor_kwargs is not None:
            raise ValueError("extractor_kwargs: only used to build a named feature_extractor, got "
                             f"{extractor_kwargs!r} with a {type(feature_extractor).__name__}")
        elif feature_extractor is not None and not callable(feature_extractor):
            raise ValueError("feature_extractor: must be None, a registered name, a torch.nn.Module or a "
                             f"callable, got {type(feature_extractor).__name__}")
        if device is not None:
            device = torch.device(device)
        if isinstance(feature_extractor, torch.nn.Module):
            if device is not None:
                feature_extractor = feature_extractor.to(device)
            else:
                param = next(iter(feature_extractor.parameters()), None)
                device = param.device if param is not None else None
            # Batch norm and dropout must not depend on the batch: evaluation mode.
            feature_extractor.eval()
        self.feature_extractor = feature_extractor
        self.device = device

    def _build_named(self, name: str, inception_output: str, extractor_kwargs):
        from .features.registry import build_extractor, extractor_entry

        allowed = type(self).extractor_names
        if allowed is not None and name not in allowed:
            raise ValueError(f"feature_extractor: {type(self).__name__} is defined on "
                             f"{' or '.join(repr(a) for a in allowed)} features, got {name!r}"
                             f"{type(self).extractor_hint}")
        extractor_entry(name)  # an unknown name: a ValueError listing the known ones
        if extractor_kwargs is not None and not isinstance(extractor_kwargs, dict):
            raise ValueError(f"extractor_kwargs: must be a dict, got {type(extractor_kwargs).__name__}")
        kwargs = dict(self.default_extractor_kwargs(name))
        if name == "inception":
            kwargs["output"] = inception_output
        kwargs.update(extractor_kwargs or {})
        self.extractor_name = name
        return build_extractor(name, **kwargs)

    def default_extractor_kwargs(self, name: str) -> dict:
        """Keyword arguments a subclass passes to the extractor ``name`` unless the caller's
        ``extractor_kwargs`` say otherwise (none here)."""
        return {}

    def extract_features(self, batch, name: str = "batch"):
        """The feature rows ``(B, d)`` of a batch, as a detached tensor on the metric's device.

        Without an extractor the batch is the features (``(B, d)``: arrays become ``float64``
        tensors, tensors keep their floating dtype); otherwise the extractor's output under
        ``torch.no_grad()``, flattened to ``(B, d)``. Integer features become ``float64``.
        Non-finite features raise ``ValueError`` naming ``name`` and the first bad row.
        """
        import torch

        if self.feature_extractor is None:
            if is_tensor(batch):
                feats = batch.detach()
            else:
                feats = torch.from_numpy(np.ascontiguousarray(to_numpy(batch, name)))
            if feats.ndim != 2:
                raise ValueError(f"{name}: expected feature vectors of shape (B, d) (no feature_extractor "
                                 f"was given), got {describe(feats)}")
        else:
            if not is_tensor(batch) and isinstance(batch, np.ndarray):
                batch = torch.from_numpy(np.ascontiguousarray(batch))  # uint8 images stay uint8
            if is_tensor(batch) and self.device is not None:
                batch = batch.to(self.device)
            with torch.no_grad():
                out = self.feature_extractor(batch)
            if isinstance(out, (tuple, list)):
                raise ValueError(f"feature_extractor: must return one tensor of features, got a "
                                 f"{type(out).__name__} of {len(out)} items")
            if not is_tensor(out):
                out = torch.from_numpy(np.ascontiguousarray(to_numpy(out, "feature_extractor output")))
            if out.ndim == 0:
                raise ValueError(f"feature_extractor: must return one row per input, got {describe(out)}")
            feats = out.detach().reshape(out.shape[0], -1)
        if self.device is not None:
            feats = feats.to(self.device)
        if not feats.is_floating_point():
            feats = feats.to(torch.float64)
        if not bool(torch.isfinite(feats).all()):
            bad = int((~torch.isfinite(feats).all(1)).nonzero()[0, 0])
            raise ValueError(f"{name}: features must be finite, got NaN or infinity in row {bad}")
        return feats

    @property
    def distributed(self) -> bool:
        """Whether ``compute`` combines the states of several ``torch.distributed`` ranks now
        (``sync`` is on and the process group has more than one rank)."""
        from .._core.distributed import world_size

        return self._sync_enabled and world_size(self.process_group) > 1


class RowBuffer:
    """A growing list of feature rows (one tensor per update), with a fixed width: the state of the
    row-storing metrics (KID, MMD, Inception Score).

    Attributes
    ----------
    chunks : list of torch.Tensor
        The stored ``(B, d)`` tensors, in the order they were added (not copied).
    dim : int or None
        The width ``d`` (``None`` until the first non-empty batch).

    Examples
    --------
    >>> import torch
    >>> rows = RowBuffer()
    >>> rows.add(torch.zeros(2, 3), "batch")
    >>> rows.add(torch.ones(1, 3, dtype=torch.float64), "batch")
    >>> rows.n, rows.cat().dtype
    (3, torch.float64)
    """

    def __init__(self):
        self.chunks: list = []
        self.dim: int | None = None

    def add(self, rows, name: str):
        """Append a ``(B, d)`` tensor (an empty one is ignored); a different width raises
        ``ValueError`` naming ``name``."""
        if rows.shape[0] == 0:
            return
        if self.dim is not None and rows.shape[1] != self.dim:
            raise ValueError(f"{name}: expected feature vectors of dimension {self.dim}, got {rows.shape[1]}")
        self.dim = int(rows.shape[1])
        self.chunks.append(rows)

    @property
    def n(self) -> int:
        """The number of rows stored."""
        return sum(int(c.shape[0]) for c in self.chunks)

    def cat(self):
        """All rows in one tensor, on the first chunk's device, in the widest dtype present
        (chunks can differ in both: batches from different devices, merged objects). The
        result is read, never modified: a single chunk is returned as it is. ``None`` when empty."""
        import torch

        if not self.chunks:
            return None
        device = self.chunks[0].device
        dtype = self.chunks[0].dtype
        for c in self.chunks[1:]:
            dtype = torch.promote_types(dtype, c.dtype)
        chunks = [c.to(device=device, dtype=dtype) for c in self.chunks]
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)  # one chunk: no copy

    def extend(self, other: RowBuffer, name: str):
        """Append ``other``'s chunks after this buffer's (the tensors are shared, not copied)."""
        if other.dim is not None and self.dim is not None and other.dim != self.dim:
            raise ValueError(f"{name}: feature dimensions differ, got {other.dim} and {self.dim}")
        for c in other.chunks:
            self.add(c, name)

    def gathered(self, distributed: bool, group, name: str):
        """:meth:`cat`, or with ``distributed`` the rows of every rank of ``group`` in rank order
        (a collective: every rank must call it). ``None`` when there is no row at all."""
        rows = self.cat()
        if not distributed:
            return rows
        from .._core.distributed import all_gather_rows

        return all_gather_rows(rows, group, name=name)

    def clear(self):
        """Forget every row (the width is kept)."""
        self.chunks = []


def check_same_extractor(mine, other) -> None:
    """Refuse to combine the states of two metrics built from different named extractors.

    Examples
    --------
    >>> a, b = StreamingMetric(None, None, True, None), StreamingMetric(None, None, True, None)
    >>> check_same_extractor(a, b)   # neither built from a name: nothing to compare
    """
    names = (getattr(mine, "extractor_name", None), getattr(other, "extractor_name", None))
    if None not in names and names[0] != names[1]:
        raise ValueError(f"other: computed on the features of another extractor, got {names[1]!r} and "
                         f"{names[0]!r} (this object's)")


def require_rows(rows, name: str, minimum: int = 2):
    """``rows`` (a tensor or ``None``), checked to hold at least ``minimum`` rows.

    Examples
    --------
    >>> require_rows(None, "real")
    Traceback (most recent call last):
    ...
    ValueError: real: need at least 2 samples, got 0
    """
    n = 0 if rows is None else int(rows.shape[0])
    if n < minimum:
        raise ValueError(f"{name}: need at least {minimum} samples, got {n}")
    return rows


class TwoSetRowsMetric(StreamingMetric):
    """The base of the metrics that store the feature rows of a real and a generated set (KID,
    MMD): ``update``, ``reset``, ``merge`` and :meth:`gather_rows` for their ``compute``.

    Parameters
    ----------
    feature_extractor, device, sync, process_group :
        As in :class:`StreamingMetric`.
    reset_real : bool
        Whether :meth:`reset` forgets the real rows too.
    extractor_kwargs : dict, optional
        As in :class:`StreamingMetric`.
    """

    def __init__(self, feature_extractor, device, sync, process_group, reset_real, *, extractor_kwargs=None):
        super().__init__(feature_extractor, device, sync, process_group, extractor_kwargs=extractor_kwargs)
        self.reset_real = check_bool(reset_real, "reset_real")
        self._real = RowBuffer()
        self._fake = RowBuffer()

    def update(self, batch, *, real: bool) -> None:
        """Add a batch of real (``real=True``) or generated (``real=False``) samples."""
        check_bool(real, "real")
        feats = self.extract_features(batch)
        other = self._fake if real else self._real
        if other.dim is not None and feats.shape[1] != other.dim:
            raise ValueError(f"batch: expected feature vectors of dimension {other.dim} (as the "
                             f"{'generated' if real else 'real'} ones), got {feats.shape[1]}")
        (self._real if real else self._fake).add(feats, "batch")

    def gather_rows(self):
        """``(real, fake)``: the rows of all ranks in distributed mode (a collective), else this
        object's; each set must hold at least 2 rows."""
        distributed = self.distributed
        real = self._real.gathered(distributed, self.process_group, "real")
        fake = self._fake.gathered(distributed, self.process_group, "fake")
        return require_rows(real, "real"), require_rows(fake, "fake")

    def reset(self):
        """Forget the generated samples, and the real ones unless ``reset_real=False``."""
        self._fake.clear()
        if self.reset_real:
            self._real.clear()
        return self

    def merge(self, other):
        """Append ``other``'s samples (both sets) after this object's; returns ``self``."""
        if type(other) is not type(self):
            raise ValueError(f"other: expected a {type(self).__name__} object, got {type(other).__name__}")
        check_same_extractor(self, other)
        self._real.extend(other._real, "other")
        self._fake.extend(other._fake, "other")
        return self

    @property
    def n_real(self) -> int:
        """Real samples stored (on this rank)."""
        return self._real.n

    @property
    def n_fake(self) -> int:
        """Generated samples stored (on this rank)."""
        return self._fake.n

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_real={self.n_real}, n_fake={self.n_fake})"


# The name of RowBuffer in otmetrics 0.1: KID, MMD and InceptionScore objects pickled by 0.1 refer to
# otmetrics.metrics._Rows, which the stand-in module of that path finds here (see _core/legacy.py).
_Rows = RowBuffer
