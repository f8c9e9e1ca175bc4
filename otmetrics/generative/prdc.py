r"""Precision, recall, density and coverage of generated samples: :func:`prdc`, :class:`PRDCResult`.

The k-nearest-neighbour estimates of the support of the real and of the generated distribution
(Kynkäänniemi et al. 2019; Naeem et al. 2020), exact to the definitions of the ``prdc`` package,
computed in blocks by :mod:`otmetrics.generative.neighbours`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .._core.arrays import as_like, first_tensor
from .._core.validation import validate_positive
from .kernels import as_samples_tensor

__all__ = ["prdc", "PRDCResult", "BALLS"]

#: What :func:`prdc` accepts as ``ball``: ``"open"`` (strict ``<``, the ``prdc`` package) or
#: ``"closed"`` (``<=``, Kynkäänniemi et al.'s code and torch-fidelity).
BALLS = ("open", "closed")


@dataclass(frozen=True)
class PRDCResult:
    """The result of :func:`prdc`.

    Attributes
    ----------
    precision : float or torch.Tensor
        Fraction of generated samples inside some real ball (fidelity).
    recall : float or torch.Tensor
        Fraction of real samples inside some generated ball (diversity).
    density : float or torch.Tensor
        Mean number of real balls containing a generated sample, divided by ``k`` (fidelity
        that counts how crowded the neighbourhood is; can exceed 1).
    coverage : float or torch.Tensor
        Fraction of real balls containing some generated sample (mode coverage).
    k : int
        The neighbourhood size.
    n_real, n_fake : int
        The sample sizes.
    ball : str
        ``"open"`` or ``"closed"``.
    recomputed : int
        Squared distances computed exactly because their fast value was within its rounding
        bound of a radius (ties and near-ties), out of ``n_real^2 / 2 + n_fake^2 / 2 + n_real
        n_fake`` pairs.
    """

    precision: Any
    recall: Any
    density: Any
    coverage: Any
    k: int
    n_real: int
    n_fake: int
    ball: str
    recomputed: int

    def as_dict(self) -> dict:
        """The four metrics by name (``precision``, ``recall``, ``density``, ``coverage``)."""
        return {"precision": self.precision, "recall": self.recall, "density": self.density,
                "coverage": self.coverage}


def validate_k(k) -> int:
    """``k`` as an int: an integer ``>= 1``; anything else raises ``ValueError`` naming ``k``.

    Examples
    --------
    >>> validate_k(5)
    5
    """
    return int(validate_positive(k, "k", integer=True))


def _rows(x, name: str, k: int, dim=None, device=None):
    t = as_samples_tensor(x, name, min_samples=1, dim=dim, device=device, float64=False, detach=True)
    if t.shape[0] < k + 1:
        raise ValueError(f"{name}: need at least k + 1 = {k + 1} samples (the k = {k} nearest other "
                         f"points of each one), got {t.shape[0]}")
    return t


def prdc(real, fake, *, k: int = 5, ball: str = "open", chunk_size: int | None = None) -> PRDCResult:
    r"""Precision, recall, density and coverage of generated features against real ones.

    With :math:`r_k(x_i)` the distance from a real point to its ``k``-th nearest *other* real
    point (duplicates count) and :math:`B(x_i) = \{z : \lVert z - x_i \rVert < r_k(x_i)\}`
    its ball (likewise :math:`B(y_j)` for generated points, with their own radii):

    .. math::

        \text{precision} = \frac1m \sum_j \mathbb 1\big[y_j \in \textstyle\bigcup_i B(x_i)\big],
        \qquad
        \text{recall} = \frac1n \sum_i \mathbb 1\big[x_i \in \textstyle\bigcup_j B(y_j)\big],

    .. math::

        \text{density} = \frac{1}{k m} \sum_j \sum_i \mathbb 1\big[y_j \in B(x_i)\big],
        \qquad
        \text{coverage} = \frac1n \sum_i \mathbb 1\big[\exists j : y_j \in B(x_i)\big].

    These are the definitions of the ``prdc`` package (Naeem et al.), whose values this function
    equals on tie-free data; with ``k=3``, precision and recall are those of Kynkäänniemi et al.
    (torch-fidelity's ``prc``), which use closed balls (``<=``): ``ball="closed"`` gives their
    values also when distances tie (memorised or duplicated samples).

    Parameters
    ----------
    real : array-like or tensor, shape (n, d)
        Features of real samples (at least ``k + 1``).
    fake : array-like or tensor, shape (m, d)
        Features of generated samples (at least ``k + 1``).
    k : int, default 5
        The neighbourhood size (Naeem et al. use 5; Kynkäänniemi et al. 3).
    ball : {"open", "closed"}, default "open"
        Whether a point at exactly the radius is inside (``"closed"``) or not (``"open"``, the
        ``prdc`` package). The two differ only on ties.
    chunk_size : int, optional
        Rows per block (default 2048): memory ``O(chunk_size^2)`` beyond the features.

    Returns
    -------
    PRDCResult
        The four values (Python floats for array input; 0-d tensors on ``real``'s device in its
        floating dtype for tensor input) and diagnostics (``k``, the sizes, the number of pairs
        recomputed exactly).

    Raises
    ------
    ValueError
        Fewer than ``k + 1`` rows in a set, different dimensions, NaN or infinite features, ``k``
        not a positive integer, an unknown ``ball``, a bad ``chunk_size``.

    Notes
    -----
    Time ``O((n^2 / 2 + m^2 / 2 + n m) d)``: every within-set pair once, every cross pair once,
    as matrix products in blocks. Memory ``O((n + m) d + \text{chunk}^2)``: never an ``n x m``
    matrix (the ``prdc`` package holds three, 1.2 GB at ``n = m = 10,000`` in float32).
    Float32 features are compared in float32 and float64 features in float64; every decision
    whose fast value is within its rounding bound of a radius is made again on the exact
    (float64) distance, so the result is what exact arithmetic gives (see
    :mod:`otmetrics.generative.neighbours`). The ``prdc`` package compares rounded float32
    distances, so near-ties may go either way there.

    Precision and density measure fidelity (are generated samples where real ones are?), recall
    and coverage diversity (is every region of the real data reached?). Precision and recall
    are inflated by outliers (one far generated sample makes a huge ball); density and coverage
    use only the real balls and are more robust (Naeem et al.).

    References
    ----------
    Kynkäänniemi, Karras, Laine, Lehtinen and Aila, "Improved precision and recall metric for
    assessing generative models", NeurIPS 2019. Naeem, Oh, Uh, Choi and Yoo, "Reliable fidelity
    and diversity metrics for generative models", ICML 2020 (the ``prdc`` package).

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import prdc
    >>> rng = np.random.default_rng(0)
    >>> real = rng.normal(size=(500, 8))
    >>> result = prdc(real, rng.normal(size=(500, 8)))       # the same distribution
    >>> result.precision > 0.7 and result.recall > 0.7
    True
    >>> collapsed = prdc(real, 0.2 * rng.normal(size=(500, 8)))  # all samples near the mode
    >>> collapsed.precision > 0.9 and collapsed.recall < 0.2 and collapsed.coverage < 0.3
    True
    """
    import torch

    from .neighbours import DistanceBlocks, ball_hits, default_chunk_size, kth_neighbour_radii

    k = validate_k(k)
    if ball not in BALLS:
        raise ValueError(f"ball: must be 'open' or 'closed', got {ball!r}")
    xt = _rows(real, "real", k)
    yt = _rows(fake, "fake", k, dim=xt.shape[1], device=xt.device)
    chunk = default_chunk_size(xt.shape[1]) if chunk_size is None else int(
        validate_positive(chunk_size, "chunk_size", integer=True))
    work = torch.float64 if torch.float64 in (xt.dtype, yt.dtype) else torch.float32
    blocks = DistanceBlocks([xt, yt], work)
    radii_x = kth_neighbour_radii(blocks, 0, k, chunk)
    radii_y = kth_neighbour_radii(blocks, 1, k, chunk)
    hits = ball_hits(blocks, radii_x, radii_y, chunk, closed=ball == "closed")
    n, m = xt.shape[0], yt.shape[0]
    values = {
        "precision": int((hits["y_in_x_count"] > 0).sum()) / m,
        "recall": int(hits["x_in_y_ball"].sum()) / n,
        "density": int(hits["y_in_x_count"].sum()) / (k * m),
        "coverage": int(hits["x_ball_hit"].sum()) / n,
    }
    ref = first_tensor(real, fake)
    values = {name: as_like(value, ref) for name, value in values.items()}
    return PRDCResult(**values, k=k, n_real=n, n_fake=m, ball=ball, recomputed=blocks.recomputed)
