"""Work a fork must not cut in two: SQLite and the HTTP stack hold process-wide locks while
a thread is inside them, and a child forked at that moment inherits those locks held, by
a thread it does not have, forever.

Threads of deferrable run such work inside `quiet()`; before a fork, the forking thread
waits (at most `WAIT` seconds) until none is in flight and holds new work back until the
fork is done. The child starts with a fresh gate.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

WAIT = 10.0
"""Seconds a fork waits for work in flight before going ahead anyway."""


class _Gate:
    def __init__(self) -> None:
        self.condition = threading.Condition(threading.Lock())
        self.in_flight = 0
        self.holding = False

    def enter(self) -> None:
        with self.condition:
            self.in_flight += 1

    def leave(self) -> None:
        with self.condition:
            self.in_flight -= 1
            if not self.in_flight:
                self.condition.notify_all()

    def before_fork(self) -> None:
        """Wait for work in flight to end, then hold the gate (new work waits)."""
        self.condition.acquire()
        until = time.monotonic() + WAIT
        while self.in_flight and (left := until - time.monotonic()) > 0:
            self.condition.wait(left)
        self.holding = True

    def after_fork_in_parent(self) -> None:
        if self.holding:
            self.holding = False
            self.condition.release()


_gate = _Gate()


@contextmanager
def quiet() -> Iterator[None]:
    """Run the block with no fork cutting through it."""
    _gate.enter()
    try:
        yield
    finally:
        _gate.leave()


def _after_fork_in_child() -> None:
    global _gate
    _gate = _Gate()


os.register_at_fork(before=lambda: _gate.before_fork(),
                    after_in_parent=lambda: _gate.after_fork_in_parent(),
                    after_in_child=_after_fork_in_child)
