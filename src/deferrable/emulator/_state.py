"""The state one emulator's routes share: clock, counters, configuration and storage."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._cache import PromptCache
from ._clock import Clock
from ._config import FLEX_MODELS, Faults, HttpFault, Limits, Quirks
from ._responder import Responder
from ._stats import Stats

log = logging.getLogger("deferrable.emulator")


@dataclass
class EmulatorState:
    """Everything the provider routes need; one instance per running emulator."""

    responder: Responder
    faults: Faults
    quirks: Quirks
    limits: Limits
    data_dir: Path
    batch_latency: float = 0.0
    flex_latency: float = 0.0
    """Seconds a live flex request takes before it is answered."""
    background_latency: float = 0.0
    """Seconds from a background response's creation to its end (queued for the first
    half, in progress for the second)."""
    flex_models: frozenset[str] = FLEX_MODELS
    clock: Clock = field(default_factory=Clock)
    stats: Stats = field(default_factory=Stats)
    cache: PromptCache = field(default_factory=PromptCache)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _fault_lock: threading.Lock = field(default_factory=threading.Lock)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background on the server's loop, logging a crash."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("emulator background task failed", exc_info=task.exception())

    async def cancel_tasks(self) -> None:
        """Stop all background work (at shutdown)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def take_http_fault(self, route: str) -> HttpFault | None:
        """The next injected HTTP fault for `route`, consuming one of its uses."""
        with self._fault_lock:
            for fault in self.faults.http:
                if fault.matches(route):
                    fault.times -= 1
                    return fault
        return None

    def take_holds(self, route: str) -> tuple[float, float]:
        """Seconds to wait (before, after) handling a request on `route`, consuming one use
        of every matching hold."""
        before = after = 0.0
        with self._fault_lock:
            for hold in self.faults.holds:
                if hold.matches(route):
                    if hold.times is not None:
                        hold.times -= 1
                    before += hold.before
                    after += hold.after
        return before, after

    def fails_by_rate(self, key: str) -> bool:
        """Whether the request identified by `key` is one of the `error_rate` share."""
        rate = self.faults.error_rate
        if rate <= 0:
            return False
        digest = hashlib.sha256(f"{self.faults.seed}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < rate

    def in_share(self, key: str, share: float, salt: str) -> bool:
        """Whether `key` falls in a deterministic `share` of requests (cancel races, expiry)."""
        if share <= 0:
            return False
        digest = hashlib.sha256(f"{self.faults.seed}:{salt}:{key}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < share
