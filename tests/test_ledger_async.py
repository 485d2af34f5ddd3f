"""The ledger with async code (the sync twin, with the usage conventions, is test_ledger_sync)."""

from __future__ import annotations

import asyncio

import anthropic
import pytest
from anthropic.types import Message

import deferrable
from deferrable.emulator import Emulator
from deferrable.journal import close_journals
from deferrable.ledger import Tokens, anthropic_tokens, build_report
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import message_request
from tests.ledger_helpers import cost, ledger_rows


async def rows() -> list[dict[str, object]]:
    """The ledger, read off the event loop."""
    return await asyncio.to_thread(ledger_rows)


@pytest.mark.asyncio
async def test_deferred_calls_are_priced_at_the_batch_rate(
        async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """Ten gathered deferred calls: one row under the function's name at the batch price."""

    @deferrable.deferrable
    async def classify(text: str) -> anthropic.types.Message:
        return await async_anthropic_client.messages.create(**message_request(text))

    messages = await asyncio.gather(*(classify(f"item {i}") for i in range(10)))
    tokens = sum((anthropic_tokens(m.usage) for m in messages), Tokens())
    [row] = await rows()
    assert (row["mode"], row["calls"]) == ("batch", 10)
    assert str(row["site"]).endswith(".<locals>.classify")
    assert row["paid_usd"] == pytest.approx(cost("claude-haiku-4-5", tokens, batch=True))
    assert row["live_usd"] == pytest.approx(cost("claude-haiku-4-5", tokens, batch=False))


@pytest.mark.asyncio
async def test_a_call_that_goes_live_in_a_scope_is_recorded_live(emulator: Emulator) -> None:
    """A call a batch cannot serve (a subclassed client) is recorded at the live price."""

    class Custom(anthropic.AsyncAnthropic):
        pass

    async with Custom(api_key=DUMMY_KEY, base_url=emulator.url) as client, deferrable.scope():
        message = await client.messages.create(**message_request("hello"))
    [row] = await rows()
    assert (row["mode"], row["calls"]) == ("live", 1)
    assert row["paid_usd"] == pytest.approx(
        cost("claude-haiku-4-5", anthropic_tokens(message.usage), batch=False))


@pytest.mark.asyncio
async def test_a_live_stream_in_a_scope_is_a_candidate_of_unknown_cost(
        async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """A stream sent live in a scope (usage unknown here) is recorded, unpriced, as a candidate."""
    async with deferrable.scope(defer_streams=False), async_anthropic_client.messages.stream(
            **message_request("stream")) as stream:
        assert (await stream.get_final_message()).content
    [row] = await rows()
    assert (row["mode"], row["calls"], row["unpriced"], row["model"]) == (
        "live", 1, 1, "claude-haiku-4-5")
    [candidate] = build_report(await rows())["candidates"]
    assert candidate["unpriced_calls"] == 1
    assert candidate["site"] == f"{__name__}.test_a_live_stream_in_a_scope_is_a_candidate_of_unknown_cost"


@pytest.mark.asyncio
async def test_observe_records_live_calls_with_their_site(
        async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """Under observe(), awaited live calls outside any scope are recorded where they were made
    (an SDK coroutine handed straight to a task, by the SDK method called)."""

    async def ask(text: str) -> Message:
        return await async_anthropic_client.messages.create(**message_request(text))

    deferrable.observe()
    try:
        await asyncio.gather(*(ask(t) for t in ("a", "b", "c")))
        await asyncio.gather(async_anthropic_client.messages.create(**message_request("d")))
    finally:
        deferrable.observe(False)
    awaited, gathered = sorted(await rows(), key=lambda row: -int(row["calls"]))
    assert (awaited["mode"], awaited["calls"]) == ("live", 3)
    assert awaited["site"] == f"{__name__}.test_observe_records_live_calls_with_their_site.<locals>.ask"
    assert gathered["site"] == "anthropic.resources.messages.messages.AsyncMessages.create (in a task)"


@pytest.mark.asyncio
async def test_a_rerun_served_from_the_journal_is_not_paid_again(
        async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """Calls answered from the journal on a rerun add nothing to the ledger."""

    async def run() -> None:
        async with deferrable.scope():
            await asyncio.gather(*(async_anthropic_client.messages.create(
                **message_request(f"q{i}")) for i in range(4)))

    await run()
    before = await rows()
    close_journals()
    await run()
    assert await rows() == before
