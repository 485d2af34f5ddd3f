"""The calls of this process waiting on one batch, by custom id (thread-safe: results are
read in worker threads while the engine's loop attaches more calls)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from .._options import Options
from ..journal import JournalLike
from ._target import Call, Target


class Follow:
    """One batch being followed to its end: its journal token and its waiting calls."""

    def __init__(self, journal: JournalLike, token: str, target: Target,
                 options: Options) -> None:
        self.journal = journal
        self.token = token
        self.target = target
        self.options = options
        self.batch_id: str | None = None
        """The provider's id of the batch, once known."""
        self.expected: int | None = None
        """How many requests the batch holds, when this process created it."""
        self.read: set[str] = set()
        """Custom ids whose result line has been read (a second pass skips them)."""
        self.cancelled_by_user = False
        """Whether a user cancelled the batch: its cancelled requests are not sent again."""
        self.started = time.monotonic()
        """When this process began following the batch (monotonic)."""
        self.logged_progress = self.started
        """When its progress was last logged."""
        self.saved_usd = 0.0
        """What the results read so far saved against the live price."""
        self.trace: tuple[str, Any] | None = None
        """The batch's id and its span's context, handed with each answer (once created)."""
        self.span: Any = None
        """The batch's span (None when untraced)."""
        self.rescuing = False
        """Whether a deadline came: requests the cancel stopped are rescued, not sent
        again in a later batch."""
        self.last_error: BaseException | None = None
        """The latest failure of a call about this batch (create, poll or read)."""
        self._waiters: dict[str, list[Call]] = {}
        self._deadlines = False
        """Whether any call added has a deadline (else `moments()` need not look)."""
        self._closed = False
        self._lock = threading.Lock()

    @property
    def key(self) -> tuple[Path | None, str]:
        """The batch's identity in this process: (journal location, token)."""
        return self.journal.path, self.token

    def add(self, call: Call) -> bool:
        """Make `call` wait for its line; False once the batch's lines were all read."""
        assert call.custom_id is not None
        with self._lock:
            if self._closed:
                return False
            self._waiters.setdefault(call.custom_id, []).append(call)
            self._deadlines = self._deadlines or call.deadline is not None
            return True

    def take(self, custom_id: str) -> list[Call]:
        """The calls waiting for `custom_id`'s line, no longer waiting here."""
        with self._lock:
            return self._waiters.pop(custom_id, [])

    def waiting(self) -> int:
        """How many calls still wait (cancelled ones left out)."""
        with self._lock:
            return sum(not call.future.done() for calls in self._waiters.values()
                       for call in calls)

    def moments(self) -> tuple[float | None, float | None]:
        """The earliest rescue time and the earliest deadline of the calls still waiting
        (monotonic; None where no waiting call has one)."""
        if not self._deadlines:
            return None, None
        with self._lock:
            waiting = [call for calls in self._waiters.values() for call in calls
                       if not call.future.done()]
        rescues = [c.rescue_at for c in waiting if c.rescue_at is not None]
        deadlines = [c.deadline for c in waiting if c.deadline is not None]
        return min(rescues, default=None), min(deadlines, default=None)

    def missing_lines(self) -> int:
        """Result lines not read yet: of the batch's requests when their number is known,
        else of the calls still waiting here."""
        if self.expected is not None:
            return max(0, self.expected - len(self.read))
        with self._lock:
            return len(self._waiters)

    def close(self) -> dict[str, list[Call]]:
        """Stop accepting calls; returns those still waiting."""
        with self._lock:
            self._closed = True
            rest, self._waiters = self._waiters, {}
            return rest
