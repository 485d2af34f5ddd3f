"""`Slot`: the future a suspended sync `@deferrable` call waits on.

Nothing ever blocks on it (the driver resumes the call's greenlet from its callback), so
it needs no condition variable: a lock and three fields instead of a
`concurrent.futures.Future`'s condition, waiter list and bound methods, for every call
waiting on a batch.
"""

from __future__ import annotations

import _thread
import logging
from collections.abc import Callable
from concurrent.futures import CancelledError, InvalidStateError
from typing import Any, Generic, TypeVar

log = logging.getLogger("deferrable")
T = TypeVar("T")
_PENDING, _DONE, _FAILED, _CANCELLED = range(4)


class Slot(Generic[T]):
    """A one-shot result, exception or cancellation, with done-callbacks (thread-safe).
    Its methods are those of `concurrent.futures.Future` the engine and the driver use;
    `result()` does not wait: it is read once the slot is done."""

    __slots__ = ("_callbacks", "_lock", "_state", "_value")

    def __init__(self) -> None:
        self._lock = _thread.allocate_lock()
        self._state = _PENDING
        self._value: Any = None
        self._callbacks: list[Callable[[Slot[T]], object]] | None = None

    def done(self) -> bool:
        """Whether it holds a result, an exception or a cancellation."""
        return self._state != _PENDING

    def cancelled(self) -> bool:
        """Whether it was cancelled."""
        return self._state == _CANCELLED

    def set_result(self, value: T) -> None:
        """Complete with `value` (InvalidStateError if already done)."""
        self._complete(_DONE, value)

    def set_exception(self, error: BaseException) -> None:
        """Complete with `error` (InvalidStateError if already done)."""
        self._complete(_FAILED, error)

    def cancel(self) -> bool:
        """Cancel unless done; True if it is now cancelled."""
        try:
            self._complete(_CANCELLED, None)
        except InvalidStateError:
            return self._state == _CANCELLED
        return True

    def add_done_callback(self, callback: Callable[[Slot[T]], object]) -> None:
        """Call `callback(self)` once done (at once if it is)."""
        with self._lock:
            if self._state == _PENDING:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                return
        callback(self)

    def result(self, timeout: float | None = None) -> T:
        """The result; the exception raised; CancelledError; InvalidStateError while
        pending (`timeout` is accepted for `Future`'s signature, and not waited)."""
        state = self._state
        if state == _DONE:
            value: T = self._value
            return value
        if state == _FAILED:
            raise self._value
        if state == _CANCELLED:
            raise CancelledError
        raise InvalidStateError("the slot is still pending")

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The exception it failed with, or None (raises as `result()` does otherwise)."""
        if self._state == _FAILED:
            error: BaseException = self._value
            return error
        self.result()
        return None

    def _complete(self, state: int, value: Any) -> None:
        with self._lock:
            if self._state != _PENDING:
                raise InvalidStateError(f"the slot is already done: {self!r}")
            self._state, self._value = state, value
            callbacks, self._callbacks = self._callbacks, None
        for callback in callbacks or ():
            try:
                callback(self)
            except Exception:  # as concurrent.futures does: one callback cannot stop another
                log.exception("deferrable: a callback of %r raised", self)

    def __repr__(self) -> str:
        state = ("pending", "done", "failed", "cancelled")[self._state]
        return f"<Slot {state}>"
