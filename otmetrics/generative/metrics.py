"""Streaming metric objects: FID, KID, Inception Score and MMD over batches, processes and ranks.

Each object accumulates a state with :meth:`update`, returns the metric with :meth:`compute`,
forgets with :meth:`reset` and absorbs another object's state with :meth:`merge`. When
``torch.distributed`` is initialised, :meth:`compute` combines the states of all ranks first
(a collective: every rank must call it): :class:`FID` all-reduces ``float64`` Gaussian statistics
(``O(d^2)`` per rank, whatever the number of images); :class:`KID`, :class:`InceptionScore` and
:class:`MMD` all-gather their stored rows, concatenated in rank order. The local state is not
changed by the synchronisation: updates can continue after a :meth:`compute`.

Batches are feature vectors ``(B, d)`` when ``feature_extractor`` is ``None``; otherwise they are
whatever the extractor takes (e.g. images ``(B, 3, H, W)``), and its output, flattened to
``(B, d)``, is the feature vector. ``feature_extractor="inception"`` builds the FID InceptionV3
(:class:`otmetrics.FIDInceptionV3`, which needs its weight file).

:class:`FID` is :class:`otmetrics.FD` (in :mod:`otmetrics.generative.fd_metrics`) restricted to
the Inception features. The machinery the four classes share (feature extraction, devices, the
distributed switch, the row buffers) is in :mod:`otmetrics.generative.streaming`.
"""

from __future__ import annotations

import numpy as np

from .._core.validation import validate_positive
from .fd_metrics import FD
from .inception_score import inception_score
from .kid import kid, kid_values, validate_subset_size
from .mmd import mmd, mmd_float64
from .streaming import RowBuffer, StreamingMetric, TwoSetRowsMetric, check_bool, require_rows

__all__ = ["FID", "KID", "InceptionScore", "MMD"]


# ------------------------------------------------------------------------------------------------
# FID
# ------------------------------------------------------------------------------------------------
class FID(FD):
    r"""Streaming Fréchet Inception Distance: Gaussian statistics of real and generated features.

    :class:`otmetrics.FD` on the features of the FID InceptionV3 (the only name it accepts is
    ``"inception"``; :class:`otmetrics.FD` takes any extractor). :meth:`compute` returns
    :func:`otmetrics.frechet_distance` of the two accumulated Gaussians,
    :math:`\lVert \mu_r - \mu_g \rVert^2 + \operatorname{tr}\big(\Sigma_r + \Sigma_g
    - 2 (\Sigma_r^{1/2} \Sigma_g \Sigma_r^{1/2})^{1/2}\big)`, as a Python float (not
    differentiable: an evaluation metric).

    Parameters
    ----------
    feature_extractor : None, "inception", torch.nn.Module or callable, optional
        ``None``: batches are feature vectors ``(B, d)``. A module or callable maps a batch (e.g.
        images) to features ``(B, ...)``, flattened to ``(B, d)``; it runs under
        ``torch.no_grad()``, and a module is put in ``eval()`` mode (and moved to ``device`` if
        given). ``"inception"``: the FID InceptionV3 with its standard weights (pool3, 2048-d).
    real_stats : GaussianStats, str or path, optional
        Precomputed statistics of the real set (e.g. a pytorch-fid ``.npz``): they are fixed,
        ``update(..., real=True)`` is then an error, :meth:`reset` keeps them, and they are not
        combined across ranks (every rank has them).
    reset_real : bool, default True
        ``False``: :meth:`reset` forgets only the generated samples (evaluate a model during
        training against real statistics accumulated once).
    device : str or torch.device, optional
        Where the extractor runs and the ``float64`` statistics live (default: the extractor's
        device, else the first batch's).
    sync : bool, default True
        Combine the statistics of all ``torch.distributed`` ranks in :meth:`compute`.
    process_group : optional
        The ``torch.distributed`` group to combine over (default: the whole world).
    extractor_kwargs : dict, optional
        Keyword arguments of the InceptionV3 built for ``"inception"``, e.g.
        ``{"weights": "pt_inception-2015-12-05-6726825d.pth"}``.

    Notes
    -----
    Memory ``O(d^2)`` per set (``float64``), whatever the number of images; each update costs
    ``O(B d^2)`` (see :class:`~otmetrics.GaussianStats`). In distributed mode :meth:`compute` sums
    the statistics of all ranks with two all-reduces (``d + 1`` and ``d^2`` numbers): FID over
    50,000 images on 8 GPUs is one call and equals the single-process value up to rounding.
    :meth:`merge` never combines fixed real statistics: it refuses another object's real samples
    when this object's real statistics are fixed, and different fixed statistics.

    References
    ----------
    Heusel, Ramsauer, Unterthiner, Nessler and Hochreiter, "GANs trained by a two time-scale
    update rule converge to a local Nash equilibrium", NeurIPS 2017. Chan, Golub and LeVeque,
    "Algorithms for computing the sample variance", The American Statistician 37 (1983).

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import FID
    >>> rng = np.random.default_rng(0)
    >>> fid = FID()                                    # batches are feature vectors
    >>> for _ in range(4):
    ...     fid.update(rng.normal(size=(250, 8)), real=True)
    ...     fid.update(rng.normal(size=(250, 8)) + 0.5, real=False)
    >>> round(fid.compute(), 1)                        # about |0.5 * 1|^2 * 8 = 2
    2.0
    """

    extractor_names = ("inception",)
    extractor_hint = " (otmetrics.FD takes any extractor)"


# ------------------------------------------------------------------------------------------------
# Feature-storing metrics
# ------------------------------------------------------------------------------------------------
class KID(TwoSetRowsMetric):
    r"""Streaming Kernel Inception Distance: stores features, computes :func:`otmetrics.kid`.

    :meth:`compute` returns ``(mean, std)`` over random subsets of the unbiased MMD² with the
    kernel :math:`k(a, b) = (a \cdot b / d + 1)^3`, as Python floats (float64 arithmetic; not
    differentiable).

    Parameters
    ----------
    feature_extractor, device, sync, process_group, reset_real, extractor_kwargs :
        As in :class:`otmetrics.FD` (any registered extractor name: KID on DINOv2 features is
        dgm-eval's "KD").
    subsets, subset_size, degree, gamma, coef0, seed :
        As in :func:`otmetrics.kid`. The subsets are drawn from the rows in the order of
        updates (in distributed mode: rank 0's rows, then rank 1's, ...), so a fixed seed gives
        the same value in one process and on several ranks fed the same rows.

    Notes
    -----
    Memory ``O(N d)``: the features are kept (in the dtype the extractor returns) on the metric's
    device and handed to :func:`otmetrics.kid` as they are (float32 rows are not copied to
    float64); in distributed mode every rank receives all rows at :meth:`compute`. Time as
    :func:`otmetrics.kid`: ``O(subsets s^2 d)`` for subsets of ``s`` rows.

    References
    ----------
    Bińkowski, Sutherland, Arbel and Gretton, "Demystifying MMD GANs", ICLR 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import KID
    >>> rng = np.random.default_rng(0)
    >>> metric = KID(subsets=10, subset_size=200)
    >>> metric.update(rng.normal(size=(400, 16)), real=True)
    >>> metric.update(rng.normal(size=(400, 16)) + 1.0, real=False)
    >>> mean, std = metric.compute()
    >>> mean > 10 * std
    True
    """

    def __init__(self, feature_extractor=None, *, subsets: int = 100, subset_size: int = 1000,
                 degree: int = 3,
                 gamma=None, coef0: float = 1, seed: int = 0, reset_real: bool = True, device=None,
                 sync: bool = True, process_group=None, extractor_kwargs: dict | None = None):
        super().__init__(feature_extractor, device, sync, process_group, reset_real,
                         extractor_kwargs=extractor_kwargs)
        self.options = dict(subsets=subsets, subset_size=subset_size, degree=degree, gamma=gamma, coef0=coef0,
                            seed=seed)
        # Validate the options now rather than at the end of a long evaluation (the probe has
        # 2 rows: subset_size is checked on its own).
        validate_subset_size(subset_size)
        probe = np.array([[0.0], [1.0]])
        kid(probe, probe, **{**self.options, "subset_size": 2})

    def compute(self) -> tuple[float, float]:
        """``(mean, std)`` of the KID over all rows seen (all ranks in distributed mode)."""
        real, fake = self.gather_rows()
        # The rows as they are (float32 stays float32: kid converts each subset to float64, no
        # full-size copy); the float64 values, never rounded to the rows' dtype.
        values = kid_values(real, fake, **self.options)
        return float(values.mean()), float(values.std(correction=0))


class MMD(TwoSetRowsMetric):
    r"""Streaming MMD²: stores features, computes :func:`otmetrics.mmd`.

    :meth:`compute` returns the MMD² estimate
    :math:`\mathbb E\,k(x, x') + \mathbb E\,k(y, y') - 2\,\mathbb E\,k(x, y)` between the
    real rows :math:`x` and the generated rows :math:`y`, as a Python float (float64
    arithmetic). Use :func:`otmetrics.mmd` directly for a differentiable loss.

    Parameters
    ----------
    feature_extractor, device, sync, process_group, reset_real, extractor_kwargs :
        As in :class:`otmetrics.FD`.
    kernel, bandwidth, estimator, degree, gamma, coef0 :
        As in :func:`otmetrics.mmd` (``x`` is the real set, ``y`` the generated one).

    Notes
    -----
    Memory ``O((m + n) d)`` for the stored rows; :meth:`compute` costs ``O((m + n)^2 d)`` in
    blocks (``O(n d)`` for ``estimator="linear"``), see :func:`otmetrics.mmd`.

    References
    ----------
    Gretton, Borgwardt, Rasch, Schölkopf and Smola, "A kernel two-sample test", JMLR 13 (2012).

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import MMD
    >>> rng = np.random.default_rng(0)
    >>> metric = MMD(kernel="gaussian", bandwidth=1.0)
    >>> metric.update(rng.normal(size=(300, 2)), real=True)
    >>> metric.update(rng.normal(size=(300, 2)) + 2.0, real=False)
    >>> metric.compute() > 0.5
    True
    """

    def __init__(self, feature_extractor=None, *, kernel: str = "gaussian", bandwidth=None,
                 estimator: str = "unbiased", degree=None, gamma=None, coef0=None, reset_real: bool = True,
                 device=None, sync: bool = True, process_group=None, extractor_kwargs: dict | None = None):
        super().__init__(feature_extractor, device, sync, process_group, reset_real,
                         extractor_kwargs=extractor_kwargs)
        self.options = dict(kernel=kernel, bandwidth=bandwidth, estimator=estimator, degree=degree,
                            gamma=gamma,
                            coef0=coef0)
        probe = np.array([[0.0], [1.0]])
        mmd(probe, probe + 1.0, **self.options)

    def compute(self) -> float:
        """The MMD² estimate over all rows seen (all ranks in distributed mode), as a float."""
        real, fake = self.gather_rows()
        return float(mmd_float64(real, fake, **self.options))  # float64 arithmetic, a float64 result


class InceptionScore(StreamingMetric):
    r"""Streaming Inception Score: stores class probabilities or logits for :func:`otmetrics.inception_score`.

    :meth:`compute` returns ``(mean, std)`` over contiguous splits of
    :math:`\exp\big(\frac{1}{|S|}\sum_{i \in S} \mathrm{KL}(p(y \mid x_i) \,\Vert\, \hat p_S(y))\big)`,
    the split boundaries being the original code's, as Python floats (not differentiable).

    Parameters
    ----------
    feature_extractor : None, "inception", torch.nn.Module or callable, optional
        ``None``: batches are rows of class probabilities (or logits, see ``from_logits``).
        A module/callable maps a batch of images to probabilities or logits ``(B, classes)``.
        ``"inception"``: the FID InceptionV3 returning its 1008 logits without bias
        (``output="logits_unbiased"``, the input of the original IS code); ``from_logits`` is
        then ``True``.
    splits : int, default 10
        Contiguous splits, in the order of updates (in distributed mode: rank 0's rows first).
    from_logits : bool, optional
        Whether the rows are logits (a float64 log-softmax is applied) rather than probabilities.
        Default: ``True`` for ``"inception"``, else ``False``.
    device, sync, process_group, extractor_kwargs :
        As in :class:`FID`.

    Notes
    -----
    Memory ``O(N C)`` for ``N`` stored rows of ``C`` classes; :meth:`compute` costs ``O(N C)``.

    References
    ----------
    Salimans, Goodfellow, Zaremba, Cheung, Radford and Chen, "Improved techniques for training
    GANs", NeurIPS 2016.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import InceptionScore
    >>> metric = InceptionScore(splits=2)
    >>> for _ in range(2):
    ...     metric.update(np.eye(5)[[0, 1, 2, 3, 4]])     # confident and diverse: IS = 5
    >>> mean, std = metric.compute()
    >>> round(mean, 9), std
    (5.0, 0.0)
    """

    extractor_names = ("inception",)

    def __init__(self, feature_extractor=None, *, splits: int = 10, from_logits: bool | None = None,
                 device=None, sync: bool = True, process_group=None, extractor_kwargs: dict | None = None):
        super().__init__(feature_extractor, device, sync, process_group, inception_output="logits_unbiased",
                         extractor_kwargs=extractor_kwargs)
        if from_logits is None:
            from_logits = isinstance(feature_extractor, str)
        self.from_logits = check_bool(from_logits, "from_logits")
        self.splits = int(validate_positive(splits, "splits", integer=True))
        self._rows = RowBuffer()

    def update(self, batch) -> None:
        """Add a batch of images (with an extractor) or of probability/logit rows."""
        self._rows.add(self.extract_features(batch), "batch")

    def compute(self) -> tuple[float, float]:
        """``(mean, std)`` of the Inception Score over all rows seen (all ranks in distributed mode)."""
        rows = require_rows(self._rows.gathered(self.distributed, self.process_group, "rows"), "rows")
        mean, std = inception_score(rows.double(), splits=self.splits, from_logits=self.from_logits)
        return float(mean), float(std)

    def reset(self) -> InceptionScore:
        """Forget every row."""
        self._rows.clear()
        return self

    def merge(self, other: InceptionScore) -> InceptionScore:
        """Append ``other``'s rows after this object's; returns ``self``."""
        if not isinstance(other, InceptionScore):
            raise ValueError(f"other: expected an InceptionScore object, got {type(other).__name__}")
        self._rows.extend(other._rows, "other")
        return self

    @property
    def n(self) -> int:
        """Rows stored (on this rank)."""
        return self._rows.n

    def __repr__(self) -> str:
        return f"InceptionScore(n={self.n}, splits={self.splits})"
