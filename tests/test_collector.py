"""Calls waiting for a batch are kept out of the garbage collector's full scans: frozen
every few hundred calls while scopes are open, unfrozen when the last one closes; a
process that freezes objects itself, or a scope with ``freeze_gc=False``, is left alone."""

from __future__ import annotations

import asyncio
import gc

import anthropic
import pytest

import deferrable
from deferrable._collector import FREEZE_EVERY, Freezer
from tests.emulator_helpers import message_request

CALLS = FREEZE_EVERY + 44
"""More calls than one freeze needs (each call counts once as a scope entered, once as
a call deferred)."""


class FakeCollector:
    """The `gc` functions a `Freezer` uses, recorded."""

    def __init__(self, frozen: int = 0, enabled: bool = True) -> None:
        self.frozen = frozen
        self.on = enabled
        self.now = 0.0
        self.log: list[str] = []

    def freezer(self, every: int = 3) -> Freezer:
        return Freezer(freeze=self.freeze, unfreeze=self.unfreeze,
                       frozen_count=lambda: self.frozen, enabled=lambda: self.on,
                       collect=lambda: self.log.append("collect"), clock=lambda: self.now,
                       every=every, hold=100.0)

    def freeze(self) -> None:
        self.frozen += 100
        self.log.append("freeze")

    def unfreeze(self) -> None:
        self.frozen = 0
        self.log.append("unfreeze")


def test_freezes_every_n_calls_and_unfreezes_when_scopes_close() -> None:
    """Every `every`-th call freezes; the last scope closing unfreezes once."""
    fake = FakeCollector()
    freezer = fake.freezer(every=3)
    for _ in range(7):
        freezer.call()
    assert fake.log == ["freeze", "freeze"]
    freezer.scopes_closed()
    freezer.scopes_closed()
    assert fake.log == ["freeze", "freeze", "unfreeze"]


def test_scopes_open_for_good_are_collected_once_per_hold() -> None:
    """While scopes stay open, a freeze `hold` seconds after the first one unfreezes and
    collects first, so that garbage frozen with the rest is freed; then the hold restarts."""
    fake = FakeCollector()
    freezer = fake.freezer(every=1)
    freezer.call()
    fake.now = 99.0
    freezer.call()
    assert fake.log == ["freeze", "freeze"]
    fake.now = 100.0
    freezer.call()
    assert fake.log == ["freeze", "freeze", "unfreeze", "collect", "freeze"]
    fake.now = 150.0
    freezer.call()
    assert fake.log[-1] == "freeze"
    assert fake.log.count("collect") == 1


def test_scopes_closing_without_a_freeze_unfreeze_nothing() -> None:
    """Closing scopes that never reached a freeze leaves the collector untouched."""
    fake = FakeCollector()
    freezer = fake.freezer(every=3)
    freezer.call()
    freezer.scopes_closed()
    assert fake.log == []


def test_a_process_that_froze_objects_itself_is_left_alone() -> None:
    """Objects frozen before deferrable's first freeze are someone else's: no freeze, no
    unfreeze, ever."""
    fake = FakeCollector(frozen=5)
    freezer = fake.freezer(every=2)
    for _ in range(10):
        freezer.call()
    freezer.scopes_closed()
    assert fake.log == []
    assert freezer.foreign
    fake.frozen = 0
    for _ in range(4):
        freezer.call()
    assert fake.log == []


def test_a_disabled_collector_is_left_alone() -> None:
    """With the collector off (gc.disable()), nothing is frozen."""
    fake = FakeCollector(enabled=False)
    freezer = fake.freezer(every=2)
    for _ in range(6):
        freezer.call()
    assert fake.log == []


def test_sync_calls_are_frozen_while_waiting_and_unfrozen_after(
        anthropic_client: anthropic.Anthropic) -> None:
    """Sync @deferrable calls: objects are frozen while the outer scope is open, and
    nothing stays frozen once it closes."""
    gc.unfreeze()

    @deferrable.deferrable(max_batch_size=CALLS, max_wait=60)
    def ask(i: int) -> str:
        block = anthropic_client.messages.create(**message_request(f"review {i}: great")).content[0]
        assert block.type == "text"
        return block.text

    with deferrable.scope():
        answers = [future.result(timeout=60) for future in [ask(i) for i in range(CALLS)]]
        assert gc.get_freeze_count() > 0
    assert all(answer.endswith(f"review {i}: great") for i, answer in enumerate(answers))
    assert gc.get_freeze_count() == 0


@pytest.mark.asyncio
async def test_async_calls_are_frozen_while_waiting_and_unfrozen_after(
        async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """Async calls gathered in one scope: objects are frozen while it is open, and nothing
    stays frozen once it closes."""
    gc.unfreeze()

    async def ask(i: int) -> str:
        message = await async_anthropic_client.messages.create(**message_request(f"review {i}: great"))
        block = message.content[0]
        assert block.type == "text"
        return block.text

    async with deferrable.scope(max_batch_size=CALLS, max_wait=60):
        answers = await asyncio.gather(*(ask(i) for i in range(CALLS)))
        assert gc.get_freeze_count() > 0
    assert all(answer.endswith(f"review {i}: great") for i, answer in enumerate(answers))
    assert gc.get_freeze_count() == 0


@pytest.mark.asyncio
async def test_freeze_gc_false_leaves_the_collector_alone(
        async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """Calls in a scope with freeze_gc=False freeze nothing."""
    gc.unfreeze()
    async with deferrable.scope(max_batch_size=CALLS, max_wait=60, freeze_gc=False):
        messages = await asyncio.gather(*(
            async_anthropic_client.messages.create(**message_request(f"review {i}"))
            for i in range(CALLS)))
        assert gc.get_freeze_count() == 0
    assert len(messages) == CALLS
