"""The ``otmetrics`` command: FID, KID and the Inception Score of image folders, and the demo.

::

    otmetrics fid PATH1 PATH2            # each an image folder, a statistics .npz or a features .npy
    otmetrics fid --save-stats FOLDER OUT.npz
    otmetrics kid PATH1 PATH2            # image folders or features .npy
    otmetrics is PATH                    # an image folder
    otmetrics all PATH1 PATH2            # FID, KID and the IS of PATH1 from one pass over the images
    otmetrics demo [ARGS...]

Common options: ``--batch-size``, ``--device``, ``--weights``, ``--num-workers``, ``--resize``,
``--no-progress``, ``--json`` (one JSON object keyed ``fid``, ``kid_mean``, ``kid_std``,
``is_mean``, ``is_std``). Errors print one line on stderr and exit with status 1 (2 for usage
errors); warnings print one line each. ``python -m otmetrics`` is the same command.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

__all__ = ["main", "build_parser"]

_PROG = "otmetrics"
_DEBUG_ENV = "OTMETRICS_DEBUG"


class _UsageError(Exception):
    """A usage problem found after parsing (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (status 2), not the usage block."""

    def error(self, message):
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``otmetrics`` command.

    Examples
    --------
    >>> args = build_parser().parse_args(["kid", "real.npy", "fake.npy", "--subsets", "10"])
    >>> args.command, args.paths, args.subsets, args.subset_size
    ('kid', ['real.npy', 'fake.npy'], 10, 1000)
    """
    parser = _Parser(prog=_PROG, description="Generative-model metrics of image folders (FID, KID, "
                     "Inception Score) with the FID InceptionV3, and the otmetrics demo.")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"otmetrics {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("feature extraction")
    group.add_argument("--batch-size", type=int, default=50, metavar="N",
                       help="images per forward pass (default 50)")
    group.add_argument("--device", default=None,
                       help="torch device, e.g. cpu, cuda, cuda:1 (default: cuda if available, else cpu)")
    group.add_argument("--weights", default=None, metavar="FILE",
                       help="the FID Inception weight file pt_inception-2015-12-05-6726825d.pth (default: "
                            "$OTMETRICS_INCEPTION_WEIGHTS, the caches, or a verified download)")
    group.add_argument("--num-workers", type=int, default=0, metavar="N",
                       help="processes decoding images (default 0: decode in the main process)")
    group.add_argument("--resize", choices=("pytorch-fid", "tf1"), default="pytorch-fid",
                       help="resize to 299x299 as pytorch-fid (torch bilinear, default) or as the "
                            "TensorFlow 1 graph / torch-fidelity")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")
    group.add_argument("--json", action="store_true", help="print one JSON object instead of text")

    fid = commands.add_parser("fid", parents=[common], help="Frechet Inception Distance",
                              description="FID between two image sets. Each PATH is an image folder "
                              "(searched recursively), a statistics .npz (keys mu, sigma: pytorch-fid's "
                              "format) or a features .npy (N x d).")
    fid.add_argument("paths", nargs=2, metavar="PATH")
    fid.add_argument("--dims", type=int, default=2048, choices=(64, 192, 768, 2048),
                     help="Inception features: 2048 (pool3, the standard) or an earlier layer")
    fid.add_argument("--save-stats", action="store_true",
                     help="instead of the FID, save the statistics of the image folder PATH1 to the .npz "
                          "PATH2 (pytorch-fid's --save-stats)")
    fid.set_defaults(metrics=("fid",))

    kid = commands.add_parser("kid", parents=[common], help="Kernel Inception Distance",
                              description="KID (mean and std over random subsets) between two image "
                              "sets. Each PATH is an image folder or a features .npy (N x d).")
    kid.add_argument("paths", nargs=2, metavar="PATH")
    kid.add_argument("--dims", type=int, default=2048, choices=(64, 192, 768, 2048),
                     help="Inception features: 2048 (pool3, the standard) or an earlier layer")
    _kid_options(kid)
    kid.set_defaults(metrics=("kid",))

    score = commands.add_parser("is", parents=[common], help="Inception Score",
                                description="Inception Score (mean and std over splits) of an image "
                                "folder, from the logits without bias as in the original code.")
    score.add_argument("paths", nargs=1, metavar="PATH")
    score.add_argument("--splits", type=int, default=10, help="contiguous splits (default 10)")
    score.set_defaults(metrics=("is",), dims=2048)

    every = commands.add_parser("all", parents=[common], help="FID, KID and the IS of PATH1 in one pass",
                                description="FID and KID between the image folders PATH1 and PATH2 and "
                                "the Inception Score of PATH1 (the generated set), with one forward pass "
                                "per image.")
    every.add_argument("paths", nargs=2, metavar="PATH")
    every.add_argument("--dims", type=int, default=2048, choices=(64, 192, 768, 2048),
                       help="Inception features for FID and KID (default 2048, pool3)")
    _kid_options(every)
    every.add_argument("--splits", type=int, default=10, help="IS splits (default 10)")
    every.set_defaults(metrics=("fid", "kid", "is"))

    demo = commands.add_parser("demo", help="run the otmetrics demo", add_help=False,
                               description="Run the otmetrics demo; arguments are passed to it.")
    demo.add_argument("demo_args", nargs=argparse.REMAINDER)
    return parser


def _kid_options(parser):
    parser.add_argument("--subsets", type=int, default=100, help="random subsets (default 100)")
    parser.add_argument("--subset-size", type=int, default=1000, help="samples per subset (default 1000)")
    parser.add_argument("--degree", type=int, default=3, help="polynomial kernel degree (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the subsets (default 0)")


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------
def _kind(path: str) -> str:
    p = Path(path).expanduser()
    if p.suffix.lower() == ".npz":
        return "stats"
    if p.suffix.lower() == ".npy":
        return "features"
    return "images"


def _load_features(path: str):
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


def _feature_dim(path: str, dims: int):
    """The dimension of the features an input gives, known before any image is processed
    (``None`` when the file cannot be read: loading it reports why)."""
    import numpy as np

    kind = _kind(path)
    if kind == "images":
        return dims
    try:
        if kind == "features":
            shape = np.load(Path(path).expanduser(), mmap_mode="r", allow_pickle=False).shape
            return shape[1] if len(shape) == 2 else None
        with np.load(Path(path).expanduser(), allow_pickle=False) as data:
            shape = np.shape(data["mu"])
        return shape[0] if len(shape) == 1 else None
    except Exception:
        return None


def _check_same_dims(paths, dims) -> None:
    if None not in dims and dims[0] != dims[1]:
        raise ValueError(f"paths: the inputs have features of different dimensions: {dims[0]} in "
                         f"'{paths[0]}' and {dims[1]} in '{paths[1]}'")


class _Extractor:
    """The FID InceptionV3, built on first use and shared by every input."""

    def __init__(self, args):
        self.args = args
        self.model = None

    def run(self, folder: str, outputs: tuple[str, ...]):
        from .generative.features.images import iter_image_features
        from .generative.features.inception import FIDInceptionV3

        args = self.args
        if self.model is None:
            self.model = FIDInceptionV3(args.weights, resize=args.resize, progress=not args.no_progress)
        return iter_image_features(folder, self.model, output=outputs, batch_size=args.batch_size,
                                   device=args.device,
                                   num_workers=args.num_workers, progress=not args.no_progress, desc=folder)


def _check_input(path: str, *, features: bool, logits: bool):
    from .generative.features.images import list_images

    kind = _kind(path)
    if kind == "images":
        list_images(path)
    elif kind == "stats" and (features or logits):
        raise _UsageError(f"path: '{path}' is a statistics file (mean and covariance only); KID and the "
                          "Inception Score need an image folder" + ("" if logits else " or a features .npy"))
    elif kind == "features" and logits:
        raise _UsageError(f"path: '{path}' is a features file; the Inception Score needs an image folder")
    elif not Path(path).expanduser().is_file():
        raise ValueError(f"path: no such file '{path}'")


def _collect(args, extractor: _Extractor, path: str, *, stats: bool, features: bool, logits: bool):
    """Read one input: Gaussian statistics, features and/or logits, as requested."""
    import numpy as np

    from .generative.gaussian import GaussianStats
    from .generative.features.inception import FIDInceptionV3

    _check_input(path, features=features, logits=logits)
    kind = _kind(path)
    if kind == "stats":
        return {"stats": GaussianStats.load(path)}
    if kind == "features":
        array = _load_features(path)
        result = {"features": array}
        if stats:
            result["stats"] = GaussianStats.from_features(array)
        return result
    feature_name = FIDInceptionV3.output_for_dims(args.dims)
    outputs = tuple(name for name, wanted in ((feature_name, stats or features), ("logits_unbiased", logits))
                    if wanted)
    gaussian = GaussianStats() if stats else None
    kept = {name: [] for name in outputs if name != feature_name or features}
    for batch in extractor.run(path, outputs):
        parts = dict(zip(outputs, batch))
        if gaussian is not None:
            gaussian.update(parts[feature_name])
        for name in kept:
            kept[name].append(parts[name])
    result = {}
    if gaussian is not None:
        result["stats"] = gaussian
    if feature_name in kept:
        result["features"] = np.concatenate(kept[feature_name])
    if "logits_unbiased" in kept:
        result["logits"] = np.concatenate(kept["logits_unbiased"])
    return result


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------
def _check_positive(args, *names):
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < (0 if name == "num_workers" else 1):
            flag = "--" + name.replace("_", "-")
            bound = ">= 0" if name == "num_workers" else ">= 1"
            raise _UsageError(f"{flag}: must be {bound}, got {value}")


def _save_stats(args, extractor) -> dict:
    folder, target = args.paths
    if _kind(folder) != "images":
        raise _UsageError(f"--save-stats: PATH1 must be an image folder, got '{folder}'")
    out = Path(target).expanduser()
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")
    if out.exists():
        raise _UsageError(f"--save-stats: the output file '{out}' exists already; remove it or choose "
                          "another name")
    stats = _collect(args, extractor, folder, stats=True, features=False, logits=False)["stats"]
    written = stats.save(out)
    return {"stats_file": str(written), "n": stats.n, "dim": stats.dim}


def _evaluate(args) -> dict:
    from .generative.frechet import frechet_distance
    from .generative.inception_score import inception_score
    from .generative.kid import kid

    _check_positive(args, "batch_size", "num_workers", "subsets", "subset_size", "degree", "splits")
    extractor = _Extractor(args)
    if "fid" in args.metrics and getattr(args, "save_stats", False):
        return _save_stats(args, extractor)
    want_fid, want_kid, want_is = ("fid" in args.metrics, "kid" in args.metrics, "is" in args.metrics)
    for i, path in enumerate(args.paths):  # every input is checked before any image is processed
        _check_input(path, features=want_kid, logits=want_is and i == 0)
    if want_fid or want_kid:
        _check_same_dims(args.paths, [_feature_dim(path, args.dims) for path in args.paths])
    inputs = [_collect(args, extractor, path, stats=want_fid, features=want_kid, logits=want_is and i == 0)
              for i, path in enumerate(args.paths)]
    if want_fid or want_kid:
        _check_same_dims(args.paths, [data["stats"].dim if "stats" in data else data["features"].shape[1]
                                      for data in inputs])
    result = {}
    if want_fid:
        first, second = inputs[0]["stats"], inputs[1]["stats"]
        result["fid"] = float(frechet_distance(first.mean, first.cov, second.mean, second.cov))
    if want_kid:
        mean, std = kid(inputs[0]["features"], inputs[1]["features"], subsets=args.subsets,
                        subset_size=args.subset_size, degree=args.degree, seed=args.seed)
        result["kid_mean"], result["kid_std"] = float(mean), float(std)
    if want_is:
        mean, std = inception_score(inputs[0]["logits"], splits=args.splits, from_logits=True)
        result["is_mean"], result["is_std"] = float(mean), float(std)
    return result


def _print_result(result: dict, as_json: bool):
    if as_json:
        print(json.dumps(result))
        return
    if "stats_file" in result:
        print(f"saved the statistics of {result['n']} images ({result['dim']} features) to "
              f"{result['stats_file']}")
        return
    for key, value in result.items():
        print(f"{key}: {value:.10g}" if isinstance(value, float) else f"{key}: {value}")


def _run_demo(demo_args) -> int:
    import importlib

    try:
        demo = importlib.import_module(f"{__package__}.demo")
    except ModuleNotFoundError as exc:
        if exc.name in ("otmetrics.demo", f"{__package__}.demo"):
            raise RuntimeError("the demo is not part of this installation (otmetrics.demo is missing)") \
                from None
        raise RuntimeError(f"the demo needs the package '{exc.name}', which is not installed "
                           "(pip install 'otmetrics[plots]')") from None
    status = demo.main(list(demo_args))
    return int(status) if status is not None else 0


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def main(argv=None) -> int:
    """Run the ``otmetrics`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    The result goes to stdout; an error is one line on stderr, with status 1 (2 for a usage
    error); ``OTMETRICS_DEBUG=1`` raises it instead, with its traceback.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> folder = tempfile.TemporaryDirectory()
    >>> a, b = Path(folder.name) / "a.npz", Path(folder.name) / "b.npz"
    >>> np.savez(a, mu=np.zeros(2), sigma=np.eye(2))  # pytorch-fid's statistics format
    >>> np.savez(b, mu=np.array([3.0, 4.0]), sigma=np.eye(2))
    >>> main(["fid", str(a), str(b)])  # |mu_a - mu_b|^2 with equal covariances
    fid: 25
    0
    >>> folder.cleanup()
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    if argv[:1] == ["demo"]:  # everything after "demo" belongs to the demo, options included
        args = argparse.Namespace(command="demo", demo_args=argv[1:])
    else:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help, --version, usage errors (already reported on one line)
            return exc.code if isinstance(exc.code, int) else 2

    def show(message, category, filename, lineno, file=None, line=None):
        sys.stderr.write(f"{_PROG}: warning: {' '.join(str(message).split())}\n")

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            warnings.simplefilter("default")
            if args.command == "demo":
                return _run_demo(args.demo_args)
            result = _evaluate(args)
        _print_result(result, args.json)
        return 0
    except _UsageError as exc:
        sys.stderr.write(f"{_PROG} {args.command}: error: {_one_line(exc)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{_PROG}: interrupted\n")
        return 130
    except (ValueError, OSError, RuntimeError, ImportError) as exc:
        if os.environ.get(_DEBUG_ENV):
            raise
        sys.stderr.write(f"{_PROG} {args.command}: error: {_one_line(exc)}\n")
        return 1
    except Exception as exc:  # a bug: still one line, the traceback on request
        if os.environ.get(_DEBUG_ENV):
            raise
        sys.stderr.write(f"{_PROG} {args.command}: internal error ({type(exc).__name__}: {_one_line(exc)}); "
                         f"set {_DEBUG_ENV}=1 for the traceback and please report it\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
