"""What each command of ``otmetrics`` computes: :func:`evaluate` (a dict of results) and
:func:`print_result`."""

from __future__ import annotations

import json
from pathlib import Path

from .inputs import (Extractors, check_input, check_recorded_extractor, check_same_dims, collect, feature_dim,
                     feature_spec, input_kind)
from .parser import UsageError

__all__ = ["evaluate", "print_result", "NEEDS"]

#: What each command needs of its inputs, in order: "stats" (Gaussian statistics), "rows" (the
#: feature rows), "logits" (the Inception's), and the name of the metric that needs the rows.
NEEDS = {
    "fid": ({"stats"}, {"stats"}), "fd": ({"stats"}, {"stats"}),
    "kid": ({"rows"}, {"rows"}), "cmmd": ({"rows"}, {"rows"}), "prdc": ({"rows"}, {"rows"}),
    "fd-inf": ({"stats"}, {"rows"}), "is": ({"logits"},),
    "all": ({"stats", "rows", "logits"}, {"stats", "rows"}),
}
_ROWS_FOR = {"kid": "KID", "all": "KID", "cmmd": "CMMD", "prdc": "PRDC", "fd-inf": "FD-infinity (for FAKE)"}


def check_positive(args, *names):
    """A usage error for an option below its bound (``--num-workers`` >= 0, the others >= 1)."""
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < (0 if name in ("num_workers", "seed") else 1):
            flag = "--" + name.replace("_", "-")
            bound = ">= 0" if name in ("num_workers", "seed") else ">= 1"
            raise UsageError(f"{flag}: must be {bound}, got {value}")


def save_stats(args, extractors: Extractors, spec) -> dict:
    """``--save-stats``: the statistics of the folder PATH1 (with the extractor's name) to PATH2."""
    folder, target = args.paths
    if input_kind(folder) != "images":
        raise UsageError(f"--save-stats: PATH1 must be an image folder, got '{folder}'")
    out = Path(target).expanduser()
    if out.suffix != ".npz":
        out = out.with_name(out.name + ".npz")
    if out.exists():
        raise UsageError(f"--save-stats: the output file '{out}' exists already; remove it or choose "
                         "another name")
    check_input(folder)
    stats = collect(extractors, folder, spec, stats=True, features=False, logits=False)["stats"]
    written = stats.save(out)
    result = {"stats_file": str(written), "n": stats.n, "dim": stats.dim}
    if args.command != "fid":
        result["features"] = spec.record
    return result


def evaluate(args) -> dict:
    """The results of the command ``args`` (parsed by :func:`~otmetrics.cli.parser.build_parser`)."""
    if not hasattr(args, "paths"):  # REAL FAKE
        args.paths = [args.real, args.fake]
    check_positive(args, "batch_size", "num_workers", "subsets", "subset_size", "degree", "splits", "k",
                   "num_points", "seed")
    spec = feature_spec(args)
    extractors = Extractors(args)
    if getattr(args, "save_stats", False):
        return save_stats(args, extractors, spec)
    needs = NEEDS[args.command]
    rows_for = _ROWS_FOR.get(args.command)
    for path, need in zip(args.paths, needs):  # every input is checked before any image is processed
        check_input(path, rows=rows_for if "rows" in need else None, logits="logits" in need)
    if args.command != "is":
        check_recorded_extractor(args.paths, spec)
        check_same_dims(args.paths, [feature_dim(path, spec) for path in args.paths])
    inputs = [collect(extractors, path, spec, stats="stats" in need, features="rows" in need,
                      logits="logits" in need) for path, need in zip(args.paths, needs)]
    if args.command != "is":
        check_same_dims(args.paths, [data["stats"].dim if "stats" in data else data["features"].shape[1]
                                     for data in inputs])
    return _compute(args, spec, inputs)


def _compute(args, spec, inputs) -> dict:
    from ..generative.cmmd import cmmd
    from ..generative.fd_infinity import fd_infinity
    from ..generative.frechet import frechet_distance
    from ..generative.inception_score import inception_score
    from ..generative.kid import kid
    from ..generative.prdc import prdc

    command, result = args.command, {}
    if command in ("fid", "fd", "all"):
        first, second = inputs[0]["stats"], inputs[1]["stats"]
        key = "fid" if command == "fid" or (command == "all" and spec.name == "inception") else "fd"
        result[key] = float(frechet_distance(first.mean, first.cov, second.mean, second.cov))
    if command in ("kid", "all"):
        mean, std = kid(inputs[0]["features"], inputs[1]["features"], subsets=args.subsets,
                        subset_size=args.subset_size, degree=args.degree, seed=args.seed)
        result["kid_mean"], result["kid_std"] = float(mean), float(std)
    if command in ("is", "all"):
        mean, std = inception_score(inputs[0]["logits"], splits=args.splits, from_logits=True)
        result["is_mean"], result["is_std"] = float(mean), float(std)
    if command == "cmmd":
        result["cmmd"] = float(cmmd(inputs[0]["features"], inputs[1]["features"]))
    if command == "prdc":
        values = prdc(inputs[0]["features"], inputs[1]["features"], k=args.k, ball=args.ball)
        result.update({name: float(value) for name, value in values.as_dict().items()})
        result["k"] = args.k
    if command == "fd-inf":
        real = inputs[0]["stats"]
        if real.n is not None and real.n < 2:
            raise ValueError(f"path: '{args.paths[0]}' holds {real.n} sample; a covariance needs 2")
        values = fd_infinity(real, inputs[1]["features"], num_points=args.num_points, seed=args.seed)
        result.update({"fd_infinity": float(values.value), "fd": float(values.fd[-1]),
                       "n": int(values.n[-1])})
    if command in ("fd", "cmmd", "prdc", "fd-inf") or (command == "all" and spec.given):
        result["features"] = spec.record
    return result


def print_result(result: dict, as_json: bool):
    """One JSON object, or one ``key: value`` line per result (or the line of ``--save-stats``)."""
    if as_json:
        print(json.dumps(result))
        return
    if "stats_file" in result:
        made = f" of {result['features']}" if "features" in result else ""
        print(f"saved the statistics{made} of {result['n']} images ({result['dim']} features) to "
              f"{result['stats_file']}")
        return
    for key, value in result.items():
        print(f"{key}: {value:.10g}" if isinstance(value, float) else f"{key}: {value}")
