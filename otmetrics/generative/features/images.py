"""Image files -> batches -> features: the input side of FID, KID and the Inception Score.

Images are found recursively (PNG, JPEG and the other formats pytorch-fid reads), sorted by path so
that runs are reproducible, decoded with Pillow to 8-bit RGB (as pytorch-fid and torch-fidelity do:
grey and palette images are converted, an alpha channel is dropped), batched, moved to the chosen
device and passed through a feature extractor: :class:`~otmetrics.FIDInceptionV3` by
default, or any ``torch.nn.Module``. A file that cannot be decoded stops the run with an error
naming it; nothing is skipped silently.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from ..._core.arrays import describe

__all__ = [
    "IMAGE_EXTENSIONS",
    "list_images",
    "read_image",
    "resolve_device",
    "iter_image_batches",
    "iter_image_features",
    "image_features",
]

#: File extensions read as images (lower case; matching ignores case).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


def list_images(path, *, recursive: bool = True) -> list[Path]:
    """The image files under a folder, sorted; a single image file gives a one-element list.

    Parameters
    ----------
    path : str or os.PathLike
        A folder (searched recursively unless ``recursive=False``) or one image file.

    Raises
    ------
    ValueError
        ``path`` does not exist, or holds no file with an extension of :data:`IMAGE_EXTENSIONS`.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(f"{folder}/a.png")
    >>> [p.name for p in list_images(folder)]
    ['a.png']
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise ValueError(f"path: no such file or folder '{root}'")
    if root.is_file():
        if root.suffix.lower() not in IMAGE_EXTENSIONS:
            raise ValueError(f"path: '{root}' is not an image file (extensions: "
                             f"{', '.join(IMAGE_EXTENSIONS)})")
        return [root]
    pattern = root.rglob("*") if recursive else root.glob("*")
    files = sorted(p for p in pattern if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        where = "under" if recursive else "in"
        raise ValueError(f"path: no image files ({', '.join(e[1:] for e in IMAGE_EXTENSIONS)}) {where} "
                         f"'{root}'")
    return files


def read_image(path) -> np.ndarray:
    """Decode one image file to an ``(H, W, 3)`` ``uint8`` RGB array.

    Grey and palette images are converted to RGB and an alpha channel is dropped, as pytorch-fid
    and torch-fidelity do.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    numpy.ndarray, shape (H, W, 3), uint8

    Raises
    ------
    ValueError
        Pillow cannot decode the file (missing, not an image, truncated, ...); the message names
        the argument and the file.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> folder = tempfile.TemporaryDirectory()
    >>> grey = Path(folder.name) / "grey.png"
    >>> Image.fromarray(np.full((4, 6), 200, np.uint8)).save(grey)  # one channel
    >>> pixels = read_image(grey)
    >>> pixels.shape, pixels.dtype, pixels[0, 0]
    ((4, 6, 3), dtype('uint8'), array([200, 200, 200], dtype=uint8))
    >>> _ = (Path(folder.name) / "broken.png").write_bytes(b"not a png")
    >>> read_image(Path(folder.name) / "broken.png")
    Traceback (most recent call last):
    ...
    ValueError: path: could not read image '...broken.png': cannot identify image file ...
    >>> folder.cleanup()
    """
    return _decode(path, "path")


def _decode(path, name: str) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"), dtype=np.uint8)
    except Exception as exc:
        message = str(exc).strip() or type(exc).__name__
        raise ValueError(f"{name}: could not read image '{path}': {message}") from None


def resolve_device(device=None) -> torch.device:
    """The ``torch.device`` to compute on: ``None`` gives ``cuda`` when available, else ``cpu``.

    Parameters
    ----------
    device : str, torch.device or None

    Returns
    -------
    torch.device

    Raises
    ------
    ValueError
        Not a device name, or a device this machine does not have (CUDA or MPS unavailable, a
        CUDA index past the last GPU).

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("gpu")
    Traceback (most recent call last):
    ...
    ValueError: device: not a torch device, got 'gpu' (...)
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device: not a torch device, got {device!r} ({exc})") from None
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device: CUDA is not available on this machine, got {device!r}")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device: this machine has {torch.cuda.device_count()} CUDA device(s), "
                             f"got {device!r}")
    elif resolved.type == "mps" and not (hasattr(torch.backends, "mps")
                                         and torch.backends.mps.is_available()):
        raise ValueError(f"device: MPS is not available on this machine, got {device!r}")
    return resolved


class _ImageFiles(torch.utils.data.Dataset):
    """Decodes files; failures travel back as messages so that the main process names the file."""

    def __init__(self, files: Sequence[Path]):
        self.files = list(files)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, index):
        try:
            return _decode(self.files[index], "source"), None
        except ValueError as exc:
            return None, str(exc)


def _keep_list(items):
    return items


def _as_files(source) -> list[Path]:
    if isinstance(source, (str, os.PathLike)):
        return list_images(source)
    if isinstance(source, Sequence) and len(source) > 0:
        files = [Path(p) for p in source]
        missing = [p for p in files if not p.is_file()]
        if missing:
            raise ValueError(f"source: no such file '{missing[0]}'")
        return files
    raise ValueError(f"source: expected a folder, an image file or a non-empty list of files, got {source!r}")


def iter_image_batches(source, *, batch_size: int = 50, num_workers: int = 0,
                       pin_memory: bool = False) -> Iterator[tuple[list[torch.Tensor], list[Path]]]:
    """Yield ``(images, files)`` per batch: ``images`` a list of ``(3, H, W)`` ``uint8`` tensors.

    Images in one batch may have different sizes; :func:`iter_image_features` groups them.

    Parameters
    ----------
    source : str, os.PathLike or sequence of paths
        An image folder (searched recursively, sorted by path), one image file, or a list of files.
    batch_size : int, default 50
    num_workers : int, default 0
        Processes decoding images (``torch.utils.data.DataLoader``); 0 decodes in this process.
    pin_memory : bool, default False
        Page-locked tensors, for faster copies to a GPU.

    Yields
    ------
    images : list of torch.Tensor, each (3, H, W), uint8
    files : list of pathlib.Path, the files of ``images`` in the same order

    Raises
    ------
    ValueError
        Bad arguments (at the call, before any file is decoded), or, while iterating, a file that
        cannot be decoded (named).

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> folder = tempfile.TemporaryDirectory()
    >>> for i, size in enumerate([(8, 8), (8, 8), (5, 7)]):
    ...     Image.fromarray(np.zeros((*size, 3), np.uint8)).save(Path(folder.name) / f"{i}.png")
    >>> for images, files in iter_image_batches(folder.name, batch_size=2):
    ...     print([tuple(image.shape) for image in images], [f.name for f in files])
    [(3, 8, 8), (3, 8, 8)] ['0.png', '1.png']
    [(3, 5, 7)] ['2.png']
    >>> folder.cleanup()
    """
    files = _as_files(source)
    _check_int(batch_size, "batch_size", 1)
    _check_int(num_workers, "num_workers", 0)
    return _generate_batches(files, batch_size, num_workers, pin_memory)


def _generate_batches(files, batch_size, num_workers, pin_memory):
    loader = torch.utils.data.DataLoader(_ImageFiles(files), batch_size=batch_size, shuffle=False,
                                         num_workers=num_workers, collate_fn=_keep_list,
                                         pin_memory=False)
    start = 0
    for items in loader:
        batch_files = files[start:start + len(items)]
        start += len(items)
        images = []
        for array, error in items:
            if error is not None:
                raise ValueError(error)
            tensor = torch.from_numpy(array).permute(2, 0, 1)
            images.append(tensor.pin_memory() if pin_memory else tensor)
        yield images, batch_files


def _default_preprocess(model) -> Callable[[torch.Tensor], torch.Tensor]:
    if getattr(model, "preprocesses_images", False) is True:
        return lambda x: x  # it takes uint8 and does its own resize and scaling
    return lambda x: x.float() / 255


def _flatten_output(out, files, name="model"):
    outputs = out if isinstance(out, (tuple, list)) else (out,)
    flat = []
    for value in outputs:
        if not isinstance(value, torch.Tensor) or value.ndim == 0 or value.shape[0] != len(files):
            raise ValueError(f"{name}: must return a tensor (or a tuple of tensors) with one row per image, "
                             f"got {describe(value)} for a batch of {len(files)}")
        value = value.detach().reshape(value.shape[0], -1).to("cpu", torch.float64).numpy()
        bad = ~np.isfinite(value).all(axis=1)
        if bad.any():
            raise ValueError(f"{name}: non-finite features for image '{files[int(np.argmax(bad))]}'")
        flat.append(value)
    return tuple(flat) if isinstance(out, (tuple, list)) else flat[0]


def iter_image_features(source, model=None, *, batch_size: int = 50, device=None, num_workers: int = 0,
                        progress: bool = True, preprocess: Callable | None = None, weights=None,
                        output=None, desc: str | None = None):
    """Yield the features of the images in ``source``, one ``float64`` array ``(B, d)`` per batch.

    Memory stays at one batch: feed the batches to a streaming statistic (e.g.
    ``GaussianStats.update``) to handle any number of images. Arguments as in
    :func:`image_features` (they are checked at the call, before any image is decoded), and
    ``desc``, the label of the progress bar. When the model returns a tuple, each item is a tuple
    of arrays. The model runs under ``torch.inference_mode()``; the caller's own code between two
    batches runs in its own autograd mode.

    Examples
    --------
    >>> import tempfile, numpy as np
    >>> from pathlib import Path
    >>> from PIL import Image
    >>> from otmetrics import GaussianStats
    >>> folder = tempfile.TemporaryDirectory()
    >>> for i in range(5):
    ...     Image.fromarray(np.full((8, 8, 3), 50 * i, np.uint8)).save(Path(folder.name) / f"{i}.png")
    >>> mean_colour = lambda x: x.mean(dim=(2, 3))  # any module or callable works
    >>> stats = GaussianStats()
    >>> for batch in iter_image_features(folder.name, mean_colour, batch_size=2, device="cpu",
    ...                                  progress=False):
    ...     _ = stats.update(batch)  # batches of 2, 2 and 1 rows, 3 features each
    >>> stats.n, stats.dim
    (5, 3)
    >>> folder.cleanup()
    """
    files = _as_files(source)
    _check_int(batch_size, "batch_size", 1)
    _check_int(num_workers, "num_workers", 0)
    device = resolve_device(device)
    from .inception import FIDInceptionV3

    if model is None:
        model = FIDInceptionV3(weights, output="pool3" if output is None else output, progress=progress)
        output = None
    elif weights is not None:
        raise ValueError(f"weights: only used to build the default model; got weights and a model "
                         f"({type(model).__name__})")
    elif not isinstance(model, torch.nn.Module) and not callable(model):
        raise ValueError(f"model: expected a torch.nn.Module or a callable, got {type(model).__name__}")
    elif output is not None and not isinstance(model, FIDInceptionV3):
        raise ValueError(f"output: selects an output of FIDInceptionV3, not of {type(model).__name__}; "
                         f"got {output!r}")
    if isinstance(model, torch.nn.Module):
        model = model.to(device).eval()
    transform = preprocess if preprocess is not None else _default_preprocess(model)
    if output is not None:
        model = functools.partial(model, output=FIDInceptionV3.validate_output(output))
    if desc is None:
        desc = str(source) if isinstance(source, (str, os.PathLike)) else "images"
    return _generate_features(files, model, transform, batch_size, device, num_workers, progress, desc)


def _generate_features(files, model, transform, batch_size, device, num_workers, progress, label):
    from tqdm.auto import tqdm

    with tqdm(total=len(files), unit="img", desc=label, disable=not progress, file=sys.stderr) as bar:
        batches = iter_image_batches(files, batch_size=batch_size, num_workers=num_workers,
                                     pin_memory=device.type == "cuda")
        for images, batch_files in batches:
            # inference mode around the model only: a generator that yielded inside it would
            # leave it (and autograd off) on in the caller's code until the next batch
            with torch.inference_mode():
                features = _features_of_batch(model, transform, images, batch_files, device)
            bar.update(len(images))
            yield features


def _features_of_batch(model, transform, images, files, device):
    # Run each group of equally sized images as one tensor; restore the file order afterwards.
    groups: dict[tuple[int, int], list[int]] = {}
    for index, image in enumerate(images):
        groups.setdefault(tuple(image.shape[1:]), []).append(index)
    pieces, order = [], []
    for indices in groups.values():
        batch = torch.stack([images[i] for i in indices]).to(device, non_blocking=True)
        pieces.append(_flatten_output(model(transform(batch)), [files[i] for i in indices]))
        order += indices
    inverse = np.argsort(order)
    if isinstance(pieces[0], tuple):
        return tuple(np.concatenate([p[k] for p in pieces])[inverse] for k in range(len(pieces[0])))
    return np.concatenate(pieces)[inverse]


def image_features(source, model=None, *, batch_size: int = 50, device=None, num_workers: int = 0,
                   progress: bool = True, preprocess: Callable | None = None, weights=None,
                   output=None):
    r"""Features of every image in a folder (recursively), as a ``float64`` array ``(N, d)``.

    Rows follow :func:`list_images` order (sorted paths). Images of different sizes may be mixed:
    each batch is split into groups of equal size (the default network resizes each image to
    299x299 anyway, so grouping does not change any value).

    Parameters
    ----------
    source : str, os.PathLike or sequence of paths
        An image folder, one image file, or a list of image files.
    model : torch.nn.Module or callable, optional
        The feature extractor; default :class:`~otmetrics.FIDInceptionV3` with
        ``weights``. Any module mapping a batch ``(B, 3, H, W)`` to ``(B, ...)`` works; its output
        is flattened to ``(B, d)``. A module returning a tuple gives a tuple of arrays.
    batch_size : int, default 50
    device : str or torch.device, optional
        Where the model runs; default ``cuda`` when available, else ``cpu``. The model is moved
        there (in place, as ``Module.to`` does).
    num_workers : int, default 0
        Processes decoding images in parallel (0: decode in this process).
    progress : bool, default True
        A tqdm progress bar on stderr.
    preprocess : callable, optional
        Applied to each ``uint8`` batch ``(B, 3, H, W)`` on the device before the model. Default:
        nothing for a model whose attribute ``preprocesses_images`` is ``True``
        (:class:`~otmetrics.FIDInceptionV3`, :class:`~otmetrics.DINOv2`,
        :class:`~otmetrics.CLIPImageEncoder`: they resize and scale ``uint8`` images themselves),
        ``x.float() / 255`` (values in [0, 1]) for any other model.
    weights : path or state dict, optional
        The weights of the default model (see :class:`~otmetrics.FIDInceptionV3`); an
        error together with ``model``.
    output : str or tuple of str, optional
        Which FIDInceptionV3 output(s): default the model's own (``"pool3"``, the 2048-d FID
        features, for the default model); e.g. ``("pool3", "logits_unbiased")`` gives both from
        one pass. An error with a model that is not a FIDInceptionV3.

    Returns
    -------
    numpy.ndarray, shape (N, d), float64 (or a tuple of them).

    Raises
    ------
    ValueError
        Missing or empty folder, an unreadable image (named), non-finite features (the image is
        named), a bad ``device`` or ``batch_size``.

    Notes
    -----
    Cost: one forward pass per image (FIDInceptionV3: about 5.7 GFLOP), plus decoding. Memory:
    the model, one batch, and the ``N x d`` result; use :func:`iter_image_features` to stream.

    Examples
    --------
    >>> import tempfile, numpy as np, torch
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> for i in range(3):
    ...     Image.fromarray(np.full((16, 16, 3), 60 * i, np.uint8)).save(f"{folder}/{i}.png")
    >>> mean_colour = lambda x: x.mean(dim=(2, 3))  # any module or callable works
    >>> image_features(folder, mean_colour, progress=False, device="cpu")[:, 0]
    array([0.        , 0.23529412, 0.47058824])
    """
    chunks = list(iter_image_features(source, model, batch_size=batch_size, device=device,
                                      num_workers=num_workers, progress=progress, preprocess=preprocess,
                                      weights=weights, output=output))
    if isinstance(chunks[0], tuple):
        return tuple(np.concatenate([c[k] for c in chunks]) for k in range(len(chunks[0])))
    return np.concatenate(chunks)


def _check_int(value, name: str, minimum: int):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name}: must be an integer >= {minimum}, got {value!r}")
