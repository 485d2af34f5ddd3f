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

from .. import _progress, _telemetry
from .._deferred import Deferred
from .._errors import BatchSubmissionError, DeadlineExceededError, DeferrableError, MissingResultError
from .._fork import quiet
from .._options import Options, deadline_at
from .._slot import Slot
from ..journal import OPEN_STATES, BatchRecord, JournalLike, is_alive, journal_for, process_token
from ._buffer import Buffer, GroupLimits
from ._follow import Follow
from ._lanes import choose_lane
from ._lifecycle import (
    READ_ATTEMPTS,
    Act,
    Action,
    CancelAnswered,
    Created,
    CreateFailed,
    DeadlineNear,
    DeadlinePassed,
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
    Rescue,
    ResultsRead,
    Verified,
)
from ._retry import create_failure
from ._settle import Settler
from ._target import Call, RequestRejectedError, RescueLive, SendFlex, Target
from ._work import belongs, plan_launch, resolve_from, serve

log = logging.getLogger("deferrable")
T = TypeVar("T")
SyncWaiter = Deferred[Any] | Slot[Any]
"""What a sync caller waits on: a `Slot` inside a sync `@deferrable` call, else a `Deferred`."""

_BATCH_CALLS_PER_SECOND = 20
_INBOX_DELAY = 0.01
"""Seconds the engine lets submissions accumulate before taking them: one wake-up per
burst instead of one per call keeps the engine thread from contending for the GIL."""
_EXIT_GRACE = 10.0
PROGRESS_LOG_EVERY = 300.0
"""Seconds between the INFO lines that tell a running batch's progress."""


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
        self._board = _progress.Board()
        self._closed = False
        """Set at interpreter exit, once `close_out()` is done: batches are no longer
        followed (what is left is named for a rerun)."""

    # -- any thread ------------------------------------------------------------------

    def submit(self, target: Target, body: Any, size: int, options: Options,
               units: int = 1, site: str = "?", future: SyncWaiter | None = None
               ) -> SyncWaiter:
        """Buffer one call of `size` bytes and `units` units (see `Target.max_units`) made
        at `site`; `future` (a new `Deferred` when None) resolves when its batch's result
        arrives."""
        if future is None:
            future = Deferred()
        self._enqueue(_call(target, body, future, options, site), size, units)
        return future

    def submit_async(self, target: Target, body: Any, size: int, options: Options,
                     units: int = 1, site: str = "?") -> asyncio.Future[Any]:
        """`submit()` for a coroutine: the future belongs to the caller's running loop."""
        future = asyncio.get_running_loop().create_future()
        self._enqueue(_call(target, body, future, options, site), size, units)
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
        return self._launch_on_loop(lambda: self._buffer.drain())

    def release_held(self, age: float, held: float) -> concurrent.futures.Future[int]:
        """Submit the groups held at least `held` seconds whose oldest call has waited
        `age`; the future resolves to the number of batches launched."""
        return self._launch_on_loop(lambda: self._buffer.waited(time.monotonic(), age, held))

    def _launch_on_loop(self, taken: Callable[[], list[list[Call]]]) -> concurrent.futures.Future[int]:
        """On the engine's loop: take the inbox, then launch the batches `taken()` closes;
        the future resolves to how many."""
        loop = self._running_loop()
        done: concurrent.futures.Future[int] = concurrent.futures.Future()

        def launch() -> None:
            self._take_inbox()
            batches = taken()
            for batch in batches:
                self._launch(batch)
            self._rearm_timer()
            done.set_result(len(batches))

        loop.call_soon_threadsafe(launch)
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
        late: list[Call] = []
        for call, size, units in entries:
            max_wait = call.options.max_wait
            if call.rescue_at is not None:
                if call.rescue_at <= now:  # too near its deadline for any batch
                    late.append(call)
                    continue
                max_wait = min(max_wait, (call.rescue_at - now) / 2)  # a batch has time
            try:
                limits = GroupLimits(
                    max_requests=max(1, min(call.options.max_batch_size, call.target.max_requests)),
                    max_bytes=max(1, min(call.options.max_batch_bytes, call.target.max_bytes)),
                    max_wait=max_wait, max_units=call.target.max_units)
                batches = self._buffer.add((call.target.key, call.options), call, size, limits,
                                           now, units)
            except Exception as error:  # this call alone fails; the others go on
                log.exception("deferrable: buffering a call failed")
                _fail([call], error)
                continue
            for batch in batches:
                self._launch(batch)
        if late:
            self._rescue(late, None, "was made too near its deadline for a batch")
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
        if calls and calls[0].options.lane == "auto" and calls[0].target.offers_flex:
            calls = self._send_flex(calls)
        if calls:
            self._spawn(self._submitting, self._run_batch(calls))

    @staticmethod
    def _send_flex(calls: list[Call]) -> list[Call]:
        """Settle the calls of a ``lane="auto"`` group that go flex with the signal that
        sends them so; returns the others."""
        now = time.monotonic()
        batch: list[Call] = []
        flex: list[Call] = []
        for call in calls:
            left = call.rescue_at - now if call.rescue_at is not None else None
            lane = choose_lane("auto", offers_flex=True, group_size=len(calls), seconds_left=left)
            (flex if lane == "flex" else batch).append(call)
        if flex:
            log.info("deferrable: %d call(s) go flex (lane='auto')", len(flex))
            settler = Settler()
            for call in flex:
                settler.settle(call.future, None, SendFlex())
            settler.dispatch()
        return batch

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
            log.info("submitted batch %s (%s, %d requests)", life.batch_id, target.provider,
                     len(requests))
            self._show(follow, len(requests))
            self._spawn(self._tracking, self._carry_out(follow, life, action, requests))

    # -- carrying out a batch's life ---------------------------------------------------

    async def _carry_out(self, follow: Follow, life: Lifecycle, action: Action,
                         pending: dict[str, Any], *, until_created: bool = False) -> Action:
        """Do what `life` says for `follow`'s batch until it is done or gives up (or, with
        `until_created`, until the batch exists); returns the last action."""
        while isinstance(action, Act):
            if (until_created and life.batch_id is not None) or self._closed:
                return action
            event = (await self._wait(follow, life, action.after)
                     or await self._step(action, follow, life, pending))
            action = life.on(event, time.monotonic())
            follow.batch_id = life.batch_id
            follow.rescuing = life.rescuing
            if follow.trace is None and life.batch_id is not None:
                follow.span, context = _telemetry.batch_started(
                    follow.target.provider, life.batch_id, follow.expected or follow.waiting(),
                    created=follow.expected is not None)
                follow.trace = (life.batch_id, context)
        self._board.end(follow.key)
        _telemetry.batch_ended(follow.span, "rescued" if isinstance(action, Rescue) else
                               "done" if isinstance(action, Done) else action.reason)
        if isinstance(action, Rescue):
            await self._rescue_follow(follow, life)
        else:
            await self._conclude(follow, life, action)
        return action

    def _show(self, follow: Follow, total: int) -> None:
        """Put the batch on the terminal's progress display, if there is one."""
        if _progress.wanted(follow.options.progress) and follow.batch_id is not None:
            self._board.show(follow.key, follow.target.provider, follow.batch_id, total)

    async def _step(self, action: Act, follow: Follow, life: Lifecycle,
                    pending: dict[str, Any]) -> Event:
        """Carry out one step of the batch's life; what happened."""
        if action.step == "create":
            return await self._create(follow, pending)
        if action.step == "look_for":
            return await self._look_for(follow, pending)
        if action.step == "poll":
            return await self._poll(follow, life)
        if action.step == "cancel":
            return await self._cancel(follow, life)
        if action.step == "verify":
            return await self._verify(follow, life)
        return await self._read(follow, life)

    async def _wait(self, follow: Follow, life: Lifecycle,
                    seconds: float) -> DeadlineNear | DeadlinePassed | None:
        """Wait `seconds` before the next step, unless a waiting call's rescue time (or,
        once rescuing, its deadline) comes first: then that event."""
        rescue_at, deadline = follow.moments()
        moment = None if life.overdue else deadline if life.rescuing else rescue_at
        if moment is None:
            if seconds > 0:
                await asyncio.sleep(seconds)
            return None
        left = moment - time.monotonic()
        if left > seconds:
            if seconds > 0:
                await asyncio.sleep(seconds)
            return None
        if left > 0:
            await asyncio.sleep(left)
        return DeadlinePassed() if life.rescuing else DeadlineNear()

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
        await self._record(journal.submitted, token, found[0])
        follow.expected = len(pending)
        return Found(*found)

    async def _poll(self, follow: Follow, life: Lifecycle) -> Event:
        """Whether the batch has ended; an ended batch is finishing from here on."""
        try:
            status = await self._io(follow.target.poll, life.batch_id)
        except Exception as error:
            follow.last_error = error
            gone = getattr(error, "status_code", None) == 404
            if not self._closed:
                log.warning("polling batch %s failed (%r); %s", life.batch_id, error,
                            "asking again to confirm it is gone" if gone
                            else "polling on until it answers")
            return PollFailed(gone=gone)
        self._board.update(follow.key, done=status.done, total=status.total)
        now = time.monotonic()
        if status.ended:
            log.info("batch %s ended after %s (%d/%d requests done); reading its results",
                     life.batch_id, _duration(now - follow.started), status.done, status.total)
        elif now - follow.logged_progress >= PROGRESS_LOG_EVERY:
            follow.logged_progress = now
            log.info("batch %s: %d/%d requests done after %s", life.batch_id, status.done,
                     status.total, _duration(now - follow.started))
        if status.ended:
            # Registered before any call is settled, so that `finish_cleanups()` after the
            # last result still sees it.
            task = asyncio.current_task()
            assert task is not None
            self._finishing.add(task)
            task.add_done_callback(self._finishing.discard)
        return Polled(status.ended)

    async def _verify(self, follow: Follow, life: Lifecycle) -> Event:
        """Check an adopted batch by its first result line."""
        try:
            ours = await self._io(belongs, follow.target, life.batch_id, follow.journal,
                                  follow.token)
        except Exception as error:
            follow.last_error = error
            log.warning("checking batch %s failed (%r); trying again", life.batch_id, error)
            return PollFailed()
        if not ours:
            log.warning("batch %s, adopted for batch %s whose create call got no answer, "
                        "holds other requests: the create was lost, its calls go again",
                        life.batch_id, follow.token)
        return Verified(ours)

    async def _cancel(self, follow: Follow, life: Lifecycle) -> Event:
        """Cancel the batch at a deadline (what finished before stays readable)."""
        log.info("deadline near: cancelling batch %s (%d call(s) waiting); what finished "
                 "is read, the rest rescued", life.batch_id, follow.waiting())
        try:
            await self._io(follow.target.cancel, life.batch_id)
        except Exception as error:  # it may have ended meanwhile: polling tells
            log.warning("cancelling batch %s failed (%r); following it to its end",
                        life.batch_id, error)
            return CancelAnswered(ok=False)
        return CancelAnswered(ok=True)

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
            self._resubmit(again, life.batch_id, follow)
            self._board.update(follow.key, saved=follow.saved_usd)
        missing = follow.missing_lines()
        if missing:
            log.warning("the results of batch %s are %d line(s) short; reading again",
                        life.batch_id, missing)
        return ResultsRead(missing, broken)

    def _resubmit(self, calls: list[Call], batch_id: str | None, follow: Follow) -> None:
        """Send calls whose result was transient (or which a deadline's cancel stopped)
        again, in later batches; those whose own rescue time is less than their margin
        away, too near for another batch, are rescued instead."""
        now = time.monotonic()
        due = [c for c in calls if _near_rescue(c, now)]
        if due:
            self._rescue(due, follow, "reached its deadline")
            calls = [c for c in calls if not _near_rescue(c, now)]
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
        """Deliver what is left and clean up (`Done`), or fail the calls still waiting
        (rescue them, once a deadline came)."""
        journal, token, batch_id = follow.journal, follow.token, life.batch_id
        if life.rescuing and (isinstance(action, Done) or action.submitted):
            if isinstance(action, Done):
                await self._record(journal.collected, token)
            await self._rescue_follow(follow, life)
            return
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
        if action.reason == "not_ours":
            await self._record(journal.lose, token)
            await self._finish(follow, None)
            return
        if action.reason == "gone":
            await self._record(journal.lose, token)
            self._send_again_once(follow, batch_id)
            return
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

    def _send_again_once(self, follow: Follow, batch_id: str | None) -> None:
        """The provider does not know the batch: its calls go in a new one, once (a call
        whose second batch is gone too fails)."""
        rest = follow.close()
        self._forget(follow)
        calls = [call for calls in rest.values() for call in calls if not call.future.done()]
        twice = [call for call in calls if call.gone]
        again = [call for call in calls if not call.gone]
        log.warning("batch %s is unknown to its provider (not found, twice): %d call(s) go "
                    "in a new batch", batch_id, len(again))
        _fail(twice, BatchSubmissionError(
            f"batch {batch_id} is unknown to its provider, and so was the one before it: "
            "the call was not sent again"))
        groups: dict[tuple[Any, Options], list[Call]] = {}
        for call in again:
            call.gone = True
            groups.setdefault((call.target.key, call.options), []).append(call)
        for group in groups.values():
            self._launch(group)

    async def _rescue_follow(self, follow: Follow, life: Lifecycle) -> None:
        """Rescue every call still waiting on `follow`'s batch (journalled first, so that
        a rerun does not send them again)."""
        rest = follow.close()
        self._forget(follow)
        calls = [call for calls in rest.values() for call in calls if not call.future.done()]
        if life.batch_id is None:
            await self._record(follow.journal.failed, follow.token)
        if calls:
            why = ("reached its deadline before its cancelled batch ended" if life.overdue
                   else "reached its deadline")
            self._rescue(calls, follow, why)

    def _rescue(self, calls: list[Call], follow: Follow | None, why: str) -> None:
        """Settle `calls` whose deadline came: each runs live in its caller (the patch
        layer sends it as the SDK would), or raises `DeadlineExceededError`, as its
        `on_deadline` says. Live ones are marked in the journal before they are settled."""
        live = [call for call in calls if _goes_live(call)]
        where = f"batch {follow.batch_id or follow.token}" if follow is not None else "no batch"
        log.info("deferrable: %d call(s) (%s) %s: %d run live, %d raise", len(calls), where,
                 why, len(live), len(calls) - len(live))
        settler = Settler()
        for call in calls:
            if not _goes_live(call):
                settler.settle(call.future, None, DeadlineExceededError(
                    f"this call {why} ({where}); it was not run live (on_deadline="
                    f"{call.options.on_deadline!r}, strict={call.options.strict})"))
        settler.dispatch()
        if not live:
            return
        if follow is None:
            _rescue_live(live, lambda call: None)
            return
        keep = self._keeper(follow)
        ids = [call.custom_id for call in live if call.custom_id is not None]

        async def mark_then_settle() -> None:
            await self._record(follow.journal.rescuing, follow.token, ids)
            _rescue_live(live, keep)

        assert self._loop is not None
        self._spawn(self._finishing, mark_then_settle())

    def _keeper(self, follow: Follow) -> Callable[[Call], Callable[[Any, str], None]]:
        """For a rescued call: the function the patch layer hands its live answer to. The
        answers are kept in the journal together, by the engine's loop, off the callers'
        threads."""
        loop = self._loop
        assert loop is not None
        answers: list[tuple[str, Any]] = []
        lock = threading.Lock()

        async def write() -> None:
            with lock:
                taken = answers[:]
                answers.clear()
            if taken:
                await self._record(follow.journal.kept, follow.token, taken,
                                   follow.options.reuse_for)

        def for_call(call: Call) -> Callable[[Any, str], None]:
            def keep(body: Any, request_id: str) -> None:
                if call.custom_id is None or not follow.journal.durable:
                    return
                line = follow.target.kept(call.custom_id, body, request_id)
                with lock:
                    answers.append((call.custom_id, line))
                    first = len(answers) == 1
                if first:  # one write takes every answer kept until it runs
                    with contextlib.suppress(RuntimeError):  # the loop is gone: a rerun pays
                        loop.call_soon_threadsafe(
                            lambda: self._spawn(self._finishing, write()))
            return keep

        return for_call

    def _attach(self, journal: JournalLike, token: str, call: Call) -> None:
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
            found = await self._recorded_batch_id(follow)
        except Exception as error:
            await self._finish(follow, error)
            return
        if found is None:
            await self._finish(follow, None)
            return
        follow.batch_id, verified = found
        log.info("resuming batch %s (%s) from the journal: %d call(s) of this run wait on it",
                 follow.batch_id, follow.target.provider, follow.waiting())
        self._show(follow, 0)
        life = Lifecycle(_pace(follow.options), started=time.monotonic(),
                         batch_id=follow.batch_id, verified=verified)
        await self._carry_out(follow, life, life.start(), {})

    async def _recorded_batch_id(self, follow: Follow) -> tuple[str, bool] | None:
        """The id of batch `follow.token` once known, and whether it is certain (else it
        is checked when it ends); None when that batch is over or never came to be."""
        journal, token, options = follow.journal, follow.token, follow.options
        delay = options.poll_interval
        while True:
            record = await self._local(journal.batch, token)
            if record is None or record.state not in OPEN_STATES:
                return None
            if record.batch_id is not None:
                return record.batch_id, True
            idle = (follow.key not in self._creating if record.owner == process_token()
                    else not is_alive(record.owner))
            if idle and await self._local(journal.take_over, token, record.owner):
                found = await self._recover(follow, record)
                if found is None:
                    await self._local(journal.lose, token)
                    log.warning("batch %s was never created; its requests go again", token)
                    return None
                await self._local(journal.submitted, token, found[0])
                return found
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 1.5, options.max_poll_interval)

    async def _recover(self, follow: Follow, record: BatchRecord) -> tuple[str, bool] | None:
        """The batch a create call made although its answer never came back, and whether
        that is certain; None when there is none.

        The provider's candidates (by tag, or by size and time) that the journal already
        knows are someone else's. A tagged batch, or a single unknown candidate, is
        adopted at once (the latter unverified: checked by its first result line when it
        ends). Several unknown candidates are checked that way one by one, newest first.
        """
        target = follow.target
        candidates = await self._io(target.recover, record.token, record.created_at,
                                    record.requests)
        if candidates:
            known = await self._local(follow.journal.batch_ids)
            candidates = [candidate for candidate in candidates if candidate not in known]
        if not candidates:
            return None
        if target.tags_batches:
            return candidates[0], True
        if len(candidates) == 1:
            log.info("batch %s: adopting %s, the only batch of its size and time the "
                     "journal does not know; checked when it ends", record.token, candidates[0])
            return candidates[0], False
        for candidate in candidates:
            await self._wait_for_end(target, candidate, follow.options)
            if await self._io(belongs, target, candidate, follow.journal, record.token):
                return candidate, True
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
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        async def finish() -> None:  # (taken on the loop: work posted before counts)
            finishing = list(self._finishing)
            if finishing:
                await asyncio.wait(finishing, timeout=timeout)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(finish(), loop).result(timeout + 1)

    async def _wait_for_end(self, target: Target, batch_id: str, options: Options) -> None:
        """Poll a candidate batch until it ends (failed polls are logged and retried,
        with the same capped backoff as a followed batch)."""
        life = Lifecycle(_pace(options), started=time.monotonic(), batch_id=batch_id)
        action = life.start()
        while isinstance(action, Act):
            await asyncio.sleep(action.after)
            try:
                event: Event = Polled((await self._io(target.poll, batch_id)).ended)
            except Exception as error:
                log.warning("polling candidate batch %s failed (%r); polling on", batch_id,
                            error)
                event = PollFailed()
            if isinstance(event, Polled) and event.ended:
                return
            action = life.on(event, time.monotonic())
        raise BatchSubmissionError(f"candidate batch {batch_id} could not be polled to its end")

    async def _io(self, function: Callable[..., T], *args: Any) -> T:
        """Run a provider call in a worker thread, within the rate limit."""
        assert self._throttler is not None
        async with self._throttler:
            return await asyncio.to_thread(_quietly, function, *args)

    async def _local(self, function: Callable[..., T], *args: Any) -> T:
        """Run local blocking work (the journal) in a worker thread."""
        return await asyncio.to_thread(_quietly, function, *args)

    async def _record(self, function: Callable[..., None], *args: Any) -> None:
        """Write to the journal; a failure is logged, not raised: the batch goes on, and
        a rerun finds less in the journal (a batch id it then looks for again)."""
        try:
            await asyncio.to_thread(_quietly, function, *args)
        except Exception:
            log.exception("writing the journal failed (%s)", getattr(function, "__name__", ""))


def _quietly(function: Callable[..., T], *args: Any) -> T:
    """`function(*args)` with no fork cutting through it (`deferrable._fork`)."""
    with quiet():
        return function(*args)


def _duration(seconds: float) -> str:
    """Seconds as a short duration: ``42s``, ``4m12s``, ``3h05m``."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


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


def _call(target: Target, body: Any, future: Any, options: Options, site: str) -> Call:
    """A call made now, with its deadline and rescue time (monotonic) when it has one."""
    call = Call(target, body, future, options, site)
    if options.deadline is not None:
        wall = time.time()
        at = deadline_at(options.deadline, wall)
        if at is not None:
            call.deadline = time.monotonic() + (at - wall)
            call.rescue_at = call.deadline - options.rescue_margin
    return call


def _near_rescue(call: Call, now: float) -> bool:
    """Whether `call`'s rescue time is less than its rescue margin away (or past)."""
    return call.rescue_at is not None and call.rescue_at - now <= call.options.rescue_margin


def _goes_live(call: Call) -> bool:
    """Whether a call whose deadline came runs live (else it raises)."""
    return call.options.on_deadline == "live" and not call.options.strict


def _rescue_live(calls: list[Call], keep: Callable[[Call], Any]) -> None:
    """Settle `calls` with the signal that makes their callers send them live."""
    settler = Settler()
    for call in calls:
        settler.settle(call.future, None, RescueLive(call, keep(call)))
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


def _forget_after_fork() -> None:
    """In a forked child, whose copy of the engine has no thread: start afresh on use
    (the parent's calls stay the parent's)."""
    global _engine, _engine_lock
    _engine = None
    _engine_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
