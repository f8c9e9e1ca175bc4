"""The inputs of the ``otmetrics`` command: image folders, statistics ``.npz`` and features ``.npy``,
and the feature extractors (by registered name) that turn folders into features."""

from __future__ import annotations

import importlib
import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path

from .parser import DEFAULT_FEATURES, UsageError

__all__ = ["FeatureSpec", "feature_spec", "input_kind", "load_features", "feature_dim", "check_same_dims",
           "check_input", "check_recorded_extractor", "Extractors", "collect"]


@dataclass(frozen=True)
class FeatureSpec:
    """Which features a command computes from images.

    Attributes
    ----------
    name : str
        The registered extractor (``"inception"``, ``"dinov2-vitl14"``, ...).
    output : str or None
        The FIDInceptionV3 output (``"pool3"``, ...) for the Inception, else ``None``.
    dim : int
        The width of the features.
    record : str
        The name written into statistics files and checked against theirs: the extractor's
        name, with the layer for the Inception's earlier layers (``"inception-pool1"``).
    given : bool
        Whether ``--features`` was given.
    """

    name: str
    output: str | None
    dim: int
    record: str
    given: bool


def feature_spec(args) -> FeatureSpec:
    """The features of a command's arguments (``--features``, or ``--dims`` for the Inception)."""
    from ..generative.features.inception import FIDInceptionV3
    from ..generative.features.registry import extractor_entry

    given = getattr(args, "features", None) is not None
    name = args.features if given else DEFAULT_FEATURES.get(args.command, "inception")
    try:
        entry = extractor_entry(name)
    except ValueError as exc:
        raise UsageError(str(exc).replace("feature_extractor:", "--features:", 1)) from None
    if name != "inception":
        return FeatureSpec(name, None, entry.dim, name, given)
    dims = getattr(args, "dims", 2048) if not given else 2048
    output = FIDInceptionV3.output_for_dims(dims)
    return FeatureSpec(name, output, dims, "inception" if output == "pool3" else f"inception-{output}", given)


def input_kind(path: str) -> str:
    """``"stats"`` (``.npz``), ``"features"`` (``.npy``) or ``"images"`` (anything else: a folder)."""
    suffix = Path(path).expanduser().suffix.lower()
    return {".npz": "stats", ".npy": "features"}.get(suffix, "images")


def load_features(path: str):
    """The ``(N, d)`` array of a features ``.npy``, checked (errors name the file)."""
    import numpy as np

    p = Path(path).expanduser()
    if not p.is_file():
        raise ValueError(f"path: no such features file '{p}'")
    try:
        array = np.load(p, allow_pickle=False)
    except Exception as exc:
        raise ValueError(f"path: could not read '{p}' as a .npy array ({exc})") from None
    if array.ndim != 2:
        raise ValueError(f"path: '{p}' must hold an (N, d) feature array, got shape {array.shape}")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"path: '{p}' must hold real numbers, got dtype {array.dtype}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"path: '{p}' holds no features, got shape {array.shape}")
    bad = ~np.isfinite(array).all(axis=1)
    if bad.any():
        raise ValueError(f"path: '{p}' holds non-finite features (NaN or infinity) in {int(bad.sum())} "
                         f"row(s), the first is row {int(np.argmax(bad))}")
    return array


def feature_dim(path: str, spec: FeatureSpec):
    """The dimension of the features an input gives, known before any image is processed
    (``None`` when the file cannot be read: loading it reports why)."""
    import numpy as np

    kind = input_kind(path)
    if kind == "images":
        return spec.dim
    try:
        if kind == "features":
            shape = np.load(Path(path).expanduser(), mmap_mode="r", allow_pickle=False).shape
            return shape[1] if len(shape) == 2 else None
        with np.load(Path(path).expanduser(), allow_pickle=False) as data:
            shape = np.shape(data["mu"])
        return shape[0] if len(shape) == 1 else None
    except Exception:
        return None


def check_same_dims(paths, dims) -> None:
    """A ``ValueError`` naming both inputs when their features have different dimensions."""
    if None not in dims and dims[0] != dims[1]:
        raise ValueError(f"paths: the inputs have features of different dimensions: {dims[0]} in "
                         f"'{paths[0]}' and {dims[1]} in '{paths[1]}'")


def check_input(path: str, *, rows: str | None = None, logits: bool = False):
    """Check that an input exists and suits the command: ``rows`` names the metric that needs the
    feature rows (a statistics file is then a usage error), ``logits`` the Inception Score."""
    from ..generative.features.images import list_images

    kind = input_kind(path)
    if kind == "images":
        list_images(path)
    elif kind == "stats" and (rows or logits):
        what = rows or "the Inception Score"
        raise UsageError(f"path: '{path}' is a statistics file (mean and covariance only); {what} needs an "
                         "image folder" + ("" if logits and not rows else " or a features .npy"))
    elif kind == "features" and logits:
        raise UsageError(f"path: '{path}' is a features file; the Inception Score needs an image folder")
    elif not Path(path).expanduser().is_file():
        raise ValueError(f"path: no such file '{path}'")


def check_recorded_extractor(paths, spec: FeatureSpec) -> None:
    """Statistics files that record their extractor must agree with each other and, when an image
    folder is processed, with the command's features (a ``ValueError`` naming both); a file that
    records none is accepted for the Inception (pytorch-fid's files) and with a warning for any
    other extractor."""
    from ..generative.gaussian import GaussianStats

    records = {}
    for path in paths:
        if input_kind(path) != "stats" or not Path(path).expanduser().is_file():
            continue
        recorded = GaussianStats.load(path).extractor
        if recorded is not None:
            records[path] = recorded
        elif spec.record != "inception":
            warnings.warn(f"path: '{path}' does not record its feature extractor; it is taken to hold "
                          f"{spec.record} statistics", UserWarning, stacklevel=2)
    if len(set(records.values())) > 1:
        (a, name_a), (b, name_b) = list(records.items())[:2]
        raise ValueError(f"paths: the statistics files come from different feature extractors: {name_a!r} in "
                         f"'{a}' and {name_b!r} in '{b}'")
    if all(input_kind(path) != "images" for path in paths):
        return  # nothing is computed here: the files only have to agree with each other
    for path, name in records.items():
        if name != spec.record:
            raise ValueError(f"path: '{path}' holds statistics of the {name!r} features, but the command "
                             f"computes {spec.record!r} features (choose them with --features)")


class Extractors:
    """The feature extractors of a run, built on first use by name and shared by every input."""

    def __init__(self, args):
        self.args = args
        self.models = {}

    def model(self, name: str, *, for_spec: bool):
        if name not in self.models:
            from ..generative.features.registry import build_extractor, extractor_entry

            args = self.args
            kwargs = {}
            if for_spec and args.weights is not None:
                kwargs["weights"] = args.weights
            if for_spec and args.resize is not None:
                kwargs["resize"] = None if args.resize.lower() == "none" else args.resize
            module, attribute = extractor_entry(name).factory.split(":")
            accepted = inspect.signature(getattr(importlib.import_module(module), attribute)).parameters
            for option in ("weights", "resize"):
                if option in kwargs and option not in accepted:
                    raise UsageError(f"--{option}: the extractor {name!r} takes no {option}")
            if "progress" in accepted:
                kwargs["progress"] = not args.no_progress
            if name.startswith("clip-") and args.command == "cmmd":
                kwargs.setdefault("normalize", True)  # CMMD's embeddings are unit vectors
            self.models[name] = build_extractor(name, **kwargs)
        return self.models[name]

    def run(self, folder: str, name: str, outputs, *, for_spec: bool = True):
        """Batches of features of an image folder: tuples for the Inception's ``outputs``, arrays for
        any other extractor (``outputs`` is then ``None``)."""
        from ..generative.features.images import iter_image_features

        args = self.args
        model = self.model(name, for_spec=for_spec)
        preprocess = None if name == "inception" else (lambda x: x)  # uint8 images, as the Inception
        return iter_image_features(folder, model, output=outputs, batch_size=args.batch_size,
                                   device=args.device, num_workers=args.num_workers,
                                   progress=not args.no_progress, desc=folder, preprocess=preprocess)


def collect(extractors: Extractors, path: str, spec: FeatureSpec, *, stats: bool, features: bool,
            logits: bool):
    """Read one input: Gaussian statistics, features and/or Inception logits, as requested."""
    import numpy as np

    from ..generative.gaussian import GaussianStats

    kind = input_kind(path)
    if kind == "stats":
        return {"stats": GaussianStats.load(path)}
    if kind == "features":
        array = load_features(path)
        result = {"features": array}
        if stats:
            result["stats"] = GaussianStats.from_features(array)
        return result
    gaussian = GaussianStats(extractor=spec.record) if stats else None
    kept, logit_rows = [], []
    if spec.name == "inception":
        outputs = tuple(name for name, wanted in ((spec.output, stats or features),
                                                  ("logits_unbiased", logits)) if wanted)
        for batch in extractors.run(path, "inception", outputs):
            parts = dict(zip(outputs, batch))
            if gaussian is not None:
                gaussian.update(parts[spec.output])
            if features:
                kept.append(parts[spec.output])
            if logits:
                logit_rows.append(parts["logits_unbiased"])
    else:
        for batch in extractors.run(path, spec.name, None):
            if gaussian is not None:
                gaussian.update(batch)
            if features:
                kept.append(batch)
        if logits:  # the Inception Score needs the Inception, whatever the features are
            logit_rows = [batch[0] for batch in extractors.run(path, "inception", ("logits_unbiased",),
                                                               for_spec=False)]
    result = {}
    if gaussian is not None:
        result["stats"] = gaussian
    if features:
        result["features"] = np.concatenate(kept)
    if logits:
        result["logits"] = np.concatenate(logit_rows)
    return result
