"""The FID weight file: its address, digest and names, and where to find it.

pytorch-fid converted the InceptionV3 graph of TensorFlow's original FID code to a PyTorch state
dict, ``pt_inception-2015-12-05-6726825d.pth`` (95.6 MB); torch-fidelity ships the same bytes
under another name. :data:`FID_WEIGHTS` describes that file for the generic lookup of
:mod:`otmetrics.generative.features.weights`, and the functions here are that lookup for it:

1. the ``weights=`` argument (a path);
2. the environment variable ``OTMETRICS_INCEPTION_WEIGHTS`` (a path);
3. the caches: ``$OTMETRICS_CACHE_DIR`` when set, torch hub's ``checkpoints`` folder (where
   pytorch-fid and torch-fidelity put the file), and otmetrics 0.1's ``~/.cache/otmetrics``;
   a cached copy is verified by its full SHA-256, once per file (then recorded beside it);
4. a download through ``torch.hub`` from pytorch-fid's release (``$OTMETRICS_INCEPTION_URL``
   replaces the address, e.g. with a mirror), verified by SHA-256 before it enters the cache.

:class:`~otmetrics.FIDInceptionV3` reads and checks what these functions find.
"""

from __future__ import annotations

from pathlib import Path

from .weights import WeightsSpec, download_weights, resolve_weights, weights_cache_dir

__all__ = [
    "FID_WEIGHTS",
    "FID_WEIGHTS_URL",
    "FID_WEIGHTS_FILENAME",
    "FID_WEIGHTS_SHA256",
    "WEIGHTS_ENV",
    "URL_ENV",
    "inception_cache_dir",
    "resolve_inception_weights",
    "download_inception_weights",
]

#: pytorch-fid's release of the converted TensorFlow FID graph (the address everyone downloads).
FID_WEIGHTS_URL = ("https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                   "pt_inception-2015-12-05-6726825d.pth")
#: The file's name; ``6726825d`` is the first 8 hex digits of its SHA-256 (the torch hub convention).
FID_WEIGHTS_FILENAME = "pt_inception-2015-12-05-6726825d.pth"
#: The full SHA-256 digest of that file (95,628,359 bytes), as published alongside the file by
#: several independent projects that pin it; its prefix matches the file name.
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
#: The environment variable that may hold the path of the file.
WEIGHTS_ENV = "OTMETRICS_INCEPTION_WEIGHTS"
#: The environment variable that may replace :data:`FID_WEIGHTS_URL` (a mirror).
URL_ENV = "OTMETRICS_INCEPTION_URL"

#: The FID weight file for :func:`~otmetrics.generative.features.weights.resolve_weights`;
#: torch hub's cache is also searched under torch-fidelity's name for the same bytes.
FID_WEIGHTS = WeightsSpec(
    name="FID Inception weights", filename=FID_WEIGHTS_FILENAME, url=FID_WEIGHTS_URL,
    sha256=FID_WEIGHTS_SHA256, env=WEIGHTS_ENV, url_env=URL_ENV,
    aliases=("weights-inception-2015-12-05-6726825d.pth",), size=95_628_359, cli_option="--weights")


def inception_cache_dir() -> Path:
    """Where the FID weights are downloaded to and looked for first.

    :func:`~otmetrics.generative.features.weights.weights_cache_dir`: ``$OTMETRICS_CACHE_DIR``
    when set, else torch hub's ``torch.hub.get_dir()/checkpoints``, where pytorch-fid puts the
    same file. Read at each call; the folder is not created.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> from otmetrics.generative.features.weights import weights_cache_dir
    >>> inception_cache_dir() == weights_cache_dir()
    True
    """
    return weights_cache_dir()


def resolve_inception_weights(weights=None, *, download: bool = True, progress: bool = True) -> Path:
    """The path of the FID weight file: argument, environment variable, caches, then download.

    :func:`~otmetrics.generative.features.weights.resolve_weights` for :data:`FID_WEIGHTS`.

    Parameters
    ----------
    weights : str or os.PathLike, optional
        An explicit file: used as is (its layout is checked when loaded, not its hash, so that
        converted copies, e.g. in float64, work).
    download : bool, default True
        Allow the download when nothing is found.
    progress : bool, default True
        A progress bar during a download.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    WeightsNotFoundError
        An explicit path (argument or ``$OTMETRICS_INCEPTION_WEIGHTS``) does not exist, or nothing
        was found and downloading is off; the message says how to get the file. It is a
        ``ValueError`` and a ``FileNotFoundError``.
    RuntimeError
        Copies were found in the caches but none passes the SHA-256 check (each one is named);
        a download fails or fails the check.

    Warns
    -----
    OTMetricsWarning
        A cached copy failed the SHA-256 check and a later one passed it (the bad copy is named).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = Path(folder.name) / "my-weights.pth"
    >>> _ = path.write_bytes(b"...")  # an explicit file is returned as is; loading checks its layout
    >>> resolve_inception_weights(path) == path
    True
    >>> resolve_inception_weights(path.with_name("missing.pth"))
    Traceback (most recent call last):
    ...
    otmetrics.generative.features.weights.WeightsNotFoundError: weights: no such file '...missing.pth'
    >>> folder.cleanup()
    """
    return resolve_weights(FID_WEIGHTS, weights, download=download, progress=progress)


def download_inception_weights(url: str | None = None, *, cache_dir=None, sha256: str | None = None,
                               filename: str = FID_WEIGHTS_FILENAME, progress: bool = True,
                               timeout: float | None = 60.0) -> Path:
    """Download the FID weights with ``torch.hub``, verify their SHA-256, and return the path.

    :func:`~otmetrics.generative.features.weights.download_weights` for :data:`FID_WEIGHTS`: the
    file is streamed to a temporary name beside the target, hashed on the way, and moved into
    place only if the digest matches, so the cache never holds a partial or corrupted file
    (concurrent downloads from several processes are safe).

    Parameters
    ----------
    url : str, optional
        Default ``$OTMETRICS_INCEPTION_URL`` or :data:`FID_WEIGHTS_URL`.
    cache_dir : path, optional
        Default :func:`inception_cache_dir`.
    sha256 : str, optional
        The expected digest: the full hex digest, or a prefix of it. Default: the full digest of
        the FID file when the URL ends with its name, else the hex prefix in the file name
        (``name-<hex>.ext``, the torch hub convention).
    filename : str
        The name of the file in the cache.
    progress : bool, default True
        A progress bar on stderr.
    timeout : float or None, default 60
        Seconds a blocking network operation may wait before the download fails (``None``: no
        limit); see :func:`~otmetrics.generative.features.weights.download_weights`.

    Returns
    -------
    pathlib.Path
        ``cache_dir / filename``, verified.

    Raises
    ------
    RuntimeError
        The download failed, or the digest differs (the partial file is deleted).
    ValueError
        No ``sha256`` given and none can be inferred from the address.

    Examples
    --------
    Any address ``urllib`` opens works, e.g. a mirror on a shared drive (here a small stand-in
    file, so that the example runs offline):

    >>> import hashlib, tempfile
    >>> from pathlib import Path
    >>> folder = tempfile.TemporaryDirectory()
    >>> mirror = Path(folder.name) / "mirror" / "weights.pth"
    >>> mirror.parent.mkdir()
    >>> _ = mirror.write_bytes(b"stand-in for the 95 MB file")
    >>> digest = hashlib.sha256(mirror.read_bytes()).hexdigest()
    >>> cache = Path(folder.name) / "cache"
    >>> path = download_inception_weights(mirror.as_uri(), cache_dir=cache, sha256=digest,
    ...                                   filename="weights.pth", progress=False)
    >>> path == cache / "weights.pth", path.read_bytes() == mirror.read_bytes()
    (True, True)
    >>> download_inception_weights(mirror.as_uri(), cache_dir=cache, sha256="0" * 64,
    ...                            filename="weights.pth", progress=False)
    Traceback (most recent call last):
    ...
    RuntimeError: checksum mismatch for the download from file://...; the file was discarded (...)
    >>> sorted(p.name for p in cache.iterdir())  # nothing partial left behind
    ['weights.pth']
    >>> folder.cleanup()
    """
    return download_weights(FID_WEIGHTS, url, cache_dir=cache_dir, filename=filename, sha256=sha256,
                            progress=progress, timeout=timeout)
