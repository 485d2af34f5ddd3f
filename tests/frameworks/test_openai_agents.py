"""The OpenAI Agents SDK (`agents`) inside deferrable scopes: `Runner.run` and
`Runner.run_streamed` over Chat Completions and Responses models, plain and structured
output, and a tool loop."""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
from agents import (
    Agent,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    RunResult,
    RunResultStreaming,
    function_tool,
    set_tracing_disabled,
)
from agents.models.interface import Model

import deferrable
from deferrable.emulator import Emulator
from tests.frameworks.helpers import (
    CHAT,
    FAN_OUT,
    OPENAI_MODEL,
    QUESTION,
    RESPONSES,
    City,
    Endpoint,
    Traffic,
    fan_out_scope,
    prompts,
    stable,
)

set_tracing_disabled(True)  # the SDK would otherwise export traces to OpenAI

@function_tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


MODELS = {"chat-completions": (OpenAIChatCompletionsModel, CHAT),
          "responses": (OpenAIResponsesModel, RESPONSES)}


@pytest.fixture(params=list(MODELS))
def model(request: pytest.FixtureRequest, async_openai_client: openai.AsyncOpenAI
          ) -> tuple[Model, Endpoint]:
    """Each of the SDK's OpenAI models in turn, over the suite's `AsyncOpenAI` client, and
    the endpoint it calls."""
    kind, endpoint = MODELS[request.param]
    return kind(model=OPENAI_MODEL, openai_client=async_openai_client), endpoint


def answers(result: RunResult | RunResultStreaming) -> list[Any]:
    """What the model answered in a run, turn by turn, without ids, and the tokens used."""
    usage = result.context_wrapper.usage
    return [*(stable(response.output) for response in result.raw_responses),
            (usage.requests, usage.input_tokens, usage.output_tokens)]


@pytest.mark.asyncio
@pytest.mark.parametrize("output_type", [None, City], ids=["text", "structured"])
async def test_run_defers_and_equals_live(model: tuple[Model, Endpoint], emulator: Emulator,
                                          output_type: type[City] | None) -> None:
    """`Runner.run` defers its model call to one batch and ends with the live output."""
    llm, endpoint = model
    agent = Agent(name="geographer", instructions="Answer briefly.", model=llm,
                  output_type=output_type)
    live = await Runner.run(agent, QUESTION)
    traffic = Traffic(emulator)
    async with deferrable.scope():
        deferred = await Runner.run(agent, QUESTION)
    traffic.assert_deferred(endpoint, calls=1)
    assert deferred.final_output == live.final_output
    assert isinstance(deferred.final_output, output_type or str)
    assert answers(deferred) == answers(live)


@pytest.mark.asyncio
async def test_tool_loop_defers_each_turn(model: tuple[Model, Endpoint],
                                          emulator: Emulator) -> None:
    """A forced tool call, then the answer: both turns defer (a batch each) as the live loop."""
    llm, endpoint = model
    agent = Agent(name="forecaster", model=llm, tools=[get_weather],
                  model_settings=ModelSettings(tool_choice="required"))
    live = await Runner.run(agent, "What is the weather in Paris?")
    traffic = Traffic(emulator)
    async with deferrable.scope():
        deferred = await Runner.run(agent, "What is the weather in Paris?")
    traffic.assert_deferred(endpoint, calls=2, batches=2)
    assert [item.type for item in deferred.new_items] == [
        "tool_call_item", "tool_call_output_item", "message_output_item"]
    assert deferred.final_output == live.final_output
    assert answers(deferred) == answers(live)


@pytest.mark.asyncio
async def test_gathered_runs_share_one_batch(model: tuple[Model, Endpoint],
                                             emulator: Emulator) -> None:
    """50 gathered structured `Runner.run` calls make one batch of 50 with the live outputs."""
    llm, endpoint = model
    agent = Agent(name="geographer", model=llm, output_type=City)
    live = [run.final_output
            for run in await asyncio.gather(*(Runner.run(agent, prompt) for prompt in prompts()))]
    traffic = Traffic(emulator)
    async with fan_out_scope():
        runs = await asyncio.gather(*(Runner.run(agent, prompt) for prompt in prompts()))
    traffic.assert_deferred(endpoint, calls=FAN_OUT)
    assert [run.final_output for run in runs] == live


@pytest.mark.asyncio
async def test_run_streamed_replays_the_batch_result(model: tuple[Model, Endpoint],
                                                     emulator: Emulator) -> None:
    """`Runner.run_streamed` is answered from one batch and streams the live answer."""
    llm, endpoint = model
    agent = Agent(name="geographer", model=llm)
    live = Runner.run_streamed(agent, QUESTION)
    async for _ in live.stream_events():
        pass
    traffic = Traffic(emulator)
    async with deferrable.scope():
        deferred = Runner.run_streamed(agent, QUESTION)
        events = [event.type async for event in deferred.stream_events()]
    traffic.assert_deferred(endpoint, calls=1)
    assert "raw_response_event" in events
    assert deferred.final_output == live.final_output != ""
    assert answers(deferred) == answers(live)
