r"""Streaming CMMD and precision/recall/density/coverage: :class:`CMMD`, :class:`PRDC`.

Both keep the feature rows of the real and the generated set (they need every pair), as
:class:`otmetrics.KID` does, and compute :func:`otmetrics.cmmd` and :func:`otmetrics.prdc` on
them; in distributed mode the rows of all ranks are gathered in rank order first, so the value
equals the one-process value on the same rows.
"""

from __future__ import annotations

import dataclasses

from .._core.validation import validate_positive
from .cmmd import cmmd
from .prdc import BALLS, PRDCResult, prdc, validate_k
from .streaming import TwoSetRowsMetric

__all__ = ["CMMD", "PRDC"]


class CMMD(TwoSetRowsMetric):
    r"""Streaming CMMD: stores embeddings, computes :func:`otmetrics.cmmd` (``1000 MMD²``, Gaussian
    kernel of bandwidth 10, biased estimator).

    Parameters
    ----------
    feature_extractor : None, str, torch.nn.Module or callable, optional
        As in :class:`otmetrics.FD`. The CMMD of Jayasumana et al. is
        ``"clip-vit-l-14-336px"``: for every ``clip-*`` name the embeddings are L2-normalised, as
        the reference's CLIP model returns them (``extractor_kwargs={"normalize": False}``
        turns it off). Other extractors, modules and callables are used as they are.
    reset_real, device, sync, process_group, extractor_kwargs :
        As in :class:`otmetrics.FD`.
    chunk_size : int, optional
        Rows per block of the kernel sums (see :func:`otmetrics.mmd`).

    Notes
    -----
    Memory ``O((m + n) d)`` for the stored rows; :meth:`compute` costs ``O((m + n)^2 d)`` in
    float64 blocks. Every image counts: the reference drops the images after the last full batch
    of 32 (see :func:`otmetrics.cmmd`).

    References
    ----------
    Jayasumana et al., "Rethinking FID: towards a better evaluation metric for image
    generation", CVPR 2024.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import CMMD, cmmd
    >>> rng = np.random.default_rng(0)
    >>> real, fake = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 0.5
    >>> metric = CMMD()                                    # batches are embeddings
    >>> for batch in np.array_split(real, 3):
    ...     metric.update(batch, real=True)
    >>> metric.update(fake, real=False)
    >>> bool(np.isclose(metric.compute(), cmmd(real, fake), rtol=1e-12))
    True
    """

    def __init__(self, feature_extractor=None, *, reset_real: bool = True, device=None, sync: bool = True,
                 process_group=None, extractor_kwargs: dict | None = None, chunk_size: int | None = None):
        super().__init__(feature_extractor, device, sync, process_group, reset_real,
                         extractor_kwargs=extractor_kwargs)
        if chunk_size is not None:
            validate_positive(chunk_size, "chunk_size", integer=True)
        self.chunk_size = chunk_size

    def default_extractor_kwargs(self, name: str) -> dict:
        """``normalize=True`` for the ``clip-*`` extractors (the reference's embeddings are unit
        vectors)."""
        return {"normalize": True} if name.startswith("clip-") else {}

    def compute(self) -> float:
        """CMMD between all rows seen (all ranks in distributed mode), as a float."""
        real, fake = self.gather_rows()
        return float(cmmd(real.detach(), fake.detach(), chunk_size=self.chunk_size))


class PRDC(TwoSetRowsMetric):
    r"""Streaming precision, recall, density and coverage: stores features, computes
    :func:`otmetrics.prdc`.

    :meth:`compute` returns a :class:`~otmetrics.PRDCResult` whose four values are Python floats.

    Parameters
    ----------
    feature_extractor, reset_real, device, sync, process_group, extractor_kwargs :
        As in :class:`otmetrics.FD` (Naeem et al. used VGG16 features; dgm-eval uses DINOv2
        ViT-L/14, ``"dinov2-vitl14"``).
    k, ball, chunk_size :
        As in :func:`otmetrics.prdc`.

    Notes
    -----
    Memory ``O((m + n) d)`` for the stored rows (in the extractor's dtype: float32 features are
    compared in float32, with exact decisions at ties); :meth:`compute` costs as
    :func:`otmetrics.prdc`. Merging objects, or ranks, gives exactly the one-process value: the
    result depends only on the sets of rows.

    References
    ----------
    Kynkäänniemi et al., NeurIPS 2019; Naeem et al., ICML 2020.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import PRDC, prdc
    >>> rng = np.random.default_rng(0)
    >>> real, fake = rng.normal(size=(400, 8)), rng.normal(size=(400, 8))
    >>> metric = PRDC(k=5)
    >>> metric.update(real, real=True)
    >>> for batch in np.array_split(fake, 4):
    ...     metric.update(batch, real=False)
    >>> metric.compute().as_dict() == prdc(real, fake, k=5).as_dict()
    True
    """

    def __init__(self, feature_extractor=None, *, k: int = 5, ball: str = "open", reset_real: bool = True,
                 device=None, sync: bool = True, process_group=None, extractor_kwargs: dict | None = None,
                 chunk_size: int | None = None):
        super().__init__(feature_extractor, device, sync, process_group, reset_real,
                         extractor_kwargs=extractor_kwargs)
        if ball not in BALLS:
            raise ValueError(f"ball: must be 'open' or 'closed', got {ball!r}")
        if chunk_size is not None:
            validate_positive(chunk_size, "chunk_size", integer=True)
        self.options = dict(k=validate_k(k), ball=ball, chunk_size=chunk_size)

    def compute(self) -> PRDCResult:
        """Precision, recall, density and coverage of all rows seen (all ranks in distributed
        mode)."""
        real, fake = self.gather_rows()
        result = prdc(real, fake, **self.options)
        return dataclasses.replace(result, **{name: float(value) for name, value in result.as_dict().items()})
