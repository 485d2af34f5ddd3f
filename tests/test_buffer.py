"""The engine's flush policy, decided without I/O: count, bytes and age thresholds."""

from __future__ import annotations

from deferrable.engine import Buffer, GroupLimits

LIMITS = GroupLimits(max_requests=3, max_bytes=100, max_wait=5.0)


def test_a_group_becomes_a_batch_at_its_request_count() -> None:
    """The third call of a 3-request group completes a batch of exactly those calls."""
    buffer: Buffer[str] = Buffer()
    assert buffer.add("g", "a", 1, LIMITS, now=0.0) == []
    assert buffer.add("g", "b", 1, LIMITS, now=0.0) == []
    assert buffer.add("g", "c", 1, LIMITS, now=0.0) == [["a", "b", "c"]]
    assert len(buffer) == 0


def test_bytes_close_a_group_before_it_would_overflow() -> None:
    """A call that would push its group past max_bytes first closes the group as it is."""
    buffer: Buffer[str] = Buffer()
    assert buffer.add("g", "a", 60, LIMITS, now=0.0) == []
    assert buffer.add("g", "b", 60, LIMITS, now=0.0) == [["a"]]
    assert buffer.add("g", "c", 40, LIMITS, now=0.0) == [["b", "c"]]


def test_an_oversized_call_travels_alone() -> None:
    """A single call larger than max_bytes becomes its own batch at once."""
    buffer: Buffer[str] = Buffer()
    assert buffer.add("g", "huge", 500, LIMITS, now=0.0) == [["huge"]]


def test_age_makes_a_group_due_after_max_wait() -> None:
    """A group falls due when its oldest call has waited max_wait, not before."""
    buffer: Buffer[str] = Buffer()
    buffer.add("g", "a", 1, LIMITS, now=10.0)
    buffer.add("g", "b", 1, LIMITS, now=14.0)
    assert buffer.next_due() == 15.0
    assert buffer.due(now=14.99) == []
    assert buffer.due(now=15.0) == [["a", "b"]]
    assert buffer.next_due() is None


def test_held_groups_are_released_by_the_age_of_their_oldest_call() -> None:
    """`waited` takes only held groups whose oldest call has waited the age, not others."""
    held = GroupLimits(max_requests=10, max_bytes=100, max_wait=1000.0)
    buffer: Buffer[str] = Buffer()
    buffer.add("held", "a", 1, held, now=10.0)
    buffer.add("held", "b", 1, held, now=10.5)
    buffer.add("plain", "c", 1, LIMITS, now=10.0)
    assert buffer.waited(now=10.9, age=1.0, held=1000.0) == []
    assert buffer.waited(now=11.0, age=1.0, held=1000.0) == [["a", "b"]]
    assert len(buffer) == 1


def test_groups_never_mix() -> None:
    """Calls of different group keys are buffered and released separately."""
    buffer: Buffer[str] = Buffer()
    buffer.add("one", "a", 1, LIMITS, now=0.0)
    buffer.add("two", "b", 1, LIMITS, now=1.0)
    assert buffer.due(now=5.0) == [["a"]]
    assert buffer.drain() == [["b"]]
    assert len(buffer) == 0


UNITS = GroupLimits(max_requests=100, max_bytes=10_000, max_wait=5.0, max_units=10)


def test_units_are_unlimited_by_default() -> None:
    """Without max_units, any number of units never closes a group."""
    buffer: Buffer[str] = Buffer()
    assert buffer.add("g", "a", 1, LIMITS, now=0.0, units=1_000_000) == []
    assert buffer.drain() == [["a"]]


def test_units_close_a_group_before_it_would_overflow() -> None:
    """A call that would push its group past max_units first closes the group as it is."""
    buffer: Buffer[str] = Buffer()
    assert buffer.add("g", "a", 1, UNITS, now=0.0, units=6) == []
    assert buffer.add("g", "b", 1, UNITS, now=0.0, units=6) == [["a"]]
    assert buffer.add("g", "c", 1, UNITS, now=0.0, units=4) == [["b", "c"]]
    assert len(buffer) == 0


def test_an_oversized_unit_count_travels_alone() -> None:
    """A single call with more units than max_units becomes its own batch at once."""
    buffer: Buffer[str] = Buffer()
    assert buffer.add("g", "huge", 1, UNITS, now=0.0, units=50) == [["huge"]]
