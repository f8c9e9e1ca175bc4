"""``torch_threads``: run a block with a given number of torch CPU threads, then restore the setting."""

from __future__ import annotations

import contextlib

import torch

from .._core.validation import validate_positive

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(num_threads: int | None):
    """Run the ``with`` block with ``torch.set_num_threads(num_threads)``; restore the previous count.

    torch's intra-op thread count is global to the process: a library call or a script that sets it
    and never restores it changes every later computation of its caller. The previous count is
    restored however the block ends (an exception included).

    Parameters
    ----------
    num_threads : int or None
        Threads for the block, ``>= 1``; ``None`` leaves torch's setting alone.

    Yields
    ------
    None

    Raises
    ------
    ValueError
        ``num_threads`` is not a positive integer.

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
    if num_threads is None:
        yield
        return
    num_threads = int(validate_positive(num_threads, "num_threads", integer=True))
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
