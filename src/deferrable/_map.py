"""`deferrable.map`: a plain sync function over many items, its calls in one batch."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar, overload

from . import _greenlets
from ._api import flush
from ._decorator import deferrable
from ._options import defaults
from .engine import engine

X = TypeVar("X")
R = TypeVar("R")
_HELD = 365 * 86_400.0
"""A `max_wait` that never comes: the items' calls are submitted by `flush()`."""


@overload
def map(function: Callable[[X], R], items: Iterable[X], /, *,
        return_exceptions: Literal[False] = False, **options: Any) -> list[R]: ...
@overload
def map(function: Callable[[X], R], items: Iterable[X], /, *,
        return_exceptions: bool, **options: Any) -> list[R | BaseException]: ...


def map(function: Callable[[X], R], items: Iterable[X], /, *,
        return_exceptions: bool = False, **options: Any) -> list[R] | list[R | BaseException]:
    """Run ``function(item)`` for every item with its SDK calls deferred, and return the
    results in the items' order.

    The first deferred call of every item goes in one batch (up to `max_batch_size`): the
    items all start, then the batch is submitted. Calls an item makes after its first
    result go in later batches, submitted `max_wait` seconds after they are made. An item
    that raises makes `map` raise its exception once every item has finished (the others
    are paid for and journalled either way), or with ``return_exceptions=True`` the
    exception takes its place in the list. Other `options` are those of `@deferrable`.
    """
    pace = options.pop("max_wait", None)
    pace = (defaults() if pace is None else defaults().replace(max_wait=pace)).max_wait
    # Nothing is submitted by age while the items start; `flush()` submits instead. Later
    # calls stay held too and are released once the oldest of them has waited `pace`.
    run = deferrable(max_wait=_HELD, **options)(function)
    futures = [run(item) for item in items]
    flush()
    step = max(pace / 4, 0.005)
    for future in futures:
        while True:  # (`.exception()` suspends when `map` runs inside a @deferrable call)
            try:
                future.exception(timeout=step)
                break
            except concurrent.futures.TimeoutError:
                _greenlets.wait(engine().release_held(age=pace, held=_HELD))
    results: list[R | BaseException] = []
    for future in futures:
        error = future.exception()
        if error is None:
            results.append(future.result())
        elif return_exceptions:
            results.append(error)
        else:
            raise error
    return results
