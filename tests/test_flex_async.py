"""The flex lane, async: OpenAI calls sent live with service_tier="flex" at batch prices on
the caller's loop, tried again while flex has no capacity, and batched when it stays busy
or the model offers none; ``lane="auto"`` chooses flex for small groups and near deadlines."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import openai
import pytest

from deferrable import deferrable as defer
from deferrable.emulator import Emulator
from tests.emulator_helpers import chat_request, message_request
from tests.test_flex_sync import FLEX_MODEL, NO_FLEX_MODEL, PRICED_MODEL, billed

pytestmark = pytest.mark.asyncio


async def run(client: openai.AsyncOpenAI, count: int, model: str = FLEX_MODEL,
              **options: Any) -> list[Any]:
    """`count` chat completions from an async @deferrable function, gathered."""

    @defer(**options)
    async def ask(text: str) -> Any:
        return await client.chat.completions.create(**chat_request(text, model=model))

    return await asyncio.wait_for(
        asyncio.gather(*(ask(f"Sentiment: great {i}") for i in range(count))), 60)


async def test_lane_flex_sends_calls_flex_at_batch_prices(
        emulator: Emulator, async_openai_client: openai.AsyncOpenAI) -> None:
    """Every call is answered by flex processing (its service tier says so), none batched."""
    answers = await run(async_openai_client, 6, model=PRICED_MODEL, lane="flex")
    assert [a.service_tier for a in answers] == ["flex"] * 6
    assert billed(emulator, "flex") == 6
    assert billed(emulator, "batch") == billed(emulator, "live") == 0


async def test_flex_without_capacity_is_tried_again_then_batched(
        emulator: Emulator, async_openai_client: openai.AsyncOpenAI) -> None:
    """With half of flex requests refused 429, calls retry flex; those refused every time go
    in a batch; every call is answered and paid once."""
    emulator.faults.flex_unavailable_rate = 0.5
    answers = await run(async_openai_client, 12, lane="flex")
    assert all(a.choices[0].message.content for a in answers)
    assert billed(emulator, "flex") + billed(emulator, "batch") == 12
    assert billed(emulator, "flex") > 0
    assert billed(emulator, "live") == 0


async def test_flex_never_available_puts_every_call_in_a_batch(
        emulator: Emulator, async_openai_client: openai.AsyncOpenAI) -> None:
    """Flex refusing everything: after its tries each call goes in one batch."""
    emulator.faults.flex_unavailable_rate = 1.0
    await run(async_openai_client, 4, lane="flex")
    assert billed(emulator, "batch") == 4
    assert billed(emulator, "flex") == 0


async def test_a_model_without_flex_goes_in_a_batch(
        emulator: Emulator, async_openai_client: openai.AsyncOpenAI) -> None:
    """Flex refused as unsupported for the model (400): the calls are batched instead."""
    await run(async_openai_client, 3, model=NO_FLEX_MODEL, lane="flex")
    assert billed(emulator, "batch") == 3
    assert billed(emulator, "flex") == 0


@pytest.mark.parametrize(("count", "model", "lane"), [
    (5, FLEX_MODEL, "flex"), (25, FLEX_MODEL, "batch"), (5, "gpt-6.2-sol", "batch")])
async def test_lane_auto_chooses_by_group_size_and_model(
        emulator: Emulator, async_openai_client: openai.AsyncOpenAI, count: int, model: str,
        lane: str) -> None:
    """auto: a small group of a flex model goes flex; a large one, or a model not known to
    offer flex, goes in a batch."""
    await run(async_openai_client, count, model=model, lane="auto", max_batch_size=count,
              max_wait=60)
    assert billed(emulator, lane) == count
    assert billed(emulator, "live") == 0


async def test_lane_auto_takes_flex_when_the_deadline_is_too_near_for_a_batch(
        emulator: Emulator, async_openai_client: openai.AsyncOpenAI) -> None:
    """auto with a deadline inside the hour: even a large group goes flex."""
    await run(async_openai_client, 25, lane="auto", deadline=900, max_batch_size=25)
    assert billed(emulator, "flex") == 25


async def test_responses_go_flex_too(emulator: Emulator,
                                     async_openai_client: openai.AsyncOpenAI) -> None:
    """The Responses API takes the flex lane as Chat Completions does."""

    @defer(lane="flex")
    async def ask(text: str) -> Any:
        return await async_openai_client.responses.create(model=FLEX_MODEL, input=text)

    answers = await asyncio.gather(*(ask(f"Sentiment: fine {i}") for i in range(3)))
    assert [a.service_tier for a in answers] == ["flex"] * 3
    assert billed(emulator, "flex") == 3


async def test_anthropic_has_no_flex_lane_and_batches(
        emulator: Emulator, async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """lane='flex' on Anthropic calls: a batch, as Anthropic offers no flex processing."""

    @defer(lane="flex")
    async def ask(text: str) -> Any:
        return await async_anthropic_client.messages.create(**message_request(text))

    answers = await asyncio.gather(*(ask(f"Sentiment: great {i}") for i in range(3)))
    assert all(a.content for a in answers)
    assert billed(emulator, "batch") == 3
