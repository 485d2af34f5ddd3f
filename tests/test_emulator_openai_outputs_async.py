"""The async twin of test_emulator_openai_outputs: structured outputs and forced tool calls
through `openai.AsyncOpenAI`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
import openai
import pytest

from tests.test_emulator_openai import batch_lines, chat_body, parse_jsonl
from tests.test_emulator_openai_async import run_batch
from tests.test_emulator_openai_outputs import (
    FORMATS,
    MODEL,
    RESPONSES,
    SECOND_TOOL,
    Line,
    Order,
    Review,
    check_order,
    structured_bodies,
    without_ids,
)
from tests.test_emulator_openai_stream import CHAT_TOOLS, RESPONSES_TOOLS, WEATHER_PARAMETERS


@pytest.mark.asyncio
async def test_chat_parse_fills_a_pydantic_model(async_openai_client: openai.AsyncOpenAI) -> None:
    """`chat.completions.parse(response_format=Order)` gets JSON that fits the schema."""
    completion = await async_openai_client.chat.completions.parse(
        **chat_body("Order for Ada Lovelace"), response_format=Order)
    check_order(completion.choices[0].message.parsed)
    assert completion.choices[0].finish_reason == "stop"


@pytest.mark.asyncio
async def test_structured_label_follows_the_responder(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """An enum field takes the label the responder gives, so classification stays meaningful."""
    good, bad = await asyncio.gather(*(
        async_openai_client.chat.completions.parse(**chat_body(text), response_format=Review)
        for text in ("Sentiment: I love it, a great buy", "Sentiment: awful and broken")))
    assert good.choices[0].message.parsed is not None
    assert bad.choices[0].message.parsed is not None
    assert good.choices[0].message.parsed.sentiment == "positive"
    assert bad.choices[0].message.parsed.sentiment == "negative"


@pytest.mark.asyncio
async def test_json_object_mode(async_openai_client: openai.AsyncOpenAI) -> None:
    """`json_object` answers a JSON object, and needs the word JSON in the messages."""
    completion = await async_openai_client.chat.completions.create(
        **chat_body("Reply in JSON: name a colour"), response_format={"type": "json_object"})
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)
    with pytest.raises(openai.BadRequestError) as caught:
        await async_openai_client.chat.completions.create(
            **chat_body("name a colour"), response_format={"type": "json_object"})
    assert caught.value.param == "messages"


@pytest.mark.asyncio
@pytest.mark.parametrize(("choice", "name"), [
    ("required", "get_weather"),
    ({"type": "function", "function": {"name": "refund"}}, "refund"),
])
async def test_forced_tool_choice_answers_a_valid_call(async_openai_client: openai.AsyncOpenAI,
                                                       choice: object, name: str) -> None:
    """A forced tool_choice answers one call of the chosen function, its arguments valid
    against that function's parameters, with finish_reason "tool_calls"."""
    completion = await async_openai_client.chat.completions.create(
        **chat_body("Weather in Paris?"), tools=[*CHAT_TOOLS, SECOND_TOOL], tool_choice=choice)
    assert completion.choices[0].finish_reason == "tool_calls"
    [call] = completion.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == name
    tool = next(t for t in [*CHAT_TOOLS, SECOND_TOOL] if t["function"]["name"] == name)
    jsonschema.validate(json.loads(call.function.arguments), tool["function"]["parameters"],
                        format_checker=FORMATS)


@pytest.mark.asyncio
async def test_parse_fills_pydantic_function_tool_arguments(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """A strict `pydantic_function_tool` forced by "required" parses into its model."""
    completion = await async_openai_client.chat.completions.parse(
        **chat_body("Add a line"), tools=[openai.pydantic_function_tool(Line)],
        tool_choice="required")
    [call] = completion.choices[0].message.tool_calls or []
    assert isinstance(call.function.parsed_arguments, Line)


@pytest.mark.asyncio
async def test_bad_tool_choices_are_rejected(async_openai_client: openai.AsyncOpenAI) -> None:
    """Forcing a tool without tools, or one that is not among them, is a 400 on tool_choice."""
    with pytest.raises(openai.BadRequestError) as no_tools:
        await async_openai_client.responses.create(model=MODEL, input="x",
                                                   tool_choice="required")
    assert no_tools.value.param == "tool_choice"
    with pytest.raises(openai.BadRequestError) as unknown:
        await async_openai_client.responses.create(
            model=MODEL, input="x", tools=RESPONSES_TOOLS,
            tool_choice={"type": "function", "name": "nowhere"})
    assert unknown.value.param == "tool_choice"


@pytest.mark.asyncio
async def test_responses_parse_fills_a_pydantic_model(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """`responses.parse(text_format=Order)` gets JSON that fits the schema."""
    response = await async_openai_client.responses.parse(
        model=MODEL, input="Order for Ada Lovelace", text_format=Order)
    check_order(response.output_parsed)


@pytest.mark.asyncio
async def test_responses_forced_call(async_openai_client: openai.AsyncOpenAI) -> None:
    """A forced tool_choice answers a single `function_call` item with valid arguments."""
    response = await async_openai_client.responses.create(
        model=MODEL, input="Weather in Paris?", tools=RESPONSES_TOOLS,
        tool_choice={"type": "function", "name": "get_weather"})
    [item] = response.output
    assert item.type == "function_call"
    assert item.name == "get_weather"
    jsonschema.validate(json.loads(item.arguments), WEATHER_PARAMETERS)


@pytest.mark.asyncio
async def test_batches_answer_formats_and_forced_tools_as_live(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """In a batch, structured and forced-tool requests get the live answers (ids aside)."""
    client = async_openai_client
    for endpoint in ("/v1/chat/completions", RESPONSES):
        picked: list[dict[str, Any]] = [b for url, b in structured_bodies() if url == endpoint]
        batch = await run_batch(client, batch_lines(picked, endpoint), endpoint)
        assert batch.status == "completed"
        assert batch.output_file_id is not None
        lines = parse_jsonl((await client.files.content(batch.output_file_id)).text)
        live = client.chat.completions if endpoint != RESPONSES else client.responses
        for index, body in enumerate(picked):
            plain = await live.with_raw_response.create(**body)
            assert without_ids(lines[f"r{index}"]["response"]["body"]) == without_ids(
                json.loads(plain.text))
