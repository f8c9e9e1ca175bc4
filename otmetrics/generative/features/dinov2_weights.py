"""The DINOv2 weight files: their addresses and digests, and the layouts they come in.

Meta publishes one file per architecture, ``dinov2_<arch>_pretrain.pth`` under
``https://dl.fbaipublicfiles.com/dinov2/dinov2_<arch>/``: the state dict of the official
``DinoVisionTransformer`` (``cls_token``, ``pos_embed`` for a 37x37 grid, ``mask_token``,
``patch_embed.proj``, ``blocks.<i>.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2, mlp.*, ls2.gamma}``,
``norm``), which ``torch.hub.load("facebookresearch/dinov2", ...)``, dgm-eval and torch-fidelity
download into torch hub's cache under that same name. The publisher gives no checksum; the
SHA-256 digests and sizes below are the ones independent projects pin for these files (the same
value in each of several unrelated projects per file). :class:`~otmetrics.DINOv2` has exactly this
layout, so the file loads key for key.

The Hugging Face checkpoints (``facebook/dinov2-small``, ``-base``, ``-large``, ``-giant``:
``model.safetensors`` or ``pytorch_model.bin``) hold the same tensors under ``transformers``' names
(``embeddings.*``, ``encoder.layer.<i>.*``, ``layernorm``), the query, key and value projections
as three matrices; :func:`dinov2_sources` maps them, in the names of the files on the Hub and in
the names ``transformers`` 5 gives its modules in memory (``attention.q_proj``, ``mlp.gate_proj``,
...), so that ``model.state_dict()`` of a loaded ``Dinov2Model`` works too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .state_dicts import SourceKeys, check_layout, convert_state_dict
from .weights import WeightsSpec

__all__ = ["DINOV2_URL", "DINOV2_WEIGHTS", "dinov2_weights_spec", "dinov2_layout_kind", "dinov2_sources",
           "convert_dinov2_state_dict"]

#: Where Meta publishes the files (``{arch}`` is ``vits14``, ``vitb14``, ``vitl14`` or ``vitg14``).
DINOV2_URL = "https://dl.fbaipublicfiles.com/dinov2/dinov2_{arch}/dinov2_{arch}_pretrain.pth"

#: SHA-256 and size in bytes of each official file, as pinned by independent projects.
_DIGESTS = {
    "vits14": ("b938bf1bc15cd2ec0feacfe3a1bb553fe8ea9ca46a7e1d8d00217f29aef60cd9", 88_283_115),
    "vitb14": ("0b8b82f85de91b424aded121c7e1dcc2b7bc6d0adeea651bf73a13307fad8c73", 346_378_731),
    "vitl14": ("d5383ea8f4877b2472eb973e0fd72d557c7da5d3611bd527ceeb1d7162cbf428", 1_217_586_395),
    "vitg14": ("baf8467e50af277596bbbafa06887c177ee899ab46033649c383577d7e9309d3", 4_546_108_579),
}


def dinov2_weights_spec(arch: str) -> WeightsSpec:
    """The published weight file of a DINOv2 architecture, for
    :func:`~otmetrics.generative.features.weights.resolve_weights`.

    The environment variables are ``OTMETRICS_DINOV2_<ARCH>_WEIGHTS`` (a path) and
    ``OTMETRICS_DINOV2_<ARCH>_URL`` (a mirror), e.g. ``OTMETRICS_DINOV2_VITL14_WEIGHTS``.

    Examples
    --------
    >>> spec = dinov2_weights_spec("vitl14")
    >>> spec.filename, spec.env
    ('dinov2_vitl14_pretrain.pth', 'OTMETRICS_DINOV2_VITL14_WEIGHTS')
    """
    if arch not in _DIGESTS:
        raise ValueError(f"arch: must be one of {', '.join(_DIGESTS)}, got {arch!r}")
    sha256, size = _DIGESTS[arch]
    return WeightsSpec(name=f"DINOv2 {arch} weights", filename=f"dinov2_{arch}_pretrain.pth",
                       url=DINOV2_URL.format(arch=arch), sha256=sha256,
                       env=f"OTMETRICS_DINOV2_{arch.upper()}_WEIGHTS",
                       url_env=f"OTMETRICS_DINOV2_{arch.upper()}_URL",
                       size=size, cli_option="--weights")


#: The weight file of each named architecture.
DINOV2_WEIGHTS = {arch: dinov2_weights_spec(arch) for arch in _DIGESTS}

#: The Hugging Face names of a block's entries: (Hub files, transformers 5 modules), by our suffix.
_HF_BLOCK = {
    "norm1": ("norm1", "norm1"), "norm2": ("norm2", "norm2"),
    "attn.proj": ("attention.output.dense", "attention.o_proj"),
    "ls1.gamma": ("layer_scale1.lambda1", "layer_scale1.lambda1"),
    "ls2.gamma": ("layer_scale2.lambda1", "layer_scale2.lambda1"),
    "mlp.fc1": ("mlp.fc1", "mlp.fc1"), "mlp.fc2": ("mlp.fc2", "mlp.fc2"),
    "mlp.w3": ("mlp.weights_out", "mlp.down_proj"),
}
_HF_TOP = {"cls_token": "embeddings.cls_token", "pos_embed": "embeddings.position_embeddings",
           "mask_token": "embeddings.mask_token",
           "patch_embed.proj": "embeddings.patch_embeddings.projection", "norm": "layernorm"}
_BLOCK_KEY = re.compile(r"^blocks\.(\d+)\.(.+)\.(weight|bias|gamma)$")


def dinov2_layout_kind(state_dict: Mapping) -> str | None:
    """Which layout a DINOv2 state dict is in: ``"official"`` (Meta's ``.pth``), ``"hf"`` (the
    Hugging Face files), ``"hf-modules"`` (``transformers`` 5 modules in memory), or ``None``.

    Examples
    --------
    >>> dinov2_layout_kind({"cls_token": None}), dinov2_layout_kind({"embeddings.cls_token": None})
    ('official', 'hf')
    """
    keys = [str(key) for key in state_dict]
    if "cls_token" in state_dict:
        return "official"
    if "embeddings.cls_token" in state_dict:
        modules = any(".attention.q_proj." in key or ".mlp.gate_proj." in key for key in keys)
        return "hf-modules" if modules else "hf"
    return None


def dinov2_sources(layout: Mapping[str, tuple[int, ...]], kind: str) -> dict[str, SourceKeys]:
    """Where each entry of the official layout comes from in a Hugging Face state dict.

    Parameters
    ----------
    layout : Mapping of str to tuple of int
        The official keys and shapes (:class:`~otmetrics.DINOv2`'s ``state_dict``).
    kind : {"hf", "hf-modules"}
        The names of the Hub files, or of ``transformers`` 5 modules in memory.

    Examples
    --------
    >>> dinov2_sources({"blocks.0.attn.qkv.bias": (6,)}, "hf")["blocks.0.attn.qkv.bias"].keys
    ('encoder.layer.0.attention.attention.query.bias', 'encoder.layer.0.attention.attention.key.bias', \
'encoder.layer.0.attention.attention.value.bias')
    """
    which = 0 if kind == "hf" else 1
    sources = {}
    for key in layout:
        match = _BLOCK_KEY.match(key)
        if match is None:
            stem, _, leaf = key.rpartition(".")
            if key in _HF_TOP:
                sources[key] = SourceKeys((_HF_TOP[key],))
            else:
                sources[key] = SourceKeys((f"{_HF_TOP[stem]}.{leaf}",))
            continue
        index, stem, leaf = match.groups()
        prefix = f"encoder.layer.{index}."
        if stem == "attn.qkv":
            names = ("attention.attention.query", "attention.attention.key", "attention.attention.value") \
                if which == 0 else ("attention.q_proj", "attention.k_proj", "attention.v_proj")
            sources[key] = SourceKeys(tuple(f"{prefix}{name}.{leaf}" for name in names), "cat")
        elif stem == "mlp.w12":
            names = ("mlp.weights_in",) if which == 0 else ("mlp.gate_proj", "mlp.up_proj")
            sources[key] = SourceKeys(tuple(f"{prefix}{name}.{leaf}" for name in names),
                                      "same" if which == 0 else "cat")
        elif stem in ("ls1", "ls2"):
            sources[key] = SourceKeys((f"{prefix}{_HF_BLOCK[f'{stem}.{leaf}'][which]}",))
        else:
            sources[key] = SourceKeys((f"{prefix}{_HF_BLOCK[stem][which]}.{leaf}",))
    return sources


def convert_dinov2_state_dict(state_dict: Mapping, layout: Mapping[str, tuple[int, ...]], source: str,
                              name: str) -> dict:
    """A DINOv2 state dict in any supported layout, checked and returned in the official one.

    Parameters
    ----------
    state_dict : Mapping
        Meta's file, a Hugging Face file, or a ``Dinov2Model``'s ``state_dict()``.
    layout : Mapping of str to tuple of int
        The official keys and shapes of the architecture.
    source : str
        What error messages call the weights.
    name : str
        What error messages call the architecture (e.g. ``"DINOv2 vitl14"``).

    Returns
    -------
    dict of str to torch.Tensor
        ``mask_token`` (unused by the features) may be missing.

    Raises
    ------
    ValueError
        Not a mapping, or not the layout of this architecture in any supported naming; the
        message names the first missing, unexpected or wrongly shaped entries of the file.

    Examples
    --------
    >>> import torch
    >>> convert_dinov2_state_dict({"w": torch.ones(1)}, {"cls_token": (1, 1, 4)}, "my.pth", "DINOv2 tiny")
    Traceback (most recent call last):
    ...
    ValueError: my.pth: not the DINOv2 tiny layout (Meta's dinov2_<arch>_pretrain.pth): 1 missing key(s), \
e.g. cls_token; 1 unexpected key(s), e.g. w
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{source}: expected a state dict (a mapping of names to tensors), "
                         f"got {type(state_dict).__name__}")
    kind = dinov2_layout_kind(state_dict)
    if kind in (None, "official"):
        check_layout(state_dict, layout, source, name=f"{name} layout (Meta's dinov2_<arch>_pretrain.pth)",
                     optional=("mask_token",), check_values=False)
        return dict(state_dict)
    label = "Hugging Face" if kind == "hf" else "Hugging Face transformers modules"
    return convert_state_dict(state_dict, layout, dinov2_sources(layout, kind), source,
                              name=f"{name} layout ({label})", optional=("mask_token",))
