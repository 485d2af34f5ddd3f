"""The async twin of test_emulator_anthropic_outputs: structured outputs, forced tools and
threads through `anthropic.AsyncAnthropic`."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import jsonschema
import pytest
from anthropic import beta_async_tool

from deferrable.emulator import Emulator
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import message_request, until
from tests.test_emulator_anthropic_outputs import (
    SCHEMA,
    THREADS_BETA,
    Recorder,
    stable,
    structured_requests,
    tool_use,
)
from tests.test_emulator_openai_outputs import FORMATS, Order, check_order


@contextlib.asynccontextmanager
async def recorded() -> AsyncIterator[tuple[anthropic.AsyncAnthropic, Recorder]]:
    """An emulator answering through a `Recorder`, and an async client pointed at it."""
    recorder = Recorder()
    with Emulator(responder=recorder) as emu:
        async with anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emu.url) as client:
            yield client, recorder


async def batch_results(client: anthropic.AsyncAnthropic, batch_id: str) -> dict[str, Any]:
    """The results of a beta batch by custom_id, once it has ended."""
    async def ended() -> bool:
        batch = await client.beta.messages.batches.retrieve(batch_id)
        return batch.processing_status == "ended"

    await until(ended)
    return {r.custom_id: r.result
            async for r in await client.beta.messages.batches.results(batch_id)}


@pytest.mark.asyncio
async def test_parse_fills_a_pydantic_model(
        async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """`messages.parse(output_format=Order)` parses into the model."""
    message = await async_anthropic_client.messages.parse(
        **message_request("Order for Ada", max_tokens=2000), output_format=Order)
    check_order(message.parsed_output)


@pytest.mark.asyncio
async def test_structured_and_forced_answers(
        async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """A raw schema is followed, `any` calls the first client tool, `tool` the named one."""
    structured, forced_any, named = [await async_anthropic_client.messages.create(**params)
                                     for params in structured_requests()]
    assert structured.content[0].type == "text"
    jsonschema.validate(json.loads(structured.content[0].text), SCHEMA, format_checker=FORMATS)
    assert tool_use(forced_any).name == "lookup"
    jsonschema.validate(tool_use(named).input, SCHEMA, format_checker=FORMATS)


@pytest.mark.asyncio
async def test_batch_answers_formats_and_forced_tools_as_live(
        async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """In a batch, structured and forced-tool requests get the live answers (ids aside)."""
    client = async_anthropic_client
    requests = structured_requests()
    batch = await client.beta.messages.batches.create(requests=[
        {"custom_id": f"r{i}", "params": params} for i, params in enumerate(requests)])
    results = await batch_results(client, batch.id)
    for index, params in enumerate(requests):
        result = results[f"r{index}"]
        assert result.type == "succeeded"
        live = await client.beta.messages.create(**params)
        assert stable(result.message.model_dump()) == stable(live.model_dump())


@pytest.mark.asyncio
async def test_thread_continue_answers_the_held_history() -> None:
    """A `continue` sends only new messages and the answer sees the held history and system;
    a second continue of the same reply is `thread_already_continued`."""
    async with recorded() as (client, recorder):
        first = await client.beta.messages.create(
            **message_request("first question"), system="be brief",
            thread={"type": "create"}, betas=[THREADS_BETA])
        follow: dict[str, Any] = {
            "model": "claude-haiku-4-5", "max_tokens": 64, "betas": [THREADS_BETA],
            "messages": [{"role": "user", "content": "second question"}],
            "thread": {"type": "continue", "previous_message_id": first.id}}
        second = await client.beta.messages.create(**follow)
        with pytest.raises(anthropic.BadRequestError) as again:
            await client.beta.messages.create(**follow)
    assert again.value.error_code == "thread_already_continued"
    assert second.usage.input_tokens > first.usage.input_tokens
    assert recorder.prompts[1].system == "be brief"
    assert recorder.prompts[1].turns == (("user", "first question"), ("assistant", "reply 1"),
                                         ("user", "second question"))


@pytest.mark.asyncio
async def test_unknown_thread_is_not_found(
        async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """Continuing a reply the server does not hold is a 404 `thread_not_found`."""
    with pytest.raises(anthropic.NotFoundError) as lost:
        await async_anthropic_client.beta.messages.create(
            **message_request("x"), thread={"type": "continue", "previous_message_id": "msg_x"})
    assert lost.value.error_code == "thread_not_found"


@pytest.mark.asyncio
async def test_tool_runner_runs_over_a_thread() -> None:
    """The async beta tool runner's threaded turns continue the last reply each time, with
    the forced tool resolved from the held tools."""
    calls: list[int] = []

    @beta_async_tool
    async def lookup(order_id: int) -> str:
        """Find an order."""
        calls.append(order_id)
        return f"order {order_id} is late"

    async with recorded() as (client, recorder):
        runner = client.beta.messages.tool_runner(
            **message_request("Where is my order?", max_tokens=200), tools=[lookup],
            tool_choice={"type": "tool", "name": "lookup"}, max_iterations=2)
        replies = [message async for message in runner]
    assert len(replies) == len(calls) == 2
    assert [prompt.params.get("thread") for prompt in recorder.prompts] == [
        {"type": "create"}, {"type": "continue", "previous_message_id": replies[0].id}]
    assert recorder.prompts[-1].turns[0] == ("user", "Where is my order?")


@pytest.mark.asyncio
async def test_threads_span_batches_and_live_calls(
        async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """A batch line may create a thread that a live call continues."""
    client = async_anthropic_client
    batch = await client.beta.messages.batches.create(requests=[
        {"custom_id": "start", "params": {**message_request("batch start"),
                                          "thread": {"type": "create"}}}])
    started = (await batch_results(client, batch.id))["start"]
    assert started.type == "succeeded"
    follow = await client.beta.messages.create(
        **message_request("after the batch"),
        thread={"type": "continue", "previous_message_id": started.message.id})
    assert follow.usage.input_tokens > started.message.usage.input_tokens
