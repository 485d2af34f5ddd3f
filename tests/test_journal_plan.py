"""A launch's plan, decided without a disk: serve, attach or submit each call."""

from __future__ import annotations

from typing import Any

import pytest

from deferrable.journal import BatchRecord
from deferrable.journal._plan import Attach, Serve, Submit, assemble, awaited_batch, decide

LINE = {"custom_id": "d-0", "result": {"type": "succeeded"}}


def batch(state: str) -> BatchRecord:
    """The record of batch ``t1`` in `state`."""
    return BatchRecord("t1", "anthropic", "dest", state, "1:1", 0.0, None, 1)


def test_a_request_the_journal_does_not_hold_is_submitted() -> None:
    """No record: the call is submitted."""
    assert decide(None, None) == Submit()


def test_an_undelivered_result_is_served_and_marked_delivered() -> None:
    """A result no caller had yet is served, with its record marked delivered to write back."""
    record = {"batch": "t1", "result": LINE, "delivered": False}
    assert decide(record, None) == Serve(LINE, {**record, "delivered": True})


def test_a_delivered_result_is_served_without_a_write() -> None:
    """A result handed out before is served again, with nothing to write."""
    assert decide({"batch": "t1", "result": LINE, "delivered": True}, None) == Serve(LINE)


def test_a_rescued_request_with_its_live_answer_is_served() -> None:
    """A request rescued live whose answer was kept is served that answer."""
    record = {"batch": "t1", "result": LINE, "delivered": True, "rescued": True}
    assert decide(record, batch("submitted")) == Serve(LINE)


def test_a_rescued_request_without_an_answer_is_submitted() -> None:
    """A request rescued by a process that ended before its answer goes again."""
    assert decide({"batch": "t1", "rescued": True}, batch("submitted")) == Submit()


def test_a_request_whose_batch_is_gone_is_submitted() -> None:
    """A request whose batch record is gone (pruned) goes again."""
    assert decide({"batch": "t1"}, None) == Submit()


@pytest.mark.parametrize("state", ["failed", "lost", "collected"])
def test_a_request_whose_batch_ended_without_its_line_is_submitted(state: str) -> None:
    """A request whose batch is no longer in flight, and that holds no result, goes again."""
    assert decide({"batch": "t1"}, batch(state)) == Submit()


@pytest.mark.parametrize("state", ["creating", "submitted"])
def test_a_request_whose_batch_is_in_flight_attaches_to_it(state: str) -> None:
    """A request already in a batch being created or submitted waits on that batch."""
    assert decide({"batch": "t1", "at": 1.0}, batch(state)) == Attach("t1")


@pytest.mark.parametrize(("record", "token"), [
    (None, None),
    ({"batch": "t1", "result": LINE}, None),
    ({"batch": "t1", "rescued": True}, None),
    ({"batch": "t1", "at": 1.0}, "t1"),
])
def test_only_a_request_waiting_on_its_batch_needs_the_batch_record(
        record: dict[str, Any] | None, token: str | None) -> None:
    """The batch record is read only for a request without result that was not rescued."""
    assert awaited_batch(record) == token


def test_a_plan_lists_each_call_by_its_decision() -> None:
    """Calls are submitted, served or attached by their index, and the new batch named."""
    decisions = {"a": Submit(), "b": Serve(LINE), "c": Attach("t0")}
    plan = assemble(["a", "b", "c"], decisions, "new")
    assert (plan.token, plan.submit, plan.served, plan.attached) == (
        "new", [0], [(1, LINE)], [(2, "t0")])


def test_a_request_met_again_after_its_submission_attaches_to_the_new_batch() -> None:
    """A second call of a request being submitted waits on the new batch, not submitted twice."""
    plan = assemble(["a", "a", "b", "b"], {"a": Submit(), "b": Serve(LINE)}, "new")
    assert (plan.submit, plan.attached, plan.served) == ([0], [(1, "new")],
                                                         [(2, LINE), (3, LINE)])


def test_a_plan_that_submits_nothing_names_no_batch() -> None:
    """With every call served or attached, no new batch is made."""
    plan = assemble(["a", "b"], {"a": Serve(LINE), "b": Attach("t0")}, "new")
    assert (plan.token, plan.submit) == (None, [])
