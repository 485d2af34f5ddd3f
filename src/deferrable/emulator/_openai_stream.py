"""A streamed OpenAI answer: the finished body cut into the server-sent events the API sends.

Chat Completions: ``chat.completion.chunk`` objects (``data:`` lines only) ending in
``[DONE]``; Responses: typed events (``event:`` and ``data:``) with increasing
``sequence_number``\\s, from ``response.created`` to ``response.completed`` (or
``response.incomplete``). The answer is built first, so a stream carries exactly the
non-streaming body, and a failure is an ordinary JSON error before any event.
"""

from __future__ import annotations

import math
import re
import secrets
import string
from collections.abc import Iterator, Mapping
from typing import Any

Event = tuple[str | None, dict[str, Any] | str]
"""(``event:`` name or None, ``data:`` payload: a JSON object, or raw text like ``[DONE]``)."""
PIECES = 6
"""Most deltas one text or argument string is sent in."""
_TOKEN = re.compile(r"\s*\S{1,8}|\s+")
_ALPHABET = string.ascii_letters + string.digits


def stream_events(endpoint: str, answer: Mapping[str, Any],
                  body: Mapping[str, Any]) -> list[Event]:
    """The events that stream `answer` to a request `body` sent to `endpoint`."""
    options = body.get("stream_options") or {}
    obfuscate = options.get("include_obfuscation") is not False
    if endpoint.endswith("/chat/completions"):
        chunks = chat_chunks(answer, bool(options.get("include_usage")), obfuscate)
        return [*((None, chunk) for chunk in chunks), (None, "[DONE]")]
    return response_events(answer, obfuscate)


def pieces(text: str) -> list[str]:
    """`text` cut at word boundaries (long words split) into at most `PIECES` deltas."""
    tokens = _TOKEN.findall(text)
    if not tokens:
        return []
    per = math.ceil(len(tokens) / PIECES)
    return ["".join(tokens[i:i + per]) for i in range(0, len(tokens), per)]


# -- Chat Completions ------------------------------------------------------------------------


def chat_chunks(completion: Mapping[str, Any], include_usage: bool,
                obfuscate: bool) -> list[dict[str, Any]]:
    """Chunks of a ``chat.completion``: per choice a role delta, content or call deltas and
    a `finish_reason`; then, with `include_usage`, a chunk of usage and no choices."""
    head = {key: completion[key] for key in ("id", "object", "created", "model", "service_tier",
                                             "system_fingerprint")}
    head["object"] = "chat.completion.chunk"

    def chunk(choices: list[dict[str, Any]], usage: Any = None) -> dict[str, Any]:
        made = {**head, "choices": choices, "usage": usage}
        if obfuscate:
            made["obfuscation"] = _padding()
        return made

    chunks = []
    for choice in completion["choices"]:
        for delta, finish in _choice_deltas(choice["message"], choice["finish_reason"]):
            chunks.append(chunk([{"index": choice["index"], "delta": delta, "logprobs": None,
                                  "finish_reason": finish}]))
    if include_usage:
        chunks.append(chunk([], completion["usage"]))
    return chunks


def _choice_deltas(message: Mapping[str, Any],
                   finish: str) -> Iterator[tuple[dict[str, Any], str | None]]:
    content = message.get("content")
    first: dict[str, Any] = {"role": "assistant", "content": "" if content is not None else None,
                             "refusal": None}
    calls = message.get("tool_calls") or []
    function_call = message.get("function_call")
    if function_call:
        yield {**first, "function_call": {"name": function_call["name"], "arguments": ""}}, None
        for piece in pieces(function_call["arguments"]):
            yield {"function_call": {"arguments": piece}}, None
    elif calls:
        for index, call in enumerate(calls):  # the first call opens in the role's delta
            kind = call["type"]
            field = "arguments" if kind == "function" else "input"
            opening = {"index": index, "id": call["id"], "type": kind,
                       kind: {"name": call[kind]["name"], field: ""}}
            yield {**(first if index == 0 else {}), "tool_calls": [opening]}, None
            for piece in pieces(call[kind][field]):
                yield {"tool_calls": [{"index": index, kind: {field: piece}}]}, None
    else:
        yield first, None
        for piece in pieces(content or ""):
            yield {"content": piece}, None
    yield {}, finish


# -- Responses -------------------------------------------------------------------------------


def response_events(response: Mapping[str, Any], obfuscate: bool) -> list[Event]:
    """Events of a ``response``: created, in progress, each output item with its deltas,
    and the whole response as ``response.completed`` (or ``.incomplete`` / ``.failed``)."""
    events: list[Event] = []

    def emit(kind: str, **data: Any) -> None:
        events.append((kind, {"type": kind, "sequence_number": len(events), **data}))

    def delta(kind: str, item_id: str, index: int, text: str, **where: Any) -> None:
        for piece in pieces(text):
            extra = {"obfuscation": _padding()} if obfuscate else {}
            emit(kind, item_id=item_id, output_index=index, **where, delta=piece, **extra)

    shell = {**response, "status": "in_progress", "completed_at": None, "error": None,
             "incomplete_details": None, "output": [], "usage": None}
    emit("response.created", response=shell)
    emit("response.in_progress", response=shell)
    for index, item in enumerate(response["output"]):
        item_id = item["id"]
        if item["type"] == "message":
            emit("response.output_item.added", output_index=index,
                 item={**item, "status": "in_progress", "content": []})
            for part_index, part in enumerate(item["content"]):
                at = {"item_id": item_id, "output_index": index, "content_index": part_index}
                emit("response.content_part.added", **at, part={**part, "text": ""})
                delta("response.output_text.delta", item_id, index, part["text"],
                      content_index=part_index, logprobs=[])
                emit("response.output_text.done", **at, text=part["text"], logprobs=[])
                emit("response.content_part.done", **at, part=part)
        elif item["type"] == "function_call":
            emit("response.output_item.added", output_index=index,
                 item={**item, "status": "in_progress", "arguments": ""})
            delta("response.function_call_arguments.delta", item_id, index, item["arguments"])
            emit("response.function_call_arguments.done", item_id=item_id, output_index=index,
                 name=item["name"], arguments=item["arguments"])
        else:
            emit("response.output_item.added", output_index=index, item={**item, "input": ""})
            delta("response.custom_tool_call_input.delta", item_id, index, item["input"])
            emit("response.custom_tool_call_input.done", item_id=item_id, output_index=index,
                 input=item["input"])
        emit("response.output_item.done", output_index=index, item=item)
    final = {"completed": "response.completed", "failed": "response.failed"}.get(
        response["status"], "response.incomplete")
    emit(final, response=response)
    return events


def _padding() -> str:
    """Random characters of random length: the ``obfuscation`` that evens out chunk sizes."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(secrets.randbelow(16) + 1))
