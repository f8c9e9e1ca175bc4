"""The image tower of OpenAI's CLIP in plain torch: the feature extractor of CMMD (Jayasumana et al.,
CVPR 2024) and of torch-fidelity's ``clip-vit-*`` features.

The network is OpenAI's ``VisionTransformer`` (``clip/model.py``): a patch convolution without
bias, a class embedding, learned position embeddings, ``ln_pre``, pre-norm residual blocks with
fused query-key-value attention (``nn.MultiheadAttention``'s layout) and a QuickGELU MLP
(``x * sigmoid(1.702 x)``), LayerNorm ``eps = 1e-5``, then ``ln_post`` of the class token times
``proj``: the image embedding that ``model.encode_image`` returns, L2-normalised on request (CMMD
uses the normalised one). Its ``state_dict`` is OpenAI's ``visual.*`` entries without the prefix.

Weight files and their layouts: :mod:`~otmetrics.generative.features.clip_weights`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .clip_weights import CLIP_WEIGHTS, convert_clip_state_dict
from .encoder import PretrainedEncoder
from .pil_resize import resize_pil
from .preprocess import normalize_channels, resize_bilinear_tf1, to_float_rgb
from .vit_blocks import init_transformer_, self_attention

__all__ = ["CLIPImageEncoder", "CLIPArchitecture", "CLIP_ARCHITECTURES", "CLIP_RESIZE_MODES", "CLIP_MEAN",
           "CLIP_STD", "clip_layout"]

#: OpenAI's normalisation of CLIP's input (``clip/clip.py``; the CMMD reference uses the same).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
#: The ``resize=`` values of :class:`CLIPImageEncoder`.
CLIP_RESIZE_MODES = ("cmmd", "openai", "tf1", None)
_PIL_METHODS = {"cmmd": "crop-square", "openai": "short-side"}


@dataclass(frozen=True)
class CLIPArchitecture:
    """The shape of a CLIP vision transformer.

    Attributes
    ----------
    width, layers, heads : int
        Token width, number of residual blocks, attention heads (OpenAI: ``width // 64``).
    patch_size, image_size : int
        The input is ``image_size x image_size``, cut into patches of ``patch_size``.
    embed_dim : int
        The width of the embedding (``proj`` is ``width x embed_dim``).

    Examples
    --------
    >>> CLIP_ARCHITECTURES["ViT-L/14@336px"].grid
    24
    """

    width: int
    layers: int
    heads: int
    patch_size: int
    image_size: int
    embed_dim: int

    def __post_init__(self):
        for field in ("width", "layers", "heads", "patch_size", "image_size", "embed_dim"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{field}: must be a positive integer, got {value!r}")
        if self.width % self.heads:
            raise ValueError(f"heads: must divide width {self.width}, got {self.heads}")

    @property
    def grid(self) -> int:
        """Patches per side."""
        return self.image_size // self.patch_size


#: OpenAI's vision transformers (``clip.available_models()`` names).
CLIP_ARCHITECTURES = {
    "ViT-B/32": CLIPArchitecture(768, 12, 12, 32, 224, 512),
    "ViT-B/16": CLIPArchitecture(768, 12, 12, 16, 224, 512),
    "ViT-L/14": CLIPArchitecture(1024, 24, 16, 14, 224, 768),
    "ViT-L/14@336px": CLIPArchitecture(1024, 24, 16, 14, 336, 768),
}


class _SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.num_heads = heads
        self.in_proj_weight = nn.Parameter(torch.empty(3 * width, width))
        self.in_proj_bias = nn.Parameter(torch.empty(3 * width))
        self.out_proj = nn.Linear(width, width)

    def forward(self, x):
        return self_attention(x, self.in_proj_weight, self.in_proj_bias, self.out_proj.weight,
                              self.out_proj.bias, self.num_heads)


class _Mlp(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.c_fc, self.c_proj = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, x):
        hidden = self.c_fc(x)
        return self.c_proj(hidden * torch.sigmoid(1.702 * hidden))  # QuickGELU


class _ResidualAttentionBlock(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, eps=1e-5)
        self.attn = _SelfAttention(width, heads)
        self.ln_2 = nn.LayerNorm(width, eps=1e-5)
        self.mlp = _Mlp(width)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):
    def __init__(self, arch: CLIPArchitecture):
        super().__init__()
        self.resblocks = nn.ModuleList(_ResidualAttentionBlock(arch.width, arch.heads)
                                       for _ in range(arch.layers))


class CLIPImageEncoder(PretrainedEncoder):
    r"""The image tower of OpenAI's CLIP in plain torch, loading OpenAI's files or the Hugging Face ones.

    Parameters
    ----------
    arch : {"ViT-B/32", "ViT-B/16", "ViT-L/14", "ViT-L/14@336px"} or CLIPArchitecture
        Default ``"ViT-L/14@336px"`` (CMMD's). Embeddings of width 512, 512, 768, 768; inputs of
        224, 224, 224, 336 pixels. A :class:`CLIPArchitecture` builds another shape (its weights
        must be given).
    weights : str, os.PathLike, Mapping or None, default None
        A weight file: OpenAI's TorchScript archive (``ViT-L-14-336px.pt``, float16 inside; its
        tensors are read without running its code), a Hugging Face ``model.safetensors`` or
        ``pytorch_model.bin`` of ``openai/clip-vit-*`` (or the snapshot folder holding one), or a
        state dict in any of these layouts. ``None``: the lookup of
        :func:`~otmetrics.generative.features.weights.resolve_weights` for ``CLIP_WEIGHTS[arch]``
        (``$OTMETRICS_CLIP_<ARCH>_WEIGHTS``, the caches including ``~/.cache/clip``, then OpenAI's
        address, checked against the SHA-256 it carries). A file of another architecture or
        layout raises ``ValueError`` naming its first mismatching entries.
    pretrained : bool, default True
        ``False``: random weights (seeded by ``torch.manual_seed``), nothing loaded.
    resize : {"cmmd", "openai", "tf1", None}, default "cmmd"
        ``"cmmd"``: as the CMMD reference (``io_util.py``): the centred square crop (corner
        rounded down), Pillow's bicubic resize to the input size on ``uint8`` pixels, ``/ 255``,
        OpenAI's mean and std. ``"openai"``: OpenAI's ``preprocess``: the shorter side to the input
        size (Pillow bicubic), the centred crop (corner rounded half to even), ``/ 255``, mean and
        std. ``"tf1"``: as torch-fidelity's ``clip-vit-*``: TensorFlow 1's bilinear resize of the
        whole image to the input size on 0..255 values (no crop), ``(v - 255 mean) / (255 std)``.
        ``None``: no resize (the input must be ``image_size`` square), ``/ 255``, mean and std.
    normalize : bool, default False
        L2-normalise the embeddings (CMMD does).
    download, progress, requires_grad, tf32
        As in :class:`~otmetrics.DINOv2`.

    Notes
    -----
    Input as :class:`~otmetrics.FIDInceptionV3` (``uint8`` 0..255 or floats in [0, 1], grey
    repeated to RGB; numpy in, numpy ``float64`` out). The Pillow modes quantise floats to
    ``floor(255 x + 0.5)`` and resize on the CPU. OpenAI's float16 weights are held in float32
    (exactly: every float16 is a float32); OpenAI's ``clip.load`` on a GPU computes in float16,
    the CMMD reference and torch-fidelity in float32, as here.

    Output: ``ln_post(class token) @ proj``, ``(N, embed_dim)``.

    Cost: about 9, 35, 162 and 382 GFLOP per image for B/32, B/16, L/14, L/14@336px (multiply-adds
    counted twice); weights (image tower, float32) 350 MB for the B models, 1.2 GB for the L ones.

    References
    ----------
    Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML
    2021. Jayasumana et al., "Rethinking FID: Towards a Better Evaluation Metric for Image
    Generation", CVPR 2024 (CMMD).

    Examples
    --------
    >>> import torch
    >>> from otmetrics import CLIPImageEncoder
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> net = CLIPImageEncoder("ViT-B/32", pretrained=False, normalize=True)  # random weights
    >>> images = torch.randint(0, 256, (2, 3, 64, 48), dtype=torch.uint8)
    >>> embeddings = net(images)
    >>> embeddings.shape, bool(torch.allclose(embeddings.norm(dim=1), torch.ones(2)))
    (torch.Size([2, 512]), True)
    """

    def __init__(self, arch="ViT-L/14@336px", *, weights=None, pretrained: bool = True,
                 resize: str | None = "cmmd", normalize: bool = False, download: bool = True,
                 progress: bool = True, requires_grad: bool = False, tf32: bool = False):
        super().__init__()
        if isinstance(arch, CLIPArchitecture):
            architecture, spec = arch, None
        elif arch in CLIP_ARCHITECTURES:
            architecture, spec = CLIP_ARCHITECTURES[arch], CLIP_WEIGHTS[arch]
        else:
            raise ValueError(f"arch: must be one of {', '.join(CLIP_ARCHITECTURES)} or a CLIPArchitecture, "
                             f"got {arch!r}")
        if resize not in CLIP_RESIZE_MODES:
            raise ValueError(f"resize: must be 'cmmd', 'openai', 'tf1' or None, got {resize!r}")
        if not isinstance(normalize, bool):
            raise ValueError(f"normalize: must be True or False, got {normalize!r}")
        self.arch, self.architecture, self.resize, self.normalize = arch, architecture, resize, normalize
        self._setup(architecture, spec, weights, pretrained=pretrained, download=download, progress=progress,
                    requires_grad=requires_grad, tf32=tf32)

    # -- layers and weights -------------------------------------------------------------------------
    def _build_layers(self, arch: CLIPArchitecture):
        self.conv1 = nn.Conv2d(3, arch.width, kernel_size=arch.patch_size, stride=arch.patch_size, bias=False)
        self.class_embedding = nn.Parameter(torch.empty(arch.width))
        self.positional_embedding = nn.Parameter(torch.empty(arch.grid ** 2 + 1, arch.width))
        self.ln_pre = nn.LayerNorm(arch.width, eps=1e-5)
        self.transformer = _Transformer(arch)
        self.ln_post = nn.LayerNorm(arch.width, eps=1e-5)
        self.proj = nn.Parameter(torch.empty(arch.width, arch.embed_dim))

    def _init_random(self):
        init_transformer_(self)
        with torch.no_grad():  # OpenAI's initialisation of the embeddings and the projection
            scale = self.architecture.width ** -0.5
            for parameter in (self.class_embedding, self.positional_embedding, self.proj):
                parameter.normal_(0.0, scale)

    def _convert(self, state_dict, source):
        name = f"CLIP {self.arch}" if isinstance(self.arch, str) else "CLIP architecture"
        return convert_clip_state_dict(state_dict, clip_layout(self.architecture), source, name)

    # -- forward ------------------------------------------------------------------------------------
    def preprocess(self, images) -> torch.Tensor:
        """Validate, crop, resize and normalise images as ``resize`` says; returns
        ``(N, 3, image_size, image_size)`` on the module's device, in its dtype."""
        param = self.network_parameter()
        size = self.architecture.image_size
        if self.resize in _PIL_METHODS:
            pixels = resize_pil(images, size, method=_PIL_METHODS[self.resize])
            x = pixels.to(param.device, non_blocking=True).to(param.dtype) / 255
            return normalize_channels(x, CLIP_MEAN, CLIP_STD)
        if self.resize == "tf1":
            x = to_float_rgb(images, device=param.device, dtype=param.dtype, max_value=255)
            x = resize_bilinear_tf1(x, (size, size))
            return normalize_channels(x, tuple(255 * m for m in CLIP_MEAN), tuple(255 * s for s in CLIP_STD))
        x = to_float_rgb(images, device=param.device, dtype=param.dtype)
        if tuple(x.shape[-2:]) != (size, size):
            raise ValueError(f"images: with resize=None, must be {size}x{size} (the input size of "
                             f"{self.arch if isinstance(self.arch, str) else 'the architecture'}), "
                             f"got {tuple(x.shape[-2:])}")
        return normalize_channels(x, CLIP_MEAN, CLIP_STD)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The image embedding ``(N, embed_dim)`` of a preprocessed batch ``x``."""
        n = x.shape[0]
        tokens = self.conv1(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(tokens.dtype).expand(n, 1, -1)
        tokens = torch.cat((cls, tokens), dim=1) + self.positional_embedding.to(tokens.dtype)
        tokens = self.ln_pre(tokens)
        for block in self.transformer.resblocks:
            tokens = block(tokens)
        embedding = self.ln_post(tokens[:, 0]) @ self.proj
        if self.normalize:
            embedding = embedding / torch.linalg.vector_norm(embedding, dim=-1, keepdim=True)
        return embedding

    def extra_repr(self) -> str:
        return (f"arch={self.arch!r}, resize={self.resize!r}, normalize={self.normalize}, tf32={self.tf32}, "
                f"weights={self.weights_source!r}")


_LAYOUTS: dict = {}


def clip_layout(arch: CLIPArchitecture) -> dict[str, tuple[int, ...]]:
    """The keys and shapes of the image tower of ``arch`` (OpenAI's ``visual.*`` without the prefix).

    Examples
    --------
    >>> layout = clip_layout(CLIP_ARCHITECTURES["ViT-L/14@336px"])
    >>> len(layout), layout["positional_embedding"], layout["proj"]
    (296, (577, 1024), (1024, 768))
    """
    if arch not in _LAYOUTS:
        skeleton = nn.Module.__new__(CLIPImageEncoder)
        nn.Module.__init__(skeleton)
        with torch.device("meta"):
            CLIPImageEncoder._build_layers(skeleton, arch)
        _LAYOUTS[arch] = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    return _LAYOUTS[arch]
