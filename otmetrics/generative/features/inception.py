"""The FID InceptionV3 in plain torch, and the state dicts it accepts.

FID, KID and the Inception Score are only comparable between papers when everyone computes them
with the same network: the InceptionV3 graph that TensorFlow's original FID code froze in
December 2015 (``inception-2015-12-05``), with 1008 output classes and a few pooling layers that
differ from the textbook InceptionV3. pytorch-fid converted that graph to a PyTorch state dict,
``pt_inception-2015-12-05-6726825d.pth``; torch-fidelity ships the same bytes. This module
rebuilds the network around that state dict without torchvision, so that the file loads key for
key, and checks that a state dict has its layout.

Where the file comes from (argument, ``$OTMETRICS_INCEPTION_WEIGHTS``, the caches, a download
through ``torch.hub`` checked by SHA-256) is :mod:`~otmetrics.generative.features.inception_weights`;
the input checks and the TensorFlow 1 resize are :mod:`~otmetrics.generative.features.preprocess`;
the full-float32 policy of the forward pass is :mod:`~otmetrics.generative.features.precision`.
The names of this module's ``__all__`` that live there are importable from here as well.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .inception_weights import (FID_WEIGHTS, FID_WEIGHTS_FILENAME, FID_WEIGHTS_SHA256, FID_WEIGHTS_URL,
                                URL_ENV, WEIGHTS_ENV, download_inception_weights, inception_cache_dir,
                                resolve_inception_weights)
from .inception_blocks import ConvBN, MixedA, MixedC, MixedE, ReductionB, ReductionD
from .precision import full_float32
from .preprocess import resize_bilinear_tf1, to_float_rgb
from .state_dicts import check_finite, check_layout, read_state_dict
from .weights import CACHE_ENV, WeightsNotFoundError, sha256_file

__all__ = [
    "FIDInceptionV3",
    "FEATURE_DIMS",
    "FID_WEIGHTS",
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

# The 0.1 names of the blocks, for networks pickled whole under otmetrics.inception.
_ConvBN, _MixedA, _ReductionB = ConvBN, MixedA, ReductionB
_MixedC, _ReductionD, _MixedE = MixedC, ReductionD, MixedE


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
        ``False``: a float32 forward pass runs its convolutions and the ``fc`` matmul in full IEEE
        float32 whatever torch's TF32/bf16 settings say (cuDNN's TF32 default on CUDA moves the
        features by about 1e-3 relative, and FID values with them), and restores the settings
        afterwards, also when it raises; thread-safe, with the caveats of the process-wide settings
        explained in :func:`~otmetrics.generative.features.precision.full_float32`. ``True``
        leaves the settings as they are (faster on Ampere and later GPUs, less exact).
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

    #: It takes raw image batches and resizes and scales them itself (see ``image_features``).
    preprocesses_images = True

    def __init__(self, weights=None, *, pretrained: bool = True, output="pool3",
                 resize: str | None = "pytorch-fid", download: bool = True, progress: bool = True,
                 requires_grad: bool = False, tf32: bool = False, channels_last: bool = True):
        super().__init__()
        self.tf32 = bool(tf32)
        self.output = self.validate_output(output)
        if resize not in _RESIZE_MODES:
            raise ValueError(f"resize: must be 'pytorch-fid', 'tf1' or None, got {resize!r}")
        self.resize = resize
        if not pretrained and weights is not None:
            raise ValueError("weights: must be None when pretrained=False, got "
                             f"{_describe_weights(weights)}")

        if pretrained:
            if isinstance(weights, Mapping):
                state_dict, source, copy = weights, "weights (state dict)", True
            elif weights is None or isinstance(weights, (str, os.PathLike)):
                path = resolve_inception_weights(weights, download=download, progress=progress)
                state_dict, source, copy = read_state_dict(path), f"weights file '{path}'", False
            else:
                raise ValueError("weights: expected a path or a state dict, got "
                                 f"{_describe_weights(weights)}")
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
            check_finite(((k, v) for k, v in self.state_dict().items() if v.is_floating_point()), source)
        self.requires_grad_(requires_grad)
        self.eval()

    # -- weights -------------------------------------------------------------------------------
    def _build_layers(self):
        self.Conv2d_1a_3x3 = ConvBN(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = ConvBN(32, 32, 3)
        self.Conv2d_2b_3x3 = ConvBN(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = ConvBN(64, 80, 1)
        self.Conv2d_4a_3x3 = ConvBN(80, 192, 3)
        self.Mixed_5b = MixedA(192, pool_features=32)
        self.Mixed_5c = MixedA(256, pool_features=64)
        self.Mixed_5d = MixedA(288, pool_features=64)
        self.Mixed_6a = ReductionB(288)
        self.Mixed_6b = MixedC(768, channels_7x7=128)
        self.Mixed_6c = MixedC(768, channels_7x7=160)
        self.Mixed_6d = MixedC(768, channels_7x7=160)
        self.Mixed_6e = MixedC(768, channels_7x7=192)
        self.Mixed_7a = ReductionD(768)
        self.Mixed_7b = MixedE(1280, pool="avg")
        self.Mixed_7c = MixedE(2048, pool="max")
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
        module's device and in its dtype, with values in [-1, 1]. The checks and the conversion
        are :func:`~otmetrics.generative.features.preprocess.to_float_rgb`'s.
        """
        param = self.fc.weight
        if self.resize == "tf1":
            x = to_float_rgb(images, device=param.device, dtype=param.dtype, max_value=255)
            x = resize_bilinear_tf1(x, (_INPUT_SIZE, _INPUT_SIZE))
            return (x - 128) / 128
        x = to_float_rgb(images, device=param.device, dtype=param.dtype)
        if self.resize == "pytorch-fid":
            x = F.interpolate(x, size=(_INPUT_SIZE, _INPUT_SIZE), mode="bilinear", align_corners=False)
        return 2 * x - 1

    def forward(self, images, output=None):
        """Features of ``images``; see the class docstring for the inputs and ``output`` names."""
        names = self.output if output is None else self.validate_output(output)
        is_numpy = not isinstance(images, torch.Tensor)
        x = self.preprocess(images)
        if self.Conv2d_1a_3x3.conv.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        with full_float32(x.device.type, enabled=not self.tf32 and x.dtype == torch.float32):
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

    @staticmethod
    def validate_output(output):
        """Check an ``output=`` argument: one name of :data:`FEATURE_DIMS` or a non-empty sequence.

        Returns the name, or the names as a tuple; raises ``ValueError`` (starting ``output:``)
        for an unknown name or an empty sequence. :func:`~otmetrics.image_features` uses it to
        check its ``output=`` before any image is decoded.

        Examples
        --------
        >>> FIDInceptionV3.validate_output(["pool3", "logits_unbiased"])
        ('pool3', 'logits_unbiased')
        >>> FIDInceptionV3.validate_output("pool4")
        Traceback (most recent call last):
        ...
        ValueError: output: must be one of pool1, pool2, mixed_6e, pool3, logits_unbiased, logits, got 'pool4'
        """
        names = (output,) if isinstance(output, str) else output
        if not isinstance(names, Sequence) or len(names) == 0:
            raise ValueError(f"output: must be a name or a non-empty sequence of names, got {output!r}")
        for name in names:
            if name not in FEATURE_DIMS:
                raise ValueError(f"output: must be one of {', '.join(FEATURE_DIMS)}, got {name!r}")
        return output if isinstance(output, str) else tuple(output)


def _canonical(value: torch.Tensor, layout) -> torch.Tensor:
    # The strides of a fresh tensor in ``layout``. ``contiguous()`` is not enough: a 1x1 kernel
    # saved from a channels-last model is "contiguous" with channels-last strides, and torch then
    # picks the channels-last convolution kernels for it, which round differently.
    strides = torch.empty(value.shape, device="meta", memory_format=layout).stride()
    return value if value.stride() == strides else value.clone(memory_format=layout)


def _spatial_mean(x):
    # the global average pool as pytorch-fid and torch-fidelity compute it (same rounding)
    return F.adaptive_avg_pool2d(x, 1).flatten(1)


def _describe_weights(weights) -> str:
    return repr(weights) if isinstance(weights, (str, os.PathLike)) else type(weights).__name__


# ----------------------------------------------------------------------------------------------
# The FID weight file's layout
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
    check_layout(state_dict, _layout(), source, name=f"FID InceptionV3 layout ({FID_WEIGHTS_FILENAME})",
                 check_values=check_values)


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
    state = read_state_dict(path)
    check_inception_layout(state, f"weights file '{path}'")
    return state
