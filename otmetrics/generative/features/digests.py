"""SHA-256 digests of weight files, computed once per file and recorded.

Checking a cached weight file against its published SHA-256 reads the whole file (about 55 ms for
the 95 MB FID file on the 2-core benchmark machine). So that it costs that once per file and not at
each construction of a network, :func:`file_digest` looks in this process's memo, then in a sidecar
record ``<file>.sha256`` (the digest, the file's size, ``mtime_ns`` and inode), and hashes the file
only when neither matches the file as it is now; :func:`record_digest` writes the record once the
digest has been checked against the expected one (an unverified digest is never recorded).

A file modified less than 2 s before it is hashed gets no record (a change within the same tick of
the file system's clock would keep its modification time; git calls such entries "racily clean"), so
a fresh download is hashed once more, at its first lookup. A file rewritten in place with the same
size and its old modification time restored on purpose is not detected; whoever can do that can
rewrite the record too. :func:`sha256_file` is a plain chunked loop: ``hashlib.file_digest`` is as
fast (measured) but needs Python 3.11, and otmetrics supports 3.10.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path

__all__ = ["HEX_DIGEST", "RECORD_SUFFIX", "sha256_file", "file_digest", "record_digest", "forget_digests"]

#: The suffix of a digest record: ``<file>.sha256`` beside ``<file>``.
RECORD_SUFFIX = ".sha256"
#: A full SHA-256 digest as written: 64 lower-case hexadecimal digits.
HEX_DIGEST = re.compile(r"^[0-9a-f]{64}$")


def sha256_file(path, chunk_size: int = 1 << 20) -> str:
    """The hexadecimal SHA-256 digest of a file, read in chunks of ``chunk_size`` bytes.

    Always reads the whole file (about 55 ms for 95 MB on the benchmark machine); the lookup of
    :func:`resolve_weights` hashes each cached file once and records the result.

    Parameters
    ----------
    path : str or os.PathLike
    chunk_size : int, default 1 MiB

    Returns
    -------
    str
        64 lower-case hexadecimal digits.

    Raises
    ------
    OSError
        The file cannot be read.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "abc.txt"
    >>> _ = path.write_bytes(b"abc")
    >>> sha256_file(path)
    'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
    >>> folder.cleanup()
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: How long ago a file must have been modified for its digest to be kept (covers the timestamp
#: granularity of common file systems, 2 s on FAT).
_SETTLED_NS = 2_000_000_000
#: This process's digests: absolute path -> (size, mtime_ns, inode), digest, whether recorded.
_DIGESTS: dict[str, tuple[tuple[int, int, int], str, bool]] = {}


def _identity(path) -> tuple[int, int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns, stat.st_ino


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + RECORD_SUFFIX)


def _read_record(path: Path, identity: tuple[int, int, int]) -> str | None:
    try:
        record = json.loads(_record_path(path).read_text(encoding="utf-8"))
        size, mtime_ns, inode, digest = (record[k] for k in ("size", "mtime_ns", "inode", "sha256"))
    except (OSError, ValueError, TypeError, KeyError):  # no record, unreadable, not ours
        return None
    if (size, mtime_ns, inode) != identity or not isinstance(digest, str) or not HEX_DIGEST.match(digest):
        return None
    return digest


def record_digest(path: Path, identity: tuple[int, int, int], digest: str) -> None:
    """Record a verified digest beside the file (``<file>.sha256``) and in this process's memo."""
    record = {"sha256": digest, "size": identity[0], "mtime_ns": identity[1], "inode": identity[2],
              "file": path.name}
    try:  # a reader that sees a half-written record rejects it and hashes the file instead
        _record_path(path).write_text(json.dumps(record) + "\n", encoding="utf-8")
    except OSError:  # a read-only cache: the in-process memo still serves this process
        return
    _DIGESTS[os.path.abspath(path)] = (identity, digest, True)


def file_digest(path: Path) -> tuple[str, tuple[int, int, int] | None, bool]:
    """``(digest, identity, recorded)`` of a file: from this process's memo, its record, or hashing.

    ``identity`` is ``None`` when the digest must not be kept: the file changed while it was
    hashed, or it was modified too recently for its modification time to tell a later change
    (a write within the same tick of the file system's clock gets the same ``mtime_ns``; git
    calls such entries "racily clean"). Such a file is hashed again at the next lookup.
    """
    key = os.path.abspath(path)
    now = time.time_ns()
    identity = _identity(path)
    known = _DIGESTS.get(key)
    if known is not None and known[0] == identity:
        return known[1], identity, known[2]
    digest = _read_record(path, identity)
    if digest is not None:
        _DIGESTS[key] = (identity, digest, True)
        return digest, identity, True
    digest = sha256_file(path)
    if _identity(path) != identity or identity[1] > now - _SETTLED_NS:
        return digest, None, False
    _DIGESTS[key] = (identity, digest, False)
    return digest, identity, False


def forget_digests() -> None:
    """Empty this process's memo of digests (the records on disk stay): the state of a new process.

    Examples
    --------
    >>> forget_digests()
    """
    _DIGESTS.clear()
