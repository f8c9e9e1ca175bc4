"""``python -m otmetrics``: the same command as ``otmetrics`` (see :mod:`otmetrics.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
