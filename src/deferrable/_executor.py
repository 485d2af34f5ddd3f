"""A thread pool that carries the deferrable scope into its threads."""

from __future__ import annotations

import concurrent.futures
import contextvars
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class ThreadPoolExecutor(concurrent.futures.ThreadPoolExecutor):
    """`concurrent.futures.ThreadPoolExecutor` whose tasks run in a copy of the context
    they were submitted from, as asyncio tasks do: work submitted inside a deferrable
    scope has its SDK calls deferred too (a plain pool's threads do not inherit the scope).
    """

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
               ) -> concurrent.futures.Future[T]:
        """Schedule ``fn(*args, **kwargs)`` in a copy of the caller's context."""
        context = contextvars.copy_context()
        run: Callable[..., T] = context.run
        return super().submit(run, fn, *args, **kwargs)


