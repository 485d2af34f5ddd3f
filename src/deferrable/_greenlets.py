"""Sync deferral without a thread per call: the driver thread and its greenlets.

Each call of a sync `@deferrable` function runs in a greenlet of its own on one thread
that deferrable owns, the driver. At a deferred SDK call the greenlet suspends and the
driver goes on with the next; when the call's result arrives the driver resumes it, and
when the function returns its `Deferred` completes, whoever waits for it (any thread, any
event loop, a callback) or nobody. What differs from running on the caller's thread:
thread-locals, `threading.current_thread()` and signal delivery are the driver's, and a
function that blocks without deferring (a sleep, a live call) holds up the others while
it blocks.
"""

from __future__ import annotations

import _thread
import contextvars
import heapq
import itertools
import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any, TypeVar

import greenlet

from ._deferred import Deferred
from ._slot import Slot

log = logging.getLogger("deferrable")
T = TypeVar("T")


class _Task(greenlet.greenlet):
    """The greenlet of one call of a sync `@deferrable` function."""

    def __init__(self, run: Callable[[], None]) -> None:
        super().__init__(run)
        self.waiting_on: Future[Any] | Slot[Any] | None = None
        self.ticket = 0
        """Counts suspensions: a wake-up meant for an earlier one is ignored."""


class _Start:
    """A call to run on the driver: `function(*args, **kwargs)` in `context`; `started`
    is released once it has first suspended (or ended)."""

    __slots__ = ("args", "context", "function", "kwargs", "outcome", "started")

    def __init__(self, outcome: TaskDeferred[Any], function: Callable[..., Any],
                 args: tuple[Any, ...], kwargs: dict[str, Any],
                 context: contextvars.Context, started: _thread.LockType) -> None:
        self.outcome = outcome
        self.function = function
        self.args = args
        self.kwargs = kwargs
        self.context = context
        self.started = started


class _Resume:
    """Resume `task` from its suspension number `ticket`."""

    __slots__ = ("task", "ticket")

    def __init__(self, task: _Task, ticket: int) -> None:
        self.task = task
        self.ticket = ticket


class _Stop:
    """Stop `task`: its call was cancelled."""

    __slots__ = ("task",)

    def __init__(self, task: _Task) -> None:
        self.task = task


class TaskDeferred(Deferred[T]):
    """The future of a sync `@deferrable` call.

    It completes on its own on the driver. Waiting on it inside another sync `@deferrable`
    call suspends that call instead of blocking the driver. Cancelling it stops the
    function where it waits (`GreenletExit` is raised there, so ``finally`` blocks run) and
    cancels the deferred call it waits for: still buffered, that call is not sent.
    """

    def __init__(self) -> None:
        super().__init__()
        self.task: _Task | None = None
        self._waiters: list[Any] = _Waiters()

    def result(self, timeout: float | None = None) -> T:
        """The call's value; waits up to `timeout` seconds (None: as long as it takes)."""
        if _suspend_until_done(self, timeout):
            timeout = 0
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The call's exception, or None; waits as `result()` does."""
        if _suspend_until_done(self, timeout):
            timeout = 0
        return super().exception(timeout)

    def cancel(self) -> bool:
        """Cancel the call unless it has completed; True if it is now cancelled."""
        if not super().cancel():
            return False
        task = self.task
        if task is not None:
            # At once, so that a flush() right after this leaves the call out; the driver
            # then unwinds the function.
            waiting = task.waiting_on
            if waiting is not None:
                waiting.cancel()
            _driver().post(_Stop(task))
        return True


class _Waiters(list[Any]):
    """The waiters `concurrent.futures.wait` and `as_completed` install on a future. Inside
    a sync `@deferrable` call they would block the driver, which this future needs in order
    to complete: refused there with an error instead of a hang."""

    def append(self, waiter: Any) -> None:
        """Install `waiter`, unless that would block the driver."""
        if isinstance(greenlet.getcurrent(), _Task):
            raise RuntimeError(
                "concurrent.futures.wait() / as_completed() on the future of a sync "
                "@deferrable call, inside another one, would block the thread both run on; "
                "wait with .result() there (it suspends the waiting call instead)")
        super().append(waiter)


class _Driver:
    """The thread that runs the greenlets of sync `@deferrable` calls."""

    def __init__(self) -> None:
        self._inbox: queue.SimpleQueue[_Start | _Resume | _Stop | Callable[[], None]] = (
            queue.SimpleQueue())
        self._timers: list[tuple[float, int, _Resume]] = []
        self._order = itertools.count()
        self._thread = threading.Thread(target=self._serve, name="deferrable-driver",
                                        daemon=True)
        self._thread.start()

    @property
    def thread(self) -> threading.Thread:
        """The driver's thread."""
        return self._thread

    def post(self, item: _Start | _Resume | _Stop | Callable[[], None]) -> None:
        """Hand `item` to the driver (any thread)."""
        self._inbox.put(item)

    def wake_at(self, when: float, resume: _Resume) -> None:
        """Resume a task at monotonic time `when` (driver thread only)."""
        heapq.heappush(self._timers, (when, next(self._order), resume))

    def _serve(self) -> None:
        while True:
            timeout = None
            while self._timers:
                when, _, resume = self._timers[0]
                timeout = when - time.monotonic()
                if timeout > 0:
                    break
                heapq.heappop(self._timers)
                self._resume(resume)
                timeout = None
            try:
                item = self._inbox.get(timeout=timeout)
            except queue.Empty:
                continue
            try:
                if isinstance(item, _Resume):
                    self._resume(item)
                elif isinstance(item, _Start):
                    self._start(item)
                elif isinstance(item, _Stop):
                    self._stop(item.task)
                else:
                    item()
            except BaseException:  # the driver outlives any one call's failure
                log.exception("deferrable: the driver of sync @deferrable calls hit an error")

    @staticmethod
    def _start(start: _Start) -> None:
        try:
            _run(start.outcome, start.function, start.args, start.kwargs, start.context)
        finally:
            start.started.release()

    @staticmethod
    def _resume(resume: _Resume) -> None:
        task = resume.task
        if not task.dead and task.ticket == resume.ticket:
            task.parent = greenlet.getcurrent()  # suspending comes back here
            task.switch()

    @staticmethod
    def _stop(task: _Task) -> None:
        if task.dead:
            return
        task.ticket += 1  # wake-ups of the suspension being ended are stale
        waiting, task.waiting_on = task.waiting_on, None
        if waiting is not None:
            waiting.cancel()
        task.parent = greenlet.getcurrent()
        task.throw(greenlet.GreenletExit)


def _run(outcome: TaskDeferred[Any], function: Callable[..., Any], args: tuple[Any, ...],
         kwargs: dict[str, Any], context: contextvars.Context) -> None:
    """Run the call in a new task greenlet until it first suspends or ends (the caller
    must be on the driver; the task's parent is the caller's greenlet)."""
    if outcome.cancelled():
        return

    def run() -> None:
        try:
            value = function(*args, **kwargs)
        except BaseException as error:  # handed to whoever waits on the future
            _settle(outcome, None, error)
        else:
            _settle(outcome, value, None)

    task = _Task(run)
    task.gr_context = context
    outcome.task = task
    task.switch()


def _settle(outcome: TaskDeferred[Any], value: Any, error: BaseException | None) -> None:
    try:
        if error is not None:
            outcome.set_exception(error)
        else:
            outcome.set_result(value)
    except InvalidStateError:
        pass  # cancelled meanwhile: nobody wants the outcome


_lock = threading.Lock()
_current: _Driver | None = None


def _driver() -> _Driver:
    global _current
    driver = _current
    if driver is None:
        with _lock:
            if _current is None:
                _current = _Driver()
            driver = _current
    return driver


def start(function: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]
          ) -> TaskDeferred[T]:
    """Run `function(*args, **kwargs)` on the driver, in a copy of the caller's context
    (like an asyncio task: an enclosing scope holds inside it), until it first waits;
    returns its future. So the body up to its first deferred call runs before `start`
    returns, as it would on the caller's thread (arguments are read then)."""
    outcome: TaskDeferred[T] = TaskDeferred()
    context = contextvars.copy_context()
    if isinstance(greenlet.getcurrent(), _Task):  # inside a call, on the driver already
        _run(outcome, function, args, kwargs, context)
        return outcome
    started = _thread.allocate_lock()
    started.acquire()
    _driver().post(_Start(outcome, function, args, kwargs, context, started))
    started.acquire()
    return outcome


def driver_ident() -> int | None:
    """The thread id of the driver, if it has started."""
    driver = _current
    return driver.thread.ident if driver is not None else None


def waiter() -> Slot[Any] | Deferred[Any]:
    """The future for a deferred call made here: inside a sync `@deferrable` call a light
    `Slot` (the call suspends, and the slot's callback resumes it), elsewhere a `Deferred`
    (the thread blocks on it)."""
    return Slot() if isinstance(greenlet.getcurrent(), _Task) else Deferred()


def wait(future: Future[T] | Slot[T]) -> T:
    """The value of `future`: suspends the current `@deferrable` call until it is
    resolved, or blocks the thread outside one (e.g. in ``with scope():``)."""
    _suspend_until_done(future, None)
    return future.result()


def in_task() -> bool:
    """Whether the caller runs inside a sync `@deferrable` call."""
    return isinstance(greenlet.getcurrent(), _Task)


def _suspend_until_done(future: Future[Any] | Slot[Any], timeout: float | None) -> bool:
    """Inside a `@deferrable` call, switch to the driver until `future` is done (or
    `timeout` passes) and return True; elsewhere return False at once (the caller then
    blocks, as futures do)."""
    task = greenlet.getcurrent()
    if not isinstance(task, _Task):
        return False
    if future.done():
        return True
    driver = _driver()
    task.ticket += 1
    resume = _Resume(task, task.ticket)
    task.waiting_on = future
    future.add_done_callback(lambda _: driver.post(resume))
    if timeout is not None:
        driver.wake_at(time.monotonic() + timeout, resume)
    try:
        parent = task.parent
        assert parent is not None, "a task runs under the driver"
        parent.switch()
    finally:
        task.waiting_on = None
        task.ticket += 1
    return True


def settle_starts(timeout: float | None = None) -> bool:
    """Wait until the driver has run every call started before now to its first
    suspension (so their deferred calls are buffered); False if `timeout` passed first.
    Returns at once when no sync `@deferrable` call was made, or on the driver itself."""
    driver = _current
    if driver is None or threading.current_thread() is driver.thread:
        return True
    reached = threading.Event()
    driver.post(reached.set)
    return reached.wait(timeout)


def _forget_after_fork() -> None:
    """In a forked child, where the parent's driver thread does not run: start afresh."""
    global _current, _lock
    _current = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
