"""Sync deferral without a thread per call.

A `def` decorated with `@deferrable` runs in its own greenlet. At its first deferred call
it suspends, and the caller gets a `Deferred` at once. `.result()` on any such future
drives the calling thread's suspended greenlets: each resumes when its call's result has
arrived, until the awaited one is done. Greenlets never leave the thread that made them.
"""

from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import greenlet

from ._deferred import Deferred

T = TypeVar("T")


Ready = queue.SimpleQueue[greenlet.greenlet]


class _ThreadState(threading.local):
    """Per thread: the queue of greenlets whose awaited call has resolved."""

    def __init__(self) -> None:
        self.ready: Ready = queue.SimpleQueue()


_thread = _ThreadState()


class _TaskGreenlet(greenlet.greenlet):
    """The greenlet of one call of a sync `@deferrable` function."""

    def __init__(self, run: Callable[[], None], ready: Ready) -> None:
        super().__init__(run)
        self.ready = ready


class GreenletDeferred(Deferred[T]):
    """The future of a sync `@deferrable` call: `.result()` drives the work it awaits."""

    def __init__(self, ready: Ready) -> None:
        super().__init__()
        self._ready = ready

    def result(self, timeout: float | None = None) -> T:
        """The call's value, driving this thread's suspended deferrable calls meanwhile
        (inside another `@deferrable` call, that call suspends until this one is done)."""
        self._advance(timeout)
        return super().result(timeout=0 if self.done() else timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The call's exception (or None), waiting as `result()` does."""
        self._advance(timeout)
        return super().exception(timeout=0 if self.done() else timeout)

    def _advance(self, timeout: float | None) -> None:
        if self.done() or self._ready is not _thread.ready:
            return
        current = greenlet.getcurrent()
        if isinstance(current, _TaskGreenlet):
            _suspend(current, self)
        else:
            drive_until(self, timeout)


def start(function: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
          ) -> GreenletDeferred[T]:
    """Run `function` in a new greenlet until it first waits; returns its future."""
    ready = _thread.ready
    outcome: GreenletDeferred[T] = GreenletDeferred(ready)

    def run() -> None:
        try:
            value = function(*args, **kwargs)
        except BaseException as error:  # handed to whoever waits on the future
            outcome.set_exception(error)
        else:
            outcome.set_result(value)

    task = _TaskGreenlet(run, ready)
    # Like an asyncio task, the call runs in a copy of the caller's context: an enclosing
    # scope's options (and the caller's other context variables) hold inside it.
    task.gr_context = contextvars.copy_context()
    task.switch()
    return outcome


def wait(future: Future[T]) -> T:
    """The value of `future`: suspends the current `@deferrable` greenlet until it is
    resolved, or blocks the thread when called outside one (e.g. in `with scope():`)."""
    current = greenlet.getcurrent()
    if isinstance(current, _TaskGreenlet) and not future.done():
        _suspend(current, future)
    return future.result()


def _suspend(task: _TaskGreenlet, future: Future[Any]) -> None:
    """Switch away from `task` until `future` is done and a driver resumes it."""
    ready = task.ready
    future.add_done_callback(lambda _: ready.put(task))
    parent = task.parent
    assert parent is not None, "a task greenlet always has the greenlet that resumed it"
    parent.switch()


def drive_until(target: Future[Any], timeout: float | None) -> None:
    """Resume this thread's greenlets as their calls resolve, until `target` is done."""
    deadline = None if timeout is None else time.monotonic() + timeout
    ready = _thread.ready
    while not target.done():
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        try:
            task = ready.get(timeout=remaining)
        except queue.Empty:
            return
        # Suspending or finishing returns to the parent: make that whoever resumes the
        # task, which need not be the greenlet that started it (nested @deferrable calls).
        task.parent = greenlet.getcurrent()
        task.switch()
