"""The emulator's clock: wall time plus an offset that tests can advance."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time


class Clock:
    """Seconds since the epoch, movable forward with `advance()` so that a test can
    make 24 hours pass in an instant. Waiters on the server's loop wake when it moves."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()
        self._listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def now(self) -> float:
        """The emulator's current time in seconds since the epoch."""
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward; batches whose time has come end at once."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._offset += seconds
            listeners = list(self._listeners)
        for loop, event in listeners:
            loop.call_soon_threadsafe(event.set)

    async def sleep_until(self, deadline: float) -> None:
        """Wait on the running loop until `now() >= deadline`, waking early on `advance()`."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        entry = (loop, event)
        with self._lock:
            self._listeners.append(entry)
        try:
            while (remaining := deadline - self.now()) > 0:
                event.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(event.wait(), timeout=remaining)
        finally:
            with self._lock:
                self._listeners.remove(entry)

    async def sleep_until_or(self, deadline: float, event: asyncio.Event) -> bool:
        """`sleep_until(deadline)`, cut short when `event` is set; True if it was."""
        sleeper = asyncio.ensure_future(self.sleep_until(deadline))
        setter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({sleeper, setter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, setter):
                task.cancel()
            await asyncio.gather(sleeper, setter, return_exceptions=True)
        return event.is_set()
