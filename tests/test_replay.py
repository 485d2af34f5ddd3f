"""Replayed results parse, in the official SDKs' own streaming classes, into the very object
they replay: what `stream=True` and the `.stream()` helpers accumulate equals the batch result."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from anthropic.lib.streaming import (
    AsyncMessageStreamManager,
    BetaMessageStreamManager,
    MessageStreamManager,
)
from anthropic.types import Message, RawMessageStreamEvent
from anthropic.types.beta import BetaMessage, BetaRawMessageStreamEvent
from openai.lib.streaming.chat import ChatCompletionStreamManager, ChatCompletionStreamState
from openai.lib.streaming.responses import ResponseStreamManager
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent

from deferrable.emulator import Emulator
from deferrable.providers._replay import anthropic_events, openai_chat_chunks, openai_response_events
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import ANTHROPIC_HEADERS, message_request, raw_request

NOWHERE = "http://127.0.0.1:9"
"""A base URL nothing listens on: the clients below parse, they never send."""
FINE_GRAINED = {"anthropic-beta": "fine-grained-tool-streaming-2025-05-14"}

USAGE = {"input_tokens": 812, "output_tokens": 97, "cache_creation_input_tokens": 1024,
         "cache_read_input_tokens": 2048,
         "cache_creation": {"ephemeral_5m_input_tokens": 1024, "ephemeral_1h_input_tokens": 0},
         "server_tool_use": None, "service_tier": "batch", "inference_geo": None,
         "output_tokens_details": {"thinking_tokens": 31}, "speed": None}

THINKING_TOOL_MESSAGE: dict[str, Any] = {
    "id": "msg_01ThinkToolUse", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "signature": "EqQBCkYIBxgCKkBvbXVjaC1zaWduYXR1cmU=",
         "thinking": "The user wants the weather in two cities; I should call the tool with both."},
        {"type": "text", "citations": None,
         "text": "Let me look that up for Paris and Kyoto — one moment. 天気 ☀️"},
        {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "caller": {"type": "direct"},
         "input": {"cities": [{"name": "Paris", "country": "FR"}, {"name": "Kyoto", "country": "JP"}],
                   "units": "metric", "days": 3, "threshold": -2.5, "alerts": True, "note": None,
                   "quote": "she said \"hi\"\nand left \\ ok"}},
        {"type": "tool_use", "id": "toolu_01B", "name": "noop", "input": {}},
    ],
    "stop_reason": "tool_use", "stop_sequence": None, "stop_details": None, "container": None,
    "diagnostics": None, "usage": USAGE,
}
SEARCH_MESSAGE: dict[str, Any] = {
    "id": "msg_01Search", "type": "message", "role": "assistant", "model": "claude-opus-4-1",
    "content": [
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4aDFIT2Xlxh0L5L8rLVyIw"},
        {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search",
         "input": {"query": "tallest building 2025"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": [
            {"type": "web_search_result", "url": "https://example.com/towers", "title": "Towers",
             "encrypted_content": "Eo8BCioIAhgBIiQ3YTQ3", "page_age": "April 3, 2025"}]},
        {"type": "text", "text": "The tallest building is the Burj Khalifa.", "citations": [
            {"type": "web_search_result_location", "url": "https://example.com/towers", "title": "Towers",
             "encrypted_index": "Eo8BCioIAhgB", "cited_text": "Burj Khalifa, 828 m"},
            {"type": "web_search_result_location", "url": "https://example.com/towers", "title": None,
             "encrypted_index": "Eo8BCioIAhgC", "cited_text": "completed in 2010"}]},
        {"type": "text", "text": "", "citations": []},
    ],
    "stop_reason": "stop_sequence", "stop_sequence": "###", "stop_details": None,
    "container": {"id": "container_011", "expires_at": "2025-06-01T12:00:00Z", "skills": None},
    "usage": {**USAGE, "server_tool_use": {"web_search_requests": 1, "web_fetch_requests": 0}},
}
BETA_MESSAGE: dict[str, Any] = {
    "id": "msg_01Beta", "type": "message", "role": "assistant", "model": "claude-opus-4-1-20250805",
    "content": [
        {"type": "compaction", "content": "Summary of the earlier turns.", "encrypted_content": "opaque",
         "signature": "c2ln", "tool_changes": []},
        {"type": "fallback", "from": {"model": "claude-fable-5"}, "to": {"model": "claude-opus-4-1-20250805"},
         "trigger": {"type": "refusal", "category": None}},
        {"type": "mcp_tool_use", "id": "mcptoolu_01", "name": "search_docs", "server_name": "docs",
         "input": {"q": "rate limits", "filters": {"year": [2024, 2025]}}},
        {"type": "text", "text": "Here is what the docs say.", "citations": None},
    ],
    "stop_reason": "end_turn", "stop_sequence": None, "stop_details": None, "container": None,
    "context_management": {"applied_edits": []},
    "usage": {**USAGE, "iterations": [
        {"type": "message", "input_tokens": 400, "output_tokens": 50, "cache_creation_input_tokens": 0,
         "cache_read_input_tokens": 0},
        {"type": "fallback_message", "model": "claude-opus-4-1-20250805", "input_tokens": 412,
         "output_tokens": 47, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}]},
}

TOOL_CHAT: dict[str, Any] = {
    "id": "chatcmpl-Tools", "object": "chat.completion", "created": 1767225600, "model": "gpt-4.1-2025-04-14",
    "service_tier": "default", "system_fingerprint": "fp_1a2b3c",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "logprobs": None, "message": {
        "role": "assistant", "content": None, "refusal": None, "annotations": [], "tool_calls": [
            {"id": "call_A", "type": "function", "function": {
                "name": "get_weather", "arguments": json.dumps({"city": "Paris", "days": [1, 2, 3]})}},
            {"id": "call_B", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]}}],
    "usage": {"prompt_tokens": 88, "completion_tokens": 41, "total_tokens": 129,
              "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                            "accepted_prediction_tokens": 0,
                                            "rejected_prediction_tokens": 0}},
}


def _logprob(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode()),
            "top_logprobs": [{"token": token, "logprob": logprob, "bytes": list(token.encode())}]}


TWO_CHOICE_CHAT: dict[str, Any] = {
    "id": "chatcmpl-Two", "object": "chat.completion", "created": 1767225601, "model": "gpt-4o-mini",
    "service_tier": "default", "system_fingerprint": "fp_4d5e6f",
    "choices": [
        {"index": 0, "finish_reason": "stop",
         "logprobs": {"content": [_logprob("Bonjour", -0.01), _logprob(",", -0.2), _logprob(" monde", -0.03)],
                      "refusal": None},
         "message": {"role": "assistant", "content": "Bonjour, monde", "refusal": None, "annotations": []}},
        {"index": 1, "finish_reason": "stop",
         # tokens that do not spell the text: the replay cannot pair them with pieces
         "logprobs": {"content": [_logprob("Salut", -0.5), _logprob("!", -0.9)], "refusal": []},
         "message": {"role": "assistant", "content": "Salut tout le monde, comment allez-vous ?",
                     "refusal": None, "annotations": [{"type": "url_citation", "url_citation": {
                         "url": "https://example.com", "title": "Example",
                         "start_index": 0, "end_index": 5}}]}},
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 19, "total_tokens": 31},
}
MODERATION = {
    "input": {"type": "moderation_results", "model": "omni-moderation-latest", "results": [
        {"type": "moderation_result", "model": "omni-moderation-latest", "flagged": False,
         "categories": {"violence": False}, "category_scores": {"violence": 0.01},
         "category_applied_input_types": {"violence": ["text"]}}]},
    "output": {"type": "error", "code": "timeout", "message": "moderation timed out"},
}
ODD_CHAT: dict[str, Any] = {
    "id": "chatcmpl-Odd", "object": "chat.completion", "created": 1767225602, "model": "gpt-4o-audio",
    "service_tier": "flex", "system_fingerprint": None, "metadata": {"team": "evals"},
    "moderation": MODERATION,
    "choices": [
        {"index": 0, "finish_reason": "stop",
         "logprobs": {"content": None,
                      "refusal": [_logprob("I'm sorry", -0.1), _logprob(", I can't.", -0.2)]},
         "message": {"role": "assistant", "content": None, "refusal": "I'm sorry, I can't.",
                     "annotations": []}},
        {"index": 1, "finish_reason": "function_call", "logprobs": None, "message": {
            "role": "assistant", "content": "", "refusal": None,
            "function_call": {"name": "lookup",
                              "arguments": json.dumps({"id": 42, "deep": {"x": [True, None]}})}}},
        {"index": 2, "finish_reason": "stop", "logprobs": None, "message": {
            "role": "assistant", "content": None, "refusal": None, "audio": {
                "id": "audio_1", "data": "UklGRiQAAABXQVZF", "expires_at": 1767229200,
                "transcript": "Here is the forecast."}}},
    ],
    "usage": {"prompt_tokens": 30, "completion_tokens": 12, "total_tokens": 42},
}

RESPONSE_USAGE = {"input_tokens": 120, "output_tokens": 310, "total_tokens": 430,
                  "input_tokens_details": {"cached_tokens": 64, "cache_write_tokens": 0},
                  "output_tokens_details": {"reasoning_tokens": 192}}
RESPONSE_HEAD: dict[str, Any] = {
    "object": "response", "created_at": 1767225700, "completed_at": 1767225712, "model": "o4-mini-2025-04-16",
    "error": None, "incomplete_details": None, "instructions": "Be brief.", "metadata": {},
    "parallel_tool_calls": True, "temperature": 1.0, "top_p": 1.0, "tool_choice": "auto",
    "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": True,
               "description": None}],
    "reasoning": {"effort": "medium", "summary": "auto"}, "service_tier": "default",
    "text": {"format": {"type": "text"}}, "truncation": "disabled", "usage": RESPONSE_USAGE,
}
TOOL_RESPONSE: dict[str, Any] = {
    **RESPONSE_HEAD, "id": "resp_Tools", "status": "completed",
    "output": [
        {"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAAAB-opaque", "summary": [
            {"type": "summary_text", "text": "**Planning the answer** I need the forecast first."},
            {"type": "summary_text", "text": "**Calling the tool** Paris, three days."}],
         "content": [{"type": "reasoning_text", "text": "raw chain of thought, shown to this org"}]},
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "phase": "commentary",
         "content": [{"type": "output_text", "text": "Checking the forecast.",
                      "annotations": [{"type": "url_citation", "url": "https://example.com/meteo",
                                       "title": "Météo", "start_index": 0, "end_index": 8}],
                      "logprobs": [{"token": "Checking", "logprob": -0.1, "bytes": [67], "top_logprobs": []},
                                   {"token": " the forecast.", "logprob": -0.3, "bytes": [32],
                                    "top_logprobs": []}]}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "get_weather",
         "status": "completed",
         "arguments": json.dumps({"city": "Paris", "days": 3, "nested": {"units": ["C", "mm"]}})},
    ],
}
OTHER_ITEMS_RESPONSE: dict[str, Any] = {
    **RESPONSE_HEAD, "id": "resp_Other", "status": "completed",
    "output": [
        {"type": "web_search_call", "id": "ws_1", "status": "completed",
         "action": {"type": "search", "query": "weather Paris"}},
        {"type": "custom_tool_call", "id": "ctc_1", "call_id": "call_2", "name": "run_sql",
         "input": "SELECT city, temp FROM forecasts WHERE day <= 3;"},
        {"type": "message", "id": "msg_2", "role": "assistant", "status": "completed", "content": [
            {"type": "refusal", "refusal": "I can't share that part."},
            {"type": "output_text", "text": "", "annotations": []}]},
    ],
}
INCOMPLETE_RESPONSE: dict[str, Any] = {
    **RESPONSE_HEAD, "id": "resp_Cut", "status": "incomplete", "completed_at": None,
    "incomplete_details": {"reason": "max_output_tokens"},
    "output": [{"type": "message", "id": "msg_3", "role": "assistant", "status": "incomplete", "content": [
        {"type": "output_text", "text": "The answer starts here but is cut", "annotations": []}]}],
}


@pytest.fixture
def offline_anthropic() -> Iterator[anthropic.Anthropic]:
    """A real Anthropic client that only parses here: nothing is sent."""
    with anthropic.Anthropic(api_key=DUMMY_KEY, base_url=NOWHERE) as client:
        yield client


@pytest.fixture
def offline_openai() -> Iterator[openai.OpenAI]:
    """A real OpenAI client that only parses here: nothing is sent."""
    with openai.OpenAI(api_key=DUMMY_KEY, base_url=NOWHERE + "/v1") as client:
        yield client


def event_stream(body: bytes, path: str, headers: dict[str, str] | None = None) -> httpx2.Response:
    """A 200 `text/event-stream` answer to a POST, as the SDK's transport hands one over."""
    return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body,
                           request=httpx2.Request("POST", NOWHERE + path, headers=headers))


def raw_anthropic(client: anthropic.Anthropic, message: dict[str, Any]) -> anthropic.Stream[Any]:
    """What `messages.create(stream=True)` returns, over the replay of `message`."""
    return anthropic.Stream(cast_to=RawMessageStreamEvent, client=client,
                            response=event_stream(anthropic_events(message), "/v1/messages"))


def replayed_message(client: anthropic.Anthropic, message: dict[str, Any]) -> dict[str, Any]:
    """The dump of what `messages.stream()` accumulates from the replay of `message`."""
    raw = raw_anthropic(client, message)
    with MessageStreamManager(lambda: raw, output_format=anthropic.NOT_GIVEN) as stream:
        return stream.get_final_message().model_dump()


def replayed_beta_message(client: anthropic.Anthropic, message: dict[str, Any],
                          headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The dump of what `beta.messages.stream()` accumulates from the replay of `message`."""
    raw = anthropic.Stream(cast_to=BetaRawMessageStreamEvent, client=client,
                           response=event_stream(anthropic_events(message), "/v1/messages", headers))
    with BetaMessageStreamManager(lambda: raw, output_format=anthropic.NOT_GIVEN) as stream:
        return stream.get_final_message().model_dump()


def raw_chat(client: openai.OpenAI, completion: dict[str, Any], *, include_usage: bool
             ) -> openai.Stream[ChatCompletionChunk]:
    """What `chat.completions.create(stream=True)` returns, over the replay of `completion`."""
    body = openai_chat_chunks(completion, include_usage=include_usage)
    return openai.Stream(cast_to=ChatCompletionChunk, client=client,
                         response=event_stream(body, "/v1/chat/completions"))


def chat_dump(completion: Any) -> dict[str, Any]:
    """A `ParsedChatCompletion`'s dump without what the SDK adds to any streamed completion:
    `parsed`, `parsed_arguments`, and each tool call's stream `index` (checked here)."""
    dump: dict[str, Any] = completion.model_dump()
    for choice in dump["choices"]:
        choice["message"].pop("parsed")
        for position, call in enumerate(choice["message"]["tool_calls"] or []):
            assert call.pop("index") == position
            call["function"].pop("parsed_arguments")
    return dump


def replayed_chat(client: openai.OpenAI, completion: dict[str, Any], *, include_usage: bool
                  ) -> dict[str, Any]:
    """The dump of what `chat.completions.stream()` accumulates from the replay of `completion`."""
    raw = raw_chat(client, completion, include_usage=include_usage)
    with ChatCompletionStreamManager(lambda: raw, response_format=openai.omit,
                                     input_tools=openai.omit) as stream:
        return chat_dump(stream.get_final_completion())


def raw_responses(client: openai.OpenAI, response: dict[str, Any]) -> openai.Stream[Any]:
    """What `responses.create(stream=True)` returns, over the replay of `response`."""
    return openai.Stream(cast_to=ResponseStreamEvent, client=client,
                         response=event_stream(openai_response_events(response), "/v1/responses"))


def response_dump(response: Any) -> dict[str, Any]:
    """A `ParsedResponse`'s dump without the `parsed` / `parsed_arguments` the SDK's parse adds."""
    dump: dict[str, Any] = response.model_dump()
    for item in dump["output"]:
        item.pop("parsed_arguments", None)
        for part in item.get("content") or [] if item["type"] == "message" else []:
            part.pop("parsed", None)
    return dump


def comparable(dump: dict[str, Any]) -> dict[str, Any]:
    """`dump` without what each call mints anew: message and block ids, container expiry."""
    blocks = [{**block, "id": None} if "id" in block else block for block in dump["content"]]
    container = dump["container"] and {**dump["container"], "expires_at": None}
    return {**dump, "id": None, "content": blocks, "container": container}


# -- Anthropic -------------------------------------------------------------------------


@pytest.mark.parametrize("message", [THINKING_TOOL_MESSAGE, SEARCH_MESSAGE], ids=["thinking-tools", "search"])
def test_message_stream_accumulates_the_same_message(
        offline_anthropic: anthropic.Anthropic, message: dict[str, Any]) -> None:
    """`MessageStream.get_final_message()` over the replay equals the replayed `Message`."""
    assert replayed_message(offline_anthropic, message) == Message.model_validate(message).model_dump()


@pytest.mark.parametrize("headers", [None, FINE_GRAINED], ids=["default", "fine-grained-tool-streaming"])
@pytest.mark.parametrize("message", [THINKING_TOOL_MESSAGE, SEARCH_MESSAGE, BETA_MESSAGE],
                         ids=["thinking-tools", "search", "beta-blocks"])
def test_beta_message_stream_accumulates_the_same_message(
        offline_anthropic: anthropic.Anthropic, message: dict[str, Any],
        headers: dict[str, str] | None) -> None:
    """`BetaMessageStream` accumulates the replayed `BetaMessage`, beta blocks and usage included."""
    expected = BetaMessage.model_validate(message).model_dump()
    assert replayed_beta_message(offline_anthropic, message, headers) == expected


def test_message_events_are_shaped_as_the_api_sends_them(offline_anthropic: anthropic.Anthropic) -> None:
    """The raw events run start / blocks / delta / stop, with an empty start and input JSON in pieces."""
    events = list(raw_anthropic(offline_anthropic, THINKING_TOOL_MESSAGE))
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start"
    assert kinds[-2:] == ["message_delta", "message_stop"]
    start = events[0].message
    assert (start.content, start.stop_reason, start.stop_sequence) == ([], None, None)
    assert (start.usage.input_tokens, start.usage.output_tokens) == (812, 1)
    assert (start.usage.server_tool_use, start.usage.output_tokens_details) == (None, None)
    assert (events[-2].usage.output_tokens, events[-2].delta.stop_reason) == (97, "tool_use")
    deltas: dict[int, list[Any]] = {}
    for event in events:
        if event.type == "content_block_delta":
            deltas.setdefault(event.index, []).append(event.delta)
    assert [d.type for d in deltas[0]][-1] == "signature_delta"
    assert "".join(d.thinking for d in deltas[0][:-1]) == THINKING_TOOL_MESSAGE["content"][0]["thinking"]
    assert "".join(d.text for d in deltas[1]) == THINKING_TOOL_MESSAGE["content"][1]["text"]
    assert len(deltas[2]) > 1
    tool_input = THINKING_TOOL_MESSAGE["content"][2]["input"]
    assert json.loads("".join(d.partial_json for d in deltas[2])) == tool_input
    tool_start = next(e for e in events if e.type == "content_block_start" and e.index == 2)
    assert tool_start.content_block.input == {}


def test_citations_arrive_as_citation_deltas(offline_anthropic: anthropic.Anthropic) -> None:
    """A cited text block starts with no citations and gets each one as a `citations_delta`."""
    events = list(raw_anthropic(offline_anthropic, SEARCH_MESSAGE))
    start = next(e for e in events if e.type == "content_block_start" and e.index == 3)
    assert (start.content_block.text, start.content_block.citations) == ("", [])
    cited = [e.delta.citation.cited_text for e in events
             if e.type == "content_block_delta" and e.delta.type == "citations_delta"]
    assert cited == ["Burj Khalifa, 828 m", "completed in 2010"]


def test_beta_message_delta_carries_what_the_beta_accumulator_reads(
        offline_anthropic: anthropic.Anthropic) -> None:
    """`message_delta` carries context management, the per-iteration usage and the final counts."""
    raw = anthropic.Stream(cast_to=BetaRawMessageStreamEvent, client=offline_anthropic,
                           response=event_stream(anthropic_events(BETA_MESSAGE), "/v1/messages"))
    delta = [event for event in raw if event.type == "message_delta"]
    assert len(delta) == 1
    assert delta[0].context_management is not None
    assert delta[0].context_management.applied_edits == []
    assert [entry.type for entry in delta[0].usage.iterations or []] == ["message", "fallback_message"]
    assert (delta[0].usage.input_tokens, delta[0].usage.output_tokens) == (812, 97)


@pytest.mark.asyncio
async def test_async_message_stream_accumulates_the_same_message() -> None:
    """The async `AsyncMessageStream` accumulates the replayed message too."""
    async with anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=NOWHERE) as client:
        raw = anthropic.AsyncStream(cast_to=RawMessageStreamEvent, client=client, response=event_stream(
            anthropic_events(THINKING_TOOL_MESSAGE), "/v1/messages"))

        async def request() -> anthropic.AsyncStream[RawMessageStreamEvent]:
            return raw

        async with AsyncMessageStreamManager(request()) as stream:
            final = await stream.get_final_message()
    assert final.model_dump() == Message.model_validate(THINKING_TOOL_MESSAGE).model_dump()


@pytest.mark.parametrize("extra", [
    {},
    {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048},
    {"tools": [{"name": "lookup", "input_schema": {"type": "object", "required": ["q", "n"], "properties": {
        "q": {"type": "string"}, "n": {"type": "integer"}}}}], "tool_choice": {"type": "any"}},
    {"stop_sequences": ["Hamlet"], "container": "container_01abc"},
    {"max_tokens": 0},
], ids=["text", "thinking", "tool", "stop-sequence-container", "no-content"])
def test_replayed_live_answer_matches_the_emulators_live_stream(
        emulator: Emulator, anthropic_client: anthropic.Anthropic, extra: dict[str, Any]) -> None:
    """The emulator's live answer, replayed, accumulates as its own live stream of the request does."""
    params = message_request("Summarise the plot of Hamlet in one line.", **extra)
    status, _, answer = raw_request(f"{emulator.url}/v1/messages", params, ANTHROPIC_HEADERS)
    assert status == 200
    with anthropic_client.messages.stream(**params) as stream:
        live = stream.get_final_message().model_dump()
    assert comparable(replayed_message(anthropic_client, answer)) == comparable(live)


# -- OpenAI Chat Completions -----------------------------------------------------------


@pytest.mark.parametrize("completion", [TOOL_CHAT, TWO_CHOICE_CHAT, ODD_CHAT],
                         ids=["tool-calls", "two-choices", "refusal-function-call-audio-moderation"])
def test_chat_stream_accumulates_the_same_completion(
        offline_openai: openai.OpenAI, completion: dict[str, Any]) -> None:
    """`ChatCompletionStream.get_final_completion()` over the replay equals the replayed completion."""
    expected = ChatCompletion.model_validate(completion).model_dump()
    assert replayed_chat(offline_openai, completion, include_usage=True) == expected


def test_chat_stream_without_include_usage_has_no_usage(offline_openai: openai.OpenAI) -> None:
    """Without `include_usage` no chunk carries usage, so, as live, the accumulated usage is None."""
    expected = ChatCompletion.model_validate({**TWO_CHOICE_CHAT, "usage": None}).model_dump()
    assert replayed_chat(offline_openai, TWO_CHOICE_CHAT, include_usage=False) == expected


@pytest.mark.parametrize("include_usage", [True, False])
def test_plain_chat_stream_yields_the_chunks_the_api_sends(
        offline_openai: openai.OpenAI, include_usage: bool) -> None:
    """`stream=True` yields per choice a role chunk first and `finish_reason` last, usage only at the
    end when asked for, and the chunks accumulate (by the SDK's state helper) into the completion."""
    chunks = list(raw_chat(offline_openai, TWO_CHOICE_CHAT, include_usage=include_usage))
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert {(chunk.id, chunk.model, chunk.system_fingerprint) for chunk in chunks} == {
        ("chatcmpl-Two", "gpt-4o-mini", "fp_4d5e6f")}
    if include_usage:
        assert chunks[-1].choices == []
        assert chunks[-1].usage is not None
        assert chunks[-1].usage.total_tokens == 31
        chunks_with_choices = chunks[:-1]
    else:
        chunks_with_choices = chunks
    assert all(chunk.usage is None for chunk in chunks_with_choices)
    for index, choice in enumerate(TWO_CHOICE_CHAT["choices"]):
        entries = [c.choices[0] for c in chunks_with_choices if c.choices[0].index == index]
        assert (entries[0].delta.role, entries[0].logprobs) == ("assistant", None)
        assert [e.finish_reason for e in entries] == [None] * (len(entries) - 1) + ["stop"]
        assert "".join(e.delta.content or "" for e in entries) == choice["message"]["content"]
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(chunk)
    usage = TWO_CHOICE_CHAT["usage"] if include_usage else None
    expected = ChatCompletion.model_validate({**TWO_CHOICE_CHAT, "usage": usage}).model_dump()
    assert chat_dump(state.get_final_completion()) == expected


def test_chat_content_pieces_follow_aligned_logprob_tokens(offline_openai: openai.OpenAI) -> None:
    """When the logprob tokens spell the content, each content chunk is one token with its logprob."""
    chunks = list(raw_chat(offline_openai, TWO_CHOICE_CHAT, include_usage=False))
    pieces = [(c.choices[0].delta.content, [lp.token for lp in c.choices[0].logprobs.content or []])
              for c in chunks if c.choices[0].index == 0 and c.choices[0].delta.content]
    assert pieces == [("Bonjour", ["Bonjour"]), (",", [","]), (" monde", [" monde"])]


def test_custom_tool_call_streams_its_input_in_pieces(offline_openai: openai.OpenAI) -> None:
    """A custom tool call opens with its id, type and name and an empty input, then the input."""
    call = {"id": "call_C", "type": "custom",
            "custom": {"name": "run_sql", "input": "SELECT city, temp FROM forecasts WHERE day <= 3;"}}
    message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
    completion = {**TOOL_CHAT, "choices": [{**TOOL_CHAT["choices"][0], "message": message}]}
    chunks = raw_chat(offline_openai, completion, include_usage=False)
    deltas = [chunk.choices[0].delta.to_dict() for chunk in chunks]
    calls = [delta["tool_calls"][0] for delta in deltas if "tool_calls" in delta]
    opening = {"index": 0, "id": "call_C", "type": "custom", "custom": {"name": "run_sql", "input": ""}}
    assert calls[0] == opening
    assert [set(later) for later in calls[1:]] == [{"index", "custom"}] * (len(calls) - 1)
    assert "".join(later["custom"]["input"] for later in calls[1:]) == call["custom"]["input"]


# -- OpenAI Responses ------------------------------------------------------------------


@pytest.mark.parametrize("response", [TOOL_RESPONSE, OTHER_ITEMS_RESPONSE], ids=["tools", "other-items"])
def test_response_stream_accumulates_the_same_response(
        offline_openai: openai.OpenAI, response: dict[str, Any]) -> None:
    """`ResponseStream.get_final_response()` over the replay equals the replayed `Response`."""
    raw = raw_responses(offline_openai, response)
    with ResponseStreamManager(lambda: raw, text_format=openai.omit, input_tools=openai.omit,
                               starting_after=None) as stream:
        final = stream.get_final_response()
    assert response_dump(final) == Response.model_validate(response).model_dump()


def test_response_events_are_numbered_and_ordered_as_the_api_sends_them(
        offline_openai: openai.OpenAI) -> None:
    """Events are numbered from 0, open with an in-progress empty response, stream each item between
    its added and done events, and close with `response.completed` carrying the whole response."""
    events = list(raw_responses(offline_openai, TOOL_RESPONSE))
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert [event.type for event in events[:2]] == ["response.created", "response.in_progress"]
    for opening in events[:2]:
        assert (opening.response.status, opening.response.output, opening.response.usage) == (
            "in_progress", [], None)
    assert events[-1].type == "response.completed"
    assert events[-1].response.model_dump() == Response.model_validate(TOOL_RESPONSE).model_dump()
    kinds = [event.type for event in events]
    assert kinds.count("response.output_item.added") == kinds.count("response.output_item.done") == 3
    reasoning, _, call = TOOL_RESPONSE["output"]
    summaries = ["".join(e.delta for e in events if e.type == "response.reasoning_summary_text.delta"
                         and e.summary_index == index) for index in range(2)]
    assert summaries == [part["text"] for part in reasoning["summary"]]
    text = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert text == ["Checking", " the forecast."]
    arguments = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert len(arguments) > 1
    assert "".join(arguments) == call["arguments"]
    added = {e.output_index: e.item for e in events if e.type == "response.output_item.added"}
    assert (added[0].summary, added[0].content) == ([], [])
    assert (added[1].content, added[1].status) == ([], "in_progress")
    assert (added[2].arguments, added[2].status) == ("", "in_progress")


def test_incomplete_response_ends_as_the_live_stream_does(offline_openai: openai.OpenAI) -> None:
    """An incomplete response ends with `response.incomplete` carrying it whole; like a live stream,
    `get_final_response()` then finds no `response.completed`."""
    events = list(raw_responses(offline_openai, INCOMPLETE_RESPONSE))
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.model_dump() == Response.model_validate(INCOMPLETE_RESPONSE).model_dump()
    raw = raw_responses(offline_openai, INCOMPLETE_RESPONSE)
    with ResponseStreamManager(lambda: raw, text_format=openai.omit, input_tools=openai.omit,
                               starting_after=None) as stream, pytest.raises(RuntimeError, match="completed"):
        stream.get_final_response()
