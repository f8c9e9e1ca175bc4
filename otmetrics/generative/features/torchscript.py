"""The tensors of a TorchScript archive, read without running any of its code.

OpenAI publishes its CLIP weights as TorchScript archives (``ViT-L-14-336px.pt``, ...): zip files
holding the compiled code of the model (``code/``), and its objects pickled in ``data.pkl`` with
their tensors stored beside it (``data/0``, ``data/1``, ...). ``torch.jit.load(path).state_dict()``
is how the reference code gets the weights out, but it compiles and instantiates the archive's
code, and ``torch.load(..., weights_only=True)`` refuses TorchScript archives (since torch 2.6, for
that reason). :func:`read_torchscript_tensors` reads ``data.pkl`` with an unpickler that resolves
no global except a fixed allowlist (plain containers, the storage types, the tensor rebuild
function, and an inert stand-in for the archive's own classes), so a file from anywhere can only
produce tensors, numbers and strings. The module tree is walked and every tensor attribute is
returned under its dotted path, as ``state_dict()`` names it.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from collections.abc import Mapping

import torch

__all__ = ["is_torchscript_archive", "read_torchscript_tensors"]

#: The storage classes a TorchScript pickle names, and their dtypes.
_STORAGE_DTYPES = {
    "HalfStorage": torch.float16, "FloatStorage": torch.float32, "DoubleStorage": torch.float64,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}


def is_torchscript_archive(path) -> bool:
    """Whether ``path`` is a zip file with the layout of a TorchScript archive (``code/`` and
    ``data.pkl`` under one top-level folder).

    Examples
    --------
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> folder = tempfile.TemporaryDirectory()
    >>> torch.save({"w": torch.ones(1)}, Path(folder.name) / "plain.pt")
    >>> is_torchscript_archive(Path(folder.name) / "plain.pt")
    False
    >>> folder.cleanup()
    """
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return _data_pickle(archive.namelist()) is not None and any(
            "/code/" in name for name in archive.namelist())


def _data_pickle(names) -> str | None:
    found = [name for name in names if name.endswith("/data.pkl") and name.count("/") == 1]
    return found[0] if len(found) == 1 else None


class _ScriptObject:
    """An inert stand-in for any class of the archive: it only holds the attributes it is given."""

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.__dict__["__state__"] = state


class _StorageType:
    def __init__(self, dtype: torch.dtype):
        self.dtype = dtype


def _rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
    tensor = torch.empty(0, dtype=storage.dtype)
    try:
        tensor.set_(storage.untyped_storage(), offset, torch.Size(size), tuple(stride))
    except RuntimeError as exc:
        raise ValueError(f"a tensor of size {tuple(size)} does not fit its storage ({exc})") from None
    return tensor


def _same(value, *_):
    return value


#: Everything the unpickler may call: containers, the tensor rebuild, TorchScript's typed-container
#: tags (identities here).
_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _same,
    ("torch.jit._pickle", "restore_type_tag"): _same,
    ("torch.jit._pickle", "build_intlist"): _same,
    ("torch.jit._pickle", "build_doublelist"): _same,
    ("torch.jit._pickle", "build_boollist"): _same,
    ("torch.jit._pickle", "build_tensorlist"): _same,
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, archive: zipfile.ZipFile, prefix: str):
        super().__init__(io.BytesIO(data))
        self.archive, self.prefix = archive, prefix
        self.storages: dict[str, torch.Tensor] = {}

    def find_class(self, module: str, name: str):
        if module == "__torch__" or module.startswith("__torch__."):
            return _ScriptObject
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if (module, name) in _ALLOWED:
            return _ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"the archive names {module}.{name}, which a weight file has no use for")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise pickle.UnpicklingError(f"unexpected persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        if key not in self.storages:
            raw = self.archive.read(f"{self.prefix}data/{key}")
            values = torch.frombuffer(bytearray(raw), dtype=storage_type.dtype) if raw else \
                torch.empty(0, dtype=storage_type.dtype)
            if values.numel() < numel:
                raise pickle.UnpicklingError(f"storage {key} holds {values.numel()} values, expected {numel}")
            self.storages[key] = values
        return self.storages[key]


def _walk(value, prefix: str, found: dict, seen: set):
    if isinstance(value, torch.Tensor):
        found[prefix] = value
    elif isinstance(value, _ScriptObject) and id(value) not in seen:
        seen.add(id(value))
        for name, attribute in value.__dict__.items():
            if isinstance(name, str) and not name.startswith("_"):
                _walk(attribute, f"{prefix}.{name}" if prefix else name, found, seen)


def read_torchscript_tensors(path) -> Mapping:
    """Every tensor attribute of the module pickled in a TorchScript archive, by dotted path.

    For the archives of traced or scripted modules (OpenAI's CLIP files among them) these are the
    entries of ``torch.jit.load(path).state_dict()``, with the same names, shapes, dtypes and
    values; no code of the archive is compiled or run (see the module docstring).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    dict of str to torch.Tensor
        CPU tensors (the archive's dtypes, e.g. ``float16``), in the order they were pickled.

    Raises
    ------
    ValueError
        Not a TorchScript archive, a big-endian one, or a pickle that names anything outside the
        allowlist (the message names the file and the reason).

    Examples
    --------
    >>> import tempfile, torch
    >>> from pathlib import Path
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "traced.pt"
    >>> import warnings
    >>> net = torch.nn.Sequential(torch.nn.Linear(3, 2))
    >>> with warnings.catch_warnings():  # torch.jit is deprecated, its archives are still around
    ...     warnings.simplefilter("ignore", DeprecationWarning)
    ...     torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3)).half(), path)
    >>> tensors = read_torchscript_tensors(path)
    >>> {name: (tuple(t.shape), t.dtype) for name, t in tensors.items()}
    {'0.weight': ((2, 3), torch.float16), '0.bias': ((2,), torch.float16)}
    >>> folder.cleanup()
    """
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            data_name = _data_pickle(names)
            if data_name is None or not any("/code/" in name for name in names):
                raise ValueError("not a TorchScript archive (no code/ and data.pkl under one folder)")
            prefix = data_name[: -len("data.pkl")]
            if f"{prefix}byteorder" in names and archive.read(f"{prefix}byteorder").strip() != b"little":
                raise ValueError("a big-endian archive")
            root = _SafeUnpickler(archive.read(data_name), archive, prefix).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, KeyError, EOFError, ValueError, TypeError) as exc:
        raise ValueError(f"weights: could not read '{path}' as a TorchScript archive ({exc}); if you trust "
                         "the file, torch.save(torch.jit.load(path, map_location='cpu').state_dict(), ...) "
                         "and pass that file") from None
    found: dict = {}
    _walk(root, "", found, set())
    return found
