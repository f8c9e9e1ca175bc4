"""The FID InceptionV3 in plain torch, and where its weights come from.

FID, KID and the Inception Score are only comparable between papers when everyone computes them
with the same network: the InceptionV3 graph that TensorFlow's original FID code froze in
December 2015 (``inception-2015-12-05``), with 1008 output classes and a few pooling layers that
differ from the textbook InceptionV3. pytorch-fid converted that graph to a PyTorch state dict,
``pt_inception-2015-12-05-6726825d.pth``; torch-fidelity ships the same bytes. This module
rebuilds the network around that state dict without torchvision, so that the file loads key for
key, and finds the file (argument, environment variable, caches, or a checksum-verified download).

Weights are looked up in this order:

1. the ``weights=`` argument (a path or a state dict);
2. the environment variable ``OTMETRICS_INCEPTION_WEIGHTS`` (a path);
3. the otmetrics cache, ``$OTMETRICS_CACHE_DIR`` or ``$XDG_CACHE_HOME/otmetrics`` or
   ``~/.cache/otmetrics``, and the torch hub cache where pytorch-fid and torch-fidelity put the same
   file (these copies are verified by SHA-256 before use);
4. a download from pytorch-fid's release (``$OTMETRICS_INCEPTION_URL`` overrides the address, for
   a mirror), verified by SHA-256 before it enters the cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..._core.arrays import describe
from ..._core.warnings import OTMetricsWarning

__all__ = [
    "FIDInceptionV3",
    "FEATURE_DIMS",
    "FID_WEIGHTS_URL",
    "FID_WEIGHTS_FILENAME",
    "FID_WEIGHTS_SHA256",
    "WEIGHTS_ENV",
    "CACHE_ENV",
    "URL_ENV",
    "inception_cache_dir",
    "resolve_inception_weights",
    "download_inception_weights",
    "load_inception_state_dict",
    "check_inception_layout",
    "resize_bilinear_tf1",
    "sha256_file",
    "WeightsNotFoundError",
]

#: pytorch-fid's release of the converted TensorFlow FID graph (the address everyone downloads).
FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
#: The file's name; ``6726825d`` is the first 8 hex digits of its SHA-256 (the torch hub convention).
FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
#: The full SHA-256 digest of that file (95,628,359 bytes), as published alongside the file by
#: several independent projects that pin it; its prefix matches the file name.
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
#: torch-fidelity's name for the same bytes, looked for in the torch hub cache.
_TORCH_FIDELITY_FILENAME = "weights-inception-2015-12-05-6726825d.pth"

WEIGHTS_ENV = "OTMETRICS_INCEPTION_WEIGHTS"
CACHE_ENV = "OTMETRICS_CACHE_DIR"
URL_ENV = "OTMETRICS_INCEPTION_URL"

#: The outputs :class:`FIDInceptionV3` can return and their widths.
FEATURE_DIMS = {
    "pool1": 64,            # after the first max pool, spatially averaged (pytorch-fid --dims 64)
    "pool2": 192,           # after the second max pool, spatially averaged (--dims 192)
    "mixed_6e": 768,        # input of the auxiliary classifier, spatially averaged (--dims 768)
    "pool3": 2048,          # the final average pool: the FID/KID features
    "logits_unbiased": 1008,  # pool3 @ fc.weight.T, without the bias: the Inception Score input
    "logits": 1008,         # pool3 @ fc.weight.T + fc.bias
}
_DIM_TO_OUTPUT = {64: "pool1", 192: "pool2", 768: "mixed_6e", 2048: "pool3"}
_RESIZE_MODES = ("pytorch-fid", "tf1", None)
_INPUT_SIZE = 299


# ----------------------------------------------------------------------------------------------
# The network. Attribute names are the keys of the weight file; do not rename them.
# ----------------------------------------------------------------------------------------------
class _ConvBN(nn.Module):
    """Convolution without bias, batch norm (eps = 1e-3, TensorFlow's), ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                              bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_3x3(x):
    # TensorFlow's average pool divides by the number of real (non-padding) pixels.
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


def _max_pool_3x3(x):
    return F.max_pool2d(x, kernel_size=3, stride=1, padding=1)


class _MixedA(nn.Module):
    """35x35 block (Mixed_5b/c/d): 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, in_channels: int, pool_features: int):
        super().__init__()
        self.branch1x1 = _ConvBN(in_channels, 64, 1)
        self.branch5x5_1 = _ConvBN(in_channels, 48, 1)
        self.branch5x5_2 = _ConvBN(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, padding=1)
        self.branch_pool = _ConvBN(in_channels, pool_features, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg_pool_3x3(x)),
        ], 1)


class _ReductionB(nn.Module):
    """35x35 -> 17x17 (Mixed_6a): stride-2 3x3 | 1x1-3x3-stride-2 3x3 | stride-2 max pool."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3 = _ConvBN(in_channels, 384, 3, stride=2)
        self.branch3x3dbl_1 = _ConvBN(in_channels, 64, 1)
        self.branch3x3dbl_2 = _ConvBN(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _ConvBN(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class _MixedC(nn.Module):
    """17x17 block (Mixed_6b..e) with factorised 7x7 convolutions and an average-pool branch."""

    def __init__(self, in_channels: int, channels_7x7: int):
        super().__init__()
        c = channels_7x7
        self.branch1x1 = _ConvBN(in_channels, 192, 1)
        self.branch7x7_1 = _ConvBN(in_channels, c, 1)
        self.branch7x7_2 = _ConvBN(c, c, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _ConvBN(c, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = _ConvBN(in_channels, c, 1)
        self.branch7x7dbl_2 = _ConvBN(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _ConvBN(c, c, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _ConvBN(c, c, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _ConvBN(c, 192, (1, 7), padding=(0, 3))
        self.branch_pool = _ConvBN(in_channels, 192, 1)

    def forward(self, x):
        double = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                      self.branch7x7dbl_4, self.branch7x7dbl_5):
            double = layer(double)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            double,
            self.branch_pool(_avg_pool_3x3(x)),
        ], 1)


class _ReductionD(nn.Module):
    """17x17 -> 8x8 (Mixed_7a)."""

    def __init__(self, in_channels: int):
        super().__init__()
        self.branch3x3_1 = _ConvBN(in_channels, 192, 1)
        self.branch3x3_2 = _ConvBN(192, 320, 3, stride=2)
        self.branch7x7x3_1 = _ConvBN(in_channels, 192, 1)
        self.branch7x7x3_2 = _ConvBN(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _ConvBN(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _ConvBN(192, 192, 3, stride=2)

    def forward(self, x):
        seven = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([
            self.branch3x3_2(self.branch3x3_1(x)),
            seven,
            F.max_pool2d(x, kernel_size=3, stride=2),
        ], 1)


class _MixedE(nn.Module):
    """8x8 block (Mixed_7b, Mixed_7c) with split 1x3 / 3x1 branches.

    The FID graph pools with an average (padding excluded) in Mixed_7b and with a *max* in
    Mixed_7c; the textbook network averages in both. ``pool`` selects which.
    """

    def __init__(self, in_channels: int, pool: str):
        super().__init__()
        self.branch1x1 = _ConvBN(in_channels, 320, 1)
        self.branch3x3_1 = _ConvBN(in_channels, 384, 1)
        self.branch3x3_2a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = _ConvBN(in_channels, 448, 1)
        self.branch3x3dbl_2 = _ConvBN(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _ConvBN(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _ConvBN(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = _ConvBN(in_channels, 192, 1)
        self._pool = _max_pool_3x3 if pool == "max" else _avg_pool_3x3

    def forward(self, x):
        single = self.branch3x3_1(x)
        double = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(single), self.branch3x3_2b(single),
            self.branch3x3dbl_3a(double), self.branch3x3dbl_3b(double),
            self.branch_pool(self._pool(x)),
        ], 1)


class FIDInceptionV3(nn.Module):
    r"""The InceptionV3 of the original FID code, in plain torch, loading the standard FID weights.

    The network is TensorFlow's ``inception-2015-12-05`` graph as pytorch-fid converted it: 1008
    classes; the average pools of the Mixed blocks exclude the zero padding from the average
    (``count_include_pad=False``), and the last block (``Mixed_7c``) pools with a max instead of
    an average. Its ``state_dict`` has exactly the keys and shapes of
    ``pt_inception-2015-12-05-6726825d.pth``, so features match pytorch-fid's and torch-fidelity's
    and FID values are comparable with published ones.

    Parameters
    ----------
    weights : str, os.PathLike, Mapping or None, default None
        A weight file, or a state dict. ``None`` looks for ``$OTMETRICS_INCEPTION_WEIGHTS``, then the
        caches, then downloads from pytorch-fid's release (checked by SHA-256); see
        :func:`resolve_inception_weights`. A file whose keys or shapes differ from the FID layout
        raises ``ValueError`` naming the first differences.
    pretrained : bool, default True
        ``False`` builds the architecture with random weights (He-normal convolutions, seeded by
        ``torch.manual_seed``) and loads nothing: for tests and for training from scratch.
    output : str or sequence of str, default "pool3"
        What :meth:`forward` returns: ``"pool3"`` (N, 2048) FID/KID features, ``"logits_unbiased"``
        (N, 1008) logits without the bias (the Inception Score input, as in the original code),
        ``"logits"`` (N, 1008) with the bias, or the spatially averaged ``"pool1"`` (64),
        ``"pool2"`` (192), ``"mixed_6e"`` (768). A sequence returns a tuple in the same order,
        from one forward pass.
    resize : {"pytorch-fid", "tf1", None}, default "pytorch-fid"
        ``"pytorch-fid"``: torch's bilinear resize to 299x299 (``align_corners=False``, half-pixel
        centres) on [0, 1] values, then ``2 x - 1``, as pytorch-fid does. ``"tf1"``: the TensorFlow 1
        graph's preprocessing that torch-fidelity reproduces: TF1's bilinear resize (source
        coordinate ``i * in/out``, no half-pixel offset, see :func:`resize_bilinear_tf1`) on 0..255
        values, then ``(v - 128) / 128``. ``None``: no resize (the network is fully convolutional
        up to the global pool), then ``2 x - 1``.
    download : bool, default True
        Allow the download when no weight file is found.
    progress : bool, default True
        Show a progress bar while downloading.
    requires_grad : bool, default False
        Whether the parameters require gradients. The module starts in ``eval()`` mode: batch
        norm uses the stored statistics.
    tf32 : bool, default False
        On CUDA, torch lets cuDNN run float32 convolutions in TF32 (10-bit mantissa) by default,
        which moves the features by about 1e-3 relative and FID values with them; TF32 matmuls
        (``torch.set_float32_matmul_precision("high")``) and, on the CPU, oneDNN's TF32/bf16
        modes (``"medium"``, ``torch.backends.mkldnn.*.fp32_precision``) do the same. With
        ``tf32=False`` a float32 forward pass runs its convolutions and the ``fc`` matmul in full
        IEEE float32 whatever those settings say, and restores them afterwards (also when it
        raises); ``tf32=True`` leaves them as they are (faster on Ampere and later GPUs, less
        exact). The settings are process-wide in torch: concurrent forward passes of this class
        in several threads are safe (the first switches them, the last restores them), but
        other code running meanwhile also computes in full float32, and a change another thread
        makes to these settings during a forward pass is undone when it ends.
    channels_last : bool, default True
        Keep the convolution weights and the input in the channels-last memory layout, which
        oneDNN's CPU convolutions run 1.2-1.6x faster here (see docs/benchmarks.md); the values
        differ from the NCHW layout only by the summation order (largest difference about 1e-6
        of the largest feature value).

    Notes
    -----
    Input: images ``(N, 3, H, W)`` (``(N, 1, H, W)`` is repeated to RGB), any ``H, W``; ``uint8``
    values 0..255, or floating values in [0, 1] (others raise ``ValueError``). Tensors are moved to
    the module's device and dtype; outputs are tensors on the module's device in its dtype
    (``float32`` unless you call ``.double()``). numpy input gives numpy ``float64`` output.

    Cost: about 5.7 GFLOP per 299x299 image; on a 2-core CPU roughly 0.1-0.3 s per image,
    on a GPU thousands of images per second. Memory for the weights: 95 MB.

    References
    ----------
    Szegedy et al., "Rethinking the Inception Architecture for Computer Vision", CVPR 2016.
    Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
    Equilibrium", NeurIPS 2017 (FID). pytorch-fid and torch-fidelity (the weight file).

    Examples
    --------
    >>> import torch
    >>> from otmetrics import FIDInceptionV3
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = FIDInceptionV3(pretrained=False)  # random weights; FIDInceptionV3() loads the real ones
    >>> images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    >>> net(images).shape
    torch.Size([2, 2048])
    >>> features, logits = net(images, output=("pool3", "logits_unbiased"))
    >>> logits.shape
    torch.Size([2, 1008])
    """

    def __init__(self, weights=None, *, pretrained: bool = True, output="pool3",
                 resize: str | None = "pytorch-fid", download: bool = True, progress: bool = True,
                 requires_grad: bool = False, tf32: bool = False, channels_last: bool = True):
        super().__init__()
        self.tf32 = bool(tf32)
        self.output = _validate_output(output)
        if resize not in _RESIZE_MODES:
            raise ValueError(f"resize: must be 'pytorch-fid', 'tf1' or None, got {resize!r}")
        self.resize = resize
        if not pretrained and weights is not None:
            raise ValueError("weights: must be None when pretrained=False, got "
                             f"{_describe_weights(weights)}")

        if pretrained:
            if isinstance(weights, Mapping):
                state_dict, source, copy = weights, "weights (state dict)", True
            else:
                path = resolve_inception_weights(weights, download=download, progress=progress)
                state_dict, source, copy = _read_state_dict(path), f"weights file '{path}'", False
            check_inception_layout(state_dict, source, check_values=False)
            with torch.device("meta"):  # no time spent initialising what the weights replace
                self._build_layers()
            self._assign(state_dict, copy, channels_last)
        else:
            self._build_layers()
            self._init_random()
        self.weights_source = source if pretrained else "random"
        if channels_last and not pretrained:
            self.to(memory_format=torch.channels_last)
        if pretrained:  # on the final tensors: the file is read from memory once more, not twice
            _check_finite(((k, v) for k, v in self.state_dict().items() if v.is_floating_point()), source)
        self.requires_grad_(requires_grad)
        self.eval()

    # -- weights -------------------------------------------------------------------------------
    def _build_layers(self):
        self.Conv2d_1a_3x3 = _ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = _ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = _ConvBN(80, 192, 3)
        self.Mixed_5b = _MixedA(192, pool_features=32)
        self.Mixed_5c = _MixedA(256, pool_features=64)
        self.Mixed_5d = _MixedA(288, pool_features=64)
        self.Mixed_6a = _ReductionB(288)
        self.Mixed_6b = _MixedC(768, channels_7x7=128)
        self.Mixed_6c = _MixedC(768, channels_7x7=160)
        self.Mixed_6d = _MixedC(768, channels_7x7=160)
        self.Mixed_6e = _MixedC(768, channels_7x7=192)
        self.Mixed_7a = _ReductionD(768)
        self.Mixed_7b = _MixedE(1280, pool="avg")
        self.Mixed_7c = _MixedE(2048, pool="max")
        self.fc = nn.Linear(2048, 1008)

    def _init_random(self):
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=module.in_features ** -0.5)
                nn.init.zeros_(module.bias)

    def _assign(self, state_dict: Mapping, copy: bool, channels_last: bool):
        # The file holds float32; entries become float32 parameters and buffers (call .double()
        # afterwards for a float64 network). ``copy`` avoids sharing storage with a caller's dict.
        values = {}
        for key in self.state_dict():
            if key.endswith("num_batches_tracked"):
                values[key] = torch.zeros((), dtype=torch.long)
                continue
            value = state_dict[key].detach().to("cpu", torch.float32, copy=copy)
            layout = torch.channels_last if channels_last and value.ndim == 4 else torch.contiguous_format
            values[key] = _canonical(value, layout)
        self.load_state_dict(values, strict=True, assign=True)

    # -- forward ----------------------------------------------------------------------------------
    def preprocess(self, images) -> torch.Tensor:
        """Validate, resize to 299x299 and scale images to the network's input range.

        Returns a tensor ``(N, 3, 299, 299)`` (``(N, 3, H, W)`` with ``resize=None``) on the
        module's device and in its dtype, with values in [-1, 1].
        """
        param = self.fc.weight
        x = _validate_images(images, "images")
        x = x.to(param.device, non_blocking=True)
        is_uint8 = x.dtype == torch.uint8
        x = x.to(param.dtype)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.resize == "tf1":
            if not is_uint8:
                x = x * 255
            x = resize_bilinear_tf1(x, (_INPUT_SIZE, _INPUT_SIZE))
            return (x - 128) / 128
        if is_uint8:
            x = x / 255
        if self.resize == "pytorch-fid":
            x = F.interpolate(x, size=(_INPUT_SIZE, _INPUT_SIZE), mode="bilinear", align_corners=False)
        return 2 * x - 1

    def forward(self, images, output=None):
        """Features of ``images``; see the class docstring for the inputs and ``output`` names."""
        names = self.output if output is None else _validate_output(output)
        is_numpy = not isinstance(images, torch.Tensor)
        x = self.preprocess(images)
        if self.Conv2d_1a_3x3.conv.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        with _full_float32(x.device.type, enabled=not self.tf32 and x.dtype == torch.float32):
            found = self._features(x, set(names if isinstance(names, tuple) else (names,)))
        if is_numpy:
            found = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in found.items()}
        if isinstance(names, tuple):
            return tuple(found[n] for n in names)
        return found[names]

    def _features(self, x, wanted):
        found = {}

        def done(name, value):
            if name in wanted:
                found[name] = value
            return wanted <= found.keys()

        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        if not done("pool1", _spatial_mean(x)):
            x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
            x = F.max_pool2d(x, kernel_size=3, stride=2)
            if not done("pool2", _spatial_mean(x)):
                for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,
                              self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e):
                    x = block(x)
                if not done("mixed_6e", _spatial_mean(x)):
                    x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
                    pool3 = _spatial_mean(x)
                    if not done("pool3", pool3):
                        unbiased = pool3 @ self.fc.weight.T
                        if not done("logits_unbiased", unbiased):
                            done("logits", unbiased + self.fc.bias)
        return found

    def extra_repr(self) -> str:
        return (f"output={self.output!r}, resize={self.resize!r}, tf32={self.tf32}, "
                f"weights={self.weights_source!r}")

    @staticmethod
    def output_for_dims(dims: int) -> str:
        """The output name for pytorch-fid's ``--dims`` (64, 192, 768 or 2048)."""
        if dims not in _DIM_TO_OUTPUT:
            raise ValueError(f"dims: must be one of 64, 192, 768, 2048, got {dims!r}")
        return _DIM_TO_OUTPUT[dims]


def _canonical(value: torch.Tensor, layout) -> torch.Tensor:
    # The strides of a fresh tensor in ``layout``. ``contiguous()`` is not enough: a 1x1 kernel
    # saved from a channels-last model is "contiguous" with channels-last strides, and torch then
    # picks the channels-last convolution kernels for it, which round differently.
    strides = torch.empty(value.shape, device="meta", memory_format=layout).stride()
    return value if value.stride() == strides else value.clone(memory_format=layout)


# ----------------------------------------------------------------------------------------------
# Full float32 precision during the forward pass (the ``tf32`` policy)
# ----------------------------------------------------------------------------------------------
class _PrecisionSetting:
    """One process-wide torch setting that may lower the precision of float32 convolutions or
    matmuls on a device (TF32 on CUDA, TF32/bf16 in oneDNN on the CPU): how to read it, write it,
    whether a value means full IEEE float32, and the value that does."""

    def __init__(self, name, read, write, exact_values, exact):
        self.name, self.read, self.write = name, read, write
        self.exact_values, self.exact = exact_values, exact

    def is_exact(self, value) -> bool:
        return value in self.exact_values


def _fp32_precision_setting(name: str, holder) -> _PrecisionSetting:
    # torch >= 2.9: per backend and operation; "none" inherits from the parent ("generic"
    # at the top), whose default is IEEE. The getter returns the inherited value.
    return _PrecisionSetting(name, lambda: holder.fp32_precision,
                             lambda value: setattr(holder, "fp32_precision", value), ("ieee", "none"), "ieee")


def _precision_settings(device_type: str) -> list[_PrecisionSetting]:
    """The settings that govern the float32 convolutions and matmuls of a forward pass on
    ``device_type``.

    On torch >= 2.9 only the per-operation ``fp32_precision`` settings are read and written: their
    getters never raise, whereas the legacy getters (``torch.backends.cudnn.allow_tf32``,
    ``torch.get_float32_matmul_precision()``) raise once a program has mixed the two APIs
    inconsistently. Restoring the exact previous values keeps the legacy getters working.
    """
    backends = torch.backends
    if hasattr(backends.cudnn, "conv") and hasattr(backends.mkldnn, "matmul"):  # torch >= 2.9
        holders = {"cuda": (("cudnn.conv", backends.cudnn.conv), ("cuda.matmul", backends.cuda.matmul)),
                   "cpu": (("mkldnn.conv", backends.mkldnn.conv), ("mkldnn.matmul", backends.mkldnn.matmul))}
        return [_fp32_precision_setting(name, holder) for name, holder in holders.get(device_type, ())]
    settings = []
    if device_type == "cuda":  # torch < 2.9: cuDNN's flag, and the float32 matmul precision
        settings.append(_PrecisionSetting(
            "cudnn.allow_tf32", lambda: backends.cudnn.allow_tf32,
            lambda value: setattr(backends.cudnn, "allow_tf32", value), (False,), False))
    if device_type in ("cuda", "cpu"):
        settings.append(_PrecisionSetting(
            "float32_matmul_precision", torch.get_float32_matmul_precision,
            torch.set_float32_matmul_precision, ("highest",), "highest"))
    return settings


_PRECISION_LOCK = threading.Lock()
#: Per setting name: [forward passes inside _full_float32 that rely on it, the value to restore
#: when the last of them leaves (None: it was exact already, nothing to restore)].
_PRECISION_STATE: dict[str, list] = {}


def _acquire_precision(settings) -> None:
    acquired = []
    try:
        for setting in settings:
            state = _PRECISION_STATE.setdefault(setting.name, [0, None])
            if state[0] == 0:
                previous = setting.read()
                if setting.is_exact(previous):
                    state[1] = None
                else:
                    setting.write(setting.exact)
                    state[1] = (previous,)
            state[0] += 1
            acquired.append(setting)
    except BaseException:
        _release_precision(acquired)
        raise


def _release_precision(settings) -> None:
    for setting in reversed(settings):
        state = _PRECISION_STATE[setting.name]
        state[0] -= 1
        if state[0] == 0 and state[1] is not None:
            (previous,), state[1] = state[1], None
            setting.write(previous)


@contextlib.contextmanager
def _full_float32(device_type: str, enabled: bool = True):
    """Run the body with full IEEE float32 convolutions and matmuls on ``device_type``.

    torch's precision settings are process-wide. Each one is switched by the first forward pass
    that enters and restored by the last one that leaves (a reference count under a lock), so
    that forward passes in several threads neither restore a setting under each other's feet nor
    leave it changed; a setting that is exact already is not written at all. What cannot be
    avoided with process-wide settings: other code running meanwhile computes in full precision
    too, and a change another thread makes to these settings meanwhile is undone on exit.
    """
    if not enabled:
        yield
        return
    settings = _precision_settings(device_type)
    with _PRECISION_LOCK:
        _acquire_precision(settings)
    try:
        yield
    finally:
        with _PRECISION_LOCK:
            _release_precision(settings)


def _spatial_mean(x):
    # the global average pool as pytorch-fid and torch-fidelity compute it (same rounding)
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def _validate_output(output):
    names = (output,) if isinstance(output, str) else output
    if not isinstance(names, Sequence) or len(names) == 0:
        raise ValueError(f"output: must be a name or a non-empty sequence of names, got {output!r}")
    for name in names:
        if name not in FEATURE_DIMS:
            raise ValueError(f"output: must be one of {', '.join(FEATURE_DIMS)}, got {name!r}")
    return output if isinstance(output, str) else tuple(output)


def _validate_images(images, name: str) -> torch.Tensor:
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


# ----------------------------------------------------------------------------------------------
# TensorFlow 1 resizing
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# Weights: layout check, files, caches, download
# ----------------------------------------------------------------------------------------------
_LAYOUT: dict[str, tuple[int, ...]] | None = None


def _layout() -> dict[str, tuple[int, ...]]:
    """The keys and shapes of the FID weight file (computed once from the architecture)."""
    global _LAYOUT
    if _LAYOUT is None:
        skeleton = nn.Module.__new__(FIDInceptionV3)
        nn.Module.__init__(skeleton)
        with torch.device("meta"):
            FIDInceptionV3._build_layers(skeleton)
        _LAYOUT = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()
                   if not k.endswith("num_batches_tracked")}
    return _LAYOUT


def check_inception_layout(state_dict: Mapping, source: str = "weights", *,
                           check_values: bool = True) -> None:
    """Raise ``ValueError`` unless ``state_dict`` has the keys and shapes of the FID weight file.

    ``num_batches_tracked`` entries are optional (the file has none; torchvision-style saves do).

    Parameters
    ----------
    state_dict : Mapping
        Names to tensors, as ``torch.load`` returns them.
    source : str, default "weights"
        What the message calls the weights (the argument's name, or the file).
    check_values : bool, default True
        Also require every entry to hold finite floating values (one pass over the 95 MB).

    Raises
    ------
    ValueError
        Not a mapping; missing, unexpected or wrongly shaped entries (the first three of each
        are named); non-floating or non-finite values.

    Examples
    --------
    >>> import torch
    >>> net = FIDInceptionV3(pretrained=False)  # random weights in the FID layout
    >>> check_inception_layout(net.state_dict())  # returns None: the layout is right
    >>> state = {k: v for k, v in net.state_dict().items() if not k.startswith("fc.")}
    >>> check_inception_layout(state, "my_weights.pth")
    Traceback (most recent call last):
    ...
    ValueError: my_weights.pth: not the FID InceptionV3 layout (...): 2 missing key(s), e.g. fc.weight, ...
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{source}: expected a state dict (a mapping of names to tensors), "
                         f"got {type(state_dict).__name__}")
    expected = _layout()
    given = {k: v for k, v in state_dict.items() if not str(k).endswith("num_batches_tracked")}
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    wrong = []
    for key, shape in expected.items():
        if key in given:
            value = given[key]
            if not isinstance(value, torch.Tensor):
                wrong.append(f"{key}: not a tensor ({type(value).__name__})")
            elif tuple(value.shape) != shape:
                wrong.append(f"{key}: shape {tuple(value.shape)}, expected {shape}")
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(map(str, unexpected[:3]))}")
        if wrong:
            parts.append(f"{len(wrong)} wrong entr{'y' if len(wrong) == 1 else 'ies'}, e.g. "
                         + "; ".join(wrong[:3]))
        raise ValueError(f"{source}: not the FID InceptionV3 layout ({FID_WEIGHTS_FILENAME}): "
                         + "; ".join(parts))
    for key, value in given.items():
        if not value.is_floating_point():
            raise ValueError(f"{source}: entry {key} must hold floating values, got dtype {value.dtype}")
    if check_values:
        _check_finite(given.items(), source)


def _check_finite(named_tensors, source: str) -> None:
    # In numpy for CPU tensors: hundreds of small torch reductions each open a parallel region,
    # which costs more than the check itself on a busy machine.
    for key, value in named_tensors:
        value = value.detach()
        if value.device.type == "cpu" and value.dtype in (torch.float16, torch.float32, torch.float64):
            finite = bool(np.isfinite(value.numpy()).all())
        else:
            finite = bool(torch.isfinite(value).all())
        if not finite:
            raise ValueError(f"{source}: entry {key} must hold finite floating values")


def _read_state_dict(path: Path) -> Mapping:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickles that are not plain state dicts, truncated files, ...
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"weights: could not read '{path}' as a torch state dict ({message})") from None
    return state


def load_inception_state_dict(weights=None, *, download: bool = True, progress: bool = True) -> Mapping:
    """Find, read and check the FID weights; return the state dict (tensors on the CPU).

    Parameters
    ----------
    weights : str or os.PathLike, optional
        A weight file; default: found as :func:`resolve_inception_weights` does (environment
        variable, caches, checksum-verified download).
    download : bool, default True
        Allow the download when nothing is found.
    progress : bool, default True
        A progress bar during a download.

    Returns
    -------
    Mapping
        The state dict, read with ``torch.load(..., weights_only=True)`` (no code is unpickled),
        with the keys and shapes of the FID weight file and finite floating values.

    Raises
    ------
    WeightsNotFoundError
        No such file, or nothing found with ``download=False`` (a ``ValueError``).
    ValueError
        The file is not a torch state dict, or not in the FID layout (see
        :func:`check_inception_layout`).

    Examples
    --------
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "weights.pth"
    >>> torch.save(FIDInceptionV3(pretrained=False).state_dict(), path)  # generated, 95 MB
    >>> state = load_inception_state_dict(path)
    >>> tuple(state["fc.weight"].shape), state["fc.weight"].dtype
    ((1008, 2048), torch.float32)
    >>> folder.cleanup()
    """
    path = resolve_inception_weights(weights, download=download, progress=progress)
    state = _read_state_dict(path)
    check_inception_layout(state, f"weights file '{path}'")
    return state


def sha256_file(path, chunk_size: int = 1 << 20) -> str:
    """The hexadecimal SHA-256 digest of a file, read in chunks of ``chunk_size`` bytes.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "abc.txt"
    >>> _ = path.write_bytes(b"abc")
    >>> sha256_file(path)
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    >>> folder.cleanup()
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def inception_cache_dir() -> Path:
    """Where otmetrics keeps the FID weights: ``$OTMETRICS_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/otmetrics``, else ``~/.cache/otmetrics`` (read at each call; the folder
    is not created).

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"OTMETRICS_CACHE_DIR": "/data/cache"}):
    ...     inception_cache_dir().as_posix()
    '/data/cache'
    >>> with mock.patch.dict(os.environ, {"OTMETRICS_CACHE_DIR": "", "XDG_CACHE_HOME": "/xdg"}):
    ...     inception_cache_dir().as_posix()
    '/xdg/otmetrics'
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(base).expanduser() / "otmetrics"


def _cached_candidates() -> list[Path]:
    candidates = [inception_cache_dir() / FID_WEIGHTS_FILENAME]
    try:
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        candidates += [hub / FID_WEIGHTS_FILENAME, hub / _TORCH_FIDELITY_FILENAME]
    except Exception:  # pragma: no cover - torch.hub without a home directory
        pass
    return candidates


def _how_to_get() -> str:
    target = inception_cache_dir() / FID_WEIGHTS_FILENAME
    return (f"get the file ({FID_WEIGHTS_FILENAME}, 95.6 MB, SHA-256 {FID_WEIGHTS_SHA256}) with "
            f"`curl -L --create-dirs -o {target} {FID_WEIGHTS_URL}`, or pass weights=PATH "
            f"(command line: --weights PATH), or set {WEIGHTS_ENV}=PATH")


def _expected_digest(url: str, sha256: str | None) -> str:
    if sha256 is not None:
        return sha256.lower()
    if url.rstrip("/").endswith(FID_WEIGHTS_FILENAME):
        return FID_WEIGHTS_SHA256
    match = re.search(r"-([a-f0-9]{8,})\.", url.rsplit("/", 1)[-1])
    if match is None:
        raise ValueError(f"sha256: required for '{url}' (its name carries no hash prefix)")
    return match.group(1)


def download_inception_weights(url: str | None = None, *, cache_dir=None, sha256: str | None = None,
                               filename: str = FID_WEIGHTS_FILENAME, progress: bool = True,
                               timeout: float = 60.0) -> Path:
    """Download the FID weights into the cache, verify their SHA-256, and return the path.

    The file is streamed to a temporary name in the cache directory, hashed on the way, and moved
    into place only if the digest matches, so the cache never holds a partial or corrupted file
    (concurrent downloads from several processes are safe).

    Parameters
    ----------
    url : str, optional
        Default ``$OTMETRICS_INCEPTION_URL`` or :data:`FID_WEIGHTS_URL`.
    cache_dir : path, optional
        Default :func:`inception_cache_dir`.
    sha256 : str, optional
        The expected digest: the full hex digest, or a prefix of it. Default: the full digest of
        the FID file when the URL ends with its name, else the hex prefix in the file name
        (``name-<hex>.ext``, the torch hub convention).
    filename : str
        The name of the file in the cache.
    progress : bool, default True
        A progress bar on stderr.
    timeout : float, default 60
        Seconds to wait for the server.

    Returns
    -------
    pathlib.Path
        ``cache_dir / filename``, verified.

    Raises
    ------
    RuntimeError
        The download failed, or the digest differs (the partial file is deleted).
    ValueError
        No ``sha256`` given and none can be inferred from the address.

    Examples
    --------
    Any address ``urllib`` opens works, e.g. a mirror on a shared drive (here a small stand-in
    file, so that the example runs offline):

    >>> import hashlib, tempfile
    >>> from pathlib import Path
    >>> folder = tempfile.TemporaryDirectory()
    >>> mirror = Path(folder.name) / "mirror" / "weights.pth"
    >>> mirror.parent.mkdir()
    >>> _ = mirror.write_bytes(b"stand-in for the 95 MB file")
    >>> digest = hashlib.sha256(mirror.read_bytes()).hexdigest()
    >>> cache = Path(folder.name) / "cache"
    >>> path = download_inception_weights(mirror.as_uri(), cache_dir=cache, sha256=digest,
    ...                                   filename="weights.pth", progress=False)
    >>> path == cache / "weights.pth", path.read_bytes() == mirror.read_bytes()
    (True, True)
    >>> download_inception_weights(mirror.as_uri(), cache_dir=cache, sha256="0" * 64,
    ...                            filename="weights.pth", progress=False)
    Traceback (most recent call last):
    ...
    RuntimeError: checksum mismatch for the download from file://...; the file was discarded (...)
    >>> sorted(p.name for p in cache.iterdir())  # nothing partial left behind
    ['weights.pth']
    >>> folder.cleanup()
    """
    url = url or os.environ.get(URL_ENV) or FID_WEIGHTS_URL
    expected = _expected_digest(url, sha256)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else inception_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    target = cache / filename
    handle, tmp_name = tempfile.mkstemp(prefix=filename + ".", suffix=".part", dir=cache)
    digest = hashlib.sha256()
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)  # noqa: S310 (http/https only)
            except (urllib.error.URLError, OSError, ValueError) as exc:
                reason = getattr(exc, "reason", exc)
                raise RuntimeError(f"could not download the FID Inception weights from {url} ({reason}); "
                                   + _how_to_get()) from None
            with response:
                total = response.headers.get("Content-Length")
                from tqdm.auto import tqdm

                with tqdm(total=int(total) if total else None, unit="B", unit_scale=True,
                          unit_divisor=1024, desc=f"downloading {filename}", disable=not progress,
                          file=sys.stderr) as bar:
                    while True:
                        chunk = response.read(1 << 20)
                        if not chunk:
                            break
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
        actual = digest.hexdigest()
        if not actual.startswith(expected):
            raise RuntimeError(f"checksum mismatch for the download from {url}: SHA-256 {actual}, "
                               f"expected {expected}; the file was discarded (a corrupted download or a "
                               "different file at that address)")
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)
    return target


def resolve_inception_weights(weights=None, *, download: bool = True, progress: bool = True) -> Path:
    """The path of the FID weight file: argument, environment variable, caches, then download.

    Parameters
    ----------
    weights : str or os.PathLike, optional
        An explicit file: used as is (its layout is checked when loaded, not its hash, so that
        converted copies, e.g. in float64, work).
    download : bool, default True
        Allow the download when nothing is found.
    progress : bool, default True
        A progress bar during a download.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    WeightsNotFoundError
        An explicit path (argument or ``$OTMETRICS_INCEPTION_WEIGHTS``) does not exist, or nothing
        was found and downloading is off; the message says how to get the file. It is a
        ``ValueError`` and a ``FileNotFoundError``.
    RuntimeError
        Copies were found in the caches but none passes the SHA-256 check (each one is named);
        a download fails or fails the check.

    Warns
    -----
    OTMetricsWarning
        A cached copy failed the SHA-256 check and a later one passed it (the bad copy is named).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "my-weights.pth"
    >>> _ = path.write_bytes(b"...")  # an explicit file is returned as is; loading checks its layout
    >>> resolve_inception_weights(path) == path
    True
    >>> resolve_inception_weights(path.with_name("missing.pth"))
    Traceback (most recent call last):
    ...
    otmetrics.generative.features.inception.WeightsNotFoundError: weights: no such file '...missing.pth'
    >>> folder.cleanup()
    """
    if weights is not None:
        if not isinstance(weights, (str, os.PathLike)):
            raise ValueError(f"weights: expected a path or a state dict, got {_describe_weights(weights)}")
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"weights: no such file '{path}'")
        return path
    env = os.environ.get(WEIGHTS_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"{WEIGHTS_ENV}: no such file '{path}'")
        return path
    cached = _verified_cached_copy()
    if cached is not None:
        return cached
    if not download:
        raise WeightsNotFoundError(f"weights: not given, {WEIGHTS_ENV} unset and no FID Inception weights in "
                                   "the caches, and download=False; " + _how_to_get())
    return download_inception_weights(progress=progress)


def _verified_cached_copy() -> Path | None:
    """The first cached copy whose SHA-256 is the FID file's; ``None`` when there is no copy.

    A copy that fails the check is skipped with a warning when a later one passes; when copies
    exist and none passes, the error names each one with its digest.
    """
    rejected = []
    for candidate in _cached_candidates():
        if not candidate.is_file():
            continue
        actual = sha256_file(candidate)
        if actual == FID_WEIGHTS_SHA256:
            for path, digest in rejected:
                warnings.warn(f"the cached FID weights '{path}' fail the SHA-256 check ({digest}, expected "
                              f"{FID_WEIGHTS_SHA256}); using '{candidate}' instead. Delete the bad copy.",
                              OTMetricsWarning, stacklevel=4)
            return candidate
        rejected.append((candidate, actual))
    if rejected:
        copies = "; ".join(f"'{path}' has SHA-256 {digest}" for path, digest in rejected)
        raise RuntimeError(f"no cached copy of the FID weights passes the SHA-256 check (expected "
                           f"{FID_WEIGHTS_SHA256}): {copies}; delete these files and retry, or pass "
                           "weights=PATH")
    return None


class WeightsNotFoundError(ValueError, FileNotFoundError):
    """The FID weight file is not where an argument or ``$OTMETRICS_INCEPTION_WEIGHTS`` says, or
    nowhere to be found with downloading off.

    A ``ValueError`` whose message starts with the argument's name, as every bad input in
    otmetrics, and a ``FileNotFoundError``, so that ``except FileNotFoundError`` (or ``OSError``)
    keeps working.

    Examples
    --------
    >>> issubclass(WeightsNotFoundError, ValueError), issubclass(WeightsNotFoundError, FileNotFoundError)
    (True, True)
    """


def _describe_weights(weights) -> str:
    return repr(weights) if isinstance(weights, (str, os.PathLike)) else type(weights).__name__
