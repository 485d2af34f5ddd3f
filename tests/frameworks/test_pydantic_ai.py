"""pydantic-ai agents on Anthropic and OpenAI (Chat Completions and Responses) inside
deferrable scopes: plain and structured output, `run`, `run_sync` and `run_stream`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import openai
import pytest
import pytest_asyncio
from pydantic_ai import Agent, NativeOutput, ToolOutput
from pydantic_ai.messages import ModelMessage, ModelResponse, TextPart, ToolCallPart
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

import deferrable
from deferrable.emulator import Emulator
from tests.conftest import DUMMY_KEY
from tests.frameworks.helpers import (
    ANTHROPIC_MODEL,
    CHAT,
    FAN_OUT,
    MESSAGES,
    OPENAI_MODEL,
    QUESTION,
    RESPONSES,
    City,
    Endpoint,
    Traffic,
    fan_out_scope,
    prompts,
)

OUTPUTS: dict[str, Any] = {
    "text": str,
    "tool-output": ToolOutput(City),  # the model must call a `final_result` tool
    "native-output": NativeOutput(City),  # a JSON schema the answer must match
}


@dataclass(frozen=True)
class Target:
    """A pydantic-ai model pointed at the emulator, and the endpoint it calls."""

    model: Model
    endpoint: Endpoint


def target(kind: str, anthropic_client: anthropic.AsyncAnthropic,
           openai_client: openai.AsyncOpenAI) -> Target:
    """The model of `kind` (``anthropic``, ``openai-chat`` or ``openai-responses``) over the
    given clients."""
    if kind == "anthropic":
        provider = AnthropicProvider(anthropic_client=anthropic_client)
        return Target(AnthropicModel(ANTHROPIC_MODEL, provider=provider), MESSAGES)
    openai_provider = OpenAIProvider(openai_client=openai_client)
    if kind == "openai-chat":
        return Target(OpenAIChatModel(OPENAI_MODEL, provider=openai_provider), CHAT)
    return Target(OpenAIResponsesModel(OPENAI_MODEL, provider=openai_provider), RESPONSES)


KINDS = ["anthropic", "openai-chat", "openai-responses"]


@pytest_asyncio.fixture(params=KINDS)
async def async_target(request: pytest.FixtureRequest, async_anthropic_client: anthropic.AsyncAnthropic,
                       async_openai_client: openai.AsyncOpenAI) -> AsyncIterator[Target]:
    """Each model in turn, over the suite's async clients (closed after the test)."""
    yield target(request.param, async_anthropic_client, async_openai_client)


@pytest.fixture(params=KINDS)
def sync_target(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[Target]:
    """Each model in turn, for `run_sync`, which runs the agent on the thread's event loop:
    one this fixture sets, then closes after the test with the clients it made."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    anthropic_client = anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emulator.url)
    openai_client = openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url)
    try:
        yield target(request.param, anthropic_client, openai_client)
    finally:
        loop.run_until_complete(anthropic_client.close())
        loop.run_until_complete(openai_client.close())
        asyncio.set_event_loop(None)
        loop.close()


def responses_of(messages: list[ModelMessage]) -> list[tuple[Any, ...]]:
    """What the model answered in a run, without ids and timestamps: each response's text
    and tool calls (arguments parsed), finish reason and token counts."""
    answers = []
    for message in messages:
        if not isinstance(message, ModelResponse):
            continue
        parts: list[Any] = []
        for part in message.parts:
            if isinstance(part, TextPart):
                parts.append(("text", part.content))
            elif isinstance(part, ToolCallPart):
                parts.append(("tool-call", part.tool_name, part.args_as_dict()))
            else:
                parts.append((part.part_kind,))
        answers.append((parts, message.finish_reason, message.usage.input_tokens,
                        message.usage.output_tokens))
    return answers


@pytest.mark.asyncio
@pytest.mark.parametrize("output", list(OUTPUTS))
async def test_run_defers_and_equals_live(async_target: Target, emulator: Emulator,
                                          output: str) -> None:
    """`Agent.run` defers its model request to one batch and ends with the live output."""
    agent = Agent(async_target.model, output_type=OUTPUTS[output])
    live = await agent.run(QUESTION)
    traffic = Traffic(emulator)
    async with deferrable.scope():
        deferred = await agent.run(QUESTION)
    traffic.assert_deferred(async_target.endpoint, calls=1)
    assert deferred.output == live.output
    assert isinstance(deferred.output, str if output == "text" else City)
    assert responses_of(deferred.all_messages()) == responses_of(live.all_messages())


@pytest.mark.parametrize("output", list(OUTPUTS))
def test_run_sync_defers_and_equals_live(sync_target: Target, emulator: Emulator,
                                         output: str) -> None:
    """`Agent.run_sync` defers its model request to one batch and ends with the live output."""
    agent = Agent(sync_target.model, output_type=OUTPUTS[output])
    live = agent.run_sync(QUESTION)
    traffic = Traffic(emulator)
    with deferrable.scope():
        deferred = agent.run_sync(QUESTION)
    traffic.assert_deferred(sync_target.endpoint, calls=1)
    assert deferred.output == live.output
    assert responses_of(deferred.all_messages()) == responses_of(live.all_messages())


@pytest.mark.asyncio
async def test_gathered_runs_share_one_batch(async_target: Target, emulator: Emulator) -> None:
    """50 gathered structured `Agent.run` calls make one batch of 50 with the live outputs."""
    agent = Agent(async_target.model, output_type=City)
    live = [run.output for run in await asyncio.gather(*(agent.run(prompt) for prompt in prompts()))]
    traffic = Traffic(emulator)
    async with fan_out_scope():
        runs = await asyncio.gather(*(agent.run(prompt) for prompt in prompts()))
    traffic.assert_deferred(async_target.endpoint, calls=FAN_OUT)
    assert [run.output for run in runs] == live


@pytest.mark.asyncio
async def test_run_stream_replays_the_batch_result(async_target: Target,
                                                   emulator: Emulator) -> None:
    """`Agent.run_stream` is answered from one batch and streams the live text."""
    agent = Agent(async_target.model)
    async with agent.run_stream(QUESTION) as stream:
        live = await stream.get_output()
    traffic = Traffic(emulator)
    async with deferrable.scope(), agent.run_stream(QUESTION) as stream:
        pieces = [piece async for piece in stream.stream_text(delta=True)]
    traffic.assert_deferred(async_target.endpoint, calls=1)
    assert "".join(pieces) == live != ""

