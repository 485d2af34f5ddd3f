"""Where deferral is on: context variables for the active scope's options and for the
live bypass, plus the `scope()` and `live()` context managers."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from ._options import Options, defaults
from ._sites import enter_function, leave_function
from .ledger._budget import Budget, enter_budget, leave_budget

_active: contextvars.ContextVar[Options | None] = contextvars.ContextVar(
    "deferrable_scope", default=None)


def active_options() -> Options | None:
    """The options of the deferrable scope around the caller, or None when calls go live."""
    return _active.get()


class scope:  # noqa: N801 - a context manager named like the function users call
    """Defer supported SDK calls inside ``with scope(...)`` / ``async with scope(...)``.

    `max_cost_usd` caps what the calls inside may spend (see `Budget`); `site` names the
    calls' site in the ledger (by default, where each call is made).
    """

    def __init__(self, *, max_cost_usd: float | None = None, budget: Budget | None = None,
                 site: str | None = None, **options: Any) -> None:
        self._changes = options
        self._budget = budget or (Budget(max_cost_usd) if max_cost_usd is not None else None)
        self._site = site
        self._tokens: list[tuple[contextvars.Token[Options | None], Any, Any]] = []
        outer = _active.get()
        (outer or defaults()).replace(**options)  # fail early on unknown option names

    def options(self) -> Options:
        """The options this scope applies, resolved against the scope around it."""
        return (_active.get() or defaults()).replace(**self._changes)

    def __enter__(self) -> Options:
        options = self.options()
        budget = enter_budget(self._budget) if self._budget is not None else None
        site = enter_function(self._site) if self._site is not None else None
        self._tokens.append((_active.set(options), budget, site))
        return options

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        options, budget, site = self._tokens.pop()
        _active.reset(options)
        if budget is not None:
            leave_budget(budget)
        if site is not None:
            leave_function(site)

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
