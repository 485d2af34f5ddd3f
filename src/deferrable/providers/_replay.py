"""A finished result replayed as the server-sent events of the streaming call.

A `stream=True` call sent to a batch API comes back as one whole object (an Anthropic
`Message`, an OpenAI `ChatCompletion` or `Response`). These pure functions turn it into
the event stream the live call would have sent, for the SDK's own streaming classes to
parse: what they accumulate equals the object.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

__all__ = ["anthropic_events", "openai_chat_chunks", "openai_response_events"]

Event = dict[str, Any]

_PIECE = 16
"""Characters of text (or of tool-input JSON) per delta event."""

_TOOL_INPUT_BLOCKS = frozenset({"tool_use", "server_tool_use", "mcp_tool_use"})
"""Blocks whose `input` streams as `input_json_delta` (the SDKs' `TRACKS_TOOL_INPUT`)."""
_USAGE_IN_DELTA_ONLY = ("server_tool_use", "output_tokens_details")
_USAGE_IN_DELTA = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                   *_USAGE_IN_DELTA_ONLY, "iterations", "fallback_credit")
"""Usage counts a `message_delta` carries; the SDKs copy each one that is not null."""
_CHAT_STREAMED = frozenset({"role", "content", "refusal", "tool_calls", "function_call"})
_CHOICE_FIELDS = frozenset({"index", "message", "logprobs", "finish_reason"})
_TERMINAL = {"incomplete": "response.incomplete", "failed": "response.failed"}


def anthropic_events(message: Mapping[str, Any]) -> bytes:
    """The events of a streaming Messages call whose final message is `message`."""
    return b"".join(_event(event["type"], event) for event in _message_events(message))


def openai_chat_chunks(completion: Mapping[str, Any], *, include_usage: bool) -> bytes:
    """The `chat.completion.chunk` events (then `[DONE]`) of a streaming `completion`.

    With `include_usage` (the request's `stream_options.include_usage`) a last chunk
    with no choices carries the usage, as the API sends it; otherwise no chunk does.
    """
    chunks = _chat_chunks(completion, include_usage=include_usage)
    return b"".join(_data(chunk) for chunk in chunks) + b"data: [DONE]\n\n"


def openai_response_events(response: Mapping[str, Any]) -> bytes:
    """The events of a streaming Responses call whose final response is `response`."""
    return b"".join(_event(event["type"], {**event, "sequence_number": number})
                    for number, event in enumerate(_response_events(response)))


def _pieces(text: str, size: int = _PIECE) -> list[str]:
    """`text` cut into consecutive pieces of at most `size` characters (none if empty)."""
    return [text[start:start + size] for start in range(0, len(text), size)]


def _event(name: str, data: Mapping[str, Any]) -> bytes:
    return f"event: {name}\ndata: {_json(data)}\n\n".encode()


def _data(data: Mapping[str, Any]) -> bytes:
    return f"data: {_json(data)}\n\n".encode()


def _json(value: object) -> str:
    # ASCII escapes keep every data line on one line for any SSE decoder.
    return json.dumps(value, separators=(",", ":"))


def _aligned(text: str, logprobs: object) -> list[tuple[str, list[Any]]]:
    """(piece, its logprob entries) for `text`: one piece per token when the tokens spell
    `text`, else fixed pieces with every entry on the first."""
    entries: list[Any] = list(logprobs) if isinstance(logprobs, list) else []
    tokens: list[str] = [entry["token"] for entry in entries
                         if isinstance(entry, Mapping) and isinstance(entry.get("token"), str)]
    if entries and len(tokens) == len(entries) and "".join(tokens) == text:
        return [(token, [entry]) for token, entry in zip(tokens, entries, strict=True)]
    return [(piece, entries if index == 0 else []) for index, piece in enumerate(_pieces(text))]


# -- Anthropic Messages ----------------------------------------------------------------


def _message_events(message: Mapping[str, Any]) -> Iterator[Event]:
    usage: Mapping[str, Any] = message["usage"]
    output_tokens = usage.get("output_tokens", 0)
    # At start the API reports the input side and a token or so of output; the final
    # counts (and those the SDKs read only from `message_delta`) come at the end.
    start_usage = {name: value for name, value in usage.items() if name not in _USAGE_IN_DELTA_ONLY}
    start_usage["output_tokens"] = min(output_tokens, 1)
    yield {"type": "message_start", "message": {
        **message, "content": [], "stop_reason": None, "stop_sequence": None,
        "stop_details": None, "container": None, "usage": start_usage}}
    for index, block in enumerate(message.get("content") or []):
        yield from _block_events(index, block)
    delta: Event = {
        "type": "message_delta",
        "delta": {"stop_reason": message.get("stop_reason"), "stop_sequence": message.get("stop_sequence"),
                  "stop_details": message.get("stop_details"), "container": message.get("container")},
        "usage": {"output_tokens": output_tokens,
                  **{name: usage[name] for name in _USAGE_IN_DELTA if usage.get(name) is not None}},
    }
    if message.get("context_management") is not None:
        delta["context_management"] = message["context_management"]
    yield delta
    yield {"type": "message_stop"}


def _block_events(index: int, block: Mapping[str, Any]) -> Iterator[Event]:
    kind = block.get("type")
    start = dict(block)
    deltas: list[Event] = []
    if kind == "text":
        start["text"] = ""
        if block.get("citations"):
            start["citations"] = []
            deltas += [{"type": "citations_delta", "citation": citation} for citation in block["citations"]]
        deltas += [{"type": "text_delta", "text": piece} for piece in _pieces(block.get("text", ""))]
    elif kind == "thinking":
        start.update(thinking="", signature="")
        deltas += [{"type": "thinking_delta", "thinking": piece}
                   for piece in _pieces(block.get("thinking", ""))]
        deltas.append({"type": "signature_delta", "signature": block.get("signature", "")})
    elif kind in _TOOL_INPUT_BLOCKS:
        start["input"] = {}
        # The input as the API streams it: JSON with the usual spaces after separators.
        deltas += [{"type": "input_json_delta", "partial_json": piece}
                   for piece in _pieces(json.dumps(block.get("input", {})))]
    elif kind == "compaction":
        start.update(content=None, encrypted_content=None)
        deltas.append({"type": "compaction_delta", "content": block.get("content"),
                       "encrypted_content": block.get("encrypted_content")})
    yield {"type": "content_block_start", "index": index, "content_block": start}
    for delta in deltas:
        yield {"type": "content_block_delta", "index": index, "delta": delta}
    yield {"type": "content_block_stop", "index": index}


# -- OpenAI Chat Completions -----------------------------------------------------------


def _chat_chunks(completion: Mapping[str, Any], *, include_usage: bool) -> list[Event]:
    head = {"id": completion.get("id"), "object": "chat.completion.chunk",
            **{name: value for name, value in completion.items()
               if name not in ("id", "object", "choices", "usage", "moderation")}}
    choices = sorted(completion.get("choices") or [], key=lambda choice: int(choice["index"]))
    chunks = [{**head, "choices": [entry], "usage": None}
              for choice in choices for entry in _choice_entries(choice)]
    if include_usage or not chunks:
        chunks.append({**head, "choices": [], "usage": completion.get("usage") if include_usage else None})
    if completion.get("moderation") is not None:
        chunks[-1]["moderation"] = completion["moderation"]
    return chunks


class _Step(NamedTuple):
    """One chunk of a choice: its delta and the logprob entries of the text it carries."""

    delta: Event
    content: Sequence[Any] = ()
    refusal: Sequence[Any] = ()


def _choice_entries(choice: Mapping[str, Any]) -> list[Event]:
    """The `choices[]` entries of one choice's chunks: role first, `finish_reason` last."""
    logprobs = choice.get("logprobs")
    lp: Mapping[str, Any] = logprobs if isinstance(logprobs, Mapping) else {}
    steps = _choice_steps(choice.get("message") or {}, lp)
    parts = _spread_logprobs(lp, steps) if isinstance(logprobs, Mapping) else [None] * len(steps)
    entries = [{"index": choice["index"], "delta": step.delta, "logprobs": part, "finish_reason": None}
               for step, part in zip(steps, parts, strict=True)]
    entries[0].update({name: value for name, value in choice.items() if name not in _CHOICE_FIELDS})
    entries[-1]["finish_reason"] = choice.get("finish_reason")
    return entries


def _choice_steps(message: Mapping[str, Any], logprobs: Mapping[str, Any]) -> list[_Step]:
    content, refusal = message.get("content"), message.get("refusal")
    role = {"role": message.get("role", "assistant"), "content": "" if isinstance(content, str) else None,
            "refusal": None}
    steps = [_Step(role)]
    steps += [_Step({"content": piece}, entries)
              for piece, entries in _aligned(content or "", logprobs.get("content"))]
    refusals = _aligned(refusal or "", logprobs.get("refusal")) or ([("", [])] if refusal == "" else [])
    steps += [_Step({"refusal": piece}, (), entries) for piece, entries in refusals]
    for position, call in enumerate(message.get("tool_calls") or []):
        steps += [_Step({"tool_calls": [delta]}) for delta in _tool_call_deltas(position, call)]
    function_call = message.get("function_call")
    if isinstance(function_call, Mapping):
        steps += [_Step({"function_call": delta}) for delta in _streamed(function_call, "arguments")]
    rest = {name: value for name, value in message.items()
            if name not in _CHAT_STREAMED and value is not None}
    if rest:
        steps.append(_Step(rest))
    return [*steps, _Step({})]


def _spread_logprobs(logprobs: Mapping[str, Any], steps: Sequence[_Step]) -> list[Event | None]:
    """Each step's `logprobs`. The SDK takes the first non-null one whole and extends it by
    later non-empty lists; the role chunk carries none (the SDK would count it twice)."""
    parts: list[Event | None] = [
        {"content": list(step.content) or None, "refusal": list(step.refusal) or None}
        if step.content or step.refusal else None for step in steps]
    opener = next((index for index, part in enumerate(parts) if part), len(parts) - 1)
    first: Event = dict(parts[opener] or {})
    for kind in ("content", "refusal"):
        source = logprobs.get(kind)
        if not isinstance(source, list):
            first[kind] = None
        elif any(getattr(step, kind) for step in steps):
            first[kind] = first.get(kind) or []
        else:
            first[kind] = source  # no piece of text to carry them, or none to carry
    parts[opener] = first
    return parts


def _tool_call_deltas(position: int, call: Mapping[str, Any]) -> list[Event]:
    kind = str(call.get("type") or "function")
    payload = call.get(kind)
    head = {"index": position, **{name: value for name, value in call.items() if name not in (kind, "index")}}
    if not isinstance(payload, Mapping):
        return [head]
    field = "arguments" if kind == "function" else "input"
    return [{**(head if number == 0 else {"index": position}), kind: part}
            for number, part in enumerate(_streamed(payload, field))]


def _streamed(payload: Mapping[str, Any], field: str) -> list[Event]:
    """`payload` with `field` empty, then that field in pieces."""
    text = payload.get(field)
    if not isinstance(text, str):
        return [dict(payload)]
    return [{**payload, field: ""}, *({field: piece} for piece in _pieces(text))]


# -- OpenAI Responses ------------------------------------------------------------------


def _response_events(response: Mapping[str, Any]) -> Iterator[Event]:
    pending = {**response, "status": "in_progress", "output": [], "usage": None, "error": None,
               "incomplete_details": None, "completed_at": None}
    yield {"type": "response.created", "response": pending}
    yield {"type": "response.in_progress", "response": pending}
    for output_index, item in enumerate(response.get("output") or []):
        yield from _item_events(output_index, item)
    yield {"type": _TERMINAL.get(str(response.get("status")), "response.completed"), "response": response}


def _item_events(output_index: int, item: Mapping[str, Any]) -> Iterator[Event]:
    kind = item.get("type")
    at = {"item_id": item.get("id") or "", "output_index": output_index}
    added = dict(item)
    if added.get("status") is not None:
        added["status"] = "in_progress"
    body: list[Event] = []
    if kind == "message":
        added["content"] = []
        for content_index, part in enumerate(item.get("content") or []):
            body += _message_part_events({**at, "content_index": content_index}, part)
    elif kind in ("function_call", "custom_tool_call"):
        field, name = ("arguments", "function_call_arguments") if kind == "function_call" \
            else ("input", "custom_tool_call_input")
        text = str(item.get(field) or "")
        added[field] = ""
        body += [{"type": f"response.{name}.delta", **at, "delta": piece} for piece in _pieces(text)]
        body.append({"type": f"response.{name}.done", **at, field: text})
    elif kind == "reasoning":
        added["summary"] = []
        if isinstance(item.get("content"), list):
            added["content"] = []
        body += _reasoning_events(at, item)
    yield {"type": "response.output_item.added", "output_index": output_index, "item": added}
    yield from body
    yield {"type": "response.output_item.done", "output_index": output_index, "item": item}


def _message_part_events(at: Mapping[str, Any], part: Mapping[str, Any]) -> list[Event]:
    kind = part.get("type")
    opened = dict(part)
    body: list[Event] = []
    if kind == "output_text":
        text, logprobs = str(part.get("text", "")), part.get("logprobs")
        opened.update(text="", annotations=[])
        if "logprobs" in part:
            opened["logprobs"] = []
        body += [{"type": "response.output_text.delta", **at, "delta": piece, "logprobs": entries}
                 for piece, entries in _aligned(text, logprobs)]
        body += [{"type": "response.output_text.annotation.added", **at, "annotation_index": number,
                  "annotation": annotation}
                 for number, annotation in enumerate(part.get("annotations") or [])]
        body.append({"type": "response.output_text.done", **at, "text": text, "logprobs": logprobs or []})
    elif kind == "refusal":
        refusal = str(part.get("refusal", ""))
        opened["refusal"] = ""
        body += [{"type": "response.refusal.delta", **at, "delta": piece} for piece in _pieces(refusal)]
        body.append({"type": "response.refusal.done", **at, "refusal": refusal})
    elif kind == "reasoning_text":
        text = str(part.get("text", ""))
        opened["text"] = ""
        body += [{"type": "response.reasoning_text.delta", **at, "delta": piece} for piece in _pieces(text)]
        body.append({"type": "response.reasoning_text.done", **at, "text": text})
    return [{"type": "response.content_part.added", **at, "part": opened}, *body,
            {"type": "response.content_part.done", **at, "part": part}]


def _reasoning_events(at: Mapping[str, Any], item: Mapping[str, Any]) -> list[Event]:
    events: list[Event] = []
    for summary_index, part in enumerate(item.get("summary") or []):
        where = {**at, "summary_index": summary_index}
        text = str(part.get("text", ""))
        events.append({"type": "response.reasoning_summary_part.added", **where,
                       "part": {**part, "text": ""}})
        events += [{"type": "response.reasoning_summary_text.delta", **where, "delta": piece}
                   for piece in _pieces(text)]
        events.append({"type": "response.reasoning_summary_text.done", **where, "text": text})
        events.append({"type": "response.reasoning_summary_part.done", **where, "part": part})
    for content_index, part in enumerate(item.get("content") or []):
        events += _message_part_events({**at, "content_index": content_index}, part)
    return events
