"""The common frame of the pretrained image encoders (DINOv2, CLIP): weights, input contract, precision.

:class:`PretrainedEncoder` is what :class:`~otmetrics.DINOv2` and
:class:`~otmetrics.CLIPImageEncoder` share with the contract of :class:`~otmetrics.FIDInceptionV3`:

- weights: a state dict, a file (torch, safetensors or TorchScript; a Hugging Face snapshot folder
  is searched for ``model.safetensors``, then ``pytorch_model.bin``), or the lookup of
  :func:`~otmetrics.generative.features.weights.resolve_weights` (environment variable, caches
  checked by SHA-256, download); the network converts and checks the file's layout and is built
  on the ``meta`` device, so that no time goes into initialising what the weights replace;
- input: ``(N, 3, H, W)`` or ``(N, 1, H, W)`` batches, ``uint8`` 0..255 or floats in [0, 1], as a
  tensor (moved to the module's device and dtype) or a numpy array (numpy ``float64`` out);
- precision: the forward pass runs in full IEEE float32 whatever torch's TF32 settings say
  (:func:`~otmetrics.generative.features.precision.full_float32`) unless ``tf32=True``;
- ``preprocesses_images = True``: :func:`~otmetrics.image_features` hands such a model the raw
  ``uint8`` batch, since it resizes and normalises its input itself.

A subclass provides ``_build_layers(architecture)``, ``_convert(state_dict, source)`` (the file's
entries in the network's layout), ``_init_random()``, ``preprocess(images)`` and ``encode(x)``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .precision import full_float32
from .state_dicts import check_finite, read_state_dict
from .weights import WeightsNotFoundError, resolve_weights

__all__ = ["HF_WEIGHT_FILES", "PretrainedEncoder", "weights_file_in", "describe_weights"]

#: The weight files of a Hugging Face snapshot folder, in the order they are looked for.
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def weights_file_in(folder, name: str = "weights") -> Path:
    """The weight file of a Hugging Face snapshot folder: ``model.safetensors``, else
    ``pytorch_model.bin``; a ``WeightsNotFoundError`` naming ``name`` when it has neither.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = tempfile.TemporaryDirectory()
    >>> _ = (Path(folder.name) / "pytorch_model.bin").write_bytes(b"")
    >>> weights_file_in(folder.name).name
    'pytorch_model.bin'
    >>> folder.cleanup()
    """
    folder = Path(folder).expanduser()
    for filename in HF_WEIGHT_FILES:
        if (folder / filename).is_file():
            return folder / filename
    raise WeightsNotFoundError(f"{name}: the folder '{folder}' holds none of {', '.join(HF_WEIGHT_FILES)}")


def describe_weights(weights) -> str:
    """How error messages show a ``weights=`` argument: a path as it is, anything else by its type.

    Examples
    --------
    >>> describe_weights("w.pth"), describe_weights(3)
    ("'w.pth'", 'int')
    """
    return repr(weights) if isinstance(weights, (str, os.PathLike)) else type(weights).__name__


class PretrainedEncoder(nn.Module):
    """The base of the pretrained image encoders; see the module docstring.

    Parameters
    ----------
    architecture : object
        What ``_build_layers`` builds (the subclass's architecture record).
    spec : WeightsSpec or None
        The published weight file of ``architecture``; ``None`` (a custom architecture) requires
        ``weights`` when ``pretrained``.
    weights, pretrained, download, progress, requires_grad, tf32
        As in :class:`~otmetrics.DINOv2`.

    Examples
    --------
    >>> from otmetrics import DINOv2
    >>> issubclass(DINOv2, PretrainedEncoder), DINOv2.preprocesses_images
    (True, True)
    """

    #: The model takes raw image batches (``uint8`` or [0, 1]) and preprocesses them itself.
    preprocesses_images = True

    def _setup(self, architecture, spec, weights, *, pretrained: bool, download: bool, progress: bool,
               requires_grad: bool, tf32: bool):
        self.tf32 = bool(tf32)
        if not pretrained and weights is not None:
            raise ValueError(f"weights: must be None when pretrained=False, got {describe_weights(weights)}")
        if pretrained:
            state_dict, source = self._read_weights(spec, weights, download, progress)
            converted = self._convert(state_dict, source)
            with torch.device("meta"):
                self._build_layers(architecture)
            copy = isinstance(weights, Mapping)  # never share storage with the caller's tensors
            values = {key: value.detach().to("cpu", torch.float32, copy=copy).contiguous()
                      for key, value in converted.items()}
            self.load_state_dict(values, strict=True, assign=True)
            check_finite(self.state_dict().items(), source)
            self.weights_source = source
        else:
            self._build_layers(architecture)
            self._init_random()
            self.weights_source = "random"
        self.requires_grad_(requires_grad)
        self.eval()

    @staticmethod
    def _read_weights(spec, weights, download: bool, progress: bool):
        if isinstance(weights, Mapping):
            return weights, "weights (state dict)"
        if weights is not None and not isinstance(weights, (str, os.PathLike)):
            raise ValueError(f"weights: expected a path or a state dict, got {describe_weights(weights)}")
        if weights is not None and Path(weights).expanduser().is_dir():
            weights = weights_file_in(weights)
        if spec is None:
            if weights is None:
                raise ValueError("weights: required for a custom architecture (no published file to look "
                                 "for), got None")
            path = resolve_weights_path(weights)
        else:
            path = resolve_weights(spec, weights, download=download, progress=progress)
        return read_state_dict(path), f"weights file '{path}'"

    # -- forward --------------------------------------------------------------------------------
    def network_parameter(self) -> torch.Tensor:
        """A parameter of the network: its device and dtype are the network's."""
        return next(iter(self.parameters()))

    def forward(self, images):
        """The features of ``images`` ``(N, d)``; see the class docstring for inputs and outputs."""
        is_numpy = not isinstance(images, torch.Tensor)
        x = self.preprocess(images)
        with full_float32(x.device.type, enabled=not self.tf32 and x.dtype == torch.float32):
            features = self.encode(x)
        if is_numpy:
            return features.detach().cpu().numpy().astype(np.float64)
        return features


def resolve_weights_path(weights) -> Path:
    """An explicit weight path, checked to exist (a ``WeightsNotFoundError`` naming ``weights``)."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise WeightsNotFoundError(f"weights: no such file '{path}'")
    return path
