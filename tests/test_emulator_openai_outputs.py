"""The emulator answers OpenAI structured outputs with JSON valid against the requested
schema and forced `tool_choice` with tool calls valid against the tool's parameters, live
and in batches, so that the sync SDK's `parse()` helpers fill pydantic models (the async
twin is test_emulator_openai_outputs_async)."""

from __future__ import annotations

import datetime
import enum
import json
from typing import Any, Literal

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from deferrable.emulator import Emulator
from tests.conftest import DUMMY_KEY
from tests.schemas import validate_openai
from tests.test_emulator_openai import MODEL, batch_lines, chat_body, parse_jsonl, run_batch
from tests.test_emulator_openai_stream import (
    CHAT_TOOLS,
    RESPONSES_TOOLS,
    WEATHER_PARAMETERS,
    stable,
)

RESPONSES = "/v1/responses"
FORMATS = jsonschema.FormatChecker()


class Colour(str, enum.Enum):
    """An enum, which pydantic puts in `$defs`."""

    RED = "red"
    GREEN = "green"


class Line(BaseModel):
    """A nested model with numeric bounds."""

    sku: str = Field(min_length=3, max_length=12)
    quantity: int = Field(ge=2, le=5)
    unit_price: float = Field(gt=0, lt=1)


class Order(BaseModel):
    """A model that exercises what pydantic emits: $defs and $ref, enums, literals, lists,
    nullable and recursive fields, dates and bounded numbers."""

    customer: str
    placed: datetime.date
    colour: Colour
    channel: Literal["web", "phone"]
    express: bool
    lines: list[Line] = Field(min_length=2)
    note: str | None
    previous: Order | None


class Review(BaseModel):
    """A classification whose label the responder decides."""

    sentiment: Literal["positive", "negative", "neutral"]
    summary: str


SECOND_TOOL = {"type": "function", "function": {"name": "refund", "parameters": {
    "type": "object", "required": ["order_id", "reason"], "properties": {
        "order_id": {"type": "string", "format": "uuid"},
        "reason": {"anyOf": [{"type": "string", "enum": ["late", "damaged"]},
                             {"type": "null"}]}}}}}

# -- helpers shared with the async twin --------------------------------------------------


def check_order(order: object) -> None:
    """`order` is a parsed `Order` whose JSON fits the model's own JSON schema."""
    assert isinstance(order, Order)
    jsonschema.validate(order.model_dump(mode="json"), Order.model_json_schema(),
                        format_checker=FORMATS)
    assert len(order.lines) >= 2


def without_ids(body: Any) -> Any:
    """`body` without ids (at any depth), call ids and timestamps."""
    return stable({k: v for k, v in body.items() if k != "created"})


def structured_bodies() -> list[tuple[str, dict[str, Any]]]:
    """(endpoint, body) of a json_schema and a forced-tool request on both endpoints."""
    schema = {"type": "json_schema", "name": "order", "strict": True,
              "schema": Order.model_json_schema()}
    return [
        ("/v1/chat/completions", chat_body("Order for Ada", response_format={
            "type": "json_schema", "json_schema": {k: v for k, v in schema.items()
                                                   if k != "type"}})),
        ("/v1/chat/completions", chat_body("Weather?", tools=[*CHAT_TOOLS, SECOND_TOOL],
                                           tool_choice={"type": "function",
                                                        "function": {"name": "refund"}})),
        (RESPONSES, {"model": MODEL, "input": "Order for Ada", "text": {"format": schema}}),
        (RESPONSES, {"model": MODEL, "input": "Weather?", "tools": RESPONSES_TOOLS,
                     "tool_choice": "required"}),
    ]


# -- Chat Completions --------------------------------------------------------------------


def test_chat_parse_fills_a_pydantic_model(openai_client: openai.OpenAI) -> None:
    """`chat.completions.parse(response_format=Order)` gets JSON that fits the schema."""
    completion = openai_client.chat.completions.parse(**chat_body("Order for Ada Lovelace"),
                                                      response_format=Order)
    message = completion.choices[0].message
    check_order(message.parsed)
    assert json.loads(message.content or "") == message.parsed.model_dump(mode="json")
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 10


def test_structured_label_follows_the_responder(openai_client: openai.OpenAI) -> None:
    """An enum field takes the label the responder gives, so classification stays meaningful."""
    good = openai_client.chat.completions.parse(
        **chat_body("Sentiment: I love it, a great buy"), response_format=Review)
    bad = openai_client.chat.completions.parse(
        **chat_body("Sentiment: awful and broken"), response_format=Review)
    assert good.choices[0].message.parsed is not None
    assert bad.choices[0].message.parsed is not None
    assert good.choices[0].message.parsed.sentiment == "positive"
    assert bad.choices[0].message.parsed.sentiment == "negative"


def test_responder_json_decides_the_structured_answer() -> None:
    """A responder that answers with a JSON object gives the structured content itself."""
    decided = '{"sentiment": "neutral", "summary": "as decided"}'
    with Emulator(responder=lambda prompt: decided) as emu, \
            openai.OpenAI(api_key=DUMMY_KEY, base_url=emu.openai_url) as client:
        completion = client.chat.completions.parse(**chat_body("anything"),
                                                   response_format=Review)
    assert completion.choices[0].message.content == decided
    assert completion.choices[0].message.parsed == Review(sentiment="neutral",
                                                          summary="as decided")


def test_json_object_mode(openai_client: openai.OpenAI) -> None:
    """`json_object` answers a JSON object, and needs the word JSON in the messages."""
    completion = openai_client.chat.completions.create(
        **chat_body("Reply in JSON: name a colour"), response_format={"type": "json_object"})
    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(**chat_body("name a colour"),
                                              response_format={"type": "json_object"})
    assert caught.value.param == "messages"


def test_malformed_formats_are_rejected(openai_client: openai.OpenAI) -> None:
    """A json_schema without a name, or an unknown format type, is a 400 naming the field."""
    with pytest.raises(openai.BadRequestError) as unnamed:
        openai_client.chat.completions.create(**chat_body("x"), response_format={
            "type": "json_schema", "json_schema": {"schema": {"type": "object"}}})
    assert unnamed.value.param == "response_format.json_schema.name"
    with pytest.raises(openai.BadRequestError) as unknown:
        openai_client.responses.create(model=MODEL, input="x",
                                       text={"format": {"type": "yaml"}})
    assert unknown.value.param == "text.format.type"


@pytest.mark.parametrize(("choice", "name"), [
    ("required", "get_weather"),
    ({"type": "function", "function": {"name": "refund"}}, "refund"),
    ({"type": "allowed_tools", "allowed_tools": {
        "mode": "required", "tools": [{"type": "function", "function": {"name": "refund"}}]}},
     "refund"),
])
def test_forced_tool_choice_answers_a_valid_call(openai_client: openai.OpenAI, choice: object,
                                                 name: str) -> None:
    """A forced tool_choice answers one call of the chosen function, its arguments valid
    against that function's parameters, with finish_reason "tool_calls"."""
    raw = openai_client.chat.completions.with_raw_response.create(
        **chat_body("Weather in Paris?"), tools=[*CHAT_TOOLS, SECOND_TOOL], tool_choice=choice)
    validate_openai("CreateChatCompletionResponse", json.loads(raw.text))
    choice_ = raw.parse().choices[0]
    assert choice_.finish_reason == "tool_calls"
    assert choice_.message.content is None
    [call] = choice_.message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name == name
    tool = next(t for t in [*CHAT_TOOLS, SECOND_TOOL] if t["function"]["name"] == name)
    jsonschema.validate(json.loads(call.function.arguments), tool["function"]["parameters"],
                        format_checker=FORMATS)


def test_auto_tool_choice_answers_text(openai_client: openai.OpenAI) -> None:
    """With tools but no forcing choice the answer stays text."""
    completion = openai_client.chat.completions.create(**chat_body("hello"), tools=CHAT_TOOLS)
    assert completion.choices[0].message.tool_calls is None
    assert completion.choices[0].finish_reason == "stop"


def test_parse_fills_pydantic_function_tool_arguments(openai_client: openai.OpenAI) -> None:
    """A strict `pydantic_function_tool` forced by "required" parses into its model."""
    completion = openai_client.chat.completions.parse(
        **chat_body("Add a line"), tools=[openai.pydantic_function_tool(Line)],
        tool_choice="required")
    [call] = completion.choices[0].message.tool_calls or []
    assert isinstance(call.function.parsed_arguments, Line)
    assert 2 <= call.function.parsed_arguments.quantity <= 5


def test_legacy_function_call_is_forced(openai_client: openai.OpenAI) -> None:
    """The legacy `functions` with a named `function_call` answer a `function_call`."""
    completion = openai_client.chat.completions.create(
        **chat_body("Weather?"), functions=[CHAT_TOOLS[0]["function"]],
        function_call={"name": "get_weather"})
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "function_call"
    assert message.function_call is not None
    jsonschema.validate(json.loads(message.function_call.arguments), WEATHER_PARAMETERS)


def test_custom_tools_are_forced(openai_client: openai.OpenAI) -> None:
    """A forced custom tool is called with the responder's text as its free-form input."""
    completion = openai_client.chat.completions.create(
        **chat_body("Sentiment: great"), tools=[{"type": "custom", "custom": {"name": "shell"}}],
        tool_choice={"type": "custom", "custom": {"name": "shell"}})
    [call] = completion.choices[0].message.tool_calls or []
    assert call.type == "custom"
    assert (call.custom.name, call.custom.input) == ("shell", "positive")
    assert completion.choices[0].finish_reason == "tool_calls"


def test_bad_tool_choices_are_rejected(openai_client: openai.OpenAI) -> None:
    """Forcing a tool without tools, or one that is not among them, is a 400 on tool_choice."""
    with pytest.raises(openai.BadRequestError) as no_tools:
        openai_client.chat.completions.create(**chat_body("x"), tool_choice="required")
    assert no_tools.value.param == "tool_choice"
    with pytest.raises(openai.BadRequestError) as unknown:
        openai_client.chat.completions.create(**chat_body("x"), tools=CHAT_TOOLS, tool_choice={
            "type": "function", "function": {"name": "nowhere"}})
    assert unknown.value.param == "tool_choice"


# -- Responses ---------------------------------------------------------------------------


def test_responses_parse_fills_a_pydantic_model(openai_client: openai.OpenAI) -> None:
    """`responses.parse(text_format=Order)` gets JSON that fits the schema."""
    response = openai_client.responses.parse(model=MODEL, input="Order for Ada Lovelace",
                                             text_format=Order)
    check_order(response.output_parsed)
    assert response.status == "completed"


@pytest.mark.parametrize("choice", ["required", {"type": "function", "name": "get_weather"}])
def test_responses_forced_call(openai_client: openai.OpenAI, choice: object) -> None:
    """A forced tool_choice answers a single completed `function_call` item with valid
    arguments; a hosted-only tool list leaves "required" answered with text."""
    raw = openai_client.responses.with_raw_response.create(
        model=MODEL, input="Weather in Paris?", tools=RESPONSES_TOOLS, tool_choice=choice)
    validate_openai("Response", json.loads(raw.text))
    [item] = raw.parse().output
    assert item.type == "function_call"
    assert (item.name, item.status) == ("get_weather", "completed")
    assert item.call_id.startswith("call_")
    jsonschema.validate(json.loads(item.arguments), WEATHER_PARAMETERS)
    hosted = openai_client.responses.create(model=MODEL, input="news?", tool_choice="required",
                                            tools=[{"type": "web_search_preview"}])
    assert [item.type for item in hosted.output] == ["message"]


# -- batches -----------------------------------------------------------------------------


def test_batches_answer_formats_and_forced_tools_as_live(openai_client: openai.OpenAI) -> None:
    """In a batch, structured and forced-tool requests get the live answers (ids aside)."""
    bodies = structured_bodies()
    for endpoint in ("/v1/chat/completions", RESPONSES):
        picked = [body for url, body in bodies if url == endpoint]
        batch = run_batch(openai_client, batch_lines(picked, endpoint), endpoint)
        assert batch.status == "completed"
        assert batch.output_file_id is not None
        lines = parse_jsonl(openai_client.files.content(batch.output_file_id).text)
        live = (openai_client.chat.completions if endpoint != RESPONSES
                else openai_client.responses)
        for index, body in enumerate(picked):
            answered = lines[f"r{index}"]["response"]["body"]
            plain = live.with_raw_response.create(**body)
            assert without_ids(answered) == without_ids(json.loads(plain.text))
