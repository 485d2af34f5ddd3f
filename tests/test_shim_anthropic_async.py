"""`@deferrable` on async code with `AsyncAnthropic`: real SDK, real HTTP, the emulator
judging (the sync twin is test_shim_anthropic_sync)."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import anthropic
import pytest
import pytest_asyncio
from anthropic.types import Message
from anthropic.types.beta import BetaMessage

import deferrable
from deferrable import BatchCanceledError, BatchExpiredError, DeferrableError, MissingResultError
from deferrable import deferrable as defer
from deferrable.emulator import Emulator, Quirks
from deferrable.providers.anthropic import AnthropicTarget
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import message_request, until
from tests.scope_helpers import flush_when_deferred


@pytest_asyncio.fixture
async def client(emulator: Emulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The official async client, pointed at the emulator."""
    async with anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emulator.url) as client:
        yield client


async def _nonempty(items: Awaitable[list[str]]) -> bool:
    return bool(await items)


@contextlib.asynccontextmanager
async def emulated_with(quirks: Quirks) -> AsyncIterator[tuple[Emulator, anthropic.AsyncAnthropic]]:
    """An emulator with `quirks` and an async client pointed at it."""
    with Emulator(quirks=quirks) as emu:
        async with anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emu.url) as client:
            yield emu, client


def requests_of(emulator: Emulator) -> dict[str, int]:
    """HTTP requests the emulator served, by route."""
    return emulator.stats()["requests"]


@pytest.mark.asyncio
async def test_concurrent_calls_become_batches(client: anthropic.AsyncAnthropic,
                                               emulator: Emulator) -> None:
    """N gathered calls resolve with ceil(N / max_batch_size) batches and no live request."""

    @defer(max_batch_size=40, max_wait=60)
    async def sentiment(review: str) -> str:
        message = await client.messages.create(**message_request(f"Sentiment: {review}"))
        block = message.content[0]
        assert block.type == "text"
        return block.text

    reviews = ["great", "awful", "fine"] * 50
    await client.messages.create(**message_request("warm up"))  # a client's first call yields once more
    emulator.reset_stats()
    tasks = [asyncio.ensure_future(sentiment(r)) for r in reviews]
    await asyncio.sleep(0)  # every task reaches its call
    await deferrable.aflush()  # the last, partial batch goes now, not after max_wait
    labels = await asyncio.gather(*tasks)
    assert labels == ["positive", "negative", "neutral"] * 50
    routes = requests_of(emulator)
    assert routes["POST /v1/messages/batches"] == math.ceil(150 / 40)
    assert "POST /v1/messages" not in routes
    assert emulator.stats()["billed_total"]["batch"]["requests"] == 150


@pytest.mark.asyncio
async def test_deferred_value_equals_the_live_answer(client: anthropic.AsyncAnthropic) -> None:
    """The deferred call returns a `Message` equal to the live one, every field carried."""
    params: dict[str, Any] = message_request(
        "Summarise: the hotel was clean", system=[{"type": "text", "text": "Be brief."}],
        metadata={"user_id": "u-1"}, stop_sequences=["###"], thinking={"type": "adaptive"},
        tools=[{"name": "lookup", "input_schema": {"type": "object"}}],
        tool_choice={"type": "auto"}, output_config={"effort": "low"}, max_tokens=300)
    live = await client.messages.create(**params)
    async with deferrable.scope():
        deferred = await client.messages.create(**params)
    assert type(deferred) is Message
    assert deferred.model_dump(exclude={"id", "usage"}) == live.model_dump(exclude={"id", "usage"})
    assert deferred.usage.service_tier == "batch"
    assert deferred.usage.input_tokens == live.usage.input_tokens


@pytest.mark.asyncio
async def test_extra_body_and_forced_tool_are_carried(client: anthropic.AsyncAnthropic,
                                                      emulator: Emulator) -> None:
    """extra_body is merged into the batch params and a forced tool comes back as tool_use."""
    async with deferrable.scope():
        message = await client.messages.create(
            **message_request("Weather?"), extra_body={"tool_choice": {"type": "any"}},
            tools=[{"name": "weather", "input_schema": {
                "type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]}}])
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "tool_use"
    assert "POST /v1/messages" not in requests_of(emulator)


@pytest.mark.asyncio
async def test_beta_calls_defer_with_their_betas(client: anthropic.AsyncAnthropic,
                                                 emulator: Emulator) -> None:
    """client.beta.messages.create defers too and returns a BetaMessage."""
    async with deferrable.scope():
        message = await client.beta.messages.create(**message_request("hello"),
                                                    betas=["output-300k-2026-03-24"])
    assert type(message) is BetaMessage
    assert requests_of(emulator)["POST /v1/messages/batches"] == 1


@pytest.mark.asyncio
async def test_errored_lines_raise_the_live_exception(client: anthropic.AsyncAnthropic) -> None:
    """Each errored line raises the SDK class the live call raises, and its neighbours succeed."""
    texts = ["fine", "{{error:400}}", "{{error:429}}", "{{error:overloaded_error}}", "ok"]
    async with deferrable.scope():
        outcomes = await asyncio.gather(
            *(client.messages.create(**message_request(text)) for text in texts),
            return_exceptions=True)
    live = client.with_options(max_retries=0)
    for text, outcome in zip(texts, outcomes, strict=True):
        if "error" not in text:
            assert isinstance(outcome, Message)
            continue
        with pytest.raises(anthropic.APIStatusError) as caught:
            await live.messages.create(**message_request(text))
        assert type(outcome) is type(caught.value)
        assert isinstance(outcome, anthropic.APIStatusError)
        assert outcome.status_code == caught.value.status_code
        assert outcome.message.split(" - ")[0] == caught.value.message.split(" - ")[0]
        assert outcome.request_id is not None
        assert "Injected error" in str(outcome.body)


@pytest.mark.asyncio
async def test_expired_and_canceled_batches(emulator: Emulator) -> None:
    """Expired lines raise BatchExpiredError, canceled ones BatchCanceledError (not sent again with
    max_retries=0): both DeferrableError."""
    async with anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emulator.url) as client:
        emulator.faults.expire_batches = True
        async with deferrable.scope(max_retries=0):
            with pytest.raises(BatchExpiredError) as expired:
                await client.messages.create(**message_request("late"))
        assert isinstance(expired.value, DeferrableError)
        emulator.faults.expire_batches = False
        emulator.batch_latency = 3600

        async def running() -> list[str]:
            return [b.id async for b in client.messages.batches.list()
                    if b.processing_status == "in_progress"]

        async def cancel_when_created() -> None:
            await until(lambda: _nonempty(running()))
            for batch_id in await running():
                await client.messages.batches.cancel(batch_id)

        async with deferrable.scope(max_retries=0):
            canceled, _ = await asyncio.gather(
                client.messages.create(**message_request("never runs")), cancel_when_created(),
                return_exceptions=True)
        assert isinstance(canceled, BatchCanceledError)


@pytest.mark.asyncio
async def test_age_threshold_and_flush(client: anthropic.AsyncAnthropic,
                                       emulator: Emulator) -> None:
    """A lone call waits for max_wait; with a long max_wait, aflush() submits it at once."""
    async with deferrable.scope(max_wait=0.05):
        assert (await client.messages.create(**message_request("a"))).content
    async with deferrable.scope(max_wait=3600):
        pending = asyncio.ensure_future(client.messages.create(**message_request("b")))
        await asyncio.sleep(0.2)
        assert not pending.done()
        assert await deferrable.aflush() == 1
        assert (await asyncio.wait_for(pending, timeout=30)).content
    assert requests_of(emulator)["POST /v1/messages/batches"] == 2


@pytest.mark.asyncio
async def test_byte_threshold_splits_batches(client: anthropic.AsyncAnthropic,
                                             emulator: Emulator) -> None:
    """max_batch_bytes splits one group into batches no larger than the limit."""
    async with deferrable.scope(max_batch_bytes=1000, max_wait=60):
        calls = asyncio.gather(*(client.messages.create(**message_request("x" * 300))
                                 for _ in range(6)))
        await flush_when_deferred(6)  # the last batch: the first two closed at the limit
        await calls
    assert requests_of(emulator)["POST /v1/messages/batches"] == 3


@pytest.mark.asyncio
async def test_clients_with_different_keys_never_share_a_batch(emulator: Emulator) -> None:
    """Calls of two clients with different credentials go into different batches."""
    async with anthropic.AsyncAnthropic(api_key="key-one", base_url=emulator.url) as one, \
            anthropic.AsyncAnthropic(api_key="key-two", base_url=emulator.url) as two, \
            deferrable.scope(max_wait=0.2):
        await asyncio.gather(one.messages.create(**message_request("a")),
                             two.messages.create(**message_request("b")))
    assert requests_of(emulator)["POST /v1/messages/batches"] == 2


@pytest.mark.asyncio
async def test_pass_through_outside_a_scope(client: anthropic.AsyncAnthropic,
                                            emulator: Emulator) -> None:
    """Patched but outside a scope: same types, same exceptions, one live request each."""
    deferrable.patch()
    message = await client.messages.create(**message_request("a"))
    assert type(message) is Message
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.create(**{**message_request("b"), "model": "gpt-4o"})
    assert requests_of(emulator) == {"POST /v1/messages": 2}


@pytest.mark.asyncio
async def test_two_event_loops_in_a_row(client: anthropic.AsyncAnthropic) -> None:
    """Deferred calls work from a fresh event loop after another loop has closed."""

    @defer
    async def ask(text: str) -> str:
        answer = await anthropic.AsyncAnthropic(
            api_key=DUMMY_KEY, base_url=str(client.base_url)).messages.create(
                **message_request(text))
        block = answer.content[0]
        assert block.type == "text"
        return block.text

    first = await asyncio.to_thread(asyncio.run, ask("sentiment: great"))
    second = await asyncio.to_thread(asyncio.run, ask("sentiment: awful"))
    assert (first, second) == ("positive", "negative")


def test_a_call_created_before_its_loop(emulator: Emulator) -> None:
    """`asyncio.run(client.messages.create(...))` in a scope defers, though no loop ran at the call."""
    client = anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emulator.url)
    with deferrable.scope():
        message = asyncio.run(client.messages.create(**message_request("sentiment: great")))
    assert message.content[0].type == "text"
    assert message.usage.service_tier == "batch"
    assert "POST /v1/messages" not in requests_of(emulator)


@pytest.mark.asyncio
async def test_a_result_line_that_never_comes_is_an_error(client: anthropic.AsyncAnthropic,
                                                          emulator: Emulator) -> None:
    """A results stream that ends short resolves the calls it names and fails the rest, no hang."""
    emulator.faults.truncate_results_after = 2
    emulator.faults.truncate_mode = "clean"
    async with deferrable.scope(max_batch_size=5, max_wait=60):  # one batch of the five
        outcomes = await asyncio.gather(
            *(client.messages.create(**message_request(str(i))) for i in range(5)),
            return_exceptions=True)
    assert sum(isinstance(o, Message) for o in outcomes) == 2
    assert sum(isinstance(o, MissingResultError) for o in outcomes) == 3


@pytest.mark.asyncio
async def test_batches_split_at_the_provider_limit(client: anthropic.AsyncAnthropic,
                                                   emulator: Emulator,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """max_batch_size above the provider's limit is capped by it (limit lowered to 5 here)."""
    monkeypatch.setattr(AnthropicTarget, "max_requests", 5)
    async with deferrable.scope(max_batch_size=1_000, max_wait=60):
        calls = asyncio.gather(*(client.messages.create(**message_request(str(i)))
                                 for i in range(12)))
        await flush_when_deferred(12)  # the last two: the first ten went by the limit
        await calls
    assert requests_of(emulator)["POST /v1/messages/batches"] == 3


@pytest.mark.asyncio
async def test_a_request_that_sinks_its_batch_fails_alone() -> None:
    """When the provider rejects a whole batch over one request, only that call fails."""
    async with emulated_with(Quirks(anthropic_batch_param_errors="reject")) as (emu, client), \
            deferrable.scope(max_batch_size=3, max_wait=60):  # one batch of the three
        outcomes = await asyncio.gather(
            client.messages.create(**message_request("sentiment: great")),
            client.messages.create(**message_request("hot"), extra_body={"temperature": 1}),
            client.messages.create(**message_request("sentiment: awful")),
            return_exceptions=True)
    good, bad, also_good = outcomes
    assert isinstance(good, Message)
    assert isinstance(also_good, Message)
    assert isinstance(bad, anthropic.BadRequestError)
    assert "temperature" in bad.message
    assert emu.stats()["batches"]["anthropic_batches"] == 1
