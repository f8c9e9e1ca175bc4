"""The ``otmetrics`` command itself: :func:`main` (dispatch, one-line errors and warnings)."""

from __future__ import annotations

import argparse
import os
import sys
import warnings

from .commands import evaluate, print_result
from .parser import PROG, UsageError, build_parser

__all__ = ["main", "DEBUG_ENV"]

#: Set to ``1`` to raise errors with their traceback instead of one line.
DEBUG_ENV = "OTMETRICS_DEBUG"


def run_demo(demo_args) -> int:
    """Run ``otmetrics.demo`` with ``demo_args``; its exit status."""
    import importlib

    try:
        demo = importlib.import_module("otmetrics.demo")
    except ModuleNotFoundError as exc:
        if exc.name == "otmetrics.demo":
            raise RuntimeError("the demo is not part of this installation (otmetrics.demo is missing)") \
                from None
        raise RuntimeError(f"the demo needs the package '{exc.name}', which is not installed "
                           "(pip install 'otmetrics[plots]')") from None
    status = demo.main(list(demo_args))
    return int(status) if status is not None else 0


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (its type when it has none)."""
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
        sys.stderr.write(f"{PROG}: warning: {' '.join(str(message).split())}\n")

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show
            warnings.simplefilter("default")
            if args.command == "demo":
                return run_demo(args.demo_args)
            result = evaluate(args)
        print_result(result, args.json)
        return 0
    except UsageError as exc:
        sys.stderr.write(f"{PROG} {args.command}: error: {one_line(exc)}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return 130
    except (ValueError, OSError, RuntimeError, ImportError) as exc:
        if os.environ.get(DEBUG_ENV):
            raise
        sys.stderr.write(f"{PROG} {args.command}: error: {one_line(exc)}\n")
        return 1
    except Exception as exc:  # a bug: still one line, the traceback on request
        if os.environ.get(DEBUG_ENV):
            raise
        sys.stderr.write(f"{PROG} {args.command}: internal error ({type(exc).__name__}: {one_line(exc)}); "
                         f"set {DEBUG_ENV}=1 for the traceback and please report it\n")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
