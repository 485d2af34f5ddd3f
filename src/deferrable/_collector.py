"""Keeping calls that wait for a batch out of the cyclic garbage collector's way.

A deferred call stays alive until its batch ends, with some eighty objects the collector
tracks (its coroutines or greenlet, the SDK's request and options, its future). CPython
runs a full collection each time the tracked objects grow by a quarter, and each one
scans them all: with thousands of calls waiting, that was half the CPU time of a run.

So while deferrable scopes are open, the objects alive are frozen (`gc.freeze()`, which
takes constant time) every `FREEZE_EVERY` calls, and full collections scan only what is
newer. When the last scope closes they are unfrozen, and cycles among them are collected
as usual. Where scopes stay open for good (a service), garbage frozen with the rest would
never be collected: every `HOLD` seconds of freezing, the next freeze first unfreezes and
runs one full collection. A process that froze objects itself, or turned the collector
off, is left alone; so are calls in scopes with ``freeze_gc=False``.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

FREEZE_EVERY = 256
"""Calls (scopes entered and calls deferred) between two freezes."""
HOLD = 300.0
"""Seconds objects stay frozen, at most, while scopes stay open."""


@dataclass
class Freezer:
    """When to freeze and unfreeze; the collector's functions are injected for tests."""

    freeze: Callable[[], None] = gc.freeze
    unfreeze: Callable[[], None] = gc.unfreeze
    frozen_count: Callable[[], int] = gc.get_freeze_count
    enabled: Callable[[], bool] = gc.isenabled
    collect: Callable[[], object] = gc.collect
    clock: Callable[[], float] = time.monotonic
    every: int = FREEZE_EVERY
    hold: float = HOLD
    calls: int = 0
    """Calls counted since the last freeze."""
    ours: bool = False
    """Whether objects are frozen by this freezer (and not yet unfrozen)."""
    since: float = 0.0
    """When this freezer's first freeze since objects were last unfrozen happened."""
    foreign: bool = False
    """Whether the process freezes objects itself: then this freezer does nothing."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def call(self) -> None:
        """Count a call made in a scope; freeze every `every` calls."""
        self.calls += 1  # (a count lost to a race between threads only delays a freeze)
        if self.calls < self.every or self.foreign:
            return
        with self._lock:
            if self.calls < self.every:
                return
            self.calls = 0
            if not self.enabled():
                return
            if not self.ours and self.frozen_count():
                self.foreign = True  # someone else's freeze: not ours to undo
                return
            now = self.clock()
            if self.ours and now - self.since >= self.hold:  # collect what died meanwhile
                self.unfreeze()
                self.collect()
                self.ours = False
            if not self.ours:
                self.since = now
            self.freeze()
            self.ours = True

    def scopes_closed(self) -> None:
        """The last open scope closed: unfreeze what this freezer froze."""
        if not self.ours:
            return
        with self._lock:
            if self.ours:
                self.ours = False
                self.calls = 0
                self.unfreeze()

    def forget(self) -> None:
        """In a forked child: a fresh lock; what the parent froze stays frozen until the
        child's own scopes close."""
        self._lock = threading.Lock()


freezer = Freezer()
os.register_at_fork(after_in_child=freezer.forget)
