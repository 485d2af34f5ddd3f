"""`Slot`, the light future a suspended sync @deferrable call waits on: one outcome,
callbacks run once (at once when added late), cancel wins only while pending, and a
pending slot's result is an error rather than a wait."""

from __future__ import annotations

from concurrent.futures import CancelledError, InvalidStateError

import pytest

from deferrable._slot import Slot
from deferrable.engine._settle import Settler


def test_result_runs_each_callback_once_with_the_slot() -> None:
    """set_result completes the slot and calls every callback added before, once."""
    slot: Slot[int] = Slot()
    seen: list[object] = []
    slot.add_done_callback(seen.append)
    slot.add_done_callback(seen.append)
    assert not slot.done()
    slot.set_result(7)
    assert slot.done()
    assert slot.result() == 7
    assert slot.exception() is None
    assert seen == [slot, slot]


def test_a_callback_added_after_completion_runs_at_once() -> None:
    """A callback added to a done slot is called immediately."""
    slot: Slot[int] = Slot()
    slot.set_exception(ValueError("no"))
    seen: list[object] = []
    slot.add_done_callback(seen.append)
    assert seen == [slot]
    assert isinstance(slot.exception(), ValueError)
    with pytest.raises(ValueError, match="no"):
        slot.result()


def test_cancel_wins_only_while_pending() -> None:
    """cancel() on a pending slot cancels it (and later outcomes are refused); on a done
    one it fails."""
    slot: Slot[int] = Slot()
    assert slot.cancel()
    assert slot.cancelled()
    assert slot.cancel()
    with pytest.raises(InvalidStateError):
        slot.set_result(1)
    with pytest.raises(CancelledError):
        slot.result()
    done: Slot[int] = Slot()
    done.set_result(1)
    assert not done.cancel()
    assert not done.cancelled()


def test_a_pending_slot_does_not_wait() -> None:
    """result() of a pending slot raises instead of blocking (nothing blocks on a slot)."""
    with pytest.raises(InvalidStateError):
        Slot().result()


def test_a_failing_callback_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    """A callback that raises is logged; the next one still runs."""
    slot: Slot[int] = Slot()
    seen: list[object] = []

    def broken(_: object) -> None:
        raise RuntimeError("callback broke")

    slot.add_done_callback(broken)
    slot.add_done_callback(seen.append)
    slot.set_result(1)
    assert seen == [slot]
    assert "callback broke" in caplog.text


def test_settling_a_slot_cancelled_at_that_moment_is_quiet() -> None:
    """A caller's cancel that lands between the engine's check and its setting does not
    break the engine: the outcome is dropped."""

    class CancelledJustNow(Slot[int]):
        def done(self) -> bool:  # as seen just before the caller cancelled
            return False

    slot = CancelledJustNow()
    slot.cancel()
    settler = Settler()
    settler.settle(slot, 1, None)
    settler.dispatch()
    assert slot.cancelled()
