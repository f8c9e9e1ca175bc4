"""``torch_threads``: run a block with a given number of torch CPU threads, then restore the setting."""

from __future__ import annotations

import contextlib

import torch

from .._core.deprecation import renamed_arguments
from .._core.validation import validate_positive

__all__ = ["torch_threads"]


@renamed_arguments(num_threads="n_threads")
@contextlib.contextmanager
def torch_threads(n_threads: int | None):
    """Run the ``with`` block with ``torch.set_num_threads(n_threads)``; restore the previous count.

    torch's intra-op thread count is global to the process: a library call or a script that sets it
    and never restores it changes every later computation of its caller. The previous count is
    restored however the block ends (an exception included).

    Parameters
    ----------
    n_threads : int or None
        Threads for the block, ``>= 1``; ``None`` leaves torch's setting alone. The old keyword
        ``num_threads`` still works until otmetrics 0.3, with a ``DeprecationWarning``.

    Yields
    ------
    None

    Raises
    ------
    ValueError
        ``n_threads`` is not a positive integer, or both ``n_threads`` and ``num_threads`` are
        given.

    Notes
    -----
    The networks of :mod:`otmetrics.critic` are small: on a machine whose cores are busy, one thread
    avoids OpenMP threads waiting on each other (training was measured 30x slower with 2 threads on
    2 oversubscribed cores). See ``torch.set_num_threads`` in the PyTorch documentation.

    Examples
    --------
    >>> import torch
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if n_threads is None:
        yield
        return
    n_threads = int(validate_positive(n_threads, "n_threads", integer=True))
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
