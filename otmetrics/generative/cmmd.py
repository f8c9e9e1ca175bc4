r"""CMMD: the maximum mean discrepancy of CLIP embeddings with the reference's kernel and scale.

:func:`cmmd` is :func:`otmetrics.mmd` with the constants of Jayasumana et al. (2024): the Gaussian
kernel :math:`\exp(-\lVert x - y \rVert^2 / (2 \sigma^2))` with :math:`\sigma = 10`, the biased
(V-statistic) estimator, times 1000.
"""

from __future__ import annotations

from .._core.arrays import as_like, first_tensor
from .mmd import mmd_float64

__all__ = ["cmmd", "CMMD_BANDWIDTH", "CMMD_SCALE"]

#: The kernel bandwidth :math:`\sigma` of the reference (``_SIGMA`` in its ``distance.py``).
CMMD_BANDWIDTH = 10.0
#: The factor the reference multiplies MMD² by "to make the metric more human readable".
CMMD_SCALE = 1000.0


def cmmd(x, y, *, chunk_size: int | None = None):
    r"""CMMD between two sets of embeddings: :math:`1000\, \widehat{\mathrm{MMD}}{}^2_b` with the
    Gaussian kernel of bandwidth 10.

    .. math::

        \mathrm{CMMD} = 1000 \Big( \frac{1}{m^2} \sum_{i, i'} k(x_i, x_{i'})
        + \frac{1}{n^2} \sum_{j, j'} k(y_j, y_{j'}) - \frac{2}{m n} \sum_{i, j} k(x_i, y_j) \Big),
        \qquad k(a, b) = \exp\!\Big(-\frac{\lVert a - b \rVert^2}{2 \cdot 10^2}\Big),

    the biased (minimum-variance) estimator with the diagonal terms kept, as google-research's
    ``cmmd/distance.py`` computes it (its ``gamma = 1 / (2 sigma^2)``, ``sigma = 10``, ``scale =
    1000``). The embeddings of the paper are CLIP ViT-L/14@336px image embeddings, L2-normalised
    (the reference's CLIP model normalises them): use
    ``otmetrics.CLIPImageEncoder("ViT-L/14@336px", normalize=True)`` or the streaming
    :class:`otmetrics.CMMD`, which does this for the ``clip-*`` extractor names. This function
    takes the embeddings as given and does not normalise them.

    Parameters
    ----------
    x : array-like or tensor, shape (m, d)
        Reference (real) embeddings.
    y : array-like or tensor, shape (n, d)
        Embeddings of the evaluated (generated) images.
    chunk_size : int, optional
        Rows per block of the kernel sums (see :func:`otmetrics.mmd`).

    Returns
    -------
    float or torch.Tensor
        A Python ``float`` for array input; for tensors a 0-d tensor on ``x``'s device in its
        dtype, differentiable like :func:`otmetrics.mmd`. Non-negative (a V-statistic).

    Raises
    ------
    ValueError
        Fewer than 2 rows, different dimensions, NaN or infinite values, a bad ``chunk_size``.

    Notes
    -----
    Time ``O((m + n)^2 d)``; memory ``O((m + n) d)`` plus a few blocks: the kernel sums are
    evaluated in float64 blocks on the points' device. The reference forms the three dense
    matrices in float32 (JAX's default): CMMD is a small difference of kernel means close to 1,
    and the float32 value is off by about 2e-3 relative (2,000 unit vectors in 768 dimensions,
    ``benchmarks/bench_prdc.py``); the same formula in float64 agrees with this function to
    about 1e-8.

    The reference's ``compute_embeddings_for_dir`` batches images with ``drop_remainder=True``:
    the images after the last full batch of 32 (its default batch size) are not embedded, so a
    folder of 1000 images is evaluated on 992. otmetrics uses every image; to reproduce the
    reference's number on a folder whose size is not a multiple of 32, pass the first
    ``32 * (N // 32)`` embeddings in sorted file order.

    References
    ----------
    Jayasumana, Ramalingam, Veit, Glasner, Chakrabarti and Kumar, "Rethinking FID: towards a
    better evaluation metric for image generation", CVPR 2024. Gretton et al., "A kernel
    two-sample test", JMLR 13 (2012), eq. 5.

    Examples
    --------
    >>> import numpy as np
    >>> from otmetrics import cmmd
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(200, 16))
    >>> x /= np.linalg.norm(x, axis=1, keepdims=True)             # unit vectors, as CLIP's
    >>> round(cmmd(x, x), 12)                                      # identical sets
    0.0
    >>> y = x + 0.3 * np.eye(16)[0]
    >>> y /= np.linalg.norm(y, axis=1, keepdims=True)
    >>> cmmd(x, y) > 0.1
    True
    """
    value = mmd_float64(x, y, kernel="gaussian", bandwidth=CMMD_BANDWIDTH, estimator="biased",
                        chunk_size=chunk_size)
    return as_like(value * CMMD_SCALE, first_tensor(x, y))
