"""The public switches that sit above the patches: `scope()` (which patches on first use)
and `flush()` / `aflush()`."""

from __future__ import annotations

import asyncio

from . import _greenlets, _scope
from ._options import Options
from ._patching import patch
from .engine import engine


class scope(_scope.scope):  # noqa: N801 - used like a function, as `with scope(...)`
    """Defer supported SDK calls inside ``with scope(...)`` / ``async with scope(...)``,
    with `options` over the defaults; installs the SDK patches on first use."""

    def __enter__(self) -> Options:
        patch()
        return super().__enter__()


def flush() -> int:
    """Submit every buffered call as batches now; returns how many batches were started.
    (A sync `@deferrable` call returns once its first deferred call is buffered.)"""
    return _greenlets.wait(engine().flush())


async def aflush() -> int:
    """`flush()` for async code: does not block the event loop."""
    return await asyncio.wrap_future(engine().flush())
