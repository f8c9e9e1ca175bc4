"""otmetrics.generative.features.pil_resize: Pillow's bicubic resize on uint8 batches, with the crops of
dgm-eval, the CMMD reference and OpenAI's CLIP, and the quantisation of float images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from otmetrics.generative.features.pil_resize import quantize_uint8, resize_pil


def batch(n, height, width, seed=0, channels=3):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(rng.integers(0, 256, (n, channels, height, width), dtype=np.uint8))


def pillow(image: torch.Tensor, box, size) -> np.ndarray:
    pil = Image.fromarray(image.permute(1, 2, 0).numpy())
    return np.asarray(pil.crop(box).resize(size, Image.BICUBIC))


@settings(max_examples=20, deadline=None)
@given(height=st.integers(1, 60), width=st.integers(1, 60), size=st.integers(1, 40), seed=st.integers(0, 9))
def test_each_method_is_pillow_on_the_pixels(height, width, size, seed):
    x = batch(2, height, width, seed)
    side = min(height, width)
    left, top = (width - side) // 2, (height - side) // 2
    for i, image in enumerate(x):
        stretched = pillow(image, (0, 0, width, height), (size, size))
        square = pillow(image, (left, top, left + side, top + side), (size, size))
        ours = {method: resize_pil(x, size, method=method)[i].permute(1, 2, 0).numpy()
                for method in ("stretch", "crop-square")}
        np.testing.assert_array_equal(ours["stretch"], stretched)
        np.testing.assert_array_equal(ours["crop-square"], square)
    out = resize_pil(x, size, method="short-side")
    assert out.shape == (2, 3, size, size) and out.dtype == torch.uint8


def test_short_side_keeps_the_aspect_then_crops_the_centre():
    x = batch(1, 20, 50)
    out = resize_pil(x, 10, method="short-side")  # 20x50 -> 10x25, then columns 8..17 (round(7.5) = 8)
    resized = Image.fromarray(x[0].permute(1, 2, 0).numpy()).resize((25, 10), Image.BICUBIC)
    np.testing.assert_array_equal(out[0].permute(1, 2, 0).numpy(), np.asarray(resized)[:, 8:18])
    same = batch(1, 10, 10)
    assert torch.equal(resize_pil(same, 10, method="short-side"), same)  # already the size: untouched


def test_threads_change_nothing_and_grey_is_rgb():
    x = batch(5, 33, 21)
    assert torch.equal(resize_pil(x, 16, n_threads=1), resize_pil(x, 16, n_threads=3))
    grey = batch(2, 12, 17, channels=1)
    assert torch.equal(resize_pil(grey, 8), resize_pil(grey.expand(-1, 3, -1, -1), 8))


def test_quantize_rounds_half_up_and_inverts_uint8():
    x = batch(2, 4, 5)
    assert quantize_uint8(x) is x
    assert torch.equal(quantize_uint8(x.float() / 255), x)
    assert torch.equal(quantize_uint8(x.double() / 255), x)
    values = torch.tensor([0.0, 0.5 / 255, 1.4999 / 255, 1.5 / 255, 254.5 / 255, 1.0], dtype=torch.float64)
    assert quantize_uint8(values.view(1, 1, 1, -1)).flatten().tolist() == [0, 1, 1, 2, 255, 255]


@pytest.mark.parametrize("call, match", [
    (lambda: resize_pil(batch(1, 4, 4), 0), "^size: must be a positive integer"),
    (lambda: resize_pil(batch(1, 4, 4), 4, method="bilinear"), "^method: must be one of stretch"),
    (lambda: resize_pil(torch.full((1, 3, 4, 4), 1.5), 4), r"^images: floating images must lie in \[0, 1\]"),
    (lambda: quantize_uint8(torch.zeros(4, 4)), r"^images: expected a batch of shape"),
])
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()
