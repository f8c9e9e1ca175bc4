"""Renamed arguments and changed defaults: the old spelling keeps working for one release.

Every deprecation of otmetrics goes through here, so that they all behave alike and are listed in
``CHANGELOG.md``:

- :func:`renamed_arguments` lets a function accept an argument's old keyword name, with a
  ``DeprecationWarning`` that names the new one (passing both is a ``ValueError``);
- :func:`warn_deprecated` is the one warning call, for the other cases (a method that became an
  attribute, a module path that moved);
- :func:`changed_default` resolves an argument whose default changed: when the caller did not pass
  it, the new default holds and a ``FutureWarning`` says so (the numbers change: users must see it
  whether or not they enable deprecation warnings), until :data:`REMOVED_IN`.

``DeprecationWarning`` is shown by default in ``__main__``, in notebooks and under test runners;
removal is announced for :data:`REMOVED_IN`.
"""

from __future__ import annotations

import functools
import warnings

__all__ = ["REMOVED_IN", "renamed_arguments", "warn_deprecated", "changed_default"]

#: The release that removes what is deprecated in this one.
REMOVED_IN = "0.3"


def warn_deprecated(message: str, *, stacklevel: int = 2) -> None:
    """Emit a ``DeprecationWarning`` ending with the release that removes the old spelling.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_deprecated("f(x=...) is deprecated; use f(y=...)")
    >>> str(caught[0].message)
    'f(x=...) is deprecated; use f(y=...) (removed in otmetrics 0.3)'
    """
    warnings.warn(f"{message} (removed in otmetrics {REMOVED_IN})", DeprecationWarning, stacklevel=stacklevel + 1)


def renamed_arguments(**renames: str):
    """Decorator: accept each ``old=`` keyword as an alias of its new name, with a warning.

    Parameters
    ----------
    **renames : str
        ``old_name="new_name"`` pairs.

    Examples
    --------
    >>> import warnings
    >>> @renamed_arguments(num_threads="n_threads")
    ... def run(*, n_threads=None):
    ...     return n_threads
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     run(num_threads=2)
    2
    >>> caught[0].category.__name__
    'DeprecationWarning'
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            for old, new in renames.items():
                if old in kwargs:
                    if new in kwargs:
                        raise ValueError(f"{old}: deprecated alias of {new}; pass only {new}, got both")
                    warn_deprecated(f"{func.__name__}({old}=...) is deprecated; use {new}=...")
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        wrapper.__deprecated_arguments__ = dict(renames)
        return wrapper

    return decorate


def changed_default(value, *, func: str, name: str, old, new, since: str = "0.2", stacklevel: int = 2):
    """``value`` if the caller passed it, else ``new`` with a ``FutureWarning`` naming the old default.

    The argument's signature default is ``None``, meaning "not given"; the function's documentation
    states ``new`` as its default.

    Parameters
    ----------
    value : the argument as received (``None`` when the caller did not pass it).
    func, name : the function's and the argument's names, for the message.
    old, new : the default before ``since`` and the default now.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     changed_default(None, func="wasserstein", name="p", old=1, new=2)
    2
    >>> caught[0].category.__name__
    'FutureWarning'
    >>> changed_default(1, func="wasserstein", name="p", old=1, new=2)  # passed: no warning
    1
    """
    if value is not None:
        return value
    warnings.warn(f"{func}: the default {name} is {new} since otmetrics {since} (it was {old}); pass {name} "
                  f"explicitly to silence this warning (shown until otmetrics {REMOVED_IN})", FutureWarning,
                  stacklevel=stacklevel + 1)
    return new
