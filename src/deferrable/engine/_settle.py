"""Handing outcomes to the futures that wait for them.

A sync caller waits on a thread-safe `Deferred` (inside a sync `@deferrable` call, a
`Slot`), settled at once. An async caller waits on a plain `asyncio.Future` of its own
loop; those are settled in bulk, with one wake-up of each loop per chunk of results rather
than one per call.
"""

from __future__ import annotations

import asyncio
import contextlib
from concurrent.futures import InvalidStateError
from typing import Any, Union

from .._deferred import Deferred
from .._slot import Slot

Waiter = Union[Deferred[Any], Slot[Any], "asyncio.Future[Any]"]
Settlement = tuple["asyncio.Future[Any]", Any, BaseException | None]


class Settler:
    """Collects outcomes; `dispatch()` delivers those bound for event loops."""

    def __init__(self) -> None:
        self._by_loop: dict[asyncio.AbstractEventLoop, list[Settlement]] = {}

    def settle(self, waiter: Waiter, value: Any, error: BaseException | None) -> None:
        """Resolve `waiter` with `value`, or fail it with `error`."""
        if isinstance(waiter, asyncio.Future):
            self._by_loop.setdefault(waiter.get_loop(), []).append((waiter, value, error))
        elif not waiter.done():
            with contextlib.suppress(InvalidStateError):  # cancelled by its caller just now
                if error is not None:
                    waiter.set_exception(error)
                else:
                    waiter.set_result(value)

    def dispatch(self) -> None:
        """Deliver the collected asyncio outcomes, one call per loop."""
        for loop, settlements in self._by_loop.items():
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits
                loop.call_soon_threadsafe(_apply, settlements)
        self._by_loop = {}


def _apply(settlements: list[Settlement]) -> None:
    for future, value, error in settlements:
        if future.done():  # canceled by its caller
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)
