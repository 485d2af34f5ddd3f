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
import os
import random
import shlex
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from pathlib import Path
from typing import Any, TypeVar

from asyncio_throttle.throttler import Throttler

from .._deferred import Deferred
from .._errors import BatchSubmissionError, DeferrableError, MissingResultError
from .._options import Options
from ..journal import OPEN_STATES, BatchRecord, Journal, NullJournal, is_alive, journal_for, process_token
from ._buffer import Buffer, GroupLimits
from ._follow import Follow
from ._lifecycle import (
    READ_ATTEMPTS,
    Act,
    Action,
    Created,
    CreateFailed,
    Done,
    Event,
    Found,
    GiveUp,
    Lifecycle,
    LookupFailed,
    NotFound,
    Pace,
    Polled,
    PollFailed,
    Rejected,
    ResultsRead,
)
from ._retry import create_failure
from ._settle import Settler
from ._target import Call, RequestRejectedError, Target
from ._work import belongs, plan_launch, resolve_from, serve

log = logging.getLogger("deferrable")
T = TypeVar("T")

_BATCH_CALLS_PER_SECOND = 20
_INBOX_DELAY = 0.01
"""Seconds the engine lets submissions accumulate before taking them: one wake-up per
burst instead of one per call keeps the engine thread from contending for the GIL."""
_EXIT_GRACE = 10.0
_POLL_FAILURES_TOLERATED = 8


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
        self._submitting: set[asyncio.Task[Any]] = set()
        """Batches being planned and created."""
        self._tracking: set[asyncio.Task[Any]] = set()
        """Batches being followed to their end."""
        self._finishing: set[asyncio.Task[Any]] = set()
        """Batches whose results are being delivered (a subset of `_tracking`)."""
        self._follows: dict[tuple[Path | None, str], Follow] = {}
        self._creating: set[tuple[Path | None, str]] = set()
        self._closed = False
        """Set at interpreter exit, once `close_out()` is done: batches are no longer
        followed (what is left is named for a rerun)."""

    # -- any thread ------------------------------------------------------------------

    def submit(self, target: Target, body: Any, size: int, options: Options,
               units: int = 1, site: str = "?") -> Deferred[Any]:
        """Buffer one call of `size` bytes and `units` units (see `Target.max_units`) made
        at `site`; the returned future resolves when its batch's result arrives."""
        future: Deferred[Any] = Deferred()
        self._enqueue(Call(target, body, future, options, site), size, units)
        return future

    def submit_async(self, target: Target, body: Any, size: int, options: Options,
                     units: int = 1, site: str = "?") -> asyncio.Future[Any]:
        """`submit()` for a coroutine: the future belongs to the caller's running loop."""
        future = asyncio.get_running_loop().create_future()
        self._enqueue(Call(target, body, future, options, site), size, units)
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

    def release_held(self, age: float, held: float) -> concurrent.futures.Future[int]:
        """Submit the groups held at least `held` seconds whose oldest call has waited
        `age`; the future resolves to the number of batches launched."""
        loop = self._running_loop()
        done: concurrent.futures.Future[int] = concurrent.futures.Future()

        def release() -> None:
            self._take_inbox()
            batches = self._buffer.waited(time.monotonic(), age, held)
            for batch in batches:
                self._launch(batch)
            self._rearm_timer()
            done.set_result(len(batches))

        loop.call_soon_threadsafe(release)
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
            try:
                limits = GroupLimits(
                    max_requests=max(1, min(call.options.max_batch_size, call.target.max_requests)),
                    max_bytes=max(1, min(call.options.max_batch_bytes, call.target.max_bytes)),
                    max_wait=call.options.max_wait, max_units=call.target.max_units)
                batches = self._buffer.add((call.target.key, call.options), call, size, limits,
                                           now, units)
            except Exception as error:  # this call alone fails; the others go on
                log.exception("deferrable: buffering a call failed")
                _fail([call], error)
                continue
            for batch in batches:
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
        """Submit `calls` as a batch, leaving out those cancelled while buffered."""
        calls = [call for call in calls if not call.future.done()]
        if calls:
            self._spawn(self._submitting, self._run_batch(calls))

    def _spawn(self, tasks: set[asyncio.Task[Any]], work: Coroutine[Any, Any, Any]) -> None:
        assert self._loop is not None
        task = self._loop.create_task(work)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run_batch(self, calls: list[Call]) -> None:
        """Plan a launch against the journal, then answer the calls it holds results for,
        attach those already in a batch, and submit the rest as a new batch (which is
        then followed by a task of its own)."""
        target, options = calls[0].target, calls[0].options
        try:
            journal = journal_for(options.store, enabled=options.journal)
            plan = await self._local(plan_launch, journal, target, calls)
        except Exception as error:
            _fail(calls, error)
            return
        follow = None
        if plan.token is not None:
            follow = Follow(journal, plan.token, target, options)
            self._follows[follow.key] = follow
            for index in plan.submit:
                follow.add(calls[index])
        for index, token in plan.attached:
            self._attach(journal, token, calls[index])
        if follow is None:
            return
        requests = {calls[i].custom_id or "": calls[i].body for i in plan.submit}
        life = Lifecycle(_pace(options), started=time.monotonic())
        self._creating.add(follow.key)
        try:
            action = await self._carry_out(follow, life, life.start(), requests, until_created=True)
        finally:
            self._creating.discard(follow.key)
        if isinstance(action, Act):  # the batch exists: followed by a task of its own
            log.debug("submitted batch %s with %d requests", life.batch_id, len(requests))
            self._spawn(self._tracking, self._carry_out(follow, life, action, requests))

    # -- carrying out a batch's life ---------------------------------------------------

    async def _carry_out(self, follow: Follow, life: Lifecycle, action: Action,
                         pending: dict[str, Any], *, until_created: bool = False) -> Action:
        """Do what `life` says for `follow`'s batch until it is done or gives up (or, with
        `until_created`, until the batch exists); returns the last action."""
        while isinstance(action, Act):
            if (until_created and life.batch_id is not None) or self._closed:
                return action
            if action.after > 0:
                await asyncio.sleep(action.after)
            if action.step == "create":
                event = await self._create(follow, pending)
            elif action.step == "look_for":
                event = await self._look_for(follow, pending)
            elif action.step == "poll":
                event = await self._poll(follow, life)
            else:
                event = await self._read(follow, life)
            action = life.on(event, time.monotonic())
            follow.batch_id = life.batch_id
        await self._conclude(follow, life, action)
        return action

    async def _create(self, follow: Follow, pending: dict[str, Any]) -> Event:
        """Create the batch of the `pending` requests and record its id. A request the
        provider rejects fails alone (the rest go again)."""
        journal, token = follow.journal, follow.token
        try:
            batch_id = await self._io(follow.target.submit, list(pending.items()), token)
        except RequestRejectedError as rejected:
            if rejected.custom_id not in pending:
                return self._create_failed(follow, rejected.error)
            del pending[rejected.custom_id]
            await self._record(journal.rejected, token, rejected.custom_id)
            _fail(follow.take(rejected.custom_id), rejected.error)
            return Rejected(len(pending))
        except Exception as error:
            return self._create_failed(follow, error)
        except BaseException as interrupted:  # the journal keeps the batch as being created
            _fail([call for calls in follow.close().values() for call in calls], interrupted)
            self._forget(follow)
            raise
        await self._record(journal.submitted, token, batch_id)
        follow.expected = len(pending)
        return Created(batch_id)

    @staticmethod
    def _create_failed(follow: Follow, error: BaseException) -> CreateFailed:
        follow.last_error = error
        log.warning("creating batch %s failed (%r)", follow.token, error)
        return create_failure(error)

    async def _look_for(self, follow: Follow, pending: dict[str, Any]) -> Event:
        """Look for the batch a create call without an answer may have made."""
        journal, token = follow.journal, follow.token
        try:
            record = await self._local(journal.batch, token)
            found = await self._recover(follow, record) if record is not None else None
        except Exception:
            log.warning("looking for batch %s after its create call failed did not work; "
                        "a rerun looks again", token, exc_info=True)
            return LookupFailed()
        if found is None:
            return NotFound()
        await self._record(journal.submitted, token, found)
        follow.expected = len(pending)
        return Found(found)

    async def _poll(self, follow: Follow, life: Lifecycle) -> Event:
        """Whether the batch has ended; an ended batch is finishing from here on."""
        try:
            ended = await self._io(follow.target.poll, life.batch_id)
        except Exception as error:
            follow.last_error = error
            if not self._closed:
                log.warning("polling batch %s failed (%r); polling on until it answers",
                            life.batch_id, error)
            return PollFailed()
        if ended:
            # Registered before any call is settled, so that `finish_cleanups()` after the
            # last result still sees it.
            task = asyncio.current_task()
            assert task is not None
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)
        return Polled(ended)

    async def _read(self, follow: Follow, life: Lifecycle) -> Event:
        """Read the results stream, resolving each call as its line arrives (lines read
        by an earlier pass are skipped)."""
        broken = False
        again: list[Call] = []
        try:
            record = await self._local(follow.journal.batch, follow.token)
            follow.cancelled_by_user = record is not None and record.cancelled
            await self._io(resolve_from, follow, life.batch_id, again)
        except Exception as error:
            follow.last_error, broken = error, True
            log.warning("reading the results of batch %s broke (%r)", life.batch_id, error)
        finally:
            self._resubmit(again, life.batch_id)
        missing = follow.missing_lines()
        if missing:
            log.warning("the results of batch %s are %d line(s) short; reading again",
                        life.batch_id, missing)
        return ResultsRead(missing, broken)

    def _resubmit(self, calls: list[Call], batch_id: str | None) -> None:
        """Send calls whose result was transient again, in later batches."""
        if not calls:
            return
        log.info("resubmitting %d request(s) of batch %s whose results were transient "
                 "(expired, cancelled, rate-limited or overloaded)", len(calls), batch_id)
        groups: dict[tuple[Any, Options], list[Call]] = {}
        for call in calls:
            groups.setdefault((call.target.key, call.options), []).append(call)
        for group in groups.values():
            self._launch(group)

    async def _conclude(self, follow: Follow, life: Lifecycle, action: Done | GiveUp) -> None:
        """Deliver what is left and clean up (`Done`), or fail the calls still waiting."""
        journal, token, batch_id = follow.journal, follow.token, life.batch_id
        if isinstance(action, Done):
            await self._record(journal.collected, token)
            await self._finish(follow, MissingResultError(
                f"batch {batch_id} ended without a result for this request"))
            if follow.options.delete_files:
                try:
                    await self._io(follow.target.discard, batch_id)
                except Exception as failed:
                    log.warning("deleting the files of batch %s failed: %r", batch_id, failed)
            return
        error = follow.last_error
        if not action.submitted:
            if action.reason != "lookup_failed":
                await self._record(journal.failed, token)
            _fail([call for calls in follow.close().values() for call in calls],
                  error or BatchSubmissionError(f"batch {token} could not be created"))
            self._forget(follow)
            return
        failure: DeferrableError
        if action.reason == "outage":
            failure = BatchSubmissionError(
                f"batch {batch_id} could not be followed to its end: polls failed until past "
                f"its expiry ({error!r}); a rerun follows it again")
        else:
            failure = MissingResultError(
                f"batch {batch_id} ended, but its results stayed incomplete after "
                f"{READ_ATTEMPTS} reads ({follow.missing_lines()} line(s) missing); a rerun "
                "reads them again, paying nothing twice")
        failure.__cause__ = error
        await self._finish(follow, failure)

    def _attach(self, journal: Journal | NullJournal, token: str, call: Call) -> None:
        """Make `call` wait on batch `token` (recorded earlier, perhaps by another
        process), following that batch unless this process already does."""
        follow = self._follows.get((journal.path, token))
        if follow is not None and follow.add(call):
            return
        follow = Follow(journal, token, call.target, call.options)
        follow.add(call)
        self._follows[follow.key] = follow
        self._spawn(self._tracking, self._follow_recorded(follow))

    async def _follow_recorded(self, follow: Follow) -> None:
        """Follow a batch known from the journal: wait for its id (recovering it when its
        creator died first), then track it; calls of a batch that is gone go again."""
        try:
            batch_id = await self._recorded_batch_id(follow)
        except Exception as error:
            await self._finish(follow, error)
            return
        if batch_id is None:
            await self._finish(follow, None)
            return
        follow.batch_id = batch_id
        life = Lifecycle(_pace(follow.options), started=time.monotonic(), batch_id=batch_id)
        await self._carry_out(follow, life, life.start(), {})

    async def _recorded_batch_id(self, follow: Follow) -> str | None:
        """The id of batch `follow.token`, once known; None when that batch is over or
        never came to be."""
        journal, token, options = follow.journal, follow.token, follow.options
        delay = options.poll_interval
        while True:
            record = await self._local(journal.batch, token)
            if record is None or record.state not in OPEN_STATES:
                return None
            if record.batch_id is not None:
                return record.batch_id
            idle = (follow.key not in self._creating if record.owner == process_token()
                    else not is_alive(record.owner))
            if idle and await self._local(journal.take_over, token, record.owner):
                found = await self._recover(follow, record)
                if found is None:
                    await self._local(journal.lose, token)
                    log.warning("batch %s was never created; its requests go again", token)
                    return None
                await self._local(journal.submitted, token, found)
                return found
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 1.5, options.max_poll_interval)

    async def _recover(self, follow: Follow, record: BatchRecord) -> str | None:
        """The batch a create call made although its answer never came back, or None."""
        target = follow.target
        candidates = await self._io(target.recover, record.token, record.created_at,
                                    record.requests)
        for candidate in candidates:
            if target.tags_batches:
                return candidate
            await self._wait_for_end(target, candidate, follow.options)
            if await self._io(belongs, target, candidate, follow.journal, record.token):
                return candidate
        return None

    async def _finish(self, follow: Follow, error: BaseException | None) -> None:
        """Stop following: calls still waiting get their result from the journal (another
        process may have read it), else fail with `error`, or go again when it is None."""
        rest = follow.close()
        self._forget(follow)
        if not rest:
            return
        found: dict[str, Any] = {}
        try:
            found = await self._local(follow.journal.results, follow.token, list(rest),
                                      follow.options.reuse_for)
        except Exception:
            log.warning("reading results of batch %s from the journal failed", follow.token,
                        exc_info=True)
        answered = [(call, found[cid]) for cid, calls in rest.items() if cid in found
                    for call in calls]
        if answered:
            await self._local(serve, follow.target, answered)
        remaining = [call for cid, calls in rest.items() if cid not in found for call in calls]
        if not remaining:
            return
        if error is not None:
            _fail(remaining, error)
            return
        groups: dict[tuple[Any, Options], list[Call]] = {}
        for call in remaining:
            groups.setdefault((call.target.key, call.options), []).append(call)
        for calls in groups.values():
            self._launch(calls)

    def _forget(self, follow: Follow) -> None:
        if self._follows.get(follow.key) is follow:
            del self._follows[follow.key]

    def close_out(self, grace: float = _EXIT_GRACE) -> list[str]:
        """At exit: submit every buffered call, wait up to `grace` seconds for batches
        being created and for those delivering results, and return one line for each
        batch that still holds calls of this process (how to collect or cancel it)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return []

        async def close() -> list[str]:
            self._take_inbox()
            for batch in self._buffer.drain():
                self._launch(batch)
            self._rearm_timer()
            ending = [*self._submitting, *self._finishing]
            if ending:
                await asyncio.wait(ending, timeout=grace)
            return [line for follow in self._follows.values()
                    if (line := _left_behind(follow)) is not None]

        try:
            return asyncio.run_coroutine_threadsafe(close(), loop).result(grace + 5)
        except Exception:  # the engine's loop is gone or stuck: nothing more to say
            log.debug("closing out the engine failed", exc_info=True)
            return []
        finally:
            self._closed = True

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

    async def _io(self, function: Callable[..., T], *args: Any) -> T:
        """Run a provider call in a worker thread, within the rate limit."""
        assert self._throttler is not None
        async with self._throttler:
            return await asyncio.to_thread(function, *args)

    async def _local(self, function: Callable[..., T], *args: Any) -> T:
        """Run local blocking work (the journal) in a worker thread."""
        return await asyncio.to_thread(function, *args)

    async def _record(self, function: Callable[..., None], *args: Any) -> None:
        """Write to the journal; a failure is logged, not raised: the batch goes on, and
        a rerun finds less in the journal (a batch id it then looks for again)."""
        try:
            await asyncio.to_thread(function, *args)
        except Exception:
            log.exception("writing the journal failed (%s)", getattr(function, "__name__", ""))


def _pace(options: Options) -> Pace:
    return Pace(options.poll_interval, options.max_poll_interval)


def _left_behind(follow: Follow) -> str | None:
    """The line telling what became of the calls still waiting on `follow`'s batch at
    exit, or None when none waits."""
    waiting = follow.waiting()
    if not waiting:
        return None
    calls = f"{waiting} call{'s' if waiting != 1 else ''} of this run"
    if not follow.journal.durable:
        where = f"batch {follow.batch_id}" if follow.batch_id else "a batch being created"
        return (f"deferrable: {where} ({follow.target.provider}) still holds {calls}; they "
                "are lost: with journal=False nothing records them, and a rerun pays for "
                "them again")
    if follow.batch_id is None:
        return (f"deferrable: {calls} were still being submitted at exit (batch "
                f"{follow.token} in the journal); rerun this script to collect them "
                "(nothing is paid twice)")
    store = f" --store {shlex.quote(os.fspath(follow.options.store))}" if follow.options.store else ""
    return (f"deferrable: batch {follow.batch_id} ({follow.target.provider}) is still "
            f"running with {calls} waiting; rerun this script to collect them (nothing is "
            f"paid twice) or cancel it: deferrable cancel {follow.batch_id}{store}")


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


def _forget_after_fork() -> None:
    """In a forked child, whose copy of the engine has no thread: start afresh on use
    (the parent's calls stay the parent's)."""
    global _engine, _engine_lock
    _engine = None
    _engine_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
