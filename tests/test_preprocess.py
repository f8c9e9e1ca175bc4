"""otmetrics.generative.features.preprocess: the input contract every feature extractor shares."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from otmetrics.generative.features.preprocess import resize_bilinear_tf1, to_float_rgb, validate_images


def images(n=2, channels=3, size=7, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=generator)


def test_validate_images_returns_the_batch_untouched():
    x = images()
    assert validate_images(x) is x
    as_float = x.double() / 255
    assert validate_images(as_float) is as_float
    from_numpy = validate_images(x.numpy())
    assert isinstance(from_numpy, torch.Tensor) and torch.equal(from_numpy, x)
    assert validate_images(np.zeros((1, 1, 2, 2), np.float32)).dtype == torch.float32


@pytest.mark.parametrize("bad, match", [
    (torch.zeros(2, 5, 4, 4), "shape"),
    (np.zeros((1, 4, 4, 3), np.uint8), "shape"),  # channels last
    (torch.zeros(1, 3, 0, 4), "empty"),
    (torch.full((1, 3, 2, 2), 1.5), r"\[0, 1\]"),
    (torch.full((1, 3, 2, 2), float("inf")), "finite"),
    (torch.zeros(1, 3, 2, 2, dtype=torch.int64), "dtype"),
    (np.zeros((1, 3, 2, 2), bool), "dtype"),
])
def test_validate_images_bad_input_names_the_argument(bad, match):
    with pytest.raises(ValueError, match=match) as info:
        validate_images(bad, "real")
    assert str(info.value).startswith("real:")


def test_to_float_rgb_scales_like_pytorch_fid_and_torch_fidelity():
    x = images()
    # max_value=1: pytorch-fid's x / 255; max_value=255: torch-fidelity's 0..255 floats
    assert torch.equal(to_float_rgb(x), x.float() / 255)
    assert torch.equal(to_float_rgb(x, max_value=255), x.float())
    unit = x.float() / 255
    assert torch.equal(to_float_rgb(unit), unit)
    assert torch.equal(to_float_rgb(unit, max_value=255), unit * 255)
    out = to_float_rgb(x.numpy(), dtype=torch.float64, device="cpu")
    assert out.dtype == torch.float64 and torch.equal(out, x.double() / 255)


def test_to_float_rgb_repeats_a_grey_channel():
    grey = images(channels=1)
    out = to_float_rgb(grey)
    assert out.shape == (2, 3, 7, 7)
    assert torch.equal(out, to_float_rgb(grey.expand(-1, 3, -1, -1)))


def test_to_float_rgb_bad_arguments():
    x = images()
    for max_value in (2, 0, True, 255.5):
        with pytest.raises(ValueError, match="max_value"):
            to_float_rgb(x, max_value=max_value)
    for dtype in (torch.int32, "float32", np.float32):
        with pytest.raises(ValueError, match="dtype"):
            to_float_rgb(x, dtype=dtype)
    with pytest.raises(ValueError, match="^fake: .*shape"):
        to_float_rgb(torch.zeros(3, 4, 4), name="fake")


def test_resize_tf1_keeps_dtype_and_device():
    x = torch.rand(1, 2, 5, 6, dtype=torch.float64)
    out = resize_bilinear_tf1(x, (10, 3))
    assert out.shape == (1, 2, 10, 3) and out.dtype == torch.float64 and out.device == x.device
    with pytest.raises(ValueError, match="size"):
        resize_bilinear_tf1(x, (2, True))
    with pytest.raises(ValueError, match="size"):
        resize_bilinear_tf1(x, 4)
