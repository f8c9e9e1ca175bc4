r"""The Inception Score of Salimans et al. (2016) from class probabilities or logits.

.. math::

    \mathrm{IS} = \exp\Big(\frac{1}{N} \sum_{i=1}^{N}
                  \mathrm{KL}\big(p(y \mid x_i) \,\big\Vert\, \hat p(y)\big)\Big),
    \qquad \hat p(y) = \frac{1}{N} \sum_{i=1}^{N} p(y \mid x_i),

computed on each of ``splits`` contiguous parts of the samples; the result is the mean and the
standard deviation (``ddof=0``) of the per-split scores, as in the original code.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._array import describe, is_tensor, to_numpy

__all__ = ["inception_score"]

# Rows of probabilities must sum to 1 within this tolerance (float32 softmax outputs sum to
# 1 +- 1e-6 over 1008 classes); they are then renormalised in float64.
_SUM_ATOL = 1e-3


def _log_probs(probs, from_logits: bool):
    """Validated ``(N, C)`` log-probabilities in float64 (torch, on the input's device)."""
    import torch

    name = "probs"
    if is_tensor(probs):
        if probs.is_complex():
            raise ValueError(f"{name}: complex values are not supported, got dtype {probs.dtype}")
        t = probs.detach().to(torch.float64)
    else:
        t = torch.from_numpy(np.ascontiguousarray(to_numpy(probs, name)))
    if t.ndim != 2:
        raise ValueError(f"{name}: expected an array of shape (N, classes), got {describe(t)}")
    if t.shape[1] < 2:
        raise ValueError(f"{name}: need at least 2 classes, got {t.shape[1]}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name}: values must be finite, got NaN or infinity")
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


def inception_score(probs, *, splits: int = 10, from_logits: bool = False):
    r"""The Inception Score: mean and standard deviation over contiguous splits.

    For each split :math:`S` (contiguous rows, sizes differing by at most one),

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

    Raises
    ------
    ValueError
        Not 2-D, fewer than 2 samples or classes, NaN/infinite values, probabilities outside
        [0, 1] or rows not summing to 1, ``splits`` not in ``[1, N]``.

    Notes
    -----
    ``O(N C)`` time and memory, in float64, with :math:`0 \log 0 = 0`. When ``N`` is a multiple of
    ``splits`` (the usual 50,000 and 10) the splits are exactly those of the original code; the
    original drops the last ``N mod splits`` rows otherwise, this function spreads them over the
    first splits instead. torch-fidelity and torchmetrics shuffle the rows before splitting
    (torchmetrics without a seed), so their std differs from the original's; the mean over splits
    is close in all of them.

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
    if isinstance(splits, bool) or not isinstance(splits, numbers.Integral) or not 1 <= splits <= n:
        raise ValueError(f"splits: must be an integer between 1 and the number of samples ({n}), "
                         f"got {splits!r}")
    p = logp.exp()
    # sum_y p log p per row, with 0 log 0 = 0.
    plogp = torch.where(p > 0, p * logp, torch.zeros((), dtype=p.dtype, device=p.device)).sum(1)
    scores = []
    for part_p, part_plogp in zip(torch.tensor_split(p, int(splits)), torch.tensor_split(plogp, int(splits))):
        marginal = part_p.mean(0)
        zero = torch.zeros((), dtype=p.dtype, device=p.device)
        log_marginal = torch.where(marginal > 0, marginal.log(), zero)
        # mean_i KL(p_i || marginal) = mean_i sum p_i log p_i - sum_y marginal log marginal
        kl = part_plogp.mean() - (marginal * log_marginal).sum()
        scores.append(float(torch.exp(kl.clamp_min(0.0))))
    values = np.array(scores)
    mean, std = float(values.mean()), float(values.std())
    if is_tensor(probs):
        dtype = probs.dtype if probs.is_floating_point() else torch.float64
        return (torch.tensor(mean, dtype=dtype, device=probs.device),
                torch.tensor(std, dtype=dtype, device=probs.device))
    return mean, std
