"""The batch lifecycle state machine, branch by branch: pure, with an injected clock and
no jitter, so each test takes microseconds."""

from __future__ import annotations

import pytest

from deferrable.engine._lifecycle import (
    EXPIRY,
    EXPIRY_GRACE,
    Act,
    Created,
    CreateFailed,
    Done,
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

PACE = Pace(poll_interval=1.0, max_poll_interval=4.0, create_attempts=3, read_attempts=3)


def life(**kwargs: object) -> Lifecycle:
    """A lifecycle started at t=0 without jitter."""
    return Lifecycle(PACE, started=0.0, jitter=lambda: 1.0, **kwargs)  # type: ignore[arg-type]


def test_a_new_batch_starts_by_creating_it() -> None:
    """Without a batch id the first action is a create, at once."""
    assert life().start() == Act("create")


def test_a_recorded_batch_starts_by_polling_it() -> None:
    """With the id of a batch an earlier run made, the first action is a poll."""
    assert life(batch_id="b1").start() == Act("poll", 1.0)


def test_created_then_polls_back_off_to_the_ceiling() -> None:
    """After the create, polls wait 1, 1.5, 2.25, 3.375 then 4 s (the ceiling)."""
    machine = life()
    machine.start()
    delays = [machine.on(Created("b1"), 0.0)]
    delays += [machine.on(Polled(ended=False), t) for t in range(5)]
    assert [a.after for a in delays if isinstance(a, Act)] == [1.0, 1.5, 2.25, 3.375, 4.0, 4.0]
    assert machine.batch_id == "b1"


def test_an_ended_batch_is_read_at_once() -> None:
    """A poll that finds the batch ended leads to reading its results."""
    machine = life(batch_id="b1")
    machine.start()
    assert machine.on(Polled(ended=True), 5.0) == Act("read")


def test_a_retryable_answer_creates_again_after_the_servers_delay() -> None:
    """A 429 with retry-after creates again after that delay; without one, a backoff."""
    machine = life()
    machine.start()
    assert machine.on(CreateFailed(answered=True, retryable=True, retry_after=2.5), 0) == \
        Act("create", 2.5)
    assert machine.on(CreateFailed(answered=True, retryable=True), 0) == Act("create", 1.0)


def test_create_attempts_run_out() -> None:
    """After `create_attempts` creates the machine gives up, with no batch made."""
    machine = life()
    machine.start()
    failure = CreateFailed(answered=True, retryable=True, retry_after=0.0)
    assert machine.on(failure, 0) == Act("create", 0.0)
    assert machine.on(failure, 0) == Act("create", 0.0)
    assert machine.on(failure, 0) == GiveUp("create_exhausted", submitted=False)


def test_a_refusal_gives_up_at_once() -> None:
    """An answered failure that does not say "try again" (a 403) gives up."""
    machine = life()
    machine.start()
    assert machine.on(CreateFailed(answered=True, retryable=False), 0) == \
        GiveUp("create_refused", submitted=False)


def test_a_rejected_request_creates_again_without_counting() -> None:
    """One request refused: the rest are created again at once; none left: give up."""
    machine = life()
    machine.start()
    for _ in range(5):  # more than create_attempts: rejections do not count
        assert machine.on(Rejected(remaining=2), 0) == Act("create")
    assert machine.on(Rejected(remaining=0), 0) == GiveUp("create_refused", submitted=False)


def test_no_answer_looks_for_the_batch_before_creating_again() -> None:
    """A create without an answer is looked for: found, it is followed; not found, made again."""
    machine = life()
    machine.start()
    assert machine.on(CreateFailed(answered=False), 0) == Act("look_for")
    assert machine.on(NotFound(), 0) == Act("create", 0.5)
    assert machine.on(CreateFailed(answered=False), 1) == Act("look_for")
    assert machine.on(Found("b7"), 1) == Act("poll", 1.0)
    assert machine.batch_id == "b7"


def test_a_failed_lookup_gives_up_without_creating_again() -> None:
    """If looking for the batch fails, nothing is created again (a rerun looks again)."""
    machine = life()
    machine.start()
    machine.on(CreateFailed(answered=False), 0)
    assert machine.on(LookupFailed(), 0) == GiveUp("lookup_failed", submitted=False)


def test_failed_polls_go_on_until_past_the_expiry() -> None:
    """Polls that fail keep the same capped backoff until expiry plus grace, then give up."""
    machine = life(batch_id="b1")
    machine.start()
    assert machine.on(PollFailed(), 10.0) == Act("poll", 1.5)
    assert machine.failing_since == 10.0
    assert machine.on(PollFailed(), EXPIRY) == Act("poll", 2.25)
    assert machine.on(PollFailed(), EXPIRY + EXPIRY_GRACE) == GiveUp("outage", submitted=True)


def test_an_answered_poll_ends_the_outage() -> None:
    """A poll that answers after failures clears the outage."""
    machine = life(batch_id="b1")
    machine.start()
    machine.on(PollFailed(), 3.0)
    machine.on(Polled(ended=False), 4.0)
    assert machine.failing_since is None


def test_give_up_at_bounds_the_outage() -> None:
    """A nearer `give_up_at` (a deadline) ends the polling through failures sooner."""
    machine = life(batch_id="b1", give_up_at=60.0)
    machine.start()
    assert isinstance(machine.on(PollFailed(), 59.0), Act)
    assert machine.on(PollFailed(), 60.0) == GiveUp("outage", submitted=True)


def test_complete_results_are_done() -> None:
    """A read with no line missing is done, even if the stream broke after the last line."""
    assert life(batch_id="b1").on(ResultsRead(missing=0), 0) == Done()
    assert life(batch_id="b1").on(ResultsRead(missing=0, broken=True), 0) == Done()


@pytest.mark.parametrize("broken", [False, True])
def test_short_results_are_read_again_then_given_up(broken: bool) -> None:
    """A short stream (clean or cut) is read again with a backoff, up to `read_attempts`."""
    machine = life(batch_id="b1")
    assert machine.on(ResultsRead(missing=3, broken=broken), 0) == Act("read", 1.0)
    assert machine.on(ResultsRead(missing=1, broken=broken), 0) == Act("read", 2.0)
    assert machine.on(ResultsRead(missing=1, broken=broken), 0) == \
        GiveUp("results_missing", submitted=True)


def test_a_batch_unknown_to_its_provider_twice_is_given_up_as_gone() -> None:
    """Two 404 polls in a row: gone (its calls go again); one 404 then an answer is not."""
    machine = life(batch_id="b1")
    machine.start()
    assert machine.on(PollFailed(gone=True), 1.0) == Act("poll", 1.5)
    assert machine.on(PollFailed(gone=True), 2.0) == GiveUp("gone", submitted=False)
    flaky = life(batch_id="b2")
    flaky.start()
    flaky.on(PollFailed(gone=True), 1.0)
    flaky.on(Polled(ended=False), 2.0)
    assert isinstance(flaky.on(PollFailed(gone=True), 3.0), Act)
