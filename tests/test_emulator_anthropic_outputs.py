"""The emulator answers Anthropic structured outputs with JSON valid against the requested
schema, forced `tool_choice` with `tool_use` input valid against the tool's schema, and
the beta `thread` parameter by holding conversations server-side, live and in batches, as
the sync SDK's `parse()` and beta tool runner expect (the async twin is
test_emulator_anthropic_outputs_async)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import anthropic
import jsonschema
import pytest
from anthropic import beta_tool
from anthropic.types import Message

from deferrable.emulator import Emulator, Prompt
from tests.anthropic_types import validate_anthropic
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import message_request, wait_until
from tests.test_emulator_openai_outputs import FORMATS, Order, Review, check_order

THREADS_BETA = "message-threads-2026-08-12"
SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["id", "kind", "when", "contact", "score", "ratio", "items", "parent"],
    "$defs": {"Item": {"type": "object", "required": ["name", "count"], "properties": {
        "name": {"type": "string", "minLength": 2}, "count": {"type": "integer", "minimum": 1}}}},
    "properties": {
        "id": {"type": "string", "format": "uuid"},
        "kind": {"enum": ["refund", "exchange"]},
        "when": {"type": "string", "format": "date-time"},
        "contact": {"type": "string", "format": "email"},
        "score": {"type": "integer", "minimum": 10, "maximum": 20},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "flag": {"type": "boolean"},
        "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 2},
        "parent": {"anyOf": [{"$ref": "#"}, {"type": "null"}]},
    }}
TOOLS: list[dict[str, Any]] = [
    {"name": "web_search", "type": "web_search_20250305"},
    {"name": "lookup", "description": "Find an order", "input_schema": {
        "type": "object", "required": ["order_id"], "properties": {
            "order_id": {"type": "integer", "minimum": 100}}}},
    {"name": "refund", "input_schema": SCHEMA},
]
VOLATILE = frozenset({"id", "service_tier"})

# -- helpers shared with the async twin --------------------------------------------------


class Recorder:
    """A responder that remembers every prompt it answered."""

    def __init__(self) -> None:
        self.prompts: list[Prompt] = []

    def __call__(self, prompt: Prompt) -> str:
        self.prompts.append(prompt)
        return f"reply {len(self.prompts)}"


@contextlib.contextmanager
def recorded() -> Iterator[tuple[Emulator, anthropic.Anthropic, Recorder]]:
    """An emulator answering through a `Recorder`, and a sync client pointed at it."""
    recorder = Recorder()
    with Emulator(responder=recorder) as emu, \
            anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emu.url) as client:
        yield emu, client, recorder


def structured_requests() -> list[dict[str, Any]]:
    """Params of a structured, an `any`-forced and a named-tool request."""
    return [
        message_request("Refund order 7", output_config={"format": {
            "type": "json_schema", "schema": SCHEMA}}, max_tokens=1000),
        message_request("Look it up", tools=TOOLS, tool_choice={"type": "any"}),
        message_request("Refund it", tools=TOOLS, tool_choice={"type": "tool", "name": "refund"},
                        max_tokens=1000),
    ]


def stable(body: Any) -> Any:
    """`body` without ids and service tier (which differ between live and batch answers)."""
    if isinstance(body, dict):
        return {key: stable(value) for key, value in body.items() if key not in VOLATILE}
    if isinstance(body, list):
        return [stable(item) for item in body]
    return body


def tool_use(message: Message) -> Any:
    """The single content block of `message`, which must be a forced `tool_use`."""
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use"
    assert block.id.startswith("toolu_")
    return block


# -- structured outputs and forced tools -------------------------------------------------


def test_parse_fills_a_pydantic_model(anthropic_client: anthropic.Anthropic) -> None:
    """`messages.parse(output_format=Order)` (and its beta twin) parses into the model."""
    message = anthropic_client.messages.parse(**message_request("Order for Ada", max_tokens=2000),
                                              output_format=Order)
    check_order(message.parsed_output)
    assert message.stop_reason == "end_turn"
    beta = anthropic_client.beta.messages.parse(
        **message_request("Sentiment: I love it, a great buy", max_tokens=500),
        output_format=Review)
    assert isinstance(beta.parsed_output, Review)
    assert beta.parsed_output.sentiment == "positive"


def test_output_config_schema_is_followed(anthropic_client: anthropic.Anthropic) -> None:
    """A raw JSON schema ($defs, $ref to the root, enums, formats, bounds) is answered with
    JSON that validates, formats included."""
    message = anthropic_client.messages.create(**structured_requests()[0])
    [block] = message.content
    assert block.type == "text"
    jsonschema.validate(json.loads(block.text), SCHEMA, format_checker=FORMATS)


def test_forced_tools_answer_valid_tool_use(anthropic_client: anthropic.Anthropic) -> None:
    """`any` calls the first client tool and `tool` the named one; input fits input_schema."""
    forced_any, named = (anthropic_client.messages.create(**params)
                         for params in structured_requests()[1:])
    first = tool_use(forced_any)
    assert first.name == "lookup"
    jsonschema.validate(first.input, TOOLS[1]["input_schema"])
    chosen = tool_use(named)
    assert chosen.name == "refund"
    jsonschema.validate(chosen.input, SCHEMA, format_checker=FORMATS)
    auto = anthropic_client.messages.create(**message_request("hi", tools=TOOLS,
                                                              tool_choice={"type": "auto"}))
    assert [block.type for block in auto.content] == ["text"]


def test_unknown_forced_tool_is_rejected(anthropic_client: anthropic.Anthropic) -> None:
    """Naming a tool that is not in `tools` is a 400."""
    with pytest.raises(anthropic.BadRequestError) as caught:
        anthropic_client.messages.create(**message_request(
            "x", tools=TOOLS, tool_choice={"type": "tool", "name": "nowhere"}))
    assert "nowhere" in caught.value.message


def test_streamed_forced_tool_matches_the_plain_one(anthropic_client: anthropic.Anthropic) -> None:
    """A streamed forced tool call accumulates to the plain call's name and input."""
    params = structured_requests()[2]
    plain = tool_use(anthropic_client.messages.create(**params))
    with anthropic_client.messages.stream(**params) as stream:
        streamed = tool_use(stream.get_final_message())
    assert (streamed.name, streamed.input) == (plain.name, plain.input)


def test_batch_answers_formats_and_forced_tools_as_live(
        anthropic_client: anthropic.Anthropic) -> None:
    """In a batch, structured and forced-tool requests get the live answers (ids aside)."""
    requests = structured_requests()
    batch = anthropic_client.messages.batches.create(requests=[
        {"custom_id": f"r{i}", "params": params} for i, params in enumerate(requests)])
    wait_until(lambda: anthropic_client.messages.batches.retrieve(batch.id).processing_status
               == "ended")
    results = {r.custom_id: r.result for r in anthropic_client.messages.batches.results(batch.id)}
    for index, params in enumerate(requests):
        result = results[f"r{index}"]
        assert result.type == "succeeded"
        live = anthropic_client.messages.create(**params)
        assert stable(result.message.model_dump()) == stable(live.model_dump())


# -- threads -----------------------------------------------------------------------------


def test_thread_continue_answers_the_held_history() -> None:
    """A `continue` sends only new messages; the answer sees the held history, system and
    tools (a forced tool still resolves), counts their tokens, and can itself be continued."""
    with recorded() as (_, client, recorder):
        first = client.beta.messages.create(
            **message_request("first question"), system="be brief", tools=TOOLS[1:],
            thread={"type": "create"}, betas=[THREADS_BETA])
        second = client.beta.messages.create(
            model="claude-haiku-4-5", max_tokens=64, tool_choice={"type": "any"},
            messages=[{"role": "user", "content": "second question"}],
            thread={"type": "continue", "previous_message_id": first.id}, betas=[THREADS_BETA])
        third = client.beta.messages.create(
            model="claude-haiku-4-5", max_tokens=64, messages=[],
            thread={"type": "continue", "previous_message_id": second.id}, betas=[THREADS_BETA])
    assert [block.type for block in second.content] == ["tool_use"]
    assert second.usage.input_tokens > first.usage.input_tokens
    prompt = recorder.prompts[1]
    assert prompt.system == "be brief"
    assert prompt.turns == (("user", "first question"), ("assistant", "reply 1"),
                            ("user", "second question"))
    assert [role for role, _ in recorder.prompts[2].turns] == ["user", "assistant", "user",
                                                               "assistant"]
    assert third.content[0].type == "text"


def test_thread_errors_carry_their_codes(anthropic_client: anthropic.Anthropic) -> None:
    """An unknown reply is `thread_not_found` (404); continuing one reply twice is
    `thread_already_continued` and resending `system` on a continue is a 400."""
    client = anthropic_client.beta.messages
    first = client.create(**message_request("hi"), thread={"type": "create"})
    follow = {"model": "claude-haiku-4-5", "max_tokens": 64,
              "messages": [{"role": "user", "content": "more"}]}
    client.create(**follow, thread={"type": "continue", "previous_message_id": first.id})
    with pytest.raises(anthropic.BadRequestError) as again:
        client.create(**follow, thread={"type": "continue", "previous_message_id": first.id})
    assert again.value.error_code == "thread_already_continued"
    with pytest.raises(anthropic.NotFoundError) as lost:
        client.create(**follow, thread={"type": "continue", "previous_message_id": "msg_nope"})
    assert lost.value.error_code == "thread_not_found"
    with pytest.raises(anthropic.BadRequestError) as resent:
        client.create(**follow, system="again",
                      thread={"type": "continue", "previous_message_id": first.id})
    assert "system" in resent.value.message
    with pytest.raises(anthropic.BadRequestError):
        client.create(**follow, thread={"type": "fork"})


@pytest.mark.parametrize("stream", [False, True])
def test_tool_runner_runs_over_a_thread(stream: bool) -> None:
    """The beta tool runner's threaded turns work: each later turn continues the last reply,
    the forced tool still resolves from the held tools, and the tool results reach the model."""
    calls: list[int] = []

    @beta_tool
    def lookup(order_id: int) -> str:
        """Find an order."""
        calls.append(order_id)
        return f"order {order_id} is late"

    with recorded() as (_, client, recorder):
        runner = client.beta.messages.tool_runner(
            **message_request("Where is my order?", max_tokens=200), system="help",
            tools=[lookup], tool_choice={"type": "tool", "name": "lookup"}, max_iterations=3,
            stream=stream)
        replies = [message.get_final_message() if stream else message
                   for message in runner]
    assert len(replies) == len(calls) == 3
    threads = [prompt.params.get("thread") for prompt in recorder.prompts]
    assert threads == [{"type": "create"},
                       {"type": "continue", "previous_message_id": replies[0].id},
                       {"type": "continue", "previous_message_id": replies[1].id}]
    last = recorder.prompts[-1]
    assert last.system == "help"
    assert last.turns[0] == ("user", "Where is my order?")
    assert f"order {calls[1]} is late" in last.turns[-1][1]


def test_threads_span_batches_and_live_calls(anthropic_client: anthropic.Anthropic) -> None:
    """A batch line may create a thread that a live call continues, and continue a live one."""
    client = anthropic_client
    live = client.beta.messages.create(**message_request("live start"),
                                       thread={"type": "create"})
    batch = client.beta.messages.batches.create(requests=[
        {"custom_id": "start", "params": {**message_request("batch start"),
                                          "thread": {"type": "create"}}},
        {"custom_id": "more", "params": {**message_request("batch more"), "thread": {
            "type": "continue", "previous_message_id": live.id}}},
    ], betas=[THREADS_BETA])
    wait_until(lambda: client.beta.messages.batches.retrieve(batch.id).processing_status
               == "ended")
    results = {r.custom_id: r.result for r in client.beta.messages.batches.results(batch.id)}
    started, continued = results["start"], results["more"]
    assert started.type == continued.type == "succeeded"
    assert continued.message.usage.input_tokens > started.message.usage.input_tokens
    follow = client.beta.messages.create(
        **message_request("after the batch"),
        thread={"type": "continue", "previous_message_id": started.message.id})
    assert follow.usage.input_tokens > started.message.usage.input_tokens


def test_message_validates_strictly_with_a_thread(anthropic_client: anthropic.Anthropic) -> None:
    """A threaded answer keeps the plain `Message` shape; count_tokens refuses `thread`."""
    raw = anthropic_client.messages.with_raw_response.create(
        **message_request("hi"), extra_body={"thread": {"type": "create"}})
    validate_anthropic(Message, raw.text())
    with pytest.raises(anthropic.BadRequestError):
        anthropic_client.messages.count_tokens(
            model="claude-haiku-4-5", messages=[{"role": "user", "content": "x"}],
            extra_body={"thread": {"type": "create"}})
