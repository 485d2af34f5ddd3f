"""`Deferred`: the future of a deferred call, usable from threads and from asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Generator
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class Deferred(Future[T]):
    """A `concurrent.futures.Future` that is also awaitable on any event loop."""

    def __await__(self) -> Generator[Any, None, T]:
        return asyncio.wrap_future(self).__await__()

    def __repr__(self) -> str:
        if not self.done():
            state = "pending"
        elif self.cancelled():
            state = "canceled"
        else:
            state = "failed" if super().exception(timeout=0) else "done"
        return f"<Deferred {state}>"
