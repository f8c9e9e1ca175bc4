"""FIDInceptionV3: layout of the FID weight file, FID-specific pooling, preprocessing, the full-float32
policy, weight loading, the caches (hashed once per file) and the checksum-verified download through
torch.hub (against a server on 127.0.0.1).

The real weights cannot be downloaded here: the architecture is tested with generated weights in the
exact layout, and the download path with files served locally.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.server
import json
import os
import re
import threading

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import otmetrics
from otmetrics import OTMetricsWarning
from otmetrics.generative.features import digests, inception_weights, precision, weights
from otmetrics.generative.features.inception import FEATURE_DIMS, FIDInceptionV3, check_inception_layout
from otmetrics.generative.features.inception_weights import (FID_WEIGHTS, FID_WEIGHTS_FILENAME,
                                                             FID_WEIGHTS_SHA256, FID_WEIGHTS_URL,
                                                             download_inception_weights, inception_cache_dir,
                                                             resolve_inception_weights)
from otmetrics.generative.features.preprocess import resize_bilinear_tf1
from otmetrics.generative.features.weights import WeightsNotFoundError
from weights_server import LocalServer, sha256_of


# ----------------------------------------------------------------------------------------------
# Fixtures: a network with generated weights (random batch-norm statistics and fc bias too)
# ----------------------------------------------------------------------------------------------
def randomize(net: FIDInceptionV3, seed: int) -> FIDInceptionV3:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0, (2 / fan_in) ** 0.5, generator=generator)
            elif isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.uniform_(-0.1, 0.1, generator=generator)
                module.running_mean.uniform_(-0.1, 0.1, generator=generator)
                module.running_var.uniform_(0.5, 1.5, generator=generator)
            elif isinstance(module, torch.nn.Linear):
                module.weight.normal_(0, 2048 ** -0.5, generator=generator)
                module.bias.uniform_(-1, 1, generator=generator)
    return net


@pytest.fixture(scope="module")
def net():
    """Generated weights, no resize: small inputs keep the forward passes cheap."""
    return randomize(FIDInceptionV3(pretrained=False, resize=None), seed=0)


@pytest.fixture(scope="module")
def fid_net():
    """The default preprocessing (pytorch-fid's resize and scaling)."""
    return FIDInceptionV3(pretrained=False)


@pytest.fixture(scope="module")
def state_dict(net):
    return {k: v.clone() for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory, state_dict):
    path = tmp_path_factory.mktemp("weights") / "generated-fid-weights.pth"
    torch.save(state_dict, path)
    return path


def small_images(n=2, size=75, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=generator)


# ----------------------------------------------------------------------------------------------
# The layout of pt_inception-2015-12-05-6726825d.pth
# ----------------------------------------------------------------------------------------------
def test_layout_matches_the_fid_weight_file(state_dict):
    # Facts about the FID graph: 94 convolutions without bias, each followed by a batch norm,
    # 1008 classes on 2048 pooled features, factorised 1x7/7x1 and 1x3/3x1 kernels.
    convs = [k for k in state_dict if k.endswith(".conv.weight")]
    assert len(convs) == 94
    assert not any(k.endswith(".conv.bias") for k in state_dict)
    for key in convs:
        prefix = key[: -len("conv.weight")]
        for entry in ("bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"):
            assert state_dict[prefix + entry].shape == (state_dict[key].shape[0],)
    assert len(state_dict) == 94 * 5 + 2
    assert state_dict["fc.weight"].shape == (1008, 2048)
    assert state_dict["fc.bias"].shape == (1008,)
    assert state_dict["Conv2d_1a_3x3.conv.weight"].shape == (32, 3, 3, 3)
    assert state_dict["Mixed_5b.branch_pool.conv.weight"].shape == (32, 192, 1, 1)
    assert state_dict["Mixed_6e.branch7x7_2.conv.weight"].shape == (192, 192, 1, 7)
    assert state_dict["Mixed_7c.branch3x3dbl_3b.conv.weight"].shape == (384, 384, 3, 1)
    assert state_dict["Mixed_7c.branch_pool.conv.weight"].shape == (192, 2048, 1, 1)
    assert not any("AuxLogits" in k for k in state_dict)
    # float32 entries: 4 bytes each, the file is 95,628,359 bytes including its pickle metadata.
    n_values = sum(v.numel() for v in state_dict.values())
    assert 0 < 95_628_359 - 4 * n_values < 200_000


def test_batch_norm_uses_tensorflow_epsilon(net):
    norms = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 94 and all(m.eps == 1e-3 for m in norms)


def test_starts_in_eval_mode_without_gradients(net):
    assert not net.training
    assert not any(p.requires_grad for p in net.parameters())
    trainable = FIDInceptionV3(pretrained=False, requires_grad=True)
    assert all(p.requires_grad for p in trainable.parameters())


# ----------------------------------------------------------------------------------------------
# The FID-specific pooling
# ----------------------------------------------------------------------------------------------
def _pool_branch_as_identity(block):
    """Make block.branch_pool output relu(pooled input channels / sqrt(1 + eps))."""
    conv, bn = block.branch_pool.conv, block.branch_pool.bn
    with torch.no_grad():
        conv.weight.zero_()
        for c in range(conv.weight.shape[0]):
            conv.weight[c, c] = 1.0
        bn.weight.fill_(1.0)
        bn.bias.zero_()
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0)
    return conv.weight.shape[0], (1 + bn.eps) ** 0.5


@pytest.fixture(scope="module")
def pool_net():
    """A network whose pool branches the pooling tests overwrite."""
    return FIDInceptionV3(pretrained=False)


@pytest.mark.parametrize("name", ["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                                  "Mixed_6e", "Mixed_7b"])
def test_average_pools_exclude_padding(pool_net, name):
    # On a constant input, an average that ignores the zero padding stays constant up to the border;
    # torchvision's count_include_pad=True would shrink the border values to 4/9 and 6/9.
    block = getattr(pool_net, name)
    width, scale = _pool_branch_as_identity(block)
    channels = block.branch1x1.conv.weight.shape[1]
    x = torch.full((1, channels, 5, 5), 2.0)
    with torch.no_grad():
        pooled = block(x)[:, -width:]
    torch.testing.assert_close(pooled, torch.full_like(pooled, 2.0 / scale))


def test_last_block_pools_with_max(pool_net):
    # Mixed_7c: a single spike of height 9 spreads unchanged to its 3x3 neighbourhood (max pool);
    # an average pool would give 1 there. Mixed_7b averages.
    net = pool_net
    for name, expected in (("Mixed_7c", 9.0), ("Mixed_7b", 1.0)):
        block = getattr(net, name)
        width, scale = _pool_branch_as_identity(block)
        x = torch.zeros(1, block.branch1x1.conv.weight.shape[1], 6, 6)
        x[0, :, 2, 2] = 9.0
        with torch.no_grad():
            pooled = block(x)[0, -width:] * scale
        assert torch.allclose(pooled[:, 1:4, 1:4], torch.tensor(expected))
        assert torch.all(pooled[:, 4:, :] == 0) and torch.all(pooled[:, :, 4:] == 0)


# ----------------------------------------------------------------------------------------------
# Outputs
# ----------------------------------------------------------------------------------------------
def test_outputs_shapes_and_logit_relations(net):
    x = small_images(3)
    with torch.no_grad():
        outs = net(x, output=tuple(FEATURE_DIMS))
    by_name = dict(zip(FEATURE_DIMS, outs))
    for name, dim in FEATURE_DIMS.items():
        assert by_name[name].shape == (3, dim) and by_name[name].dtype == torch.float32
    pool3 = by_name["pool3"]
    assert torch.all(pool3 >= 0) and pool3.std() > 0  # averages of ReLU outputs, not degenerate
    torch.testing.assert_close(by_name["logits_unbiased"], pool3 @ net.fc.weight.T)
    torch.testing.assert_close(by_name["logits"], by_name["logits_unbiased"] + net.fc.bias)
    assert not torch.allclose(by_name["logits"], by_name["logits_unbiased"])
    # rows are images: a permutation of the batch permutes the features
    with torch.no_grad():
        swapped = net(x[[2, 0, 1]])
    torch.testing.assert_close(swapped, pool3[[2, 0, 1]], rtol=1e-4, atol=1e-5)


def test_default_output_is_pool3_and_follows_constructor(weights_file):
    default = FIDInceptionV3(weights_file, resize=None)
    logits = FIDInceptionV3(weights_file, resize=None, output="logits_unbiased")
    x = small_images(2)
    with torch.no_grad():
        assert default(x).shape == (2, 2048)
        assert logits(x).shape == (2, 1008)
        torch.testing.assert_close(logits(x), default(x) @ default.fc.weight.T)


def test_output_for_dims():
    assert [FIDInceptionV3.output_for_dims(d) for d in (64, 192, 768, 2048)] == \
        ["pool1", "pool2", "mixed_6e", "pool3"]
    with pytest.raises(ValueError, match="dims"):
        FIDInceptionV3.output_for_dims(1000)


def test_any_input_size_pytorch_fid_resize(fid_net):
    # pytorch-fid: bilinear resize (align_corners=False) on [0, 1] values, then 2x - 1.
    x = small_images(2, size=40)
    expected = 2 * F.interpolate(x.float() / 255, size=(299, 299), mode="bilinear", align_corners=False) - 1
    torch.testing.assert_close(fid_net.preprocess(x), expected)
    # an image that already has 299x299 pixels is not changed by the resize
    y = small_images(1, size=299)
    torch.testing.assert_close(fid_net.preprocess(y), 2 * y.float() / 255 - 1)


def test_uint8_float_numpy_and_grey_inputs_agree(fid_net):
    net = fid_net
    x = small_images(2, size=33)
    as_float = x.float() / 255
    torch.testing.assert_close(net.preprocess(as_float), net.preprocess(x))
    from_numpy = net.preprocess(x.numpy())
    torch.testing.assert_close(from_numpy, net.preprocess(x))
    grey = x[:, :1]
    torch.testing.assert_close(net.preprocess(grey), net.preprocess(grey.expand(-1, 3, -1, -1)))
    assert net.preprocess(x).min() >= -1 and net.preprocess(x).max() <= 1


def test_numpy_in_numpy_out(net):
    x = small_images(2)
    with torch.no_grad():
        out = net(x.numpy())
        ref = net(x)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (2, 2048)
    np.testing.assert_allclose(out, ref.double().numpy())


def test_memory_layout_changes_only_the_rounding(net, state_dict):
    # Documented: the largest difference is about 1e-6 of the largest value (float32 summation
    # order; measured up to 1.2e-6 over 4 weight seeds and the pool1/mixed_6e/pool3/logits outputs).
    assert net.Conv2d_1a_3x3.conv.weight.is_contiguous(memory_format=torch.channels_last)
    nchw = FIDInceptionV3(state_dict, resize=None, channels_last=False)
    assert nchw.Conv2d_1a_3x3.conv.weight.is_contiguous()
    x = small_images(2)
    with torch.no_grad():
        for a, b in zip(nchw(x, output=("pool3", "logits")), net(x, output=("pool3", "logits"))):
            assert not torch.equal(a, b)  # the layouts really run different kernels
            assert (a - b).abs().max() <= 3e-6 * b.abs().max()


def test_loaded_weights_get_the_strides_of_the_chosen_layout(state_dict):
    # state_dict comes from a channels-last model: its 1x1 kernels are "contiguous" with
    # channels-last strides. Loaded into an NCHW model they must get NCHW strides, or torch runs
    # channels-last kernels for them and the features depend on how the file was saved.
    canonical = {k: v.clone(memory_format=torch.contiguous_format) for k, v in state_dict.items()}
    from_channels_last = FIDInceptionV3(state_dict, resize=None, channels_last=False)
    from_nchw = FIDInceptionV3(canonical, resize=None, channels_last=False)
    for name, tensor in from_channels_last.state_dict().items():
        assert tensor.stride() == canonical[name].stride() if name in canonical else True
    x = small_images(2)
    with torch.no_grad():
        assert torch.equal(from_channels_last(x), from_nchw(x))


def test_float64_network():
    net64 = randomize(FIDInceptionV3(pretrained=False, resize=None), seed=3)
    net32 = randomize(FIDInceptionV3(pretrained=False, resize=None), seed=3)
    net64.double()
    x = small_images(2)
    with torch.no_grad():
        a, b = net64(x), net32(x)
    assert a.dtype == torch.float64
    torch.testing.assert_close(a.float(), b, rtol=1e-3, atol=1e-4)


# ----------------------------------------------------------------------------------------------
# Precision: full float32 during the forward pass unless tf32=True, settings restored
# ----------------------------------------------------------------------------------------------
new_precision_api = pytest.mark.skipif(not hasattr(torch.backends.cudnn, "conv"),
                                       reason="torch < 2.9 has no per-operation fp32_precision settings")


@pytest.fixture
def precision_settings():
    """Restore torch's process-wide precision settings whatever a test does to them."""
    settings = precision.precision_settings("cpu") + precision.precision_settings("cuda")
    saved = [(setting, setting.read()) for setting in settings]
    yield
    for setting, value in saved:
        setting.write(value)


def _current(*names):
    """The fp32_precision of e.g. "cudnn.conv" (torch.backends.cudnn.conv.fp32_precision)."""
    return tuple(getattr(getattr(torch.backends, name.split(".")[0]), name.split(".")[1]).fp32_precision
                 for name in names)


@new_precision_api
def test_forward_runs_in_full_float32_and_restores_the_settings(net, precision_settings):
    torch.set_float32_matmul_precision("medium")  # oneDNN may run float32 matmuls in bf16
    torch.backends.mkldnn.conv.fp32_precision = "bf16"  # and convolutions
    seen = []
    hook = net.Mixed_7c.register_forward_hook(
        lambda *_: seen.append(_current("mkldnn.conv", "mkldnn.matmul")))
    try:
        with torch.no_grad():
            net(small_images(1))
            assert seen.pop() == ("ieee", "ieee")
            net.tf32 = True  # the caller's settings stay as they are
            try:
                net(small_images(1))
            finally:
                net.tf32 = False
            assert seen.pop() == ("bf16", "bf16")

            def fail(*_):
                raise RuntimeError("boom")

            failing = net.Mixed_6e.register_forward_hook(fail)
            try:
                with pytest.raises(RuntimeError, match="boom"):
                    net(small_images(1))
            finally:
                failing.remove()
    finally:
        hook.remove()
    # restored, and consistent for torch's legacy getters (mixing the APIs would make them raise)
    assert _current("mkldnn.conv", "mkldnn.matmul") == ("bf16", "bf16")
    assert torch.get_float32_matmul_precision() == "medium"


@new_precision_api
def test_cuda_settings_are_switched_and_restored_without_a_gpu(precision_settings):
    torch.set_float32_matmul_precision("high")  # TF32 cuBLAS matmuls; cuDNN convolutions: TF32 by default
    assert _current("cudnn.conv", "cuda.matmul") == ("tf32", "tf32")
    with precision.full_float32("cuda"):
        assert _current("cudnn.conv", "cuda.matmul") == ("ieee", "ieee")
    assert _current("cudnn.conv", "cuda.matmul") == ("tf32", "tf32")
    assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.allow_tf32 is True
    with precision.full_float32("cuda", enabled=False):
        assert _current("cudnn.conv", "cuda.matmul") == ("tf32", "tf32")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_forward_ignores_tf32_settings_and_restores_them(state_dict, precision_settings):
    torch.set_float32_matmul_precision("high")  # TF32 matmuls; cuDNN convolutions: TF32 by default
    cpu = FIDInceptionV3(state_dict, resize=None)
    gpu = FIDInceptionV3(state_dict, resize=None).cuda()
    x = small_images(4)
    with torch.no_grad():
        expected = cpu(x, output=("pool3", "logits"))
        exact = [v.cpu() for v in gpu(x, output=("pool3", "logits"))]
        gpu.tf32 = True
        fast = [v.cpu() for v in gpu(x, output=("pool3", "logits"))]
    for e, g, f in zip(expected, exact, fast):
        # float32 on both devices: only the kernels' summation order differs (TF32: about 1e-3)
        assert (g - e).abs().max() <= 1e-4 * e.abs().max()
        if torch.cuda.get_device_capability() >= (8, 0):  # TF32 exists from Ampere on
            assert (f - e).abs().max() > (g - e).abs().max()
    assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.allow_tf32 is True


class _FakeSetting(precision.PrecisionSetting):
    def __init__(self, name, value, log):
        self.value = value
        super().__init__(name, lambda: self.value, self._write, ("exact",), "exact")
        self.log = log

    def _write(self, value):
        self.log.append((self.name, value))
        self.value = value


def test_overlapping_forward_passes_restore_the_settings_once(monkeypatch):
    # Two forward passes in two threads overlap: the first to leave must not restore the setting
    # under the second, and the last one must restore it (a plain save/restore does neither).
    log = []
    fake = {"cuda": [_FakeSetting("fake.tf32", "tf32", log), _FakeSetting("fake.exact", "exact", log)]}
    monkeypatch.setattr(precision, "precision_settings", lambda device_type: fake[device_type])
    tf32, exact = fake["cuda"]
    with contextlib.ExitStack() as first, contextlib.ExitStack() as second:
        first.enter_context(precision.full_float32("cuda"))
        second.enter_context(precision.full_float32("cuda"))
        first.close()
        assert tf32.value == "exact"  # the second pass still runs
    assert tf32.value == "tf32" and exact.value == "exact"
    assert log == [("fake.tf32", "exact"), ("fake.tf32", "tf32")]  # an exact setting is never written


@new_precision_api
def test_concurrent_forward_passes_in_threads(net, precision_settings):
    torch.set_float32_matmul_precision("medium")
    x = small_images(1)
    with torch.no_grad():
        expected = net(x)
    results, errors = [], []

    def work():
        try:
            with torch.no_grad():
                for _ in range(2):
                    results.append(net(x))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    before = [setting.read() for setting in precision.precision_settings("cpu")]
    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(results) == 6 and all(torch.equal(r, expected) for r in results)
    assert [setting.read() for setting in precision.precision_settings("cpu")] == before == ["none", "bf16"]
    assert all(state[0] == 0 for state in precision._PRECISION_STATE.values())


# ----------------------------------------------------------------------------------------------
# TF1 resizing
# ----------------------------------------------------------------------------------------------
def _tf1_reference(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """TensorFlow 1 ResizeBilinear (align_corners=False, no half-pixel centres), written as loops."""
    in_h, in_w = image.shape

    def points(in_size, out_size):
        scale = np.float32(in_size / out_size)
        result = []
        for i in range(out_size):
            s = np.float32(i) * scale
            lo = int(np.floor(s))
            hi = min(int(np.ceil(s)), in_size - 1)
            result.append((lo, hi, float(s - np.float32(lo))))
        return result

    out = np.empty((out_h, out_w))
    for r, (ylo, yhi, ty) in enumerate(points(in_h, out_h)):
        for c, (xlo, xhi, tx) in enumerate(points(in_w, out_w)):
            top = image[ylo, xlo] + (image[ylo, xhi] - image[ylo, xlo]) * tx
            bottom = image[yhi, xlo] + (image[yhi, xhi] - image[yhi, xlo]) * tx
            out[r, c] = top + (bottom - top) * ty
    return out


@settings(max_examples=30, deadline=None)
@given(in_h=st.integers(1, 9), in_w=st.integers(1, 9), out_h=st.integers(1, 12), out_w=st.integers(1, 12),
       seed=st.integers(0, 2**16))
def test_tf1_resize_matches_the_tensorflow_formula(in_h, in_w, out_h, out_w, seed):
    image = np.random.default_rng(seed).uniform(0, 255, (in_h, in_w))
    ours = resize_bilinear_tf1(torch.from_numpy(image)[None, None], (out_h, out_w))[0, 0].numpy()
    np.testing.assert_allclose(ours, _tf1_reference(image, out_h, out_w), rtol=1e-12, atol=1e-9)


def test_tf1_resize_worked_examples():
    row = torch.tensor([[[[0.0, 10.0]]]])
    # TF1 samples at i * in/out: 0, 0.5, 1, 1.5 -> the last pixel repeats (torch would give 0, 2.5, 7.5, 10)
    assert resize_bilinear_tf1(row, (1, 4)).flatten().tolist() == [0.0, 5.0, 10.0, 10.0]
    x = torch.arange(64.0).reshape(1, 1, 8, 8)
    torch.testing.assert_close(resize_bilinear_tf1(x, (4, 4)), x[..., ::2, ::2])  # exact subsampling
    torch.testing.assert_close(resize_bilinear_tf1(x, (8, 8)), x)  # same size: identity


def test_tf1_mode_scales_like_the_tensorflow_graph():
    net = FIDInceptionV3(pretrained=False, resize="tf1")
    white = torch.full((1, 3, 20, 30), 255, dtype=torch.uint8)
    black = torch.zeros((1, 3, 20, 30), dtype=torch.uint8)
    torch.testing.assert_close(net.preprocess(white), torch.full((1, 3, 299, 299), 127 / 128))
    torch.testing.assert_close(net.preprocess(black), torch.full((1, 3, 299, 299), -1.0))
    x = small_images(1, size=50)
    torch.testing.assert_close(net.preprocess(x.float() / 255), net.preprocess(x), rtol=0, atol=1e-5)
    expected = (resize_bilinear_tf1(x.float(), (299, 299)) - 128) / 128
    torch.testing.assert_close(net.preprocess(x), expected)


def test_tf1_resize_bad_input():
    with pytest.raises(ValueError, match="images"):
        resize_bilinear_tf1(torch.zeros(3, 4, 4), (2, 2))
    with pytest.raises(ValueError, match=r"images: .*got shape \(1, 3, 4, 4\), dtype torch.uint8"):
        resize_bilinear_tf1(torch.zeros(1, 3, 4, 4, dtype=torch.uint8), (2, 2))
    with pytest.raises(ValueError, match=r"images: .*got \[\[0.0\]\]"):
        resize_bilinear_tf1([[0.0]], (2, 2))
    with pytest.raises(ValueError, match="size"):
        resize_bilinear_tf1(torch.zeros(1, 3, 4, 4), (0, 2))


# ----------------------------------------------------------------------------------------------
# Bad input to the network
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("images, match", [
    (torch.zeros(3, 32, 32), "shape"),
    (torch.zeros(2, 4, 32, 32), "shape"),
    (torch.zeros(2, 32, 32, 3), "shape"),
    (torch.zeros(0, 3, 32, 32), "empty"),
    (torch.full((1, 3, 8, 8), 2.0), r"\[0, 1\]"),
    (torch.full((1, 3, 8, 8), -0.5), r"\[0, 1\]"),
    (torch.full((1, 3, 8, 8), float("nan")), "finite"),
    (torch.zeros(1, 3, 8, 8, dtype=torch.int32), "dtype"),
    (np.zeros((1, 3, 8, 8), dtype=np.int64), "dtype"),
])
def test_bad_images(fid_net, images, match):
    with pytest.raises(ValueError, match=match) as info:
        fid_net.preprocess(images)
    assert str(info.value).startswith("images:")


def test_bad_constructor_arguments(weights_file):
    with pytest.raises(ValueError, match="output"):
        FIDInceptionV3(pretrained=False, output="pool4")
    with pytest.raises(ValueError, match="output"):
        FIDInceptionV3(pretrained=False, output=())
    with pytest.raises(ValueError, match="resize"):
        FIDInceptionV3(pretrained=False, resize="bicubic")
    with pytest.raises(ValueError, match="weights: must be None when pretrained=False"):
        FIDInceptionV3(weights_file, pretrained=False)
    with pytest.raises(ValueError, match="weights: expected a path or a state dict"):
        FIDInceptionV3(weights=42)


# ----------------------------------------------------------------------------------------------
# Loading weights
# ----------------------------------------------------------------------------------------------
def test_loads_a_file_and_a_state_dict(net, state_dict, weights_file):
    x = small_images(2)
    from_file = FIDInceptionV3(weights_file, resize=None)
    from_dict = FIDInceptionV3(state_dict, resize=None)
    other = randomize(FIDInceptionV3(pretrained=False, resize=None), seed=1)
    with torch.no_grad():
        expected = net(x)
        assert torch.equal(from_file(x), expected)
        assert torch.equal(from_dict(x), expected)
        assert not torch.allclose(other(x), expected)
    assert str(weights_file) in from_file.weights_source


def test_num_batches_tracked_entries_are_optional(net, state_dict):
    with_counters = dict(state_dict)
    for key in [k for k in state_dict if k.endswith("bn.running_var")]:
        with_counters[key.replace("running_var", "num_batches_tracked")] = torch.tensor(0)
    check_inception_layout(with_counters)
    FIDInceptionV3(with_counters)


def _broken(state_dict, how):
    broken = dict(state_dict)
    if how == "missing":
        del broken["Mixed_6c.branch7x7_2.conv.weight"]
    elif how == "unexpected":
        broken["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    elif how == "shape":
        broken["fc.weight"] = torch.zeros(1000, 2048)
    elif how == "not a tensor":
        broken["fc.bias"] = [0.0] * 1008
    elif how == "nan":
        broken["fc.bias"] = torch.full((1008,), float("nan"))
    return broken


@pytest.mark.parametrize("how, match", [
    ("missing", "missing key.*Mixed_6c.branch7x7_2.conv.weight"),
    ("unexpected", "unexpected key.*AuxLogits.fc.weight"),
    ("shape", r"fc.weight: shape \(1000, 2048\), expected \(1008, 2048\)"),
    ("not a tensor", "fc.bias: not a tensor"),
    ("nan", "fc.bias must hold finite"),
])
def test_wrong_layout_is_a_clear_error(state_dict, tmp_path, how, match):
    broken = _broken(state_dict, how)
    with pytest.raises(ValueError, match=match):
        FIDInceptionV3(broken)
    if how != "not a tensor":  # a list does not survive torch.load(weights_only=True) as a tensor
        path = tmp_path / "broken.pth"
        torch.save(broken, path)
        with pytest.raises(ValueError, match=f"weights file '.*broken.pth': .*{match.split('.*')[0]}"):
            FIDInceptionV3(path)


def test_unreadable_and_non_dict_files(tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a torch file")
    with pytest.raises(ValueError, match="could not read .*garbage.pth"):
        FIDInceptionV3(garbage)
    a_list = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], a_list)
    with pytest.raises(ValueError, match="expected a state dict"):
        FIDInceptionV3(a_list)
    for error in (ValueError, FileNotFoundError):  # the convention, and what callers may catch
        with pytest.raises(error, match="^weights: no such file .*missing.pth"):
            FIDInceptionV3(tmp_path / "missing.pth")


# ----------------------------------------------------------------------------------------------
# Where weights come from: environment variable, caches, download
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No user cache, no torch hub cache, no environment overrides."""
    monkeypatch.setenv("OTMETRICS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("OTMETRICS_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.delenv("OTMETRICS_INCEPTION_URL", raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    return tmp_path


def test_environment_variable(isolated, monkeypatch, weights_file):
    monkeypatch.setenv("OTMETRICS_INCEPTION_WEIGHTS", str(weights_file))
    assert resolve_inception_weights() == weights_file
    assert str(weights_file) in FIDInceptionV3().weights_source
    monkeypatch.setenv("OTMETRICS_INCEPTION_WEIGHTS", str(isolated / "nope.pth"))
    with pytest.raises(WeightsNotFoundError, match="^OTMETRICS_INCEPTION_WEIGHTS: no such file"):
        FIDInceptionV3()


def test_nothing_available_says_how_to_get_the_file(isolated):
    with pytest.raises(WeightsNotFoundError) as info:
        FIDInceptionV3(download=False)
    assert isinstance(info.value, ValueError) and isinstance(info.value, FileNotFoundError)
    message = str(info.value)
    assert message.startswith("weights: ")
    for needed in (FID_WEIGHTS_URL, FID_WEIGHTS_SHA256, "curl", "OTMETRICS_INCEPTION_WEIGHTS", "--weights",
                   str(isolated / "cache" / FID_WEIGHTS_FILENAME)):
        assert needed in message
    assert "\n" not in message


def accept(monkeypatch, digest):
    """Make the lookup accept files with ``digest`` as the FID weights (the real file is not here)."""
    monkeypatch.setattr(inception_weights, "FID_WEIGHTS", dataclasses.replace(FID_WEIGHTS, sha256=digest))


def test_cache_dir_is_torch_hubs_unless_overridden(isolated, monkeypatch):
    monkeypatch.delenv("OTMETRICS_CACHE_DIR")
    assert inception_cache_dir() == isolated / "torch_home" / "hub" / "checkpoints"
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    torch.hub.set_dir(str(isolated / "elsewhere"))  # torch.hub.set_dir is honoured (undone by the fixture)
    assert inception_cache_dir() == isolated / "elsewhere" / "checkpoints"
    monkeypatch.setenv("OTMETRICS_CACHE_DIR", str(isolated / "mine"))
    assert inception_cache_dir() == isolated / "mine"
    # looked for: the override first, then torch hub's folder (and torch-fidelity's name there)
    hub = isolated / "elsewhere" / "checkpoints"
    assert weights.cached_paths(FID_WEIGHTS)[:3] == [
        isolated / "mine" / FID_WEIGHTS_FILENAME, hub / FID_WEIGHTS_FILENAME,
        hub / "weights-inception-2015-12-05-6726825d.pth"]


def test_the_folder_of_otmetrics_0_2_is_still_searched(isolated, monkeypatch, weights_file):
    monkeypatch.delenv("OTMETRICS_CACHE_DIR")
    accept(monkeypatch, hashlib.sha256(weights_file.read_bytes()).hexdigest())
    old = isolated / "xdg" / "otmetrics" / FID_WEIGHTS_FILENAME
    old.parent.mkdir(parents=True)
    old.write_bytes(weights_file.read_bytes())
    assert resolve_inception_weights(download=False) == old


def test_cached_files_are_checked_by_sha256(isolated, monkeypatch, weights_file):
    # torch hub cache of pytorch-fid / torch-fidelity: used only when the digest is the FID file's
    hub = isolated / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    copy = hub / "weights-inception-2015-12-05-6726825d.pth"
    copy.write_bytes(weights_file.read_bytes())
    digest = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    named = re.escape(f"'{copy}' has SHA-256 {digest}")
    with pytest.raises(RuntimeError, match=f"passes the SHA-256 check.*{named}.*delete"):
        resolve_inception_weights(download=False)
    accept(monkeypatch, digest)
    assert resolve_inception_weights(download=False) == copy
    # our own cache comes first
    ours = isolated / "cache" / FID_WEIGHTS_FILENAME
    ours.parent.mkdir(parents=True)
    ours.write_bytes(weights_file.read_bytes())
    assert resolve_inception_weights(download=False) == ours


def test_a_bad_cached_copy_is_skipped_for_a_good_one(isolated, monkeypatch, weights_file):
    digest = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    accept(monkeypatch, digest)
    ours = isolated / "cache" / FID_WEIGHTS_FILENAME  # looked at first, corrupted
    ours.parent.mkdir(parents=True)
    ours.write_bytes(b"truncated")
    hub = isolated / "torch_home" / "hub" / "checkpoints" / FID_WEIGHTS_FILENAME
    hub.parent.mkdir(parents=True)
    hub.write_bytes(b"another file")
    # no copy verifies: the error names every copy it checked, with its digest
    with pytest.raises(RuntimeError) as info:
        resolve_inception_weights(download=False)
    for path, data in ((ours, b"truncated"), (hub, b"another file")):
        assert f"'{path}' has SHA-256 {hashlib.sha256(data).hexdigest()}" in str(info.value)
    # the torch-fidelity copy, checked last, is good: it is used, and the bad copy named
    fidelity = hub.with_name("weights-inception-2015-12-05-6726825d.pth")
    fidelity.write_bytes(weights_file.read_bytes())
    with pytest.warns(OTMetricsWarning) as record:
        assert resolve_inception_weights(download=False) == fidelity
    messages = [str(w.message) for w in record]
    assert len(messages) == 2 and str(ours) in messages[0] and str(hub) in messages[1]
    assert all(f"using '{fidelity}'" in m for m in messages)


def test_download_verifies_the_full_digest_and_the_name_prefix(tmp_path):
    good = os.urandom(3_000_000)
    prefixed = f"weights-{sha256_of(good)[:8]}.pth"
    with LocalServer({"w.pth": good, prefixed: good}) as server:
        path = download_inception_weights(server.url("w.pth"), cache_dir=tmp_path / "c1",
                                          sha256=sha256_of(good), filename="w.pth", progress=False)
        assert path == tmp_path / "c1" / "w.pth" and path.read_bytes() == good
        # no digest given: the torch hub convention, the hex prefix in the file name
        path = download_inception_weights(server.url(prefixed), cache_dir=tmp_path / "c2", filename=prefixed,
                                          progress=False)
        assert path.read_bytes() == good
    assert sorted(p.name for p in (tmp_path / "c1").iterdir()) == ["w.pth"]  # no partial files left


def test_corrupted_download_fails_the_checksum_and_leaves_nothing(tmp_path):
    good = os.urandom(1_000_000)
    corrupted = bytearray(good)
    corrupted[123_456] ^= 0xFF
    prefixed = f"weights-{sha256_of(good)[:8]}.pth"
    with LocalServer({"w.pth": bytes(corrupted), prefixed: bytes(corrupted)}) as server:
        with pytest.raises(RuntimeError, match="checksum mismatch.*discarded"):
            download_inception_weights(server.url("w.pth"), cache_dir=tmp_path, sha256=sha256_of(good),
                                       filename="w.pth", progress=False)
        with pytest.raises(RuntimeError, match="checksum mismatch"):
            download_inception_weights(server.url(prefixed), cache_dir=tmp_path, filename=prefixed,
                                       progress=False)
    assert list(tmp_path.iterdir()) == []


def test_download_errors_say_how_to_get_the_file(tmp_path):
    with LocalServer({}) as server:
        with pytest.raises(RuntimeError, match="could not download.*curl"):
            download_inception_weights(server.url("missing-12345678.pth"), cache_dir=tmp_path, progress=False)
        port = server.httpd.server_address[1]
    with pytest.raises(RuntimeError, match="could not download"):  # nothing listens any more
        download_inception_weights(f"http://127.0.0.1:{port}/x-12345678.pth", cache_dir=tmp_path,
                                   progress=False)
    with pytest.raises(RuntimeError, match="could not download"):  # torch.hub would leave a .partial file
        download_inception_weights("no-scheme/x-12345678.pth", cache_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="sha256: required"):
        download_inception_weights("http://127.0.0.1:1/no-prefix.pth", cache_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_stalled_server_fails_after_the_timeout_and_the_socket_default_is_restored(tmp_path):
    import socket

    release = threading.Event()

    class Stalling(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"x" * 10)
            self.wfile.flush()
            release.wait(10)  # then stall: the client must give up by itself

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stalling)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    before = socket.getdefaulttimeout()
    try:
        # "timed out" is the client giving up by itself: a client without a timeout would wait for the
        # server (10 s) and then fail on an incomplete read instead
        with pytest.raises(RuntimeError, match="could not download.*timed out"):
            download_inception_weights(f"http://127.0.0.1:{httpd.server_address[1]}/w-12345678.pth",
                                       cache_dir=tmp_path, progress=False, timeout=0.5)
    finally:
        release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert socket.getdefaulttimeout() == before
    assert list(tmp_path.iterdir()) == []  # nothing partial left behind
    good = os.urandom(1000)
    with LocalServer({"w.pth": good}) as server:
        path = download_inception_weights(server.url("w.pth"), cache_dir=tmp_path, sha256=sha256_of(good),
                                          filename="w.pth", progress=False, timeout=5)
    assert path.read_bytes() == good
    with pytest.raises(ValueError, match="^timeout: must be finite and > 0"):
        download_inception_weights("http://127.0.0.1:1/w-12345678.pth", cache_dir=tmp_path, timeout=0)


def test_default_address_expects_the_publishedsha256_of(isolated, monkeypatch):
    assert FID_WEIGHTS_URL.endswith(FID_WEIGHTS_FILENAME)
    assert FID_WEIGHTS_SHA256.startswith(FID_WEIGHTS_FILENAME.rsplit("-", 1)[1].split(".")[0])
    assert len(FID_WEIGHTS_SHA256) == 64
    calls = []

    def fake_download(*args, **kwargs):
        calls.append((args, kwargs))
        Path(args[1]).write_bytes(b"")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    download_inception_weights(progress=False)
    # torch.hub checks a prefix of the digest: it is given all of it
    assert calls == [((FID_WEIGHTS_URL, str(isolated / "cache" / FID_WEIGHTS_FILENAME)),
                      {"hash_prefix": FID_WEIGHTS_SHA256, "progress": False})]


def test_constructor_downloads_into_the_cache_then_reuses_it(isolated, monkeypatch, net, weights_file):
    data = weights_file.read_bytes()
    with LocalServer({FID_WEIGHTS_FILENAME: data}) as server:
        monkeypatch.setenv("OTMETRICS_INCEPTION_URL", server.url(FID_WEIGHTS_FILENAME))
        # the served file is not the real one: the canonical digest rejects it
        with pytest.raises(RuntimeError, match="checksum mismatch"):
            FIDInceptionV3(progress=False)
        assert not (isolated / "cache" / FID_WEIGHTS_FILENAME).exists()
        # with the digest of the served file, the download is accepted and loaded
        accept(monkeypatch, sha256_of(data))
        downloaded = FIDInceptionV3(progress=False, resize=None)
    cached = isolated / "cache" / FID_WEIGHTS_FILENAME
    assert cached.read_bytes() == data
    again = FIDInceptionV3(download=False, resize=None)  # the server is gone: the cache serves
    assert str(cached) in again.weights_source
    x = small_images(1)
    with torch.no_grad():
        assert torch.equal(downloaded(x), net(x)) and torch.equal(again(x), net(x))


def test_downloads_go_through_torch_hub_into_its_cache(isolated, monkeypatch, weights_file):
    # no OTMETRICS_CACHE_DIR: the file lands in torch hub's checkpoints folder, where pytorch-fid's
    # torch.hub.load_state_dict_from_url would find it too
    monkeypatch.delenv("OTMETRICS_CACHE_DIR")
    data = weights_file.read_bytes()
    accept(monkeypatch, sha256_of(data))
    calls = []
    real = torch.hub.download_url_to_file

    def spy(url, dst, hash_prefix=None, progress=True):
        calls.append(hash_prefix)
        leftovers.extend(Path(dst).parent.glob("*.partial"))
        return real(url, dst, hash_prefix=hash_prefix, progress=progress)

    leftovers = []
    monkeypatch.setattr(torch.hub, "download_url_to_file", spy)
    with LocalServer({FID_WEIGHTS_FILENAME: data}) as server:
        monkeypatch.setenv("OTMETRICS_INCEPTION_URL", server.url(FID_WEIGHTS_FILENAME))
        path = resolve_inception_weights(progress=False)
    hub = isolated / "torch_home" / "hub" / "checkpoints"
    assert path == hub / FID_WEIGHTS_FILENAME and path.read_bytes() == data
    assert calls == [sha256_of(data)] and not leftovers
    assert sorted(p.name for p in hub.iterdir()) == [FID_WEIGHTS_FILENAME]


def settle(path, seconds=3600):
    """Date the file's modification back: a file modified in the last 2 s gets no digest record."""
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns - seconds * 10**9))


def _count_hashing(monkeypatch):
    counted = []
    real = digests.sha256_file
    monkeypatch.setattr(digests, "sha256_file", lambda path, *a: counted.append(Path(path)) or real(path, *a))
    return counted


def test_a_cached_copy_is_hashed_once(isolated, monkeypatch, weights_file):
    data = weights_file.read_bytes()
    accept(monkeypatch, sha256_of(data))
    cached = isolated / "cache" / FID_WEIGHTS_FILENAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(data)
    hashed = _count_hashing(monkeypatch)
    # just written: checked, but not recorded (a change in the same clock tick would go unseen)
    assert resolve_inception_weights(download=False) == cached
    assert not Path(str(cached) + ".sha256").exists()
    settle(cached)
    hashed.clear()
    assert resolve_inception_weights(download=False) == cached
    assert hashed == [cached]
    stat = cached.stat()
    record = json.loads(Path(str(cached) + ".sha256").read_text())
    assert record["sha256"] == sha256_of(data)
    assert (record["size"], record["mtime_ns"]) == (stat.st_size, stat.st_mtime_ns)
    FIDInceptionV3(download=False, resize=None)  # the memo of this process serves
    digests.forget_digests()  # as in a new process: the record serves
    FIDInceptionV3(download=False, resize=None)
    assert hashed == [cached]


def test_the_record_is_invalidated_when_the_file_changes(isolated, monkeypatch, weights_file):
    data = weights_file.read_bytes()
    accept(monkeypatch, sha256_of(data))
    cached = isolated / "cache" / FID_WEIGHTS_FILENAME
    cached.parent.mkdir(parents=True)
    cached.write_bytes(data)
    settle(cached)
    resolve_inception_weights(download=False)
    hashed = _count_hashing(monkeypatch)
    corrupted = bytearray(data)
    corrupted[1000] ^= 0xFF
    # the same size, rewritten in place: a new modification time
    cached.write_bytes(bytes(corrupted))
    with pytest.raises(RuntimeError, match="passes the SHA-256 check"):
        resolve_inception_weights(download=False)
    assert hashed == [cached]
    # the good bytes again, then a different file of the same size moved into place with the
    # recorded modification time: the inode tells them apart
    cached.write_bytes(data)
    settle(cached)
    resolve_inception_weights(download=False)
    stat = cached.stat()
    replacement = cached.with_name("replacement")
    replacement.write_bytes(bytes(corrupted))
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    os.replace(replacement, cached)
    digests.forget_digests()
    with pytest.raises(RuntimeError, match="passes the SHA-256 check"):
        resolve_inception_weights(download=False)
    # a record that is not ours, or damaged, is ignored and rewritten after a successful check
    cached.write_bytes(data)
    settle(cached)
    Path(str(cached) + ".sha256").write_text("{not json")
    digests.forget_digests()
    hashed.clear()
    assert resolve_inception_weights(download=False) == cached and hashed == [cached]
    assert json.loads(Path(str(cached) + ".sha256").read_text())["sha256"] == sha256_of(data)


def test_a_download_is_hashed_once_more_then_recorded(isolated, monkeypatch, weights_file):
    data = weights_file.read_bytes()
    accept(monkeypatch, sha256_of(data))
    with LocalServer({FID_WEIGHTS_FILENAME: data}) as server:
        monkeypatch.setenv("OTMETRICS_INCEPTION_URL", server.url(FID_WEIGHTS_FILENAME))
        downloaded = resolve_inception_weights(progress=False)  # checked by torch.hub on the way
    hashed = _count_hashing(monkeypatch)
    settle(downloaded)  # as at a later run
    for _ in range(2):
        digests.forget_digests()  # a new process each time
        assert resolve_inception_weights(download=False) == downloaded
    assert hashed == [downloaded]


def test_public_names():
    assert otmetrics.FIDInceptionV3 is FIDInceptionV3
    assert "FIDInceptionV3" in otmetrics.__all__ and "image_features" in otmetrics.__all__


# The names of otmetrics 0.1's otmetrics.inception module.
OLD_NAMES = ["FIDInceptionV3", "FEATURE_DIMS", "FID_WEIGHTS_URL", "FID_WEIGHTS_FILENAME",
             "FID_WEIGHTS_SHA256",
             "WEIGHTS_ENV", "CACHE_ENV", "URL_ENV", "inception_cache_dir", "resolve_inception_weights",
             "download_inception_weights", "load_inception_state_dict", "check_inception_layout",
             "resize_bilinear_tf1", "sha256_file", "WeightsNotFoundError"]


def test_the_old_paths_keep_working():
    from otmetrics.generative.features import inception, preprocess

    assert set(OLD_NAMES) <= set(inception.__all__)
    for name in OLD_NAMES:  # still importable from where 0.2 development had them
        assert getattr(inception, name) is not None
    import otmetrics.inception as old

    assert set(OLD_NAMES) <= set(old.__all__)
    with pytest.warns(DeprecationWarning, match="from otmetrics.generative.features.preprocess"):
        assert old.resize_bilinear_tf1 is preprocess.resize_bilinear_tf1
    with pytest.warns(DeprecationWarning, match="from otmetrics.generative.features.weights"):
        assert old.WeightsNotFoundError is WeightsNotFoundError
    with pytest.warns(DeprecationWarning, match="from otmetrics.generative.features.inception$"):
        assert old._ConvBN is inception._ConvBN  # a network pickled whole under 0.1 still loads
