"""The CLIP weight files: OpenAI's addresses and digests, and the layouts the image tower comes in.

OpenAI publishes each model as a TorchScript archive whose address carries the file's full
SHA-256 (``https://openaipublic.azureedge.net/clip/models/<sha256>/ViT-L-14-336px.pt``, as listed
in ``clip/clip.py``), with the weights in float16. ``clip.load`` caches it in ``~/.cache/clip``
under that name, torch-fidelity in torch hub's cache as ``clip-vit-l-14-336px-<sha256>.pt``; both
places are searched. The archive holds the whole model: the image tower under ``visual.`` (the
layout of :class:`~otmetrics.CLIPImageEncoder`, which is OpenAI's ``VisionTransformer``), the text
tower and ``logit_scale``, which are ignored. Its tensors are read without running the archive's
code (:mod:`~otmetrics.generative.features.torchscript`).

The Hugging Face checkpoints (``openai/clip-vit-base-patch32``, ``-base-patch16``,
``-large-patch14``, ``-large-patch14-336``: ``model.safetensors`` or ``pytorch_model.bin``) hold
the same tensors under ``transformers``' names (``vision_model.*``, ``visual_projection``),
with separate query, key and value projections and the projection stored as a ``Linear``
weight (transposed); :func:`clip_sources` maps them. The text tower, ``logit_scale`` and the
``position_ids`` buffers of older files are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping

from .state_dicts import SourceKeys, check_layout, convert_state_dict
from .weights import WeightsSpec

__all__ = ["CLIP_URLS", "CLIP_WEIGHTS", "clip_weights_spec", "clip_layout_kind", "clip_sources",
           "convert_clip_state_dict"]

#: OpenAI's addresses (``clip/clip.py``, ``_MODELS``): the folder is the file's SHA-256.
CLIP_URLS = {
    "ViT-B/32": "https://openaipublic.azureedge.net/clip/models/"
                "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
    "ViT-B/16": "https://openaipublic.azureedge.net/clip/models/"
                "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
    "ViT-L/14": "https://openaipublic.azureedge.net/clip/models/"
                "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
    "ViT-L/14@336px": "https://openaipublic.azureedge.net/clip/models/"
                      "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",
}


def clip_weights_spec(arch: str) -> WeightsSpec:
    """OpenAI's weight file of a CLIP architecture, for
    :func:`~otmetrics.generative.features.weights.resolve_weights`.

    The environment variables are ``OTMETRICS_CLIP_<ARCH>_WEIGHTS`` and ``OTMETRICS_CLIP_<ARCH>_URL``
    with ``<ARCH>`` the architecture in capitals, non-alphanumerics as ``_`` (e.g.
    ``OTMETRICS_CLIP_VIT_L_14_336PX_WEIGHTS``).

    Examples
    --------
    >>> spec = clip_weights_spec("ViT-L/14@336px")
    >>> spec.filename, spec.sha256[:8], spec.env
    ('ViT-L-14-336px.pt', '3035c92b', 'OTMETRICS_CLIP_VIT_L_14_336PX_WEIGHTS')
    """
    if arch not in CLIP_URLS:
        raise ValueError(f"arch: must be one of {', '.join(CLIP_URLS)}, got {arch!r}")
    url = CLIP_URLS[arch]
    sha256, filename = url.rsplit("/", 2)[-2:]
    token = "".join(c if c.isalnum() else "_" for c in arch.upper())
    fidelity = "clip-" + filename[: -len(".pt")].lower() + f"-{sha256}.pt"
    return WeightsSpec(name=f"CLIP {arch} weights", filename=filename, url=url, sha256=sha256,
                       env=f"OTMETRICS_CLIP_{token}_WEIGHTS", url_env=f"OTMETRICS_CLIP_{token}_URL",
                       aliases=(fidelity,), cli_option="--weights", search_dirs=("~/.cache/clip",))


#: The weight file of each named architecture.
CLIP_WEIGHTS = {arch: clip_weights_spec(arch) for arch in CLIP_URLS}

_HF_TOP = {"class_embedding": "vision_model.embeddings.class_embedding",
           "conv1.weight": "vision_model.embeddings.patch_embedding.weight",
           "positional_embedding": "vision_model.embeddings.position_embedding.weight"}
_HF_NORMS = {"ln_pre": "vision_model.pre_layrnorm", "ln_post": "vision_model.post_layernorm"}
_HF_BLOCK = {"attn.out_proj": "self_attn.out_proj", "ln_1": "layer_norm1", "ln_2": "layer_norm2",
             "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"}


def clip_layout_kind(state_dict: Mapping) -> str | None:
    """Which layout a CLIP state dict is in: ``"openai"`` (the whole model, image tower under
    ``visual.``), ``"visual"`` (the image tower alone, :class:`~otmetrics.CLIPImageEncoder`'s
    own ``state_dict``), ``"hf"`` (Hugging Face), or ``None``.

    Examples
    --------
    >>> clip_layout_kind({"visual.conv1.weight": None}), clip_layout_kind({"conv1.weight": None})
    ('openai', 'visual')
    """
    if "visual.conv1.weight" in state_dict:
        return "openai"
    if "vision_model.embeddings.patch_embedding.weight" in state_dict:
        return "hf"
    if "conv1.weight" in state_dict:
        return "visual"
    return None


def clip_sources(layout: Mapping[str, tuple[int, ...]], kind: str) -> dict[str, SourceKeys]:
    """Where each entry of the image tower comes from in a state dict of another layout.

    Parameters
    ----------
    layout : Mapping of str to tuple of int
        The image tower's keys and shapes (OpenAI's ``VisionTransformer``).
    kind : {"openai", "hf"}
        The whole OpenAI model (the keys prefixed with ``visual.``) or a Hugging Face checkpoint.

    Examples
    --------
    >>> clip_sources({"proj": (4, 2)}, "hf")["proj"]
    SourceKeys(keys=('visual_projection.weight',), how='transpose')
    """
    if kind == "openai":
        return {key: SourceKeys((f"visual.{key}",)) for key in layout}
    sources = {}
    for key in layout:
        stem, _, leaf = key.rpartition(".")
        if key in _HF_TOP:
            sources[key] = SourceKeys((_HF_TOP[key],))
        elif key == "proj":
            sources[key] = SourceKeys(("visual_projection.weight",), "transpose")
        elif stem in _HF_NORMS:
            sources[key] = SourceKeys((f"{_HF_NORMS[stem]}.{leaf}",))
        else:  # transformer.resblocks.<i>.<rest>
            index, rest = key[len("transformer.resblocks."):].split(".", 1)
            prefix = f"vision_model.encoder.layers.{index}."
            if rest in ("attn.in_proj_weight", "attn.in_proj_bias"):
                leaf = "weight" if rest.endswith("weight") else "bias"
                sources[key] = SourceKeys(tuple(f"{prefix}self_attn.{p}_proj.{leaf}" for p in "qkv"), "cat")
            else:
                block_stem, _, block_leaf = rest.rpartition(".")
                sources[key] = SourceKeys((f"{prefix}{_HF_BLOCK[block_stem]}.{block_leaf}",))
    return sources


def _ignored(kind: str):
    if kind == "openai":
        return lambda key: not key.startswith("visual.")
    return lambda key: (key.startswith(("text_model.", "text_projection.")) or key == "logit_scale"
                        or key.endswith("position_ids"))


def convert_clip_state_dict(state_dict: Mapping, layout: Mapping[str, tuple[int, ...]], source: str,
                            name: str) -> dict:
    """The image tower of a CLIP state dict in any supported layout, checked, in OpenAI's layout.

    Parameters
    ----------
    state_dict : Mapping
        OpenAI's whole model (e.g. read from its TorchScript archive), the image tower alone, a
        Hugging Face ``CLIPModel`` or ``CLIPVisionModelWithProjection`` state dict.
    layout : Mapping of str to tuple of int
        The image tower's keys and shapes.
    source : str
        What error messages call the weights.
    name : str
        What error messages call the architecture (e.g. ``"CLIP ViT-L/14@336px"``).

    Returns
    -------
    dict of str to torch.Tensor
        The file's tensors in their dtype (OpenAI's are float16).

    Raises
    ------
    ValueError
        Not a mapping, or not this architecture's image tower in any supported layout (a ResNet
        CLIP, another ViT size, a truncated file); the message names the first missing,
        unexpected or wrongly shaped entries of the file.

    Examples
    --------
    >>> import torch
    >>> convert_clip_state_dict({"visual.conv1.weight": torch.ones(1)}, {"conv1.weight": (8, 3, 2, 2)},
    ...                         "ViT.pt", "CLIP toy")
    Traceback (most recent call last):
    ...
    ValueError: ViT.pt: not the CLIP toy layout (OpenAI's model, image tower under visual.): 1 wrong entry, \
e.g. visual.conv1.weight: shape (1,), expected (8, 3, 2, 2)
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{source}: expected a state dict (a mapping of names to tensors), "
                         f"got {type(state_dict).__name__}")
    kind = clip_layout_kind(state_dict)
    if kind in (None, "visual"):
        check_layout(state_dict, layout, source, name=f"{name} layout (the image tower of OpenAI's model)",
                     check_values=False)
        return dict(state_dict)
    label = "OpenAI's model, image tower under visual." if kind == "openai" else "Hugging Face"
    return convert_state_dict(state_dict, layout, clip_sources(layout, kind), source,
                              name=f"{name} layout ({label})", ignore=_ignored(kind))
