"""Bicubic resizes of image batches with Pillow, on 8-bit values, as the reference pipelines do them.

dgm-eval (FD_DINOv2), the CMMD reference code and OpenAI's CLIP preprocessing all resize PIL
images: Pillow's bicubic filter (Keys' cubic with ``a = -0.5``, widened by the scale factor when
shrinking, so that it antialiases), computed in Pillow's fixed-point arithmetic on ``uint8``
values and rounded back to ``uint8``. A torch bicubic resize on floats samples the same points
but rounds differently and, for shrinking, does not antialias the same way, so the features would
differ by far more than float rounding. This module therefore calls Pillow itself, on the
``uint8`` pixels, one image at a time (in threads: Pillow releases the GIL while it resamples).

The three ways the references crop and resize (``method=``):

- ``"stretch"``: the whole image to ``size x size``, the aspect ratio not kept (dgm-eval:
  ``torchvision.transforms.Resize((224, 224), BICUBIC)`` on a PIL image);
- ``"crop-square"``: the centred square of side ``min(H, W)``, its corner at
  ``((W - side) // 2, (H - side) // 2)`` (rounded down), then resized to ``size x size`` (the
  CMMD reference, ``io_util.py``);
- ``"short-side"``: the shorter side to ``size`` and the longer one to
  ``int(size * long / short)``, then the centred ``size x size`` crop with its corner at
  ``round((W - size) / 2)``, ``round((H - size) / 2)`` (Python's rounding, half to even: OpenAI's
  CLIP, ``Resize(size, BICUBIC)`` then ``CenterCrop(size)``).

Floating images in [0, 1] are first quantised to ``uint8`` by :func:`quantize_uint8`:
``floor(255 x + 0.5)``, computed in their dtype, the rounding of ``torchvision.utils.save_image``;
features of float images are those of the same images saved as PNG files that way.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .preprocess import validate_images

__all__ = ["RESIZE_METHODS", "quantize_uint8", "resize_pil"]

#: The crop-and-resize conventions :func:`resize_pil` implements.
RESIZE_METHODS = ("stretch", "crop-square", "short-side")


def quantize_uint8(images, name: str = "images") -> torch.Tensor:
    """An image batch as ``uint8`` 0..255: ``uint8`` unchanged, floats in [0, 1] rounded.

    Parameters
    ----------
    images : torch.Tensor or array_like, shape (N, C, H, W), C in {1, 3}
        ``uint8`` values, or floating values in [0, 1] (checked by
        :func:`~otmetrics.generative.features.preprocess.validate_images`).
    name : str, default "images"
        The argument's name, for error messages.

    Returns
    -------
    torch.Tensor, uint8, same shape and device
        ``floor(255 x + 0.5)`` for floating input (round half up, in the input's dtype, as
        ``torchvision.utils.save_image`` writes PNG files); ``x / 255`` maps back to the input
        exactly when it was ``uint8 / 255``.

    Examples
    --------
    >>> import torch
    >>> quantize_uint8(torch.tensor([[[[0.0, 0.5, 1 / 255, 1.0]]]]))
    tensor([[[[  0, 128,   1, 255]]]], dtype=torch.uint8)
    """
    x = validate_images(images, name)
    if x.dtype == torch.uint8:
        return x
    return x.detach().mul(255).add_(0.5).floor_().clamp_(0, 255).to(torch.uint8)


def _crop_and_resize(pixels: np.ndarray, size: int, method: str) -> np.ndarray:
    from PIL import Image

    image = Image.fromarray(pixels)
    width, height = image.size
    if method == "stretch":
        image = image.resize((size, size), resample=Image.BICUBIC)
    elif method == "crop-square":
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        image = image.crop((left, top, left + side, top + side)).resize((size, size), resample=Image.BICUBIC)
    else:  # short-side
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = size, int(size * long / short)
        new_width, new_height = (new_short, new_long) if width <= height else (new_long, new_short)
        if (new_width, new_height) != (width, height):
            image = image.resize((new_width, new_height), resample=Image.BICUBIC)
        top = int(round((new_height - size) / 2.0))
        left = int(round((new_width - size) / 2.0))
        image = image.crop((left, top, left + size, top + size))
    return np.asarray(image)


def resize_pil(images, size: int, *, method: str = "stretch", n_threads: int | None = None,
               name: str = "images") -> torch.Tensor:
    """Crop and resize a batch with Pillow's bicubic filter on ``uint8`` pixels.

    Parameters
    ----------
    images : torch.Tensor or array_like, shape (N, C, H, W), C in {1, 3}
        ``uint8``, or floating values in [0, 1] (quantised by :func:`quantize_uint8`). A grey
        channel is repeated to RGB first. Tensors on another device are copied to the CPU.
    size : int
        The side of the square output.
    method : {"stretch", "crop-square", "short-side"}, default "stretch"
        How the square is obtained; see the module docstring for the reference each follows.
    n_threads : int, optional
        Threads resizing images in parallel; default ``min(N, os.cpu_count())``.
    name : str, default "images"
        The argument's name, for error messages.

    Returns
    -------
    torch.Tensor, shape (N, 3, size, size), uint8, on the CPU

    Raises
    ------
    ValueError
        Bad images, ``size`` not a positive integer, an unknown ``method``.

    Notes
    -----
    Cost: Pillow's separable convolution, O(H W + size^2) per image and channel with a support
    proportional to the shrink factor (about 2 ms for a 512x512 image to 224x224 on one core).

    Examples
    --------
    >>> import torch
    >>> images = torch.randint(0, 256, (2, 3, 40, 60), dtype=torch.uint8)
    >>> resize_pil(images, 16, method="crop-square").shape
    torch.Size([2, 3, 16, 16])
    >>> bool((resize_pil(images.float() / 255, 16) == resize_pil(images, 16)).all())
    True
    """
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size: must be a positive integer, got {size!r}")
    if method not in RESIZE_METHODS:
        raise ValueError(f"method: must be one of {', '.join(RESIZE_METHODS)}, got {method!r}")
    pixels = quantize_uint8(images, name).cpu()
    if pixels.shape[1] == 1:
        pixels = pixels.expand(-1, 3, -1, -1)
    arrays = [np.ascontiguousarray(image.permute(1, 2, 0).numpy()) for image in pixels]
    workers = min(len(arrays), os.cpu_count() or 1) if n_threads is None else int(n_threads)
    if workers <= 1:
        resized = [_crop_and_resize(a, int(size), method) for a in arrays]
    else:
        with ThreadPoolExecutor(workers) as pool:
            resized = list(pool.map(lambda a: _crop_and_resize(a, int(size), method), arrays))
    return torch.from_numpy(np.stack(resized)).permute(0, 3, 1, 2).contiguous()
