"""Image batches for feature extractors: validation, conversion to float RGB, TensorFlow 1 resize.

Every extractor in :mod:`otmetrics.generative.features` takes the same inputs: a batch
``(N, 3, H, W)`` (or ``(N, 1, H, W)``, repeated to RGB) of ``uint8`` values 0..255 or floating
values in [0, 1], as a tensor or a numpy array. Anything else is a ``ValueError`` naming the
problem, because a silently mis-scaled input gives a plausible but wrong FID.

- :func:`validate_images` checks a batch and returns it as a tensor, values untouched;
- :func:`to_float_rgb` does that, then moves it to a device and dtype, repeats a grey channel and
  scales it to [0, 1] or [0, 255]: the first step of every extractor's preprocessing;
- :func:`resize_bilinear_tf1` is TensorFlow 1's bilinear resize, the one inside the original FID
  graph (torch's ``interpolate`` samples at half-pixel centres, TensorFlow 1 does not);
- :func:`normalize_channels` is the per-channel ``(x - mean) / std`` of the transformer
  extractors, with torchvision's ``Normalize`` rounding.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..._core.arrays import describe

__all__ = ["validate_images", "to_float_rgb", "resize_bilinear_tf1", "normalize_channels"]


def validate_images(images, name: str = "images") -> torch.Tensor:
    """Check an image batch and return it as a tensor, values and dtype unchanged.

    Parameters
    ----------
    images : torch.Tensor or array_like, shape (N, 3, H, W) or (N, 1, H, W)
        ``uint8`` values 0..255, or floating values in [0, 1]. numpy arrays become tensors
        sharing their memory when they are contiguous.
    name : str, default "images"
        The argument's name, which every error message starts with.

    Returns
    -------
    torch.Tensor
        ``images`` itself when it is a tensor.

    Raises
    ------
    ValueError
        Not 4-d with 1 or 3 channels (e.g. channels-last ``(N, H, W, 3)``), empty, a dtype other
        than ``uint8`` or floating, floating values outside [0, 1] or not finite.

    Notes
    -----
    Cost: one min/max pass over floating input (none for ``uint8``).

    Examples
    --------
    >>> import torch
    >>> validate_images(torch.zeros(2, 3, 8, 8, dtype=torch.uint8)).shape
    torch.Size([2, 3, 8, 8])
    >>> validate_images(torch.full((1, 3, 4, 4), 255.0))
    Traceback (most recent call last):
    ...
    ValueError: images: floating images must lie in [0, 1], got min 255, max 255 (pass uint8 tensors ...)
    """
    if not isinstance(images, torch.Tensor):
        arr = np.asarray(images)
        if arr.dtype != np.uint8 and not np.issubdtype(arr.dtype, np.floating):
            raise ValueError(f"{name}: expected uint8 or floating values, got dtype {arr.dtype}")
        images = torch.from_numpy(np.ascontiguousarray(arr))
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"{name}: expected a batch of shape (N, 3, H, W) or (N, 1, H, W), "
                         f"got shape {tuple(images.shape)}")
    if any(s == 0 for s in images.shape):
        raise ValueError(f"{name}: must not be empty, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise ValueError(f"{name}: expected uint8 (0..255) or floating values in [0, 1], "
                         f"got dtype {images.dtype}")
    lo, hi = torch.aminmax(images.detach())
    lo, hi = float(lo), float(hi)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name}: values must be finite, got min {lo}, max {hi}")
    if lo < 0 or hi > 1:
        raise ValueError(f"{name}: floating images must lie in [0, 1], got min {lo:.6g}, max {hi:.6g} "
                         "(pass uint8 tensors for 0..255 values)")
    return images


def to_float_rgb(images, *, device=None, dtype: torch.dtype = torch.float32, max_value: int = 1,
                 name: str = "images") -> torch.Tensor:
    """Validate an image batch and return it as float RGB on ``device``, scaled to [0, max_value].

    The batch is checked by :func:`validate_images`, moved to ``device`` (asynchronously where
    possible), converted to ``dtype``, a grey channel is repeated to three (a view, no copy), and
    the values are scaled: with ``max_value=1``, ``uint8`` becomes ``x / 255`` and floating input
    stays; with ``max_value=255``, ``uint8`` stays and floating input becomes ``x * 255``. These
    are the operations (and the rounding) of pytorch-fid and torch-fidelity respectively.

    Parameters
    ----------
    images : torch.Tensor or array_like, shape (N, 3, H, W) or (N, 1, H, W)
        ``uint8`` 0..255 or floating values in [0, 1].
    device : str or torch.device, optional
        Default: where ``images`` are (the CPU for numpy input).
    dtype : torch.dtype, default torch.float32
        A floating dtype, typically the network's.
    max_value : {1, 255}, default 1
        The value of white in the output.
    name : str, default "images"
        The argument's name, for error messages.

    Returns
    -------
    torch.Tensor, shape (N, 3, H, W), ``dtype``, on ``device``

    Raises
    ------
    ValueError
        Bad images (see :func:`validate_images`), or ``max_value`` not 1 or 255, or ``dtype`` not
        floating.

    Examples
    --------
    >>> import torch
    >>> grey = torch.tensor([[[[0, 51, 255]]]], dtype=torch.uint8)  # (1, 1, 1, 3)
    >>> to_float_rgb(grey)
    tensor([[[[0.0000, 0.2000, 1.0000]],
    <BLANKLINE>
             [[0.0000, 0.2000, 1.0000]],
    <BLANKLINE>
             [[0.0000, 0.2000, 1.0000]]]])
    >>> to_float_rgb(torch.tensor([[[[0.5]]]]), max_value=255).flatten()
    tensor([127.5000, 127.5000, 127.5000])
    """
    if max_value not in (1, 255) or isinstance(max_value, bool):
        raise ValueError(f"max_value: must be 1 or 255, got {max_value!r}")
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype: must be a floating torch dtype, got {dtype!r}")
    x = validate_images(images, name)
    if device is not None:
        x = x.to(device, non_blocking=True)
    is_uint8 = x.dtype == torch.uint8
    x = x.to(dtype)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if max_value == 255:
        return x if is_uint8 else x * 255
    return x / 255 if is_uint8 else x


def _tf1_sample_points(in_size: int, out_size: int, device):
    # TF1 ResizeBilinear, align_corners=False, half_pixel_centers=False, in float32:
    # scale = in/out, source = i * scale, lower = floor(source), upper = min(ceil(source), in - 1),
    # lerp = source - lower. upper is lower + 1, or lower itself where the lerp is 0 or the
    # source lies past the last pixel.
    scale = torch.tensor(in_size / out_size, dtype=torch.float32, device=device)
    source = torch.arange(out_size, dtype=torch.float32, device=device) * scale
    lower = source.floor()
    return lower.long(), source - lower


def _lerp_along(x: torch.Tensor, dim: int, lower: torch.Tensor, lerp: torch.Tensor) -> torch.Tensor:
    # x[lower] + (x[upper] - x[lower]) * lerp, TensorFlow's expression and rounding. The differences
    # x[k + 1] - x[k] are taken once on the small input (0 after the last pixel, where upper ==
    # lower); where upper == lower inside the image the lerp is 0, so the term vanishes exactly.
    step = torch.diff(x, dim=dim, append=x.narrow(dim, x.shape[dim] - 1, 1))
    shape = [1] * x.ndim
    shape[dim] = -1
    return step.index_select(dim, lower).mul_(lerp.to(x.dtype).view(shape)).add_(x.index_select(dim, lower))


def resize_bilinear_tf1(images: torch.Tensor, size) -> torch.Tensor:
    r"""Bilinear resize with TensorFlow 1's ``tf.image.resize_bilinear`` convention.

    Output pixel ``i`` samples the input at ``s = i * in / out`` (no half-pixel offset, unlike
    torch's ``align_corners=False``); with ``l = floor(s)``, ``u = min(ceil(s), in - 1)`` and
    ``t = s - l`` the value is ``x[l] + (x[u] - x[l]) t``, applied along the width then the height,
    with the coordinates computed in ``float32`` as TensorFlow does. This is the resize inside the
    original FID graph; torch-fidelity reimplements it for the same reason.

    Parameters
    ----------
    images : torch.Tensor, shape (N, C, H, W), floating
    size : (int, int)
        Output height and width.

    Returns
    -------
    torch.Tensor, shape (N, C, size[0], size[1]), same dtype and device.

    Raises
    ------
    ValueError
        ``images`` is not a 4-d floating tensor, or ``size`` is not two positive integers.

    Notes
    -----
    Cost O(N C H out_w + N C out_h out_w): two gathers and one lerp per axis, the width first as
    TensorFlow does (the order matters for the rounding). Bit-identical to torch-fidelity's
    reimplementation on the CPU.

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([[[[0.0, 10.0]]]])
    >>> resize_bilinear_tf1(x, (1, 4))
    tensor([[[[ 0.,  5., 10., 10.]]]])
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        dtype = f", dtype {images.dtype}" if isinstance(images, torch.Tensor) else ""
        raise ValueError(f"images: expected a floating tensor (N, C, H, W), got {describe(images)}{dtype}")
    if (not isinstance(size, Sequence) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        raise ValueError(f"size: expected two positive integers (height, width), got {size!r}")
    out_h, out_w = size
    in_h, in_w = images.shape[-2:]
    x_lower, x_lerp = _tf1_sample_points(in_w, out_w, images.device)
    y_lower, y_lerp = _tf1_sample_points(in_h, out_h, images.device)
    return _lerp_along(_lerp_along(images, 3, x_lower, x_lerp), 2, y_lower, y_lerp)


def normalize_channels(x: torch.Tensor, mean, std) -> torch.Tensor:
    """``(x - mean) / std`` per channel, as ``torchvision.transforms.Normalize`` computes it.

    The constants become tensors of ``x``'s dtype first (so ``255 * 0.485`` is rounded to float32
    once, as torch-fidelity's constants are), then one subtraction and one division.

    Parameters
    ----------
    x : torch.Tensor, shape (N, C, H, W), floating
    mean, std : sequence of C floats

    Returns
    -------
    torch.Tensor, same shape, dtype and device

    Examples
    --------
    >>> import torch
    >>> normalize_channels(torch.ones(1, 2, 1, 1), (0.5, 0.0), (0.5, 2.0)).flatten()
    tensor([1.0000, 0.5000])
    """
    mean = torch.tensor(tuple(mean), dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    std = torch.tensor(tuple(std), dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - mean) / std
