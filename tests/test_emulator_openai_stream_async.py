"""The async twin of test_emulator_openai_stream: the same streams through
`openai.AsyncOpenAI`."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

from deferrable.emulator import Emulator, Faults
from tests.conftest import DUMMY_KEY
from tests.schemas import validate_openai
from tests.test_emulator_openai import MODEL, chat_body
from tests.test_emulator_openai_stream import (
    CALL_EVENTS,
    CHAT_TOOLS,
    PROMPT,
    RESPONSES_TOOLS,
    TEXT_EVENTS,
    WEATHER_PARAMETERS,
    Verdict,
    check_chunks,
    collapse,
    event_types,
    joined_content,
    sse_data,
    stable,
)

# -- Chat Completions --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_chat_stream_carries_the_plain_answer(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """A streamed chat answer is the plain one in pieces: role first, text in several deltas,
    finish_reason, a usage chunk, [DONE]; `get_final_completion()` equals `create()`."""
    client = async_openai_client
    plain = await client.chat.completions.create(**chat_body(PROMPT))
    options = {"include_usage": True}
    async with client.chat.completions.with_streaming_response.create(
            **chat_body(PROMPT), stream=True, stream_options=options) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line async for line in response.iter_lines()]
    chunks = check_chunks(sse_data(lines), include_usage=True)
    text, deltas = joined_content(chunks)
    assert text == plain.choices[0].message.content
    assert deltas >= 3
    assert chunks[-1].usage == plain.usage
    async with client.chat.completions.stream(**chat_body(PROMPT),
                                              stream_options=options) as stream:
        final = await stream.get_final_completion()
    assert final.choices[0].message.content == plain.choices[0].message.content
    assert final.choices[0].finish_reason == plain.choices[0].finish_reason
    assert final.usage == plain.usage


@pytest.mark.asyncio
async def test_chat_stream_without_usage_option(async_openai_client: openai.AsyncOpenAI) -> None:
    """Without `include_usage` no chunk carries usage and the stream ends on finish_reason."""
    stream = await async_openai_client.chat.completions.create(**chat_body(PROMPT), stream=True)
    chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.asyncio
async def test_chat_stream_of_a_forced_tool_call(async_openai_client: openai.AsyncOpenAI) -> None:
    """A forced call streams as tool_call deltas and finishes "tool_calls"; the final
    completion holds the plain call."""
    client = async_openai_client
    body = chat_body(PROMPT, tools=CHAT_TOOLS,
                     tool_choice={"type": "function", "function": {"name": "get_weather"}})
    plain = await client.chat.completions.create(**body)
    async with client.chat.completions.with_streaming_response.create(
            **body, stream=True) as response:
        lines = [line async for line in response.iter_lines()]
    chunks = check_chunks(sse_data(lines), include_usage=False)
    heads = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices[0].delta.tool_calls]
    assert heads[0].function is not None
    assert heads[0].function.name == "get_weather"
    assert len(heads) >= 3
    async with client.chat.completions.stream(**body) as stream:
        final = await stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls or []
    [plain_call] = plain.choices[0].message.tool_calls or []
    assert plain_call.type == "function"
    assert call.function.arguments == plain_call.function.arguments
    assert final.choices[0].finish_reason == "tool_calls"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_PARAMETERS)


@pytest.mark.asyncio
async def test_chat_stream_parses_a_structured_answer(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """`.stream(response_format=Model)` parses the streamed JSON into the model."""
    async with async_openai_client.chat.completions.stream(
            **chat_body("Sentiment: awful, broken on arrival"), response_format=Verdict) as stream:
        final = await stream.get_final_completion()
    parsed = final.choices[0].message.parsed
    assert isinstance(parsed, Verdict)
    assert parsed.sentiment == "negative"


# -- Responses ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_responses_stream_carries_the_plain_answer(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """A streamed response sends the documented events with rising sequence numbers, and
    `response.completed` holds the plain response."""
    client = async_openai_client
    plain = await client.responses.create(model=MODEL, input=PROMPT)
    async with client.responses.with_streaming_response.create(
            model=MODEL, input=PROMPT, stream=True) as response:
        lines = [line async for line in response.iter_lines() if line]
    names = [line[len("event: "):] for line in lines[0::2]]
    payloads = [json.loads(line[len("data: "):]) for line in lines[1::2]]
    assert [payload["type"] for payload in payloads] == names
    assert collapse(names) == TEXT_EVENTS
    completed = payloads[-1]["response"]
    validate_openai("Response", completed)
    assert stable(completed) == stable(plain.model_dump(mode="json", exclude_unset=True))
    async with client.responses.stream(model=MODEL, input=PROMPT) as stream:
        assert collapse(event_types([event async for event in stream])) == TEXT_EVENTS
        final = await stream.get_final_response()
    assert final.output_text == plain.output_text
    assert final.usage == plain.usage


@pytest.mark.asyncio
async def test_responses_stream_of_a_forced_function_call(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """A forced call streams `function_call_arguments` events; the final response's call is
    the plain one."""
    client = async_openai_client
    params: dict[str, Any] = {"model": MODEL, "input": PROMPT, "tools": RESPONSES_TOOLS,
                              "tool_choice": "required"}
    plain = await client.responses.create(**params)
    stream = await client.responses.create(**params, stream=True)
    assert collapse(event_types([event async for event in stream])) == CALL_EVENTS
    async with client.responses.stream(**params) as streamed:
        final = await streamed.get_final_response()
    [call], [plain_call] = final.output, plain.output
    assert call.type == plain_call.type == "function_call"
    assert (call.name, call.arguments) == (plain_call.name, plain_call.arguments)


# -- faults ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_stream_errors_come_before_any_event(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """A marker or a bad parameter fails a streamed call with the JSON error status, raised
    by the SDK when the call is made, before any event."""
    client = async_openai_client
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(**chat_body("{{error:429}}"), stream=True)
    with pytest.raises(openai.BadRequestError) as caught:
        async with client.responses.stream(model=MODEL, input="x", max_output_tokens=1):
            pass
    assert caught.value.param == "max_output_tokens"


@pytest.mark.asyncio
async def test_error_rate_fails_streamed_calls() -> None:
    """With error_rate 1.0 a streamed call fails with that status and bills nothing."""
    with Emulator(faults=Faults(error_rate=1.0, error_rate_status=503)) as emu:
        async with openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=emu.openai_url,
                                      max_retries=0) as client:
            with pytest.raises(openai.InternalServerError) as caught:
                await client.chat.completions.create(**chat_body("hi"), stream=True)
        assert caught.value.status_code == 503
        assert emu.stats()["billed_total"]["live"]["requests"] == 0
