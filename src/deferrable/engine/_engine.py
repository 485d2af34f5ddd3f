"""The engine's runtime: one background thread with its own event loop buffers calls,
submits batches, polls them and resolves each call's future as its result line arrives.

Being on its own loop, the engine serves sync code, async code on any loop, and scripts
that call `asyncio.run()` more than once alike. It knows no provider: a `Target`
(supplied by a provider adapter) does every wire operation, through the blocking SDK
client, in worker threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from asyncio_throttle.throttler import Throttler

from .._deferred import Deferred
from .._errors import BatchSubmissionError, MissingResultError
from .._options import Options
from ._buffer import Buffer, GroupLimits
from ._settle import Settler, Waiter

log = logging.getLogger("deferrable")
T = TypeVar("T")

Outcome = tuple[Any, BaseException | None]
"""A result line, decoded: (value, None) or (None, the exception the call raises)."""

_BATCH_CALLS_PER_SECOND = 20
_INBOX_DELAY = 0.01
"""Seconds the engine lets submissions accumulate before taking them: one wake-up per
burst instead of one per call keeps the engine thread from contending for the GIL."""
_RESULT_READ_ATTEMPTS = 3
_SETTLE_CHUNK = 512
_EXIT_GRACE = 10.0
_POLL_FAILURES_TOLERATED = 8


class Target(Protocol):
    """One batch destination (a provider, client identity and endpoint): the engine's
    only view of a provider. Its methods block; the engine runs them in worker threads."""

    @property
    def key(self) -> Hashable:
        """Identity of the destination: calls with equal keys may share a batch."""

    @property
    def max_requests(self) -> int:
        """The provider's limit of requests per batch."""

    @property
    def max_bytes(self) -> int:
        """The provider's limit of bytes per batch."""

    @property
    def max_units(self) -> int | None:
        """The provider's limit of units (its own per-call count) per batch, if any."""

    def submit(self, requests: list[tuple[str, Any]]) -> str:
        """Create a batch of (custom_id, body) requests; returns its id."""

    def poll(self, batch_id: str) -> bool:
        """Whether the batch has ended."""

    def results(self, batch_id: str) -> Iterator[tuple[str, Outcome]]:
        """Stream the ended batch's results as (custom_id, outcome)."""

    def discard(self, batch_id: str) -> None:
        """Delete what the batch left at the provider (e.g. files) once its results are
        read; called only when the `delete_files` option holds."""


class RequestRejectedError(Exception):
    """Raised by `Target.submit` when the provider refused the whole batch because of one
    request: the engine fails that call with `error` and submits the rest again."""

    def __init__(self, custom_id: str, error: BaseException) -> None:
        super().__init__(f"request {custom_id} rejected: {error}")
        self.custom_id = custom_id
        self.error = error


@dataclass(eq=False)
class Call:
    """One deferred call waiting for its batch."""

    target: Target
    body: Any
    future: Waiter
    options: Options


class Engine:
    """The process's batching engine; started on first use, shared by every scope."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: deque[tuple[Call, int, int]] = deque()
        self._wake_scheduled = False
        self._buffer: Buffer[Call] = Buffer()
        self._timer: asyncio.TimerHandle | None = None
        self._throttler: Throttler | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self._finishing: set[asyncio.Task[None]] = set()
        self._sequence = 0

    # -- any thread ------------------------------------------------------------------

    def submit(self, target: Target, body: Any, size: int, options: Options,
               units: int = 1) -> Deferred[Any]:
        """Buffer one call of `size` bytes and `units` units (see `Target.max_units`); the
        returned future resolves when its batch's result arrives."""
        future: Deferred[Any] = Deferred()
        self._enqueue(Call(target, body, future, options), size, units)
        return future

    def submit_async(self, target: Target, body: Any, size: int, options: Options,
                     units: int = 1) -> asyncio.Future[Any]:
        """`submit()` for a coroutine: the future belongs to the caller's running loop."""
        future = asyncio.get_running_loop().create_future()
        self._enqueue(Call(target, body, future, options), size, units)
        return future

    def _enqueue(self, call: Call, size: int, units: int) -> None:
        loop = self._running_loop()
        with self._lock:
            self._inbox.append((call, size, units))
            wake = not self._wake_scheduled
            self._wake_scheduled = True
        if wake:
            loop.call_soon_threadsafe(loop.call_later, _INBOX_DELAY, self._take_inbox)

    def flush(self) -> concurrent.futures.Future[int]:
        """Submit everything buffered now; the future resolves (to the number of batches
        launched) once their create calls have been started."""
        loop = self._running_loop()
        done: concurrent.futures.Future[int] = concurrent.futures.Future()

        def drain() -> None:
            self._take_inbox()
            batches = self._buffer.drain()
            for batch in batches:
                self._launch(batch)
            self._rearm_timer()
            done.set_result(len(batches))

        loop.call_soon_threadsafe(drain)
        return done

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._loop is None:
                ready = threading.Event()
                thread = threading.Thread(target=self._serve, args=(ready,),
                                          name="deferrable-engine", daemon=True)
                thread.start()
                ready.wait()
            assert self._loop is not None
            return self._loop

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(
            max_workers=16, thread_name_prefix="deferrable-io"))
        self._loop = loop
        self._throttler = Throttler(rate_limit=_BATCH_CALLS_PER_SECOND, period=1.0)
        # Run at exit before `concurrent.futures` stops its executors (its own hook is
        # registered the same way, earlier, and these hooks run in reverse order).
        threading._register_atexit(self.finish_cleanups)  # type: ignore[attr-defined]
        ready.set()
        loop.run_forever()

    # -- the engine's loop -----------------------------------------------------------

    def _take_inbox(self) -> None:
        with self._lock:
            entries = list(self._inbox)
            self._inbox.clear()
            self._wake_scheduled = False
        now = time.monotonic()
        for call, size, units in entries:
            limits = GroupLimits(
                max_requests=max(1, min(call.options.max_batch_size, call.target.max_requests)),
                max_bytes=max(1, min(call.options.max_batch_bytes, call.target.max_bytes)),
                max_wait=call.options.max_wait, max_units=call.target.max_units)
            for batch in self._buffer.add((call.target.key, call.options), call, size, limits,
                                          now, units):
                self._launch(batch)
        self._rearm_timer()

    def _rearm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self._buffer.next_due()
        if due is not None:
            assert self._loop is not None
            delay = max(0.0, due - time.monotonic())
            self._timer = self._loop.call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        for batch in self._buffer.due(time.monotonic()):
            self._launch(batch)
        self._rearm_timer()

    def _launch(self, calls: list[Call]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(self._run_batch(calls))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _run_batch(self, calls: list[Call]) -> None:
        target, options = calls[0].target, calls[0].options
        pending: dict[str, Call] = {}
        for call in calls:
            self._sequence += 1
            pending[f"call-{self._sequence}"] = call
        batch_id = await self._submit(target, pending)
        if batch_id is None:
            return
        log.debug("submitted batch %s with %d requests", batch_id, len(pending))
        try:
            await self._wait_for_end(target, batch_id, options)
            # From here on the batch is finishing: registered before any call is settled,
            # so that `finish_cleanups()` after the last result still sees it.
            task = asyncio.current_task()
            assert task is not None
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)
            await self._collect(target, batch_id, pending)
        except Exception as error:
            _fail(pending.values(), BatchSubmissionError(
                f"batch {batch_id} could not be followed to its end: {error!r}"), cause=error)
            return
        _fail(pending.values(), MissingResultError(
            f"batch {batch_id} ended without a result for this request"))
        if options.delete_files:
            try:
                await self._io(target.discard, batch_id)
            except Exception as error:
                log.warning("deleting the files of batch %s failed: %r", batch_id, error)

    def finish_cleanups(self, timeout: float = _EXIT_GRACE) -> None:
        """Wait up to `timeout` seconds for batches whose results are being delivered to
        finish, file deletions included (run at interpreter exit, so that a script ending
        at its last result leaves no files behind)."""
        loop, finishing = self._loop, list(self._finishing)
        if loop is None or not finishing or loop.is_closed():
            return

        async def finish() -> None:
            await asyncio.wait(finishing, timeout=timeout)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(finish(), loop).result(timeout + 1)

    async def _submit(self, target: Target, pending: dict[str, Call]) -> str | None:
        """Create the batch; a request the provider rejects fails alone and the rest go
        again. Returns the batch id, or None when no call is left to submit."""
        while pending:
            try:
                return await self._io(target.submit,
                                      [(cid, call.body) for cid, call in pending.items()])
            except RequestRejectedError as rejected:
                culprit = pending.pop(rejected.custom_id, None)
                if culprit is None:
                    _fail(pending.values(), rejected.error)
                    return None
                _fail([culprit], rejected.error)
            except BaseException as error:
                _fail(pending.values(), error)
                if not isinstance(error, Exception):
                    raise
                return None
        return None

    async def _wait_for_end(self, target: Target, batch_id: str, options: Options) -> None:
        delay = options.poll_interval
        failures = 0
        while True:
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            try:
                if await self._io(target.poll, batch_id):
                    return
                failures = 0
            except Exception:
                failures += 1
                if failures > _POLL_FAILURES_TOLERATED:
                    raise
                log.warning("polling batch %s failed; retrying", batch_id, exc_info=True)
            delay = min(delay * 1.5, options.max_poll_interval)

    async def _collect(self, target: Target, batch_id: str, pending: dict[str, Call]) -> None:
        """Read the results, resolving each call as its line arrives; a broken stream is
        read again, skipping what was already resolved."""
        for attempt in range(1, _RESULT_READ_ATTEMPTS + 1):
            try:
                await self._io(_resolve_from, target.results(batch_id), pending)
                return
            except Exception:
                if attempt == _RESULT_READ_ATTEMPTS:
                    raise
                log.warning("reading results of batch %s failed; reading again", batch_id,
                            exc_info=True)

    async def _io(self, function: Callable[..., T], *args: Any) -> T:
        assert self._throttler is not None
        async with self._throttler:
            return await asyncio.to_thread(function, *args)


def _resolve_from(results: Iterator[tuple[str, Outcome]], pending: dict[str, Call]) -> None:
    """Settle each call as its line arrives (asyncio waiters in chunks)."""
    settler = Settler()
    try:
        for count, (custom_id, (value, error)) in enumerate(results, 1):
            call = pending.pop(custom_id, None)
            if call is not None:
                settler.settle(call.future, value, error)
            if count % _SETTLE_CHUNK == 0:
                settler.dispatch()
    finally:
        settler.dispatch()


def _fail(calls: Iterable[Call], error: BaseException, cause: BaseException | None = None) -> None:
    if cause is not None:
        error.__cause__ = cause
    settler = Settler()
    for call in calls:
        settler.settle(call.future, None, error)
    settler.dispatch()


_engine: Engine | None = None
_engine_lock = threading.Lock()


def engine() -> Engine:
    """The process's engine."""
    global _engine
    if _engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = Engine()
    return _engine
