"""DINOv2 in plain torch: the feature extractor of FD_DINOv2 (Stein et al., NeurIPS 2023; dgm-eval).

The network is Meta's ``DinoVisionTransformer`` as ``torch.hub.load("facebookresearch/dinov2",
"dinov2_<arch>")`` builds it (patch 14, trained at 518x518 so that ``pos_embed`` covers a 37x37
grid, LayerScale, LayerNorm ``eps = 1e-6``, exact GELU, and for ViT-g/14 the SwiGLU feed-forward
of hidden width ``(int(2/3 * 4 D) + 7) // 8 * 8 = 4096``), rebuilt without torchvision, timm or
xFormers so that Meta's weight files load key for key. The features are the class token after
the final LayerNorm, not normalised, as ``model(x)`` returns it.

At any input size other than 518x518 the position embeddings are resized as the official code
does (:func:`interpolate_pos_embed`): bicubic, ``antialias=False``, with the scale factor
``(h0 + 0.1) / 37`` (a historical offset that makes the sampling points differ from a resize to
``h0`` given as a size, which is what the Hugging Face port does).

Weight files and their layouts: :mod:`~otmetrics.generative.features.dinov2_weights`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .dinov2_weights import DINOV2_WEIGHTS, convert_dinov2_state_dict
from .encoder import PretrainedEncoder
from .pil_resize import resize_pil
from .preprocess import normalize_channels, resize_bilinear_tf1, to_float_rgb
from .vit_blocks import init_transformer_, self_attention

__all__ = ["DINOv2", "DINOv2Architecture", "DINOV2_ARCHITECTURES", "DINOV2_RESIZE_MODES", "IMAGENET_MEAN",
           "IMAGENET_STD", "interpolate_pos_embed"]

#: The ImageNet statistics dgm-eval and torch-fidelity normalise DINOv2's input with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: The ``resize=`` values of :class:`DINOv2`.
DINOV2_RESIZE_MODES = ("dgm-eval", "tf1", None)
_INPUT_SIZE = 224  # what dgm-eval and torch-fidelity resize to


@dataclass(frozen=True)
class DINOv2Architecture:
    """The shape of a DINOv2 vision transformer.

    Attributes
    ----------
    embed_dim, depth, num_heads : int
        Width, number of blocks, attention heads.
    patch_size : int, default 14
    image_size : int, default 518
        The training resolution: ``pos_embed`` covers ``(image_size // patch_size)^2`` patches.
    ffn : {"mlp", "swiglu"}, default "mlp"
        The feed-forward block: ``fc1``-GELU-``fc2`` of hidden width ``4 D``, or SwiGLU (``w12``,
        ``w3``) of hidden width ``(int(2/3 * 4 D) + 7) // 8 * 8``.

    Examples
    --------
    >>> DINOV2_ARCHITECTURES["vitg14"].ffn_hidden
    4096
    """

    embed_dim: int
    depth: int
    num_heads: int
    patch_size: int = 14
    image_size: int = 518
    ffn: str = "mlp"

    def __post_init__(self):
        for field in ("embed_dim", "depth", "num_heads", "patch_size", "image_size"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field}: must be a positive integer, got {value!r}")
        if self.embed_dim % self.num_heads:
            raise ValueError(f"num_heads: must divide embed_dim {self.embed_dim}, got {self.num_heads}")
        if self.ffn not in ("mlp", "swiglu"):
            raise ValueError(f"ffn: must be 'mlp' or 'swiglu', got {self.ffn!r}")

    @property
    def ffn_hidden(self) -> int:
        """The hidden width of the feed-forward block."""
        hidden = 4 * self.embed_dim
        return hidden if self.ffn == "mlp" else (int(hidden * 2 / 3) + 7) // 8 * 8


#: The published architectures (``torch.hub`` names ``dinov2_<name>``).
DINOV2_ARCHITECTURES = {
    "vits14": DINOv2Architecture(384, 12, 6),
    "vitb14": DINOv2Architecture(768, 12, 12),
    "vitl14": DINOv2Architecture(1024, 24, 16),
    "vitg14": DINOv2Architecture(1536, 40, 24, ffn="swiglu"),
}


def interpolate_pos_embed(pos_embed: torch.Tensor, height: int, width: int, patch_size: int, *,
                          offset: float = 0.1, antialias: bool = False) -> torch.Tensor:
    """The position embeddings for a ``height x width`` input, as the official DINOv2 code computes them.

    Unchanged when the input has as many patches as ``pos_embed`` and is square. Otherwise the
    patch part, an ``M x M`` grid, is resized bicubically in float32 with
    ``scale_factor = ((h0 + offset) / M, (w0 + offset) / M)``, ``h0 = height // patch_size``,
    ``w0 = width // patch_size`` (``offset=0`` gives ``size=(h0, w0)`` instead, the registers
    models' setting), and returned in ``pos_embed``'s dtype with the class token's entry first.

    Parameters
    ----------
    pos_embed : torch.Tensor, shape (1, 1 + M^2, D)
    height, width : int
        The input's size in pixels.
    patch_size : int
    offset : float, default 0.1
        The official models' ``interpolate_offset``.
    antialias : bool, default False
        The official models' ``interpolate_antialias``.

    Returns
    -------
    torch.Tensor, shape (1, 1 + h0 w0, D)

    Notes
    -----
    With the offset, torch's bicubic resize maps output pixel ``i`` to the source coordinate
    ``(i + 0.5) * M / (h0 + offset) - 0.5`` instead of ``(i + 0.5) * M / h0 - 0.5``: at 224x224
    (``h0 = 16``, ``M = 37``) the sampling points differ by up to 0.4% of the grid, and the
    features by about 1e-3 relative, from a resize given as a size.

    Examples
    --------
    >>> import torch
    >>> pos = torch.randn(1, 1 + 37 * 37, 8)
    >>> interpolate_pos_embed(pos, 224, 224, 14).shape
    torch.Size([1, 257, 8])
    >>> interpolate_pos_embed(pos, 518, 518, 14) is pos
    True
    """
    grid = pos_embed.shape[1] - 1
    h0, w0 = height // patch_size, width // patch_size
    if h0 * w0 == grid and height == width:
        return pos_embed
    side = int(math.sqrt(grid))
    if side * side != grid:
        raise ValueError(f"pos_embed: {grid} patch positions do not form a square grid")
    patches = pos_embed.float()[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    if offset:
        resized = F.interpolate(patches, scale_factor=(float(h0 + offset) / side, float(w0 + offset) / side),
                                mode="bicubic", antialias=antialias)
    else:
        resized = F.interpolate(patches, size=(h0, w0), mode="bicubic", antialias=antialias)
    if tuple(resized.shape[-2:]) != (h0, w0):  # cannot happen for offsets in (0, 1)
        raise ValueError(f"offset: gives a {tuple(resized.shape[-2:])} grid for ({h0}, {w0}) patches")
    resized = resized.permute(0, 2, 3, 1).reshape(1, h0 * w0, -1)
    return torch.cat((pos_embed.float()[:, :1], resized), dim=1).to(pos_embed.dtype)


class _PatchEmbed(nn.Module):
    def __init__(self, patch_size: int, dim: int):
        super().__init__()
        self.proj = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)


class _Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        return self_attention(x, self.qkv.weight, self.qkv.bias, self.proj.weight, self.proj.bias,
                              self.num_heads)


class _LayerScale(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * self.gamma


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class _SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w12, self.w3 = nn.Linear(dim, 2 * hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        gate, value = self.w12(x).chunk(2, dim=-1)
        return self.w3(F.silu(gate) * value)


class _Block(nn.Module):
    def __init__(self, arch: DINOv2Architecture):
        super().__init__()
        dim = arch.embed_dim
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = _Attention(dim, arch.num_heads)
        self.ls1 = _LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = (_Mlp if arch.ffn == "mlp" else _SwiGLU)(dim, arch.ffn_hidden)
        self.ls2 = _LayerScale(dim)

    def forward(self, x):
        x = x + self.ls1(self.attn(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class DINOv2(PretrainedEncoder):
    r"""DINOv2 in plain torch, loading Meta's weight files or the Hugging Face checkpoints.

    Parameters
    ----------
    arch : {"vits14", "vitb14", "vitl14", "vitg14"} or DINOv2Architecture, default "vitl14"
        ViT-S/14, B/14, L/14 or g/14 (features of width 384, 768, 1024, 1536). FD_DINOv2 uses
        ``"vitl14"``. A :class:`DINOv2Architecture` builds another shape (its weights must be
        given). The register variants (``*_reg``) are not supported.
    weights : str, os.PathLike, Mapping or None, default None
        A weight file (Meta's ``dinov2_<arch>_pretrain.pth``, or a Hugging Face
        ``model.safetensors`` / ``pytorch_model.bin`` of ``facebook/dinov2-*``, or the snapshot
        folder holding one), or a state dict in either layout. ``None``: the lookup of
        :func:`~otmetrics.generative.features.weights.resolve_weights` for
        ``DINOV2_WEIGHTS[arch]`` (``$OTMETRICS_DINOV2_<ARCH>_WEIGHTS``, the caches, where
        ``torch.hub`` and dgm-eval put the file, then Meta's address, checked by SHA-256). A file of
        another architecture or layout raises ``ValueError`` naming its first mismatching entries.
    pretrained : bool, default True
        ``False``: random weights (seeded by ``torch.manual_seed``), nothing loaded.
    resize : {"dgm-eval", "tf1", None}, default "dgm-eval"
        ``"dgm-eval"``: as dgm-eval (FD_DINOv2): Pillow's bicubic resize to 224x224 on the
        ``uint8`` pixels (no crop, the aspect ratio not kept; see
        :func:`~otmetrics.generative.features.pil_resize.resize_pil`), then ``/ 255`` and the
        ImageNet mean and std. ``"tf1"``: as torch-fidelity's ``dinov2-vit-*-14``: TensorFlow 1's
        bilinear resize to 224x224 on 0..255 values, then ``(v - 255 mean) / (255 std)``.
        ``None``: no resize (height and width must be multiples of 14), ``/ 255``, mean and std;
        the position embeddings are interpolated as the official code does
        (:func:`interpolate_pos_embed`).
    download, progress : bool, default True
        Allow the download; show its progress bar.
    requires_grad : bool, default False
        Parameters require gradients. The module starts in ``eval()`` mode.
    tf32 : bool, default False
        ``False``: the forward pass runs in full IEEE float32 whatever torch's TF32 settings say
        (see :class:`~otmetrics.FIDInceptionV3`); ``True`` leaves them alone.

    Notes
    -----
    Input as :class:`~otmetrics.FIDInceptionV3`: ``(N, 3, H, W)`` (or ``(N, 1, H, W)``, repeated
    to RGB) ``uint8`` 0..255 or floats in [0, 1]; tensors are moved to the module's device and
    dtype, numpy input gives numpy ``float64``. Floats go through Pillow as
    ``floor(255 x + 0.5)`` with ``resize="dgm-eval"`` (and the Pillow resize runs on the CPU).

    Output: the class token after the final LayerNorm, ``(N, D)``, not normalised.

    Cost at 224x224 (257 tokens): about 12, 46, 162 and 599 GFLOP per image for S, B, L, g
    (multiply-adds counted twice; 6.3x that at 518x518); weights 88 MB, 346 MB, 1.2 GB, 4.5 GB in
    float32.

    References
    ----------
    Oquab et al., "DINOv2: Learning Robust Visual Features without Supervision", TMLR 2024.
    Stein et al., "Exposing flaws of generative model evaluation metrics and their unfair
    treatment of diffusion models", NeurIPS 2023 (FD_DINOv2, dgm-eval).

    Examples
    --------
    >>> import torch
    >>> from otmetrics import DINOv2
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = DINOv2("vits14", pretrained=False)  # random weights; DINOv2() loads ViT-L/14's
    >>> images = torch.randint(0, 256, (2, 3, 64, 48), dtype=torch.uint8)
    >>> net(images).shape
    torch.Size([2, 384])
    """

    def __init__(self, arch="vitl14", *, weights=None, pretrained: bool = True,
                 resize: str | None = "dgm-eval", download: bool = True, progress: bool = True,
                 requires_grad: bool = False, tf32: bool = False):
        super().__init__()
        if isinstance(arch, DINOv2Architecture):
            architecture, spec, self.arch = arch, None, arch
        elif arch in DINOV2_ARCHITECTURES:
            architecture, spec, self.arch = DINOV2_ARCHITECTURES[arch], DINOV2_WEIGHTS[arch], arch
        else:
            raise ValueError(f"arch: must be one of {', '.join(DINOV2_ARCHITECTURES)} or a "
                             f"DINOv2Architecture, got {arch!r}")
        if resize not in DINOV2_RESIZE_MODES:
            raise ValueError(f"resize: must be 'dgm-eval', 'tf1' or None, got {resize!r}")
        self.architecture, self.resize = architecture, resize
        self._setup(architecture, spec, weights, pretrained=pretrained, download=download, progress=progress,
                    requires_grad=requires_grad, tf32=tf32)

    # -- layers and weights -------------------------------------------------------------------------
    def _build_layers(self, arch: DINOv2Architecture):
        grid = (arch.image_size // arch.patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, arch.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid + 1, arch.embed_dim))
        self.mask_token = nn.Parameter(torch.zeros(1, arch.embed_dim))  # unused: pretraining only
        self.patch_embed = _PatchEmbed(arch.patch_size, arch.embed_dim)
        self.blocks = nn.ModuleList(_Block(arch) for _ in range(arch.depth))
        self.norm = nn.LayerNorm(arch.embed_dim, eps=1e-6)

    def _init_random(self):
        init_transformer_(self)
        with torch.no_grad():
            self.mask_token.zero_()

    def _convert(self, state_dict, source):
        layout = dinov2_layout(self.architecture)
        name = f"DINOv2 {self.arch}" if isinstance(self.arch, str) else "DINOv2 architecture"
        converted = convert_dinov2_state_dict(state_dict, layout, source, name)
        mask = converted.setdefault("mask_token", torch.zeros(layout["mask_token"]))
        if tuple(mask.shape) != layout["mask_token"]:
            raise ValueError(f"{source}: not the {name} layout: mask_token has shape {tuple(mask.shape)}, "
                             f"expected {layout['mask_token']}")
        return converted

    # -- forward ------------------------------------------------------------------------------------
    def preprocess(self, images) -> torch.Tensor:
        """Validate, resize and normalise images as ``resize`` says; returns ``(N, 3, h, w)`` on the
        module's device, in its dtype."""
        param = self.network_parameter()
        if self.resize == "dgm-eval":
            pixels = resize_pil(images, _INPUT_SIZE, method="stretch")
            x = pixels.to(param.device, non_blocking=True).to(param.dtype) / 255
            return normalize_channels(x, IMAGENET_MEAN, IMAGENET_STD)
        if self.resize == "tf1":
            x = to_float_rgb(images, device=param.device, dtype=param.dtype, max_value=255)
            x = resize_bilinear_tf1(x, (_INPUT_SIZE, _INPUT_SIZE))
            return normalize_channels(x, tuple(255 * m for m in IMAGENET_MEAN),
                                      tuple(255 * s for s in IMAGENET_STD))
        x = to_float_rgb(images, device=param.device, dtype=param.dtype)
        patch = self.architecture.patch_size
        if x.shape[-2] % patch or x.shape[-1] % patch:
            raise ValueError(f"images: with resize=None, height and width must be multiples of {patch}, "
                             f"got {tuple(x.shape[-2:])}")
        return normalize_channels(x, IMAGENET_MEAN, IMAGENET_STD)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The class token after the final norm, ``(N, D)``, of a preprocessed batch ``x``."""
        n, _, height, width = x.shape
        tokens = self.patch_embed.proj(x).flatten(2).transpose(1, 2)
        tokens = torch.cat((self.cls_token.expand(n, -1, -1), tokens), dim=1)
        tokens = tokens + interpolate_pos_embed(self.pos_embed, height, width, self.architecture.patch_size)
        for block in self.blocks:
            tokens = block(tokens)
        return self.norm(tokens[:, 0])

    def extra_repr(self) -> str:
        return (f"arch={self.arch!r}, resize={self.resize!r}, tf32={self.tf32}, "
                f"weights={self.weights_source!r}")


_LAYOUTS: dict = {}


def dinov2_layout(arch: DINOv2Architecture) -> dict[str, tuple[int, ...]]:
    """The keys and shapes of the official state dict of ``arch`` (computed once per architecture).

    Examples
    --------
    >>> layout = dinov2_layout(DINOV2_ARCHITECTURES["vitl14"])
    >>> len(layout), layout["pos_embed"], layout["blocks.23.mlp.fc1.weight"]
    (343, (1, 1370, 1024), (4096, 1024))
    """
    if arch not in _LAYOUTS:
        skeleton = nn.Module.__new__(DINOv2)
        nn.Module.__init__(skeleton)
        with torch.device("meta"):
            DINOv2._build_layers(skeleton, arch)
        _LAYOUTS[arch] = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    return _LAYOUTS[arch]
