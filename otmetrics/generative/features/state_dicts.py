"""State dicts of the feature extractors: read safely, check against a network's layout and values.

A weight file that loads but is not what the network expects (another architecture, a truncated
conversion, a NaN from a broken export) gives features, and a FID, that look plausible and are
wrong. Every extractor therefore reads its file with :func:`read_state_dict` (no code is
unpickled), compares it with its own layout with :func:`check_layout` (missing, unexpected and
wrongly shaped entries, each kind named), and checks the values with :func:`check_finite`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import torch

__all__ = ["read_state_dict", "check_layout", "check_finite"]


def read_state_dict(path) -> Mapping:
    """Read a torch state dict safely: ``torch.load(path, map_location="cpu", weights_only=True)``.

    ``weights_only=True`` unpickles tensors and plain containers only, never code, so a weight
    file from anywhere cannot run anything.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    Mapping
        What the file holds (usually names to CPU tensors; check it with :func:`check_layout`).

    Raises
    ------
    ValueError
        The file cannot be read as a torch file with plain contents (truncated, not a torch file,
        a pickle of arbitrary objects); the message names the file.

    Examples
    --------
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "w.pth"
    >>> torch.save({"w": torch.ones(2)}, path)
    >>> read_state_dict(path)
    {'w': tensor([1., 1.])}
    >>> _ = path.write_bytes(b"not a torch file")
    >>> read_state_dict(path)
    Traceback (most recent call last):
    ...
    ValueError: weights: could not read '...w.pth' as a torch state dict (...)
    >>> folder.cleanup()
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickles that are not plain state dicts, truncated files, ...
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"weights: could not read '{path}' as a torch state dict ({message})") from None


def check_layout(state_dict: Mapping, layout: Mapping[str, tuple[int, ...]], source: str = "weights", *,
                 name: str = "expected layout", optional: tuple[str, ...] = ("num_batches_tracked",),
                 check_values: bool = True) -> None:
    """Raise ``ValueError`` unless ``state_dict`` has exactly the keys and shapes of ``layout``.

    Parameters
    ----------
    state_dict : Mapping
        Names to tensors, as ``torch.load`` returns them.
    layout : Mapping of str to tuple of int
        The expected keys and shapes, e.g. ``{k: tuple(v.shape) for k, v in
        network.state_dict().items()}``.
    source : str, default "weights"
        What the message calls the weights (the argument's name, or the file); it starts the
        message.
    name : str, default "expected layout"
        What the message calls the layout: "``{source}: not the {name}: ...``".
    optional : tuple of str, default ("num_batches_tracked",)
        Key endings that are ignored on both sides (batch-norm counters: some saves have them,
        some do not).
    check_values : bool, default True
        Also require every entry to hold finite values (:func:`check_finite`, one pass over the
        data). Entries must be floating in any case.

    Raises
    ------
    ValueError
        Not a mapping; missing, unexpected or wrongly shaped entries (the number of each, and the
        first three named); non-floating or non-finite values.

    Examples
    --------
    >>> import torch
    >>> layout = {"w": (2, 3), "b": (2,)}
    >>> check_layout({"w": torch.zeros(2, 3), "b": torch.zeros(2)}, layout)  # returns None
    >>> check_layout({"w": torch.zeros(3, 2), "c": torch.zeros(2)}, layout, "my.pth", name="toy layout")
    Traceback (most recent call last):
    ...
    ValueError: my.pth: not the toy layout: 1 missing key(s), e.g. b; 1 unexpected key(s), e.g. c; 1 wrong ...
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{source}: expected a state dict (a mapping of names to tensors), "
                         f"got {type(state_dict).__name__}")
    expected = {k: tuple(v) for k, v in layout.items() if not str(k).endswith(optional)}
    given = {k: v for k, v in state_dict.items() if not str(k).endswith(optional)}
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    wrong = []
    for key, shape in expected.items():
        if key in given:
            value = given[key]
            if not isinstance(value, torch.Tensor):
                wrong.append(f"{key}: not a tensor ({type(value).__name__})")
            elif tuple(value.shape) != shape:
                wrong.append(f"{key}: shape {tuple(value.shape)}, expected {shape}")
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s), e.g. {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s), e.g. {', '.join(map(str, unexpected[:3]))}")
        if wrong:
            parts.append(f"{len(wrong)} wrong entr{'y' if len(wrong) == 1 else 'ies'}, e.g. "
                         + "; ".join(wrong[:3]))
        raise ValueError(f"{source}: not the {name}: " + "; ".join(parts))
    for key, value in given.items():
        if not value.is_floating_point():
            raise ValueError(f"{source}: entry {key} must hold floating values, got dtype {value.dtype}")
    if check_values:
        check_finite(given.items(), source)


def check_finite(named_tensors: Iterable, source: str = "weights") -> None:
    """Raise ``ValueError`` unless every ``(name, tensor)`` pair holds finite values.

    Parameters
    ----------
    named_tensors : iterable of (str, torch.Tensor)
        E.g. ``state_dict.items()``.
    source : str, default "weights"
        What the message calls the weights (the argument, or the file).

    Raises
    ------
    ValueError
        The first entry with a NaN or an infinity, named.

    Notes
    -----
    CPU tensors are checked in numpy: hundreds of small torch reductions each open a parallel
    region, which costs more than the check itself on a busy machine.

    Examples
    --------
    >>> import torch
    >>> check_finite({"w": torch.ones(3)}.items())  # returns None
    >>> check_finite({"w": torch.tensor([1.0, float("nan")])}.items(), "my.pth")
    Traceback (most recent call last):
    ...
    ValueError: my.pth: entry w must hold finite floating values
    """
    for key, value in named_tensors:
        value = value.detach()
        if value.device.type == "cpu" and value.dtype in (torch.float16, torch.float32, torch.float64):
            finite = bool(np.isfinite(value.numpy()).all())
        else:
            finite = bool(torch.isfinite(value).all())
        if not finite:
            raise ValueError(f"{source}: entry {key} must hold finite floating values")
