r"""The Inception Score of Salimans et al. (2016) from class probabilities or logits.

.. math::

    \mathrm{IS} = \exp\Big(\frac{1}{N} \sum_{i=1}^{N}
                  \mathrm{KL}\big(p(y \mid x_i) \,\big\Vert\, \hat p(y)\big)\Big),
    \qquad \hat p(y) = \frac{1}{N} \sum_{i=1}^{N} p(y \mid x_i),

computed on each of ``splits`` contiguous parts of the samples; the result is the mean and the
standard deviation (``ddof=0``) of the per-split scores, as in the original code.
"""

from __future__ import annotations

import numpy as np

from .._core.arrays import as_like
from .._core.validation import validate_array, validate_positive

__all__ = ["inception_score"]

# Rows of probabilities must sum to 1 within this tolerance (float32 softmax outputs sum to
# 1 +- 1e-6 over 1008 classes); they are then renormalised in float64.
_SUM_ATOL = 1e-3


def _log_probs(probs, from_logits: bool):
    """Validated ``(N, C)`` log-probabilities in float64 (torch, on the input's device, detached)."""
    import torch

    name = "probs"
    t = validate_array(probs, name, ndim=2, what="logits" if from_logits else "probabilities")
    t = t.detach().to(torch.float64) if torch.is_tensor(t) else torch.from_numpy(np.ascontiguousarray(t))
    if t.shape[1] < 2:
        raise ValueError(f"{name}: need at least 2 classes, got {t.shape[1]}")
    if from_logits:
        return torch.log_softmax(t, dim=1)
    low = float(t.min())
    if low < 0 or float(t.max()) > 1:
        raise ValueError(f"{name}: probabilities must lie in [0, 1], got values in "
                         f"[{low:.6g}, {float(t.max()):.6g}] "
                         "(pass from_logits=True for logits)")
    sums = t.sum(1)
    worst = float((sums - 1).abs().max())
    if worst > _SUM_ATOL:
        raise ValueError(f"{name}: each row must sum to 1, got a row summing to "
                         f"{float(sums[(sums - 1).abs().argmax()]):.6g} (pass from_logits=True for logits)")
    t = t / sums[:, None]
    return torch.log(t)  # log 0 = -inf, handled as 0 * log 0 = 0 below


def _split_bounds(n: int, splits: int) -> list[int]:
    """The row boundaries of the ``splits`` contiguous parts of ``n`` rows, as the original code
    takes them: part ``i`` is rows ``[i n // splits, (i + 1) n // splits)``.

    Every row is used; the sizes differ by at most one, the smaller parts first.

    >>> _split_bounds(23, 4)
    [0, 5, 11, 17, 23]
    """
    return [(i * n) // splits for i in range(splits + 1)]


def inception_score(probs, *, splits: int = 10, from_logits: bool = False):
    r"""The Inception Score: mean and standard deviation over contiguous splits.

    Split ``i`` (of ``splits``) is the rows ``[i N // splits, (i + 1) N // splits)``, exactly the
    slices of the original code: every row is used, sizes differ by at most one. For each split
    :math:`S`,

    .. math::

        \mathrm{IS}_S = \exp\Big(\frac{1}{|S|} \sum_{i \in S} \sum_y p(y \mid x_i)
                        \big(\log p(y \mid x_i) - \log \hat p_S(y)\big)\Big),
        \qquad \hat p_S = \frac{1}{|S|} \sum_{i \in S} p(\cdot \mid x_i);

    the result is ``(mean, std)`` of the ``IS_S`` with ``ddof=0``, as in the original code of
    Salimans et al. ``IS`` lies in ``[1, classes]``: 1 when every row is the same distribution,
    the number of classes for confident, evenly spread predictions.

    Parameters
    ----------
    probs : array-like or tensor, shape (N, classes)
        Class probabilities :math:`p(y \mid x_i)` (rows in [0, 1] summing to 1 within ``1e-3``;
        they are renormalised in float64), or logits with ``from_logits=True`` (for the FID
        InceptionV3, ``output="logits_unbiased"``, the original code's input).
    splits : int, default 10
        Number of contiguous parts; ``1 <= splits <= N``.
    from_logits : bool, default False
        Read ``probs`` as unnormalised logits (a log-softmax in float64 is applied: more accurate
        than the probabilities for confident predictions).

    Returns
    -------
    (mean, std) : tuple of float, or of 0-d tensors (input dtype and device) for tensor input.
        Not differentiable: the score is an evaluation metric, computed from the detached
        input, and the returned tensors do not require grad.

    Raises
    ------
    ValueError
        Not 2-D, fewer than 2 samples or classes, NaN/infinite values, probabilities outside
        [0, 1] or rows not summing to 1, ``splits`` not in ``[1, N]``.

    Notes
    -----
    ``O(N C)`` time and memory, in float64, with :math:`0 \log 0 = 0`. The splits are those of the
    original code for every ``N`` (``N = 23, splits = 4`` gives parts of 5, 6, 6 and 6 rows).
    torch-fidelity and torchmetrics shuffle the rows before splitting (torchmetrics without a
    seed), so their std differs from the original's; the mean over splits is close in all of
    them.

    References
    ----------
    Salimans, Goodfellow, Zaremba, Cheung, Radford and Chen, "Improved techniques for training
    GANs", NeurIPS 2016. Barratt and Sharma, "A note on the Inception Score", 2018.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import inception_score
    >>> confident = np.eye(4)[[0, 1, 2, 3] * 5]        # 20 samples, each sure of one of 4 classes
    >>> inception_score(confident, splits=5)            # every split sees all 4 classes evenly
    (4.0, 0.0)
    >>> inception_score(np.full((20, 4), 0.25), splits=2)[0]  # no confidence: the minimum, 1
    1.0
    """
    import torch

    if not isinstance(from_logits, bool):
        raise ValueError(f"from_logits: must be True or False, got {from_logits!r}")
    logp = _log_probs(probs, from_logits)
    n = logp.shape[0]
    if n < 2:
        raise ValueError(f"probs: need at least 2 samples, got {n}")
    validate_positive(splits, "splits", integer=True)
    if splits > n:
        raise ValueError(f"splits: must be at most the number of samples ({n}), got {splits!r}")
    p = logp.exp()
    zero = torch.zeros((), dtype=p.dtype, device=p.device)
    # sum_y p log p per row, with 0 log 0 = 0.
    plogp = torch.where(p > 0, p * logp, zero).sum(1)
    bounds = _split_bounds(n, int(splits))
    scores = []
    for start, stop in zip(bounds[:-1], bounds[1:]):
        marginal = p[start:stop].mean(0)
        log_marginal = torch.where(marginal > 0, marginal.log(), zero)
        # mean_i KL(p_i || marginal) = mean_i sum p_i log p_i - sum_y marginal log marginal
        kl = plogp[start:stop].mean() - (marginal * log_marginal).sum()
        scores.append(float(torch.exp(kl.clamp_min(0.0))))
    values = np.array(scores)
    mean, std = float(values.mean()), float(values.std())
    return as_like(mean, probs), as_like(std, probs)
