"""Where deferral is on: context variables for the active scope's options and for the
live bypass, plus the `scope()` and `live()` context managers."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from ._options import Options, defaults

_active: contextvars.ContextVar[Options | None] = contextvars.ContextVar(
    "deferrable_scope", default=None)


def active_options() -> Options | None:
    """The options of the deferrable scope around the caller, or None when calls go live."""
    return _active.get()


class scope:  # noqa: N801 - a context manager named like the function users call
    """Defer supported SDK calls inside ``with scope(...)`` / ``async with scope(...)``."""

    def __init__(self, **options: Any) -> None:
        self._changes = options
        self._tokens: list[contextvars.Token[Options | None]] = []
        outer = _active.get()
        (outer or defaults()).replace(**options)  # fail early on unknown option names

    def options(self) -> Options:
        """The options this scope applies, resolved against the scope around it."""
        return (_active.get() or defaults()).replace(**self._changes)

    def __enter__(self) -> Options:
        options = self.options()
        self._tokens.append(_active.set(options))
        return options

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        _active.reset(self._tokens.pop())

    async def __aenter__(self) -> Options:
        return self.__enter__()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        self.__exit__(kind, error, traceback)


@contextlib.contextmanager
def live() -> Iterator[None]:
    """Calls inside go live, even within a deferrable scope."""
    token = _active.set(None)
    try:
        yield
    finally:
        _active.reset(token)
