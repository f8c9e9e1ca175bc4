"""Feature extractors by name: what ``feature_extractor="..."`` and ``otmetrics ... --features NAME`` accept.

Each name maps to a factory (a class or function, imported on first use so that this module costs
nothing at import) and the keyword arguments it is called with. Names are lower case:
``inception`` (the FID InceptionV3, pool3 features), and, as their modules register them,
``dinov2-<arch>`` and ``clip-<arch>``. :func:`build_extractor` returns the network, ready for
:func:`~otmetrics.image_features` and the streaming metrics.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ExtractorEntry", "register_extractor", "extractor_names", "extractor_entry", "build_extractor"]


@dataclass(frozen=True)
class ExtractorEntry:
    """A registered extractor: where its factory lives, how it is called, what it returns.

    Attributes
    ----------
    name : str
        The registered name (``"inception"``, ``"dinov2-vitl14"``, ...).
    factory : str
        ``"package.module:attribute"``, imported on first use.
    kwargs : dict
        Keyword arguments of the factory for this name (e.g. the architecture).
    dim : int
        The width of the features.
    description : str
        One line for ``--help`` and the documentation.
    """

    name: str
    factory: str
    kwargs: dict = field(default_factory=dict)
    dim: int = 0
    description: str = ""


_REGISTRY: dict[str, ExtractorEntry] = {}


def register_extractor(name: str, factory: str, *, kwargs: dict | None = None, dim: int,
                       description: str) -> ExtractorEntry:
    """Register (or replace) a named feature extractor.

    Parameters
    ----------
    name : str
        Lower case, no spaces (it is a command-line value).
    factory : str
        ``"package.module:attribute"``, a class or function returning a ``torch.nn.Module``.
    kwargs : dict, optional
        Keyword arguments passed to the factory (before the caller's own).
    dim : int
        The feature width.
    description : str
        One line.

    Returns
    -------
    ExtractorEntry

    Examples
    --------
    >>> entry = register_extractor("my-inception-pool2", "otmetrics.generative.features.inception:FIDInceptionV3",
    ...                            kwargs={"output": "pool2"}, dim=192, description="pool2 features")
    >>> "my-inception-pool2" in extractor_names()
    True
    >>> _ = _REGISTRY.pop("my-inception-pool2")
    """
    if not isinstance(name, str) or not name or name != name.lower() or any(c.isspace() for c in name):
        raise ValueError(f"name: must be a non-empty lower-case name without spaces, got {name!r}")
    if not isinstance(factory, str) or factory.count(":") != 1:
        raise ValueError(f"factory: must be 'package.module:attribute', got {factory!r}")
    entry = ExtractorEntry(name, factory, dict(kwargs or {}), int(dim), description)
    _REGISTRY[name] = entry
    return entry


def extractor_names() -> list[str]:
    """The registered names, sorted.

    Examples
    --------
    >>> "inception" in extractor_names()
    True
    """
    return sorted(_REGISTRY)


def extractor_entry(name: str) -> ExtractorEntry:
    """The entry of ``name``; a ``ValueError`` naming the known names otherwise.

    Examples
    --------
    >>> extractor_entry("inception").dim
    2048
    """
    if name not in _REGISTRY:
        raise ValueError(f"feature_extractor: unknown extractor {name!r}; known: {', '.join(extractor_names())}")
    return _REGISTRY[name]


def build_extractor(name: str, **kwargs: Any):
    """The network registered as ``name``, built with its registered arguments and ``kwargs``.

    Parameters
    ----------
    name : str
        A registered name (:func:`extractor_names`).
    **kwargs
        Passed to the factory, overriding the registered ones (e.g. ``weights=PATH``,
        ``pretrained=False``).

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> net = build_extractor("inception", pretrained=False)   # random weights: no file needed
    >>> type(net).__name__, net.output
    ('FIDInceptionV3', 'pool3')
    """
    entry = extractor_entry(name)
    module_name, attribute = entry.factory.split(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    return factory(**{**entry.kwargs, **kwargs})


register_extractor("inception", "otmetrics.generative.features.inception:FIDInceptionV3",
                   kwargs={"output": "pool3"}, dim=2048,
                   description="the FID InceptionV3 (pytorch-fid's weights), pool3 features")

# DINOv2 (otmetrics.DINOv2, dgm-eval's preprocessing) and the image tower of CLIP (otmetrics.CLIPImageEncoder,
# the CMMD reference's preprocessing; not normalised: build_extractor(name, normalize=True) for unit vectors).
_DINOV2 = "otmetrics.generative.features.dinov2:DINOv2"
_CLIP = "otmetrics.generative.features.clip:CLIPImageEncoder"
register_extractor("dinov2-vits14", _DINOV2, kwargs={"arch": "vits14"}, dim=384,
                   description="DINOv2 ViT-S/14, class token after the final norm")
register_extractor("dinov2-vitb14", _DINOV2, kwargs={"arch": "vitb14"}, dim=768,
                   description="DINOv2 ViT-B/14, class token after the final norm")
register_extractor("dinov2-vitl14", _DINOV2, kwargs={"arch": "vitl14"}, dim=1024,
                   description="DINOv2 ViT-L/14, class token after the final norm (FD_DINOv2, dgm-eval)")
register_extractor("dinov2-vitg14", _DINOV2, kwargs={"arch": "vitg14"}, dim=1536,
                   description="DINOv2 ViT-g/14, class token after the final norm")
register_extractor("clip-vit-b-32", _CLIP, kwargs={"arch": "ViT-B/32"}, dim=512,
                   description="CLIP ViT-B/32 image embedding (OpenAI's weights)")
register_extractor("clip-vit-b-16", _CLIP, kwargs={"arch": "ViT-B/16"}, dim=512,
                   description="CLIP ViT-B/16 image embedding (OpenAI's weights)")
register_extractor("clip-vit-l-14", _CLIP, kwargs={"arch": "ViT-L/14"}, dim=768,
                   description="CLIP ViT-L/14 image embedding (OpenAI's weights)")
register_extractor("clip-vit-l-14-336px", _CLIP, kwargs={"arch": "ViT-L/14@336px"}, dim=768,
                   description="CLIP ViT-L/14@336px image embedding (OpenAI's weights; CMMD)")
