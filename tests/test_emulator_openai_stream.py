"""The emulator streams Chat Completions and Responses as OpenAI does: the chunks and typed
events the sync SDK parses, carrying exactly the non-streaming answer, and errors before any
event (the async twin is test_emulator_openai_stream_async)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel

from deferrable.emulator import Emulator, Faults
from tests.anthropic_types import validate_anthropic
from tests.conftest import DUMMY_KEY
from tests.schemas import validate_openai
from tests.test_emulator_openai import MODEL, chat_body

PROMPT = "Please summarise the delivery of order 7 that arrived two days late and slightly damaged"
WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["city", "unit", "days"],
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]},
                   "days": {"type": "integer", "minimum": 1, "maximum": 7}}}
CHAT_TOOLS = [{"type": "function", "function": {"name": "get_weather",
                                                 "parameters": WEATHER_PARAMETERS}}]
RESPONSES_TOOLS = [{"type": "function", "name": "get_weather", "parameters": WEATHER_PARAMETERS}]
TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.content_part.added", "response.output_text.delta",
               "response.output_text.done", "response.content_part.done",
               "response.output_item.done", "response.completed"]
CALL_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.function_call_arguments.delta", "response.function_call_arguments.done",
               "response.output_item.done", "response.completed"]
VOLATILE = frozenset({"id", "call_id", "created_at", "completed_at"})


class Verdict(BaseModel):
    """A structured answer to stream."""

    sentiment: str
    stars: int


# -- helpers shared with the async twin --------------------------------------------------


def sse_data(lines: list[str]) -> list[str]:
    """The `data:` payloads of raw server-sent event lines (every line is one or blank)."""
    assert all(line.startswith("data: ") for line in lines if line), lines
    return [line[len("data: "):] for line in lines if line]


def check_chunks(payloads: list[str], include_usage: bool) -> list[ChatCompletionChunk]:
    """The chunks of a chat stream, checked: `[DONE]` last, one id, strictly typed, every
    `usage` null but that of a final choiceless chunk (only with `include_usage`)."""
    assert payloads[-1] == "[DONE]"
    chunks = []
    for payload in payloads[:-1]:
        assert isinstance(json.loads(payload)["obfuscation"], str)
        chunks.append(validate_anthropic(ChatCompletionChunk, payload))
    assert len({chunk.id for chunk in chunks}) == 1
    body, tail = (chunks[:-1], chunks[-1]) if include_usage else (chunks, None)
    assert all(chunk.usage is None and len(chunk.choices) == 1 for chunk in body)
    if tail is not None:
        assert tail.choices == []
        assert tail.usage is not None
    first, last = body[0].choices[0], body[-1].choices[0]
    assert first.delta.role == "assistant"
    assert last.delta.model_dump(exclude_none=True) == {}
    assert last.finish_reason is not None
    assert all(chunk.choices[0].finish_reason is None for chunk in body[:-1])
    return chunks


def joined_content(chunks: list[ChatCompletionChunk]) -> tuple[str, int]:
    """(text of all content deltas, how many deltas carried text)."""
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    return "".join(pieces), len(pieces)


def event_types(events: list[Any]) -> list[str]:
    """The types of Responses stream events, checked to number 0, 1, 2, ... in order."""
    assert [event.sequence_number for event in events] == list(range(len(events)))
    return [event.type for event in events]


def collapse(types: list[str]) -> list[str]:
    """`types` with runs of one delta type reduced to one entry."""
    return [kind for i, kind in enumerate(types) if i == 0 or kind != types[i - 1]
            or not kind.endswith(".delta")]


def stable(body: Any) -> Any:
    """`body` without ids and timestamps, which differ between two answers to one request."""
    if isinstance(body, dict):
        return {key: stable(value) for key, value in body.items() if key not in VOLATILE}
    if isinstance(body, list):
        return [stable(item) for item in body]
    return body


# -- Chat Completions --------------------------------------------------------------------


def test_chat_stream_carries_the_plain_answer(openai_client: openai.OpenAI) -> None:
    """A streamed chat answer is the plain one in pieces: role first, text in several deltas,
    finish_reason, a usage chunk, [DONE]; `get_final_completion()` equals `create()`."""
    plain = openai_client.chat.completions.create(**chat_body(PROMPT))
    options = {"include_usage": True}
    with openai_client.chat.completions.with_streaming_response.create(
            **chat_body(PROMPT), stream=True, stream_options=options) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-request-id"].startswith("req_")
        chunks = check_chunks(sse_data(list(response.iter_lines())), include_usage=True)
    text, deltas = joined_content(chunks)
    assert text == plain.choices[0].message.content
    assert deltas >= 3
    assert chunks[-1].usage == plain.usage
    assert chunks[-2].choices[0].finish_reason == "stop"
    with openai_client.chat.completions.stream(**chat_body(PROMPT),
                                               stream_options=options) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == plain.choices[0].message.content
    assert final.choices[0].finish_reason == plain.choices[0].finish_reason
    assert final.usage == plain.usage
    assert (final.model, final.service_tier, final.system_fingerprint) == (
        plain.model, plain.service_tier, plain.system_fingerprint)


def test_chat_stream_without_usage_option(openai_client: openai.OpenAI) -> None:
    """Without `include_usage` no chunk carries usage and the stream ends on finish_reason;
    `obfuscation` pads every chunk unless `include_obfuscation` is false."""
    chunks = list(openai_client.chat.completions.create(**chat_body(PROMPT), stream=True))
    assert all(chunk.usage is None for chunk in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert [c.choices[0].index for c in chunks] == [0] * len(chunks)
    assert all(getattr(chunk, "obfuscation", None) for chunk in chunks)
    plain = list(openai_client.chat.completions.create(
        **chat_body(PROMPT), stream=True, stream_options={"include_obfuscation": False}))
    assert not any("obfuscation" in chunk.to_dict() for chunk in plain)


def test_chat_stream_of_a_forced_tool_call(openai_client: openai.OpenAI) -> None:
    """A forced call streams as tool_call deltas (id, type and name first, arguments in
    pieces) and finishes "tool_calls"; the final completion holds the plain call."""
    body = chat_body(PROMPT, tools=CHAT_TOOLS, tool_choice="required")
    plain = openai_client.chat.completions.create(**body)
    with openai_client.chat.completions.with_streaming_response.create(
            **body, stream=True) as response:
        chunks = check_chunks(sse_data(list(response.iter_lines())), include_usage=False)
    heads = [c.choices[0].delta.tool_calls[0] for c in chunks if c.choices[0].delta.tool_calls]
    assert heads[0].id is not None
    assert heads[0].type == "function"
    assert heads[0].function is not None
    assert heads[0].function.name == "get_weather"
    assert chunks[0].choices[0].delta.tool_calls == [heads[0]]  # opened with the role
    assert chunks[0].choices[0].delta.content is None
    assert len(heads) >= 3
    assert all(head.index == 0 and head.id is None for head in heads[1:])
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    with openai_client.chat.completions.stream(**body) as stream:
        final = stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls or []
    [plain_call] = plain.choices[0].message.tool_calls or []
    assert plain_call.type == "function"
    assert call.function.arguments == plain_call.function.arguments
    assert call.function.name == plain_call.function.name
    assert final.choices[0].message.content is None
    assert final.choices[0].finish_reason == "tool_calls"
    jsonschema.validate(json.loads(call.function.arguments), WEATHER_PARAMETERS)


def test_chat_stream_parses_a_structured_answer(openai_client: openai.OpenAI) -> None:
    """`.stream(response_format=Model)` parses the streamed JSON into the model."""
    with openai_client.chat.completions.stream(
            **chat_body("Sentiment: awful, broken on arrival"), response_format=Verdict) as stream:
        final = stream.get_final_completion()
    parsed = final.choices[0].message.parsed
    assert isinstance(parsed, Verdict)
    assert parsed.sentiment == "negative"


def test_chat_stream_with_several_choices(openai_client: openai.OpenAI) -> None:
    """With n=2 each choice streams its own deltas under its index."""
    with openai_client.chat.completions.stream(**chat_body(PROMPT), n=2) as stream:
        final = stream.get_final_completion()
    assert [choice.index for choice in final.choices] == [0, 1]
    assert final.choices[0].message.content == final.choices[1].message.content


# -- Responses ---------------------------------------------------------------------------


def test_responses_stream_carries_the_plain_answer(openai_client: openai.OpenAI) -> None:
    """A streamed response sends the documented events with rising sequence numbers, each
    as `event:` + `data:`, and `response.completed` holds the plain response."""
    plain = openai_client.responses.create(model=MODEL, input=PROMPT)
    with openai_client.responses.with_streaming_response.create(
            model=MODEL, input=PROMPT, stream=True) as response:
        lines = [line for line in response.iter_lines() if line]
    names = [line[len("event: "):] for line in lines[0::2]]
    payloads = [json.loads(line[len("data: "):]) for line in lines[1::2]]
    assert [payload["type"] for payload in payloads] == names
    assert [payload["sequence_number"] for payload in payloads] == list(range(len(names)))
    assert collapse(names) == TEXT_EVENTS
    assert names.count("response.output_text.delta") >= 3
    created = payloads[0]["response"]
    assert (created["status"], created["output"], created["usage"]) == ("in_progress", [], None)
    completed = payloads[-1]["response"]
    validate_openai("Response", completed)
    assert stable(completed) == stable(plain.model_dump(mode="json", exclude_unset=True))
    deltas = "".join(p["delta"] for p in payloads if p["type"] == "response.output_text.delta")
    assert deltas == plain.output_text
    with openai_client.responses.stream(model=MODEL, input=PROMPT) as stream:
        assert collapse(event_types(list(stream))) == TEXT_EVENTS
        final = stream.get_final_response()
    assert final.output_text == plain.output_text
    assert final.usage == plain.usage


def test_responses_stream_of_a_forced_function_call(openai_client: openai.OpenAI) -> None:
    """A forced call streams `function_call_arguments` deltas and a done event naming the
    function; the final response's call is the plain one."""
    params: dict[str, Any] = {"model": MODEL, "input": PROMPT, "tools": RESPONSES_TOOLS,
                              "tool_choice": {"type": "function", "name": "get_weather"}}
    plain = openai_client.responses.create(**params)
    events = list(openai_client.responses.create(**params, stream=True))
    assert collapse(event_types(events)) == CALL_EVENTS
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.model_dump()["name"] == "get_weather"
    with openai_client.responses.stream(**params) as stream:
        final = stream.get_final_response()
    [call], [plain_call] = final.output, plain.output
    assert call.type == plain_call.type == "function_call"
    assert (call.name, call.arguments) == (plain_call.name, plain_call.arguments)
    jsonschema.validate(json.loads(call.arguments), WEATHER_PARAMETERS)


def test_responses_stream_of_a_forced_custom_tool_call(openai_client: openai.OpenAI) -> None:
    """A forced custom tool streams `custom_tool_call_input` deltas; the final response's
    call is the plain one, its input the responder's text."""
    params: dict[str, Any] = {"model": MODEL, "input": PROMPT,
                              "tools": [{"type": "custom", "name": "shell"}],
                              "tool_choice": {"type": "custom", "name": "shell"}}
    plain = openai_client.responses.create(**params)
    with openai_client.responses.stream(**params) as stream:
        types = collapse(event_types(list(stream)))
        final = stream.get_final_response()
    assert types == [kind.replace("function_call_arguments", "custom_tool_call_input")
                     for kind in CALL_EVENTS]
    [call], [plain_call] = final.output, plain.output
    assert call.type == plain_call.type == "custom_tool_call"
    assert call.input == plain_call.input
    assert call.input.startswith("Noted (")


def test_truncated_response_streams_incomplete(openai_client: openai.OpenAI) -> None:
    """A response cut by max_output_tokens ends with `response.incomplete`, not completed."""
    events = list(openai_client.responses.create(model=MODEL, input=PROMPT * 3,
                                                 max_output_tokens=16, stream=True))
    assert event_types(events)[-1] == "response.incomplete"
    last = events[-1]
    assert last.type == "response.incomplete"
    assert last.response.incomplete_details is not None
    assert last.response.incomplete_details.reason == "max_output_tokens"


# -- faults ------------------------------------------------------------------------------


def test_stream_errors_come_before_any_event(openai_client: openai.OpenAI) -> None:
    """A marker or a bad parameter fails a streamed call with the JSON error status, raised
    by the SDK when the call is made, before any event."""
    with pytest.raises(openai.RateLimitError):
        openai_client.chat.completions.create(**chat_body("{{error:429}}"), stream=True)
    with pytest.raises(openai.BadRequestError) as caught, \
            openai_client.responses.stream(model=MODEL, input="x", max_output_tokens=1):
        pass
    assert caught.value.param == "max_output_tokens"
    with pytest.raises(openai.BadRequestError) as bad:
        openai_client.chat.completions.create(**chat_body("x"), stream=True,
                                              stream_options={"include_usage": "yes"})
    assert bad.value.param == "stream_options.include_usage"


def test_error_rate_fails_streamed_calls() -> None:
    """With error_rate 1.0 a streamed call fails with that status and bills nothing."""
    with Emulator(faults=Faults(error_rate=1.0, error_rate_status=503)) as emu, \
            openai.OpenAI(api_key=DUMMY_KEY, base_url=emu.openai_url, max_retries=0) as client:
        with pytest.raises(openai.InternalServerError) as caught:
            client.responses.create(model=MODEL, input="hi", stream=True)
        assert caught.value.status_code == 503
        assert emu.stats()["billed_total"]["live"]["requests"] == 0
