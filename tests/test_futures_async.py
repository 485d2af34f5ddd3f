"""Cancelling async deferred calls: a task cancelled while its call is buffered is not
billed, one cancelled after submission is paid but unused, and no cancel touches another
call (the sync twin is test_futures_sync)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import pytest

import deferrable
from deferrable import deferrable as defer
from deferrable.emulator import Emulator
from deferrable.engine._work import CANCELLED
from tests.emulator_helpers import message_request, until
from tests.ledger_helpers import ledger_rows

HELD = {"max_wait": 60}
"""Calls stay buffered until `aflush()`."""


def asker(client: anthropic.AsyncAnthropic, **options: Any) -> Callable[[str], Awaitable[str]]:
    """An async @deferrable function answering `text` with the emulator's sentiment."""

    @defer(**options)
    async def ask(text: str) -> str:
        block = (await client.messages.create(**message_request(f"Sentiment: {text}"))).content[0]
        assert block.type == "text"
        return block.text

    return ask


def batch_requests(emulator: Emulator) -> int:
    """Requests the emulator took in batches so far."""
    return int(emulator.stats()["batches"].get("anthropic_batch_requests", 0))


async def buffered(ask: Callable[[str], Awaitable[str]], texts: list[str]
                   ) -> list[asyncio.Task[str]]:
    """Tasks asking `texts`, each run until its call is buffered."""
    tasks = [asyncio.ensure_future(ask(text)) for text in texts]
    await asyncio.sleep(0.2)  # the client's first call looks up the platform first
    return tasks


@pytest.mark.asyncio
async def test_cancel_while_buffered_sends_nothing(
        async_anthropic_client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """A task cancelled while its call is buffered is left out of the batch; the others resolve."""
    tasks = await buffered(asker(async_anthropic_client, **HELD), ["great", "awful", "fine"])
    tasks[1].cancel()
    await deferrable.aflush()
    assert [await tasks[0], await tasks[2]] == ["positive", "neutral"]
    assert batch_requests(emulator) == 2
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]


@pytest.mark.asyncio
async def test_wait_for_timeout_cancels_a_buffered_call(
        async_anthropic_client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """`asyncio.wait_for` giving up on a buffered call cancels it: nothing is billed for it."""
    ask = asker(async_anthropic_client, **HELD)
    kept = (await buffered(ask, ["great"]))[0]
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ask("awful"), 0.2)
    await deferrable.aflush()
    assert await kept == "positive"
    assert batch_requests(emulator) == 1


@pytest.mark.asyncio
async def test_cancel_after_submission_is_paid_unused(
        async_anthropic_client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """Cancelled once its batch is submitted: the result is dropped when it arrives, and the
    ledger counts it as paid but unused; the other call of the batch resolves."""
    emulator.batch_latency = 0.5
    ask = asker(async_anthropic_client, **HELD)
    kept, dropped = await buffered(ask, ["great", "awful"])
    await deferrable.aflush()

    async def submitted() -> bool:
        return batch_requests(emulator) == 2

    await until(submitted)
    dropped.cancel()
    assert await kept == "positive"
    rows = await asyncio.to_thread(ledger_rows)
    sites = {row["site"]: row["calls"] for row in rows}
    assert sites[f"{ask.__module__}.{ask.__qualname__} {CANCELLED}"] == 1
    assert sites[f"{ask.__module__}.{ask.__qualname__}"] == 1


@pytest.mark.asyncio
async def test_a_cancel_never_touches_another_call(
        async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """Cancelling every other pending task leaves the others' results intact."""
    tasks = await buffered(asker(async_anthropic_client, **HELD), [f"great {i}" for i in range(6)])
    for task in tasks[::2]:
        task.cancel()
    await deferrable.aflush()
    assert [await task for task in tasks[1::2]] == ["positive"] * 3
    assert all(task.cancelled() for task in tasks[::2])
