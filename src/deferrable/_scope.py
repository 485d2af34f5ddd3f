"""Where deferral is on: context variables for the active scope's options and for the
live bypass, plus the `scope()` and `live()` context managers."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from ._collector import freezer
from ._greenlets import driver_ident
from ._options import Options, defaults
from ._sites import current_site, enter_function, leave_function
from .ledger._budget import Budget, enter_budget, leave_budget

log = logging.getLogger("deferrable")
_active: contextvars.ContextVar[Options | None] = contextvars.ContextVar(
    "deferrable_scope", default=None)


class Tally:
    """What became of the calls made in a scope (and in the scopes inside it)."""

    __slots__ = ("deferred", "live", "parent")

    def __init__(self, parent: Tally | None) -> None:
        self.deferred = 0
        self.live: Counter[str] = Counter()
        self.parent = parent

    def summary(self) -> str:
        """``N deferred, M live (reason: k, ...)``."""
        text = f"{self.deferred} deferred, {sum(self.live.values())} live"
        if self.live:
            text += " (" + "; ".join(f"{reason}: {n}" for reason, n in self.live.most_common()) + ")"
        return text


_tally: contextvars.ContextVar[Tally | None] = contextvars.ContextVar(
    "deferrable_tally", default=None)


def count_deferred() -> None:
    """Count a deferred call in the scopes around the caller."""
    tally = _tally.get()
    while tally is not None:
        tally.deferred += 1
        tally = tally.parent


def count_live(reason: str) -> None:
    """Count a call that went live inside the scopes around the caller, and why."""
    tally = _tally.get()
    while tally is not None:
        tally.live[reason] += 1
        tally = tally.parent


def active_options() -> Options | None:
    """The options of the deferrable scope around the caller, or None when calls go live."""
    return _active.get()


class _OpenScopes:
    """How many scopes are open, by thread: a call made outside any scope while one is
    open on another thread may belong to it (threads do not inherit context variables)."""

    def __init__(self) -> None:
        self.total = 0
        self._by_thread: Counter[int] = Counter()
        self._lock = threading.Lock()

    def enter(self) -> None:
        with self._lock:
            self.total += 1
            self._by_thread[threading.get_ident()] += 1

    def leave(self) -> bool:
        """Count a scope closed; whether it was the last one open."""
        with self._lock:
            self.total -= 1
            ident = threading.get_ident()
            self._by_thread[ident] -= 1
            if self._by_thread[ident] <= 0:
                del self._by_thread[ident]
            return self.total == 0

    def elsewhere(self) -> bool:
        """Whether a scope is open on another thread and none on this one (the scopes of
        sync `@deferrable` bodies, on the driver thread, do not count: other threads'
        calls cannot be theirs)."""
        if not self.total or threading.get_ident() in self._by_thread:
            return False
        driver = driver_ident()
        with self._lock:
            return any(ident != driver for ident in self._by_thread)


open_scopes = _OpenScopes()


class scope:  # noqa: N801 - a context manager named like the function users call
    """Defer supported SDK calls inside ``with scope(...)`` / ``async with scope(...)``.

    `max_cost_usd` caps what the calls inside may spend (see `Budget`); `site` names the
    calls' site in the ledger (by default, where each call is made). When it ends, a scope
    logs how many of its calls were deferred and how many went live, and why (at INFO; a
    decorated function's scope, one per call, at DEBUG: `summary=False`).
    """

    def __init__(self, *, max_cost_usd: float | None = None, budget: Budget | None = None,
                 site: str | None = None, summary: bool = True, **options: Any) -> None:
        self._changes = options
        self._budget = budget or (Budget(max_cost_usd) if max_cost_usd is not None else None)
        self._site = site
        self._summary = summary
        self._tokens: list[tuple[contextvars.Token[Options | None], Any, Any,
                                 contextvars.Token[Tally | None]]] = []
        outer = _active.get()
        (outer or defaults()).replace(**options)  # fail early on unknown option names

    def options(self) -> Options:
        """The options this scope applies, resolved against the scope around it."""
        return (_active.get() or defaults()).replace(**self._changes)

    def __enter__(self) -> Options:
        options = self.options()
        budget = enter_budget(self._budget) if self._budget is not None else None
        site = enter_function(self._site) if self._site is not None else None
        tally = _tally.set(Tally(_tally.get()))
        self._tokens.append((_active.set(options), budget, site, tally))
        open_scopes.enter()
        if options.freeze_gc:
            freezer.call()
        return options

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        options, budget, site, tally = self._tokens.pop()
        if open_scopes.leave():
            freezer.scopes_closed()
        ended = _tally.get()
        _tally.reset(tally)
        if ended is not None and (ended.deferred or ended.live):
            level = logging.INFO if self._summary else logging.DEBUG
            if log.isEnabledFor(level):
                where = self._site or current_site()
                text = ended.summary()
                if self._budget is not None:
                    text += f"; {self._budget.summary()}"
                log.log(level, "deferrable: scope %s ended: %s", where, text)
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
