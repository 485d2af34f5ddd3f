"""The batch lifecycle at a deadline, branch by branch: cancel, read what finished, rescue
the rest; pure, with an injected clock and no jitter."""

from __future__ import annotations

from deferrable.engine._lifecycle import (
    Act,
    CancelAnswered,
    Created,
    CreateFailed,
    DeadlineNear,
    DeadlinePassed,
    Done,
    Found,
    GiveUp,
    Lifecycle,
    NotFound,
    Pace,
    Polled,
    PollFailed,
    Rejected,
    Rescue,
    ResultsRead,
    Verified,
)

PACE = Pace(poll_interval=1.0, max_poll_interval=4.0, create_attempts=3, read_attempts=3)


def running() -> Lifecycle:
    """A lifecycle whose batch b1 exists and is being polled (no jitter)."""
    machine = Lifecycle(PACE, started=0.0, jitter=lambda: 1.0)
    machine.start()
    machine.on(Created("b1"), 0.0)
    return machine


def before_creation() -> Lifecycle:
    """A lifecycle about to create its batch (no jitter)."""
    machine = Lifecycle(PACE, started=0.0, jitter=lambda: 1.0)
    machine.start()
    return machine


def test_a_deadline_near_cancels_a_running_batch() -> None:
    """Deadline near while the batch runs: cancel it, and say the calls are being rescued."""
    machine = running()
    assert machine.on(DeadlineNear(), 10.0) == Act("cancel")
    assert machine.rescuing


def test_after_the_cancel_the_batch_is_polled_to_its_end_then_read() -> None:
    """Cancel answered (or refused): poll from the first interval again, then read, then done."""
    machine = running()
    for _ in range(4):
        machine.on(Polled(ended=False), 1.0)
    machine.on(DeadlineNear(), 10.0)
    assert machine.on(CancelAnswered(ok=False), 10.0) == Act("poll", 1.0)
    assert machine.on(Polled(ended=True), 11.0) == Act("read")
    assert machine.on(ResultsRead(missing=0), 11.0) == Done()


def test_a_second_deadline_near_changes_nothing() -> None:
    """Once rescuing, another near deadline repeats the pending step, not a second cancel."""
    machine = running()
    machine.on(DeadlineNear(), 10.0)
    poll = machine.on(CancelAnswered(ok=True), 10.0)
    assert machine.on(DeadlineNear(), 10.5) == poll


def test_the_deadline_passing_before_the_cancelled_batch_ends_rescues_at_once() -> None:
    """Past the deadline with the cancelled batch still running: rescue, batch submitted."""
    machine = running()
    machine.on(DeadlineNear(), 10.0)
    machine.on(CancelAnswered(ok=True), 10.0)
    machine.on(PollFailed(), 11.0)
    assert machine.on(DeadlinePassed(), 130.0) == Rescue(submitted=True)
    assert machine.overdue


def test_an_ended_batch_is_read_whatever_the_deadline() -> None:
    """The batch ended already: a deadline near or passed keeps reading it."""
    machine = running()
    read = machine.on(Polled(ended=True), 5.0)
    assert machine.on(DeadlineNear(), 10.0) == read
    assert machine.on(DeadlinePassed(), 130.0) == read
    assert machine.rescuing


def test_a_short_read_while_rescuing_reads_again_then_gives_up() -> None:
    """Lines missing after a cancel are read again; after the attempts the runtime rescues."""
    machine = running()
    machine.on(DeadlineNear(), 10.0)
    machine.on(CancelAnswered(ok=True), 10.0)
    machine.on(Polled(ended=True), 11.0)
    assert machine.on(ResultsRead(missing=2), 11.0) == Act("read", 1.0)
    machine.on(ResultsRead(missing=2), 12.0)
    assert machine.on(ResultsRead(missing=2), 14.0) == GiveUp("results_missing", True)


def test_a_deadline_before_the_create_rescues_without_creating() -> None:
    """Deadline near with the create still to come: rescue at once, no batch made."""
    assert before_creation().on(DeadlineNear(), 0.0) == Rescue(submitted=False)


def test_a_deadline_during_create_retries_stops_them() -> None:
    """A create answered "try again" and then the deadline: no further create."""
    machine = before_creation()
    assert machine.on(CreateFailed(answered=True, retryable=True), 1.0).step == "create"  # type: ignore[union-attr]
    assert machine.on(DeadlineNear(), 2.0) == Rescue(submitted=False)


def test_a_deadline_while_looking_for_a_lost_create_looks_first() -> None:
    """A create without an answer may have made a batch: look for it before rescuing."""
    machine = before_creation()
    assert machine.on(CreateFailed(answered=False), 1.0) == Act("look_for")
    assert machine.on(DeadlineNear(), 2.0) == Act("look_for")
    assert machine.on(Found("b9"), 3.0) == Act("cancel")
    assert machine.batch_id == "b9"


def test_a_lost_create_not_found_after_a_deadline_rescues() -> None:
    """No batch was made: the calls are rescued, nothing cancelled."""
    machine = before_creation()
    machine.on(CreateFailed(answered=False), 1.0)
    machine.on(DeadlineNear(), 2.0)
    assert machine.on(NotFound(), 3.0) == Rescue(submitted=False)


def test_events_after_a_deadline_before_creation_end_in_rescue() -> None:
    """Refused creates and rejections while rescuing rescue rather than create again."""
    for event in (CreateFailed(answered=True, retryable=True), Rejected(remaining=3)):
        machine = before_creation()
        machine.on(CreateFailed(answered=False), 1.0)
        machine.on(DeadlineNear(), 2.0)
        assert machine.on(event, 3.0) == Rescue(submitted=False)


def test_a_create_answering_after_the_deadline_is_cancelled() -> None:
    """A create that answers once the deadline is near: its batch is cancelled at once."""
    machine = before_creation()
    machine.on(CreateFailed(answered=False), 1.0)
    machine.on(DeadlineNear(), 2.0)
    machine.on(CreateFailed(answered=False), 3.0)
    assert machine.on(Created("b2"), 4.0) == Act("cancel")


def test_a_lost_creates_only_candidate_is_checked_when_it_ends() -> None:
    """A candidate adopted unverified is polled, then verified by its first line, then read."""
    machine = before_creation()
    machine.on(CreateFailed(answered=False), 1.0)
    assert machine.on(Found("b3", verified=False), 2.0) == Act("poll", 1.0)
    assert machine.on(Polled(ended=True), 3.0) == Act("verify")
    assert machine.on(Verified(ours=True), 3.0) == Act("read")


def test_someone_elses_batch_means_the_create_was_lost() -> None:
    """A first line of other requests: give up on it as not ours (its calls go again)."""
    machine = Lifecycle(PACE, started=0.0, batch_id="b3", verified=False, jitter=lambda: 1.0)
    machine.start()
    assert machine.on(Polled(ended=True), 3.0) == Act("verify")
    assert machine.on(Verified(ours=False), 3.0) == GiveUp("not_ours", False)


def test_an_unverified_batch_is_never_cancelled_at_a_deadline() -> None:
    """It may be someone else's: the calls are rescued without a cancel."""
    machine = Lifecycle(PACE, started=0.0, batch_id="b3", verified=False, jitter=lambda: 1.0)
    machine.start()
    assert machine.on(DeadlineNear(), 5.0) == Rescue(submitted=True)
    found_late = before_creation()
    found_late.on(CreateFailed(answered=False), 1.0)
    found_late.on(DeadlineNear(), 2.0)
    assert found_late.on(Found("b4", verified=False), 3.0) == Rescue(submitted=True)
