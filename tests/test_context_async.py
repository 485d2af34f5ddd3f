"""A decorated async generator defers while iterated, and only then (the sync twin is
test_context_sync)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator

import anthropic
import pytest

from deferrable import deferrable as defer
from deferrable.emulator import Emulator
from tests.emulator_helpers import message_request


@pytest.mark.asyncio
async def test_a_decorated_async_generator_defers_while_iterated(
        async_anthropic_client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """Each step of an @deferrable async generator is in its scope; the consumer's code is not."""

    @defer
    async def answers(texts: list[str]) -> AsyncIterator[str]:
        for text in texts:
            message = await async_anthropic_client.messages.create(
                **message_request(f"Sentiment: {text}"))
            block = message.content[0]
            assert block.type == "text"
            yield block.text

    assert inspect.isasyncgen(answers([]))
    seen = []
    async for answer in answers(["great", "awful"]):
        seen.append(answer)
        await async_anthropic_client.messages.create(**message_request("between steps"))
    assert seen == ["positive", "negative"]
    stats = emulator.stats()
    assert stats["batches"]["anthropic_batch_requests"] == 2
    assert stats["requests"]["POST /v1/messages"] == 2


@pytest.mark.asyncio
async def test_a_decorated_async_generator_passes_asend_and_aclose() -> None:
    """`asend()` reaches the inner generator, and `aclose()` runs its cleanup."""
    closed: list[str] = []

    @defer
    async def echo() -> AsyncIterator[str]:
        text = "start"
        try:
            while True:
                text = yield text
        finally:
            closed.append("closed")

    steps = echo()
    assert await steps.__anext__() == "start"
    assert await steps.asend("again") == "again"
    await steps.aclose()
    assert closed == ["closed"]
