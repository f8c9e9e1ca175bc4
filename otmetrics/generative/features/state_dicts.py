"""State dicts of the feature extractors: read safely, convert between layouts, check against a network.

A weight file that loads but is not what the network expects (another architecture, a truncated
conversion, a NaN from a broken export) gives features, and a FID, that look plausible and are
wrong. Every extractor therefore reads its file with :func:`read_state_dict` (no code is
unpickled or run: torch files, safetensors files and TorchScript archives), compares it with its
own layout with :func:`check_layout` (missing, unexpected and wrongly shaped entries, each kind
named), and checks the values with :func:`check_finite`. A file published in another layout (the
Hugging Face checkpoints of DINOv2 and CLIP) is checked in its own key names and converted with
:func:`convert_state_dict`, so that an error names the keys of the file as it is.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from .torchscript import is_torchscript_archive, read_torchscript_tensors

__all__ = ["read_state_dict", "is_safetensors_file", "check_layout", "check_finite", "SourceKeys",
           "source_layout", "convert_state_dict"]


def is_safetensors_file(path) -> bool:
    """Whether ``path`` starts like a safetensors file: an 8-byte little-endian header length, then
    a JSON object of that length.

    Examples
    --------
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> from safetensors.torch import save_file
    >>> folder = tempfile.TemporaryDirectory()
    >>> save_file({"w": torch.ones(2)}, Path(folder.name) / "model.safetensors")
    >>> is_safetensors_file(Path(folder.name) / "model.safetensors")
    True
    >>> folder.cleanup()
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(9)
            handle.seek(0, 2)
            size = handle.tell()
    except OSError:
        return False
    if len(head) < 9:
        return False
    (length,) = struct.unpack("<Q", head[:8])
    return 2 <= length <= size - 8 and head[8:9] == b"{"


def read_state_dict(path) -> Mapping:
    """Read a weight file safely: a torch file, a safetensors file, or a TorchScript archive.

    - torch files (``torch.save``): ``torch.load(path, map_location="cpu", weights_only=True)``,
      which unpickles tensors and plain containers only, never code;
    - safetensors files (the Hugging Face ``model.safetensors``), recognised by their header
      whatever their name: ``safetensors.torch.load_file`` (a format without code by design);
    - TorchScript archives (OpenAI's CLIP ``.pt`` files): the tensors of the pickled module,
      read without compiling or running the archive's code
      (:func:`~otmetrics.generative.features.torchscript.read_torchscript_tensors`).

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
        The file cannot be read as any of these (truncated, not a weight file, a pickle of
        arbitrary objects); the message names the file.

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
    if is_safetensors_file(path):
        from safetensors.torch import load_file

        try:
            return load_file(path, device="cpu")
        except Exception as exc:  # a truncated or corrupted file
            raise ValueError(f"weights: could not read '{path}' as a safetensors file "
                             f"({_first_line(exc)})") from None
    if is_torchscript_archive(path):
        return read_torchscript_tensors(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickles that are not plain state dicts, truncated files, ...
        raise ValueError(f"weights: could not read '{path}' as a torch state dict "
                         f"({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


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


@dataclass(frozen=True)
class SourceKeys:
    """Where one entry of a network's state dict comes from in a file of another layout.

    Attributes
    ----------
    keys : tuple of str
        The file's entries (one, or several that are concatenated).
    how : {"same", "cat", "transpose"}
        ``"same"``: the one entry as it is; ``"cat"``: the entries concatenated along the first
        axis (e.g. separate query, key and value projections into one fused matrix);
        ``"transpose"``: the one 2-d entry transposed (a ``Linear`` weight into a matrix that
        multiplies from the right).

    Examples
    --------
    >>> SourceKeys(("q.weight", "k.weight", "v.weight"), "cat").how
    'cat'
    """

    keys: tuple[str, ...]
    how: str = "same"

    def __post_init__(self):
        if self.how not in ("same", "cat", "transpose") or not self.keys:
            raise ValueError(f"how: must be 'same', 'cat' or 'transpose' with at least one key, got {self!r}")
        if self.how != "cat" and len(self.keys) != 1:
            raise ValueError(f"keys: {self.how!r} takes exactly one key, got {self.keys!r}")


def source_layout(layout: Mapping[str, tuple[int, ...]],
                  sources: Mapping[str, SourceKeys]) -> dict[str, tuple[int, ...]]:
    """The keys and shapes a file of another layout must have to give ``layout`` through ``sources``.

    Parameters
    ----------
    layout : Mapping of str to tuple of int
        The network's keys and shapes.
    sources : Mapping of str to SourceKeys
        For each key of ``layout``, where it comes from.

    Examples
    --------
    >>> source_layout({"qkv": (6, 2), "proj": (2, 3)},
    ...               {"qkv": SourceKeys(("q", "k", "v"), "cat"), "proj": SourceKeys(("p",), "transpose")})
    {'q': (2, 2), 'k': (2, 2), 'v': (2, 2), 'p': (3, 2)}
    """
    expected = {}
    for key, shape in layout.items():
        rule = sources[key]
        if rule.how == "cat":
            part = (shape[0] // len(rule.keys), *shape[1:])
            expected.update({name: part for name in rule.keys})
        elif rule.how == "transpose":
            expected[rule.keys[0]] = tuple(reversed(shape))
        else:
            expected[rule.keys[0]] = tuple(shape)
    return expected


def convert_state_dict(state_dict: Mapping, layout: Mapping[str, tuple[int, ...]],
                       sources: Mapping[str, SourceKeys], source: str = "weights", *, name: str,
                       ignore: Callable[[str], bool] | None = None, optional: tuple[str, ...] = ()) -> dict:
    """Check a state dict of another layout in its own key names, and convert it to ``layout``.

    Parameters
    ----------
    state_dict : Mapping
        The file's entries.
    layout : Mapping of str to tuple of int
        The network's keys and shapes.
    sources : Mapping of str to SourceKeys
        Where each key of ``layout`` comes from in the file.
    source : str, default "weights"
        What error messages call the weights (the argument, or the file).
    name : str
        What error messages call the file's layout.
    ignore : callable, optional
        ``ignore(key)`` true for entries of the file that the network has no use for (e.g. the
        text tower of a CLIP checkpoint); they are dropped before the check.
    optional : tuple of str
        Key endings that may be missing (on both sides); the result then lacks them.

    Returns
    -------
    dict of str to torch.Tensor
        The network's entries (the file's tensors, or views and concatenations of them).

    Raises
    ------
    ValueError
        The file's entries are not those ``sources`` expects (see :func:`check_layout`; the
        keys named are the file's).

    Examples
    --------
    >>> import torch
    >>> file = {"q": torch.zeros(2, 2), "k": torch.ones(2, 2), "v": torch.ones(2, 2), "text.w": torch.ones(1)}
    >>> out = convert_state_dict(file, {"qkv": (6, 2)}, {"qkv": SourceKeys(("q", "k", "v"), "cat")},
    ...                          name="toy layout", ignore=lambda key: key.startswith("text."))
    >>> out["qkv"].shape
    torch.Size([6, 2])
    >>> convert_state_dict({"q": torch.zeros(2, 2)}, {"qkv": (6, 2)},
    ...                    {"qkv": SourceKeys(("q", "k", "v"), "cat")}, "my.bin", name="toy layout")
    Traceback (most recent call last):
    ...
    ValueError: my.bin: not the toy layout: 2 missing key(s), e.g. k, v
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"{source}: expected a state dict (a mapping of names to tensors), "
                         f"got {type(state_dict).__name__}")
    kept = {k: v for k, v in state_dict.items() if ignore is None or not ignore(str(k))}
    check_layout(kept, source_layout(layout, sources), source, name=name, optional=optional,
                 check_values=False)
    converted = {}
    for key in layout:
        rule = sources[key]
        if any(part not in kept for part in rule.keys):  # an optional entry the file lacks
            continue
        values = [kept[part] for part in rule.keys]
        if rule.how == "cat":
            converted[key] = torch.cat(values)
        elif rule.how == "transpose":
            converted[key] = values[0].T
        else:
            converted[key] = values[0]
    return converted
