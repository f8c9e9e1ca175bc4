"""Weight files of the feature extractors: where they are, whether they hold the right bytes, download.

A network whose published numbers depend on one exact weight file (the FID InceptionV3, and the
DINOv2 and CLIP extractors after it) describes that file with a :class:`WeightsSpec`, and
:func:`resolve_weights` finds it, in this order:

1. the ``weights=`` argument, a path: used as is (not hashed, so that converted copies work;
   the extractor checks the layout when it loads the file);
2. the spec's environment variable (e.g. ``OTMETRICS_INCEPTION_WEIGHTS``), a path, used as is;
3. the caches (:func:`cached_paths`): the otmetrics cache (:func:`weights_cache_dir`), torch
   hub's ``checkpoints`` folder under the spec's file name and its aliases (where pytorch-fid and
   torch-fidelity put the same bytes), and the folder of otmetrics 0.1. A cached copy
   is used only if its full SHA-256 is the spec's; one that fails is skipped with a warning when
   a later one passes, and when copies exist but none passes the error names each with its digest;
4. a download from the spec's address into the otmetrics cache, checked against the full SHA-256
   before it enters the cache.

The cache is torch hub's, ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``,
by default ``~/.cache/torch/hub/checkpoints``; ``torch.hub.set_dir`` moves it), so a file that
pytorch-fid, torch-fidelity or ``torch.hub.load_state_dict_from_url`` downloaded is found and
reused. ``$OTMETRICS_CACHE_DIR``, when set, replaces it as the folder to look in first and to
download into (torch hub's folder is still searched after it).

What comes from torch and what is ours:

- The download goes through ``torch.hub.download_url_to_file``: a temporary file beside the
  target, the SHA-256 computed on the way (we pass the full digest as the ``hash_prefix``, which
  torch compares as a prefix, so the whole digest is checked), a move into place only when it
  matches, the temporary file deleted on any failure, and its progress bar. Ours around it: the
  address is parsed first, because torch creates its temporary file before it parses the address
  and leaves it behind when that fails; errors are re-raised with a message that names the file
  and says how to get it by hand. torch's download takes no timeout argument: ours
  (``timeout=``, 60 s by default) is the socket default timeout, set for the duration of the download
  (it is process-wide, so sockets other threads open meanwhile get it too) and restored afterwards,
  so that a stalled server raises an error instead of hanging forever.
- Checking files already in the cache is ours: ``torch.hub.load_state_dict_from_url`` trusts a
  cached file without hashing it. A file that passes is recorded (:mod:`.digests`), so that the check
  costs its 95 MB read once per file, not at each construction: about 55 ms to hash the FID file on
  the 2-core benchmark machine, well under 1 ms to check its record.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import socket
import threading
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from ..._core.validation import validate_positive
from ..._core.warnings import OTMetricsWarning
from .digests import HEX_DIGEST, RECORD_SUFFIX, file_digest, record_digest, sha256_file

__all__ = [
    "CACHE_ENV",
    "RECORD_SUFFIX",
    "WeightsSpec",
    "WeightsNotFoundError",
    "weights_cache_dir",
    "cached_paths",
    "resolve_weights",
    "download_weights",
    "sha256_file",
]

#: The environment variable that replaces torch hub's folder as the otmetrics weight cache.
CACHE_ENV = "OTMETRICS_CACHE_DIR"
#: The suffix of the record a verified cached file gets (``<file>.sha256``, a small JSON object).


@dataclass(frozen=True)
class WeightsSpec:
    """One published weight file: its name, where to download it, its digest, how to override it.

    Parameters
    ----------
    name : str
        What messages call the weights, e.g. ``"FID Inception weights"``.
    filename : str
        The file's name in the caches (torch hub's convention: ``name-<first hex digits of the
        SHA-256>.ext``).
    url : str
        The address to download it from.
    sha256 : str
        The full hexadecimal SHA-256 of the file (64 digits).
    env : str, optional
        An environment variable that may hold the path of the file (step 2 of the lookup).
    url_env : str, optional
        An environment variable that may replace ``url``, e.g. with an internal mirror.
    aliases : tuple of str, default ()
        Other names of the same bytes in torch hub's cache (other projects' downloads).
    search_dirs : tuple of str, default ()
        Other folders where other projects keep the same bytes under ``filename`` (e.g. OpenAI
        CLIP's ``~/.cache/clip``), searched after torch hub's; ``~`` is expanded at each lookup.
    size : int, optional
        The file's size in bytes, quoted in messages.
    cli_option : str, optional
        The command-line option that passes the file, quoted in messages.

    Raises
    ------
    ValueError
        ``sha256`` is not 64 lower-case hexadecimal digits, or ``filename`` is empty or has a
        folder part.

    Examples
    --------
    >>> spec = WeightsSpec("demo weights", "demo-ba7816bf.bin", "https://example.org/demo-ba7816bf.bin",
    ...                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
    ...                    env="DEMO_WEIGHTS")
    >>> spec.filename
    'demo-ba7816bf.bin'
    """

    name: str
    filename: str
    url: str
    sha256: str
    env: str | None = None
    url_env: str | None = None
    aliases: tuple[str, ...] = ()
    size: int | None = None
    cli_option: str | None = None
    search_dirs: tuple[str, ...] = ()

    def __post_init__(self):
        if not isinstance(self.sha256, str) or not HEX_DIGEST.match(self.sha256):
            raise ValueError(f"sha256: expected 64 lower-case hexadecimal digits, got {self.sha256!r}")
        for name in (self.filename, *self.aliases):
            if not name or Path(name).name != name:
                raise ValueError(f"filename: expected a file name without a folder, got {name!r}")


class WeightsNotFoundError(ValueError, FileNotFoundError):
    """A weight file is not where an argument or an environment variable says, or nowhere to be
    found with downloading off.

    A ``ValueError`` whose message starts with the argument's (or the variable's) name, as every
    bad input in otmetrics, and a ``FileNotFoundError``, so that ``except FileNotFoundError`` (or
    ``OSError``) keeps working.

    Examples
    --------
    >>> issubclass(WeightsNotFoundError, ValueError), issubclass(WeightsNotFoundError, FileNotFoundError)
    (True, True)
    """


# ----------------------------------------------------------------------------------------------
# Where files are
# ----------------------------------------------------------------------------------------------
def weights_cache_dir() -> Path:
    """The folder otmetrics downloads weights into and looks in first.

    ``$OTMETRICS_CACHE_DIR`` when it is set and not empty, else torch hub's
    ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME/hub/checkpoints``, by default
    ``~/.cache/torch/hub/checkpoints``). Read at each call; the folder is not created.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"OTMETRICS_CACHE_DIR": "/data/cache"}):
    ...     weights_cache_dir().as_posix()
    '/data/cache'
    >>> with mock.patch.dict(os.environ, {"OTMETRICS_CACHE_DIR": "", "TORCH_HOME": "/th"}), \\
    ...         mock.patch("torch.hub._hub_dir", None):
    ...     weights_cache_dir().as_posix()
    '/th/hub/checkpoints'
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return _hub_checkpoints()


def _hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()).expanduser() / "checkpoints"


def _legacy_cache_dir() -> Path:
    # Where otmetrics 0.1 downloaded weights: searched, never written.
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")).expanduser() / "otmetrics"


def cached_paths(spec: WeightsSpec) -> list[Path]:
    """The places :func:`resolve_weights` looks for a cached copy of ``spec``'s file, in order.

    :func:`weights_cache_dir`; torch hub's ``checkpoints`` folder, under the file's name and then
    its aliases; the spec's ``search_dirs``; the folder otmetrics 0.1 downloaded into
    (``$OTMETRICS_CACHE_DIR`` when set, as now, else ``$XDG_CACHE_HOME/otmetrics``, by default
    ``~/.cache/otmetrics``), so that an earlier download is not repeated. Duplicates are listed
    once; the paths need not exist.

    Parameters
    ----------
    spec : WeightsSpec

    Returns
    -------
    list of pathlib.Path

    Examples
    --------
    >>> import os
    >>> from unittest import mock
    >>> spec = WeightsSpec("demo", "demo-ba7816bf.bin", "https://example.org/demo-ba7816bf.bin",
    ...                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    >>> with mock.patch.dict(os.environ, {"OTMETRICS_CACHE_DIR": "/data", "TORCH_HOME": "/th"}), \\
    ...         mock.patch("torch.hub._hub_dir", None):
    ...     [p.as_posix() for p in cached_paths(spec)]
    ['/data/demo-ba7816bf.bin', '/th/hub/checkpoints/demo-ba7816bf.bin']
    """
    hub = _hub_checkpoints()
    candidates = [weights_cache_dir() / spec.filename, hub / spec.filename,
                  *(hub / alias for alias in spec.aliases),
                  *(Path(folder).expanduser() / spec.filename for folder in spec.search_dirs),
                  _legacy_cache_dir() / spec.filename]
    return list(dict.fromkeys(candidates))


def _how_to_get(spec: WeightsSpec) -> str:
    target = weights_cache_dir() / spec.filename
    size = f", {spec.size / 1e6:.1f} MB" if spec.size else ""
    cli = f" (command line: {spec.cli_option} PATH)" if spec.cli_option else ""
    env = f", or set {spec.env}=PATH" if spec.env else ""
    return (f"get the file ({spec.filename}{size}, SHA-256 {spec.sha256}) with "
            f"`curl -L --create-dirs -o {target} {spec.url}`, or pass weights=PATH{cli}{env}")


def _verified_cached_copy(spec: WeightsSpec) -> Path | None:
    """The first cached copy whose SHA-256 is the spec's; ``None`` when there is no copy."""
    rejected = []
    for candidate in cached_paths(spec):
        if not candidate.is_file():
            continue
        digest, identity, recorded = file_digest(candidate)
        if digest == spec.sha256:
            if not recorded and identity is not None:
                record_digest(candidate, identity, digest)
            for path, bad in rejected:
                warnings.warn(f"the cached {spec.name} '{path}' fail the SHA-256 check ({bad}, expected "
                              f"{spec.sha256}); using '{candidate}' instead. Delete the bad copy.",
                              OTMetricsWarning, stacklevel=4)
            return candidate
        rejected.append((candidate, digest))
    if rejected:
        copies = "; ".join(f"'{path}' has SHA-256 {digest}" for path, digest in rejected)
        raise RuntimeError(f"no cached copy of the {spec.name} passes the SHA-256 check (expected "
                           f"{spec.sha256}): {copies}; delete these files and retry, or pass weights=PATH")
    return None


# ----------------------------------------------------------------------------------------------
# Lookup and download
# ----------------------------------------------------------------------------------------------
def resolve_weights(spec: WeightsSpec, weights=None, *, download: bool = True, progress: bool = True) -> Path:
    """The path of ``spec``'s weight file: argument, environment variable, caches, then download.

    Parameters
    ----------
    spec : WeightsSpec
        The file.
    weights : str or os.PathLike, optional
        An explicit file: returned as is (not hashed, so that converted copies, e.g. in float64,
        work; the caller checks what it loads).
    download : bool, default True
        Allow the download when nothing is found.
    progress : bool, default True
        A progress bar on stderr during a download.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    WeightsNotFoundError
        An explicit path (argument or ``spec.env``) does not exist, or nothing was found and
        downloading is off; the message says how to get the file. A ``ValueError`` and a
        ``FileNotFoundError``.
    ValueError
        ``weights`` is not a path.
    RuntimeError
        Copies were found in the caches but none passes the SHA-256 check (each one is named);
        a download fails or fails the check.

    Warns
    -----
    OTMetricsWarning
        A cached copy failed the SHA-256 check and a later one passed it (the bad copy is named).

    Examples
    --------
    >>> import hashlib, os, tempfile
    >>> from pathlib import Path
    >>> from unittest import mock
    >>> folder = tempfile.TemporaryDirectory()
    >>> cached = Path(folder.name) / "demo-ba7816bf.bin"
    >>> _ = cached.write_bytes(b"abc")
    >>> spec = WeightsSpec("demo weights", cached.name, "https://example.org/" + cached.name,
    ...                    hashlib.sha256(b"abc").hexdigest())
    >>> with mock.patch.dict(os.environ, {"OTMETRICS_CACHE_DIR": folder.name}):
    ...     resolve_weights(spec, download=False) == cached  # the cached copy, verified
    True
    >>> resolve_weights(spec, Path(folder.name) / "missing.bin")
    Traceback (most recent call last):
    ...
    otmetrics.generative.features.weights.WeightsNotFoundError: weights: no such file '...missing.bin'
    >>> folder.cleanup()
    """
    if weights is not None:
        if not isinstance(weights, (str, os.PathLike)):
            raise ValueError(f"weights: expected a path (str or os.PathLike), got {type(weights).__name__}")
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"weights: no such file '{path}'")
        return path
    env = os.environ.get(spec.env) if spec.env else None
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(f"{spec.env}: no such file '{path}'")
        return path
    cached = _verified_cached_copy(spec)
    if cached is not None:
        return cached
    if not download:
        unset = f", {spec.env} unset" if spec.env else ""
        raise WeightsNotFoundError(f"weights: not given{unset} and no {spec.name} in the caches, and "
                                   "download=False; " + _how_to_get(spec))
    return download_weights(spec, progress=progress)


def _expected_sha256(spec: WeightsSpec, url: str, sha256: str | None) -> str:
    if sha256 is not None:
        return sha256.lower()
    name = url.rstrip("/").rsplit("/", 1)[-1]
    if name == spec.filename:
        return spec.sha256
    match = re.search(r"-([a-f0-9]{8,})\.", name)  # torch hub's convention, at least 8 digits
    if match is None:
        raise ValueError(f"sha256: required for '{url}' (its name carries no hash prefix)")
    return match.group(1)


_TIMEOUT_LOCK = threading.Lock()


@contextlib.contextmanager
def _socket_timeout(seconds: float | None):
    """The socket default timeout set to ``seconds`` for the body, then restored (one body at a time)."""
    with _TIMEOUT_LOCK:
        previous = socket.getdefaulttimeout()
        socket.setdefaulttimeout(seconds)
        try:
            yield
        finally:
            socket.setdefaulttimeout(previous)


def download_weights(spec: WeightsSpec, url: str | None = None, *, cache_dir=None,
                     filename: str | None = None, sha256: str | None = None, progress: bool = True,
                     timeout: float | None = 60.0) -> Path:
    """Download ``spec``'s weight file with ``torch.hub``, verify its SHA-256, return its path.

    ``torch.hub.download_url_to_file`` streams the file to a temporary name beside the target,
    hashes it on the way, and moves it into place only if the digest matches, so the cache never
    holds a partial or corrupted file (concurrent downloads from several processes are safe).

    Parameters
    ----------
    spec : WeightsSpec
    url : str, optional
        Default ``$<spec.url_env>`` when set, else ``spec.url``. Any address ``urllib`` opens,
        ``file://`` included.
    cache_dir : str or os.PathLike, optional
        Default :func:`weights_cache_dir`; created if missing.
    filename : str, optional
        The name of the file in ``cache_dir``; default ``spec.filename``.
    sha256 : str, optional
        The expected digest, the full hex digest or a prefix of it. Default: ``spec.sha256`` when
        the address ends with ``spec.filename``, else the hex prefix in the address's file name
        (``name-<hex>.ext``, at least 8 digits: torch hub's convention).
    progress : bool, default True
        A progress bar on stderr.

    Returns
    -------
    pathlib.Path
        ``cache_dir / filename``, verified.

    Raises
    ------
    RuntimeError
        The download failed (the message says how to get the file by hand), or the digest differs
        (the partial file is deleted).
    ValueError
        No ``sha256`` given and none can be inferred from the address.

    Examples
    --------
    A mirror on a shared drive (a small stand-in file, so that the example runs offline):

    >>> import hashlib, tempfile
    >>> from pathlib import Path
    >>> folder = tempfile.TemporaryDirectory()
    >>> mirror = Path(folder.name) / "demo.bin"
    >>> _ = mirror.write_bytes(b"stand-in for a weight file")
    >>> spec = WeightsSpec("demo weights", "demo.bin", mirror.as_uri(),
    ...                    hashlib.sha256(mirror.read_bytes()).hexdigest())
    >>> path = download_weights(spec, cache_dir=Path(folder.name) / "cache", progress=False)
    >>> path.read_bytes() == mirror.read_bytes(), sorted(p.name for p in path.parent.iterdir())
    (True, ['demo.bin'])
    >>> folder.cleanup()
    """
    if url is None:
        url = (os.environ.get(spec.url_env) if spec.url_env else None) or spec.url
    expected = _expected_sha256(spec, url, sha256)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else weights_cache_dir()
    target = folder / (filename or spec.filename)

    def failed(reason) -> RuntimeError:
        return RuntimeError(f"could not download the {spec.name} from {url} ({reason}); " + _how_to_get(spec))

    try:  # torch.hub opens its temporary file before it parses the address: parse it first
        urllib.request.Request(url)
    except ValueError as exc:
        raise failed(exc) from None
    if timeout is not None:
        validate_positive(timeout, "timeout")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with _socket_timeout(timeout):
            torch.hub.download_url_to_file(url, os.fspath(target), hash_prefix=expected, progress=progress)
    except RuntimeError as exc:
        if "hash" not in str(exc):
            raise failed(exc) from None
        found = re.search(r'got "([0-9a-f]+)"', str(exc))  # torch.hub: 'invalid hash value (... got "...")'
        actual = found.group(1) if found else "(see below)"
        raise RuntimeError(f"checksum mismatch for the download from {url}: SHA-256 {actual}, expected "
                           f"{expected}; the file was discarded (a corrupted download or a different file at "
                           "that address)") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:  # URLError, HTTPError, timeouts
        raise failed(getattr(exc, "reason", exc)) from None
    return target
