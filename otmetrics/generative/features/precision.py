"""Full IEEE float32 for a forward pass, whatever torch's process-wide TF32/bf16 settings say.

torch lets several backends compute float32 convolutions and matmuls in a lower precision: on
CUDA, cuDNN runs float32 convolutions in TF32 (10-bit mantissa) by default, and
``torch.set_float32_matmul_precision("high")`` does the same to cuBLAS matmuls; on the CPU,
``"medium"`` and ``torch.backends.mkldnn.*.fp32_precision`` let oneDNN use TF32 or bf16. Each of
these moves the features of a network by about 1e-3 relative, and a FID computed from them with it.

:func:`full_float32` switches these settings to full IEEE float32 for the duration of a ``with``
block and restores them afterwards (also when the block raises). It is what
:class:`~otmetrics.FIDInceptionV3` runs its forward pass under unless ``tf32=True``, and any other
feature extractor can use it unchanged::

    with full_float32(x.device.type, enabled=x.dtype == torch.float32):
        features = network(x)

The settings are process-wide in torch, so the context manager is shared by all threads: each
setting is switched by the first block that enters and restored by the last one that leaves (a
reference count under a lock), so that blocks running in several threads at once neither restore
a setting under each other's feet nor leave it changed; a setting that is exact already is never
written. What process-wide settings cannot avoid: other code running meanwhile also computes in
full float32, and a change another thread makes to these settings meanwhile is undone on exit.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import torch

__all__ = ["PrecisionSetting", "precision_settings", "full_float32"]


class PrecisionSetting:
    """One process-wide torch setting that may lower the precision of float32 work on a device.

    Parameters
    ----------
    name : str
        A unique name, e.g. ``"cudnn.conv"``; the reference count of :func:`full_float32` is kept
        per name.
    read : callable
        Returns the current value.
    write : callable
        Sets a value.
    exact_values : tuple
        The values that mean full IEEE float32 (left alone when found).
    exact : object
        The value to write for full IEEE float32.

    Examples
    --------
    >>> state = {"value": "tf32"}
    >>> setting = PrecisionSetting("demo", lambda: state["value"],
    ...                            lambda v: state.update(value=v), ("ieee",), "ieee")
    >>> setting.is_exact(setting.read()), setting.is_exact("ieee")
    (False, True)
    """

    def __init__(self, name: str, read: Callable[[], object], write: Callable[[object], None],
                 exact_values: tuple, exact: object):
        self.name, self.read, self.write = name, read, write
        self.exact_values, self.exact = exact_values, exact

    def is_exact(self, value) -> bool:
        """Whether ``value`` means full IEEE float32."""
        return value in self.exact_values

    def __repr__(self) -> str:
        return f"PrecisionSetting({self.name!r}, exact={self.exact!r})"


def _fp32_precision_setting(name: str, holder) -> PrecisionSetting:
    # torch >= 2.9: per backend and operation; "none" inherits from the parent ("generic"
    # at the top), whose default is IEEE. The getter returns the inherited value.
    return PrecisionSetting(name, lambda: holder.fp32_precision,
                            lambda value: setattr(holder, "fp32_precision", value), ("ieee", "none"), "ieee")


def precision_settings(device_type: str) -> list[PrecisionSetting]:
    """The torch settings that govern float32 convolutions and matmuls on ``device_type``.

    On torch >= 2.9 only the per-operation ``fp32_precision`` settings are read and written
    (``cudnn.conv`` and ``cuda.matmul`` on CUDA, ``mkldnn.conv`` and ``mkldnn.matmul`` on the CPU):
    their getters never raise, whereas the legacy getters (``torch.backends.cudnn.allow_tf32``,
    ``torch.get_float32_matmul_precision()``) raise once a program has mixed the two APIs
    inconsistently; restoring the exact previous values keeps the legacy getters working. On older
    torch: ``torch.backends.cudnn.allow_tf32`` (CUDA) and the float32 matmul precision (CUDA and
    CPU).

    Parameters
    ----------
    device_type : str or torch.device
        ``"cuda"`` or ``"cpu"``; any other type (``"mps"``, ``"meta"``, ...) has no such settings
        and gives an empty list.

    Returns
    -------
    list of PrecisionSetting

    Raises
    ------
    ValueError
        ``device_type`` is neither a string nor a ``torch.device``.

    Examples
    --------
    >>> settings = precision_settings("cpu")  # torch >= 2.9: mkldnn.conv, mkldnn.matmul
    >>> len(settings) > 0 and all(isinstance(setting, PrecisionSetting) for setting in settings)
    True
    >>> precision_settings("meta")
    []
    """
    device_type = _device_type(device_type)
    backends = torch.backends
    if hasattr(backends.cudnn, "conv") and hasattr(backends.mkldnn, "matmul"):  # torch >= 2.9
        holders = {"cuda": (("cudnn.conv", backends.cudnn.conv), ("cuda.matmul", backends.cuda.matmul)),
                   "cpu": (("mkldnn.conv", backends.mkldnn.conv), ("mkldnn.matmul", backends.mkldnn.matmul))}
        return [_fp32_precision_setting(name, holder) for name, holder in holders.get(device_type, ())]
    settings = []
    if device_type == "cuda":  # torch < 2.9: cuDNN's flag, and the float32 matmul precision
        settings.append(PrecisionSetting(
            "cudnn.allow_tf32", lambda: backends.cudnn.allow_tf32,
            lambda value: setattr(backends.cudnn, "allow_tf32", value), (False,), False))
    if device_type in ("cuda", "cpu"):
        settings.append(PrecisionSetting(
            "float32_matmul_precision", torch.get_float32_matmul_precision,
            torch.set_float32_matmul_precision, ("highest",), "highest"))
    return settings


def _device_type(device_type) -> str:
    if isinstance(device_type, torch.device):
        return device_type.type
    if not isinstance(device_type, str):
        raise ValueError(f"device_type: expected a device type such as 'cuda' or 'cpu', got {device_type!r}")
    return device_type


_PRECISION_LOCK = threading.Lock()
#: Per setting name: [blocks inside full_float32 that rely on it, the value to restore when the
#: last of them leaves (None: it was exact already, nothing to restore)].
_PRECISION_STATE: dict[str, list] = {}


def _acquire(settings) -> None:
    acquired = []
    try:
        for setting in settings:
            state = _PRECISION_STATE.setdefault(setting.name, [0, None])
            if state[0] == 0:
                previous = setting.read()
                if setting.is_exact(previous):
                    state[1] = None
                else:
                    setting.write(setting.exact)
                    state[1] = (previous,)
            state[0] += 1
            acquired.append(setting)
    except BaseException:
        _release(acquired)
        raise


def _release(settings) -> None:
    for setting in reversed(settings):
        state = _PRECISION_STATE[setting.name]
        state[0] -= 1
        if state[0] == 0 and state[1] is not None:
            (previous,), state[1] = state[1], None
            setting.write(previous)


@contextlib.contextmanager
def full_float32(device_type, enabled: bool = True) -> Iterator[None]:
    """Run the body with full IEEE float32 convolutions and matmuls on ``device_type``.

    The settings of :func:`precision_settings` are switched to their exact values on entry and
    restored on exit, also when the body raises. Nested and concurrent blocks (several threads)
    share one reference count per setting: the first block to enter switches a setting, the last
    one to leave restores it, and a setting that is exact already is not written at all.

    Parameters
    ----------
    device_type : str or torch.device
        Where the body computes: ``"cuda"`` or ``"cpu"`` (other devices have nothing to switch).
    enabled : bool, default True
        ``False`` leaves every setting as it is (for ``tf32=True``, or inputs that are not
        float32), so that callers need not write two code paths.

    Raises
    ------
    ValueError
        ``device_type`` is neither a string nor a ``torch.device`` (when ``enabled``).

    Notes
    -----
    The settings are process-wide: other code running meanwhile also computes in full float32,
    and a change another thread makes to these settings meanwhile is undone on exit. Entering and
    leaving cost a few attribute reads and writes under a lock, negligible next to a forward pass.

    Examples
    --------
    >>> import torch
    >>> saved = [(s, s.read()) for s in precision_settings("cpu") + precision_settings("cuda")]
    >>> torch.set_float32_matmul_precision("medium")  # oneDNN may now use bf16 for float32 matmuls
    >>> cpu = precision_settings("cpu")
    >>> with full_float32("cpu"):
    ...     all(setting.is_exact(setting.read()) for setting in cpu)
    True
    >>> all(setting.is_exact(setting.read()) for setting in cpu)  # the caller's settings are back
    False
    >>> for setting, value in saved:
    ...     setting.write(value)
    """
    settings = precision_settings(device_type) if enabled else []
    if not settings:  # disabled, or a device without such settings
        yield
        return
    with _PRECISION_LOCK:
        _acquire(settings)
    try:
        yield
    finally:
        with _PRECISION_LOCK:
            _release(settings)
