"""The life of one batch as a pure state machine: what to do next, and when.

The runtime reports what happened (an `Event`, with the monotonic time) and carries out the
`Action` it gets back: create the batch, look for one whose create call got no answer,
poll it, read its results, and in the end deliver or give up. Nothing here sleeps, sends or
reads a clock, so every branch is tested in milliseconds (as `Buffer` is, and in the manner
of tenacity's ``iter()``).

The rules:
- A create answered with "try again" (408, 409, 429, 5xx or ``x-should-retry``) is made
  again after the server's delay or a backoff; one refused for good gives up. A create that
  got no answer is first looked for: found, it is followed; not found, made again. At most
  `create_attempts` creates.
- Polls back off from `poll_interval` by x1.5 (jittered) up to `max_poll_interval`. Failed
  polls never fail the calls while the batch may still run: polling goes on with the same
  capped backoff until `give_up_at` (the provider's expiry plus a grace, or a deadline).
- A deadline: when the earliest waiting call's deadline, less its margin, comes
  (`DeadlineNear`) before the batch has ended, the batch is cancelled and followed to its
  end, so that what finished before the cancel is read (paid once, at the batch price);
  the calls left are then rescued. A batch not created yet is not created: its calls are
  rescued at once. If the deadline itself passes (`DeadlinePassed`) before a cancelled
  batch ends, its calls are rescued without waiting further.
- Results are complete when every request's line has arrived. A short stream, cut or
  clean, is read again (lines already read are skipped by the reader); after
  `read_attempts` reads the missing calls fail, and the batch is not recorded as collected,
  so that a rerun reads it again rather than paying for it again.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

CREATE_ATTEMPTS = 5
READ_ATTEMPTS = 5
GONE_CONFIRMATIONS = 2
"""Polls in a row answered "not found" before a batch counts as unknown to its provider."""
EXPIRY = 24 * 3600.0
"""How long a provider runs a batch before expiring what is left (both providers: 24 h)."""
EXPIRY_GRACE = 3600.0
"""How long past the expiry polling goes on through failures (the batch's end is late)."""
_MAX_CREATE_DELAY = 30.0
_MAX_READ_DELAY = 10.0


# -- events: what happened --------------------------------------------------------------


@dataclass(frozen=True)
class Created:
    """The create call answered with the batch's id."""

    batch_id: str


@dataclass(frozen=True)
class Rejected:
    """The provider refused the batch because of one request (now taken out)."""

    remaining: int
    """Requests left to create the batch with."""


@dataclass(frozen=True)
class CreateFailed:
    """The create call failed: answered (no batch was made) or not (one may exist)."""

    answered: bool
    retry_after: float | None = None
    """With an answer that says "try again": the server's delay, if it named one."""
    retryable: bool = False
    """With an answer: whether it says "try again"."""


@dataclass(frozen=True)
class Found:
    """The batch of a create call without an answer exists after all."""

    batch_id: str
    verified: bool = True
    """False for a candidate adopted on its size and time alone: its first result line
    is checked when it ends."""


@dataclass(frozen=True)
class Verified:
    """An adopted batch's first result line was checked: it holds this batch's requests,
    or it is someone else's (the create was lost after all)."""

    ours: bool


@dataclass(frozen=True)
class NotFound:
    """No batch was made by the create call without an answer."""


@dataclass(frozen=True)
class LookupFailed:
    """Looking for the batch failed (a rerun looks again)."""


@dataclass(frozen=True)
class Polled:
    """A poll answered: the batch has ended or not."""

    ended: bool


@dataclass(frozen=True)
class PollFailed:
    """A poll got no usable answer."""

    gone: bool = False
    """The provider answered that it does not know the batch (a 404)."""


@dataclass(frozen=True)
class ResultsRead:
    """A pass over the results stream ended (whole, short or broken)."""

    missing: int
    """Lines not read yet: of the batch's requests when their number is known, else of
    the calls of this process still waiting."""
    broken: bool = False
    """Whether the stream broke (an error), rather than ending."""


@dataclass(frozen=True)
class DeadlineNear:
    """A waiting call's deadline less its rescue margin has come."""


@dataclass(frozen=True)
class DeadlinePassed:
    """A waiting call's deadline has come while its cancelled batch had not ended."""


@dataclass(frozen=True)
class CancelAnswered:
    """The cancel call answered, or failed (the batch may have ended already)."""

    ok: bool


Event = (Created | Rejected | CreateFailed | Found | NotFound | LookupFailed | Polled
         | PollFailed | ResultsRead | DeadlineNear | DeadlinePassed | CancelAnswered
         | Verified)


# -- actions: what to do next -------------------------------------------------------------


@dataclass(frozen=True)
class Act:
    """Do `step` after waiting `after` seconds."""

    step: Literal["create", "look_for", "poll", "verify", "read", "cancel"]
    after: float = 0.0


@dataclass(frozen=True)
class Done:
    """Every line arrived: record the batch as collected and clean up."""


@dataclass(frozen=True)
class GiveUp:
    """Stop: the calls still waiting fail (`reason` says why)."""

    reason: Literal["create_refused", "create_exhausted", "lookup_failed", "outage",
                    "results_missing", "not_ours", "gone"]
    submitted: bool
    """Whether a batch exists (so its results may still be read by a rerun)."""


@dataclass(frozen=True)
class Rescue:
    """Stop following: every call still waiting is rescued (run live, or raises, as its
    `on_deadline` says)."""

    submitted: bool
    """Whether a batch exists (cancelled, or being cancelled)."""


Action = Act | Done | GiveUp | Rescue


@dataclass(frozen=True)
class Pace:
    """The timings a batch is followed with."""

    poll_interval: float
    max_poll_interval: float
    create_attempts: int = CREATE_ATTEMPTS
    read_attempts: int = READ_ATTEMPTS


class Lifecycle:
    """One batch, from its create call to its last result line."""

    def __init__(self, pace: Pace, *, started: float, give_up_at: float | None = None,
                 batch_id: str | None = None, verified: bool = True,
                 jitter: Callable[[], float] = lambda: random.uniform(0.8, 1.2)) -> None:
        """`started` is the monotonic time the batch's life begins; polling through
        failures stops at `give_up_at` (default: the provider's expiry plus a grace).
        With `batch_id`, the batch exists already (recorded by an earlier run; adopted
        unverified when not `verified`)."""
        self._pace = pace
        self._jitter = jitter
        self.give_up_at = started + EXPIRY + EXPIRY_GRACE if give_up_at is None else give_up_at
        self.batch_id = batch_id
        self._creates = 0
        self._poll_delay = pace.poll_interval
        self._reads = 0
        self.failing_since: float | None = None
        """When the current run of failed polls began (None while polls answer)."""
        self.rescuing = False
        """Whether a deadline came: the batch is cancelled, its calls to be rescued."""
        self.overdue = False
        """Whether a deadline itself passed before the batch ended."""
        self.ended = False
        """Whether the batch has ended (its results are being read)."""
        self.unverified = batch_id is not None and not verified
        """Whether the batch was adopted on its size and time alone (a lost create's
        only candidate): not cancelled, and checked by its first line when it ends."""
        self._next: Act = Act("create")
        self._gone = 0

    def start(self) -> Action:
        """The first action."""
        if self.batch_id is not None:
            return self._remember(self._poll())
        self._creates = 1
        return self._remember(Act("create"))

    def on(self, event: Event, now: float) -> Action:
        """The next action after `event`, at monotonic time `now`."""
        return self._remember(self._on(event, now))

    def _remember(self, action: Action) -> Action:
        if isinstance(action, Act):
            self._next = action
        return action

    def _on(self, event: Event, now: float) -> Action:
        if isinstance(event, DeadlineNear | DeadlinePassed | CancelAnswered):
            return self._on_deadline(event)
        if self.rescuing and self.batch_id is None:
            return self._rescue_before_created(event)
        if isinstance(event, Created | Found):
            self.batch_id = event.batch_id
            self.unverified = isinstance(event, Found) and not event.verified
            return Act("cancel") if self.rescuing and not self.unverified else self._poll()
        if isinstance(event, Verified):
            self.unverified = False
            return Act("read") if event.ours else GiveUp("not_ours", False)
        if isinstance(event, Rejected):
            return Act("create") if event.remaining else GiveUp("create_refused", False)
        if isinstance(event, CreateFailed):
            return self._after_failed_create(event)
        if isinstance(event, NotFound):
            return self._create_again(_backoff(self._creates, _MAX_CREATE_DELAY, self._jitter))
        if isinstance(event, LookupFailed):
            return GiveUp("lookup_failed", False)
        if isinstance(event, Polled):
            self.failing_since = None
            self._gone = 0
            self.ended = self.ended or event.ended
            if not event.ended:
                return self._poll()
            return Act("verify") if self.unverified else Act("read")
        if isinstance(event, PollFailed):
            self._gone = self._gone + 1 if event.gone else 0
            if self._gone >= GONE_CONFIRMATIONS:
                return GiveUp("gone", False)
            if self.failing_since is None:
                self.failing_since = now
            return self._poll() if now < self.give_up_at else GiveUp("outage", True)
        return self._after_read(event)

    def _on_deadline(self, event: DeadlineNear | DeadlinePassed | CancelAnswered) -> Action:
        if isinstance(event, CancelAnswered):
            # Whether or not it answered (a batch that had ended refuses it), poll to the end.
            self._poll_delay = self._pace.poll_interval
            return self._poll()
        if self.ended:  # the results are there: read them; the rest is rescued after
            self.rescuing = True
            return self._next
        if isinstance(event, DeadlinePassed):
            self.rescuing = self.overdue = True
            return Rescue(self.batch_id is not None)
        if self.rescuing:
            return self._next
        self.rescuing = True
        if self.batch_id is not None:  # (a batch that may be someone else's is not cancelled)
            return Rescue(True) if self.unverified else Act("cancel")
        if self._next.step == "look_for":  # a batch may exist: find it first, to cancel it
            return Act("look_for")
        return Rescue(False)

    def _rescue_before_created(self, event: Event) -> Action:
        """A deadline came before the batch existed: cancel one that turns up, else
        rescue (a create without an answer is looked for first)."""
        if isinstance(event, Created | Found):
            self.batch_id = event.batch_id
            if isinstance(event, Found) and not event.verified:
                self.unverified = True
                return Rescue(True)
            return Act("cancel")
        if isinstance(event, CreateFailed) and not event.answered:
            return Act("look_for")
        return Rescue(False)

    def _after_failed_create(self, event: CreateFailed) -> Action:
        if not event.answered:
            return Act("look_for")
        if not event.retryable:
            return GiveUp("create_refused", False)
        delay = event.retry_after
        if delay is None:
            delay = _backoff(self._creates, _MAX_CREATE_DELAY, self._jitter)
        return self._create_again(delay)

    def _create_again(self, delay: float) -> Action:
        if self._creates >= self._pace.create_attempts:
            return GiveUp("create_exhausted", False)
        self._creates += 1
        return Act("create", delay)

    def _poll(self) -> Act:
        delay = self._poll_delay * self._jitter()
        self._poll_delay = min(self._poll_delay * 1.5, self._pace.max_poll_interval)
        return Act("poll", delay)

    def _after_read(self, event: ResultsRead) -> Action:
        self._reads += 1
        if event.missing == 0:
            return Done()  # (a stream that broke after the last line lost nothing)
        if self._reads >= self._pace.read_attempts:
            return GiveUp("results_missing", True)
        delay = min(self._pace.poll_interval * 2.0 ** (self._reads - 1), _MAX_READ_DELAY)
        return Act("read", delay * self._jitter())


TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504, 529})
"""Answers a request may not get if it is sent again (the SDKs retry these live)."""


def resubmits(transient: bool, resubmitted: int, limit: int) -> bool:
    """Whether a request whose result just arrived goes in a later batch: its failure is
    `transient` and it was resubmitted fewer than `limit` times."""
    return transient and resubmitted < limit


def _backoff(attempt: int, ceiling: float, jitter: Callable[[], float]) -> float:
    """Seconds before attempt `attempt` + 1: doubling from 0.5 s, capped, jittered."""
    return min(ceiling, 0.5 * 2.0 ** (attempt - 1)) * jitter()
