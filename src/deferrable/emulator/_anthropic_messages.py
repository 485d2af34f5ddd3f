"""Anthropic's Messages API as a pure function: validate a request, answer it.

The live route and the batch processor both call `answer()`, so a batch result holds
exactly what the live endpoint returns for the same request (ids aside).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Literal

from ._anthropic_output import check_output_config, forced_tool_use, structured_text
from ._anthropic_threads import check_thread
from ._cache import NO_CACHE, CacheUse
from ._errors import ApiError, marked_error
from ._ids import new_id
from ._responder import Prompt, count_tokens, truncate_to_tokens
from ._state import EmulatorState

LATEST_VERSION = "2026-10-21"
PARAMS = frozenset({
    "model", "max_tokens", "messages", "cache_control", "container", "diagnostics",
    "inference_geo", "metadata", "output_config", "service_tier", "speed", "stop_sequences",
    "stream", "system", "thinking", "thread", "tool_choice", "tools", "temperature", "top_p",
    "top_k",
})
SAMPLING_PARAMS = ("temperature", "top_p", "top_k")
CACHE_TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
_IMAGE_TOKENS = 1_000
_MESSAGE_OVERHEAD = 4

Mode = Literal["live", "batch"]


@dataclass(frozen=True)
class Segment:
    """A piece of the prompt in cache order (tools, system, messages) with its tokens."""

    key: str
    tokens: int
    breakpoint_ttl: str | None


def validate(params: Mapping[str, Any], version: str, *, in_batch: bool) -> None:
    """Raise the 400 / 404 the service gives for a malformed request."""
    for name in params:
        if name not in PARAMS or (version == LATEST_VERSION and name in SAMPLING_PARAMS):
            raise ApiError(400, f"{name}: Extra inputs are not permitted")
    for name in ("model", "max_tokens", "messages"):
        if name not in params:
            raise ApiError(400, f"{name}: Field required")
    model = params["model"]
    if not isinstance(model, str) or not model:
        raise ApiError(400, "model: Input should be a valid string")
    max_tokens = params["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise ApiError(400, "max_tokens: Input should be a valid non-negative integer")
    continuing = check_thread(params)
    _validate_messages(params["messages"], allow_empty=continuing)
    check_output_config(params)
    system = params.get("system")
    if system is not None and not isinstance(system, (str, list)):
        raise ApiError(400, "system: Input should be a valid string or list of text blocks")
    if in_batch:
        if params.get("stream"):
            raise ApiError(400, "stream: Streaming is not supported in Message Batches")
        if params.get("speed") == "fast":
            raise ApiError(400, "speed: Fast mode is not supported in Message Batches")
        if max_tokens < 1:
            raise ApiError(400, "max_tokens: Input should be greater than or equal to 1")
    if not model.startswith("claude-"):
        raise ApiError(404, f"model: {model}")


def _validate_messages(messages: object, *, allow_empty: bool) -> None:
    if not isinstance(messages, list) or not (messages or allow_empty):
        raise ApiError(400, "messages: at least one message is required")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise ApiError(400, f"messages.{index}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        if not isinstance(content, (str, list)):
            raise ApiError(400, f"messages.{index}.content: Field required")
        if isinstance(content, list) and not all(
                isinstance(block, dict) and isinstance(block.get("type"), str) for block in content):
            raise ApiError(400, f"messages.{index}.content: each block needs a `type`")


def injected_failure(state: EmulatorState, params: Mapping[str, Any], key: str) -> ApiError | None:
    """The error a marker in the request or the fault `error_rate` asks for, if any."""
    error = marked_error(json.dumps(params))
    if error is None and state.fails_by_rate(key):
        error = ApiError(state.faults.error_rate_status,
                         "Injected error: this request fell in the emulator's error rate.")
    return error


def answer(state: EmulatorState, params: Mapping[str, Any], *, mode: Mode,
           cache: CacheUse | None = None) -> dict[str, Any]:
    """The `Message` for a valid request, billed to `mode`.

    `cache` replays a cache outcome decided earlier (a batch decides it once, when it
    ends); without it the prompt cache is consulted now.
    """
    model: str = params["model"]
    segments = prompt_segments(params)
    total_input = sum(segment.tokens for segment in segments)
    use = cache if cache is not None else consult_cache(state, model, segments)
    max_tokens: int = params["max_tokens"]
    content, stop_reason, stop_sequence, output_tokens, thinking_tokens = _content(
        state, params, max_tokens)
    usage: dict[str, Any] = {
        "input_tokens": total_input - use.write - use.read,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": use.write,
        "cache_read_input_tokens": use.read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": use.write if use.ttl == "5m" else 0,
            "ephemeral_1h_input_tokens": use.write if use.ttl == "1h" else 0,
        },
        "server_tool_use": None,
        "service_tier": state.quirks.anthropic_batch_service_tier if mode == "batch" else "standard",
        "inference_geo": params.get("inference_geo"),
        "output_tokens_details": {"thinking_tokens": thinking_tokens},
        "speed": params.get("speed"),
    }
    state.stats.bill(mode, model, input_tokens=usage["input_tokens"], output_tokens=output_tokens,
                     cache_write_tokens=use.write, cache_read_tokens=use.read)
    return {
        "id": new_id("msg_01", 22),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "stop_details": None,
        "container": _container(params.get("container"), state),
        "diagnostics": None,
        "usage": usage,
    }


def consult_cache(state: EmulatorState, model: str, segments: list[Segment]) -> CacheUse:
    """Read or write the request's cached prefix (up to its last cache breakpoint)."""
    last = max((i for i, s in enumerate(segments) if s.breakpoint_ttl), default=-1)
    if last < 0:
        return NO_CACHE
    tokens = sum(segment.tokens for segment in segments[: last + 1])
    if tokens < state.limits.min_cacheable_tokens:
        return NO_CACHE
    ttl = segments[last].breakpoint_ttl or "5m"
    digest = hashlib.sha256(model.encode())
    for segment in segments[: last + 1]:
        digest.update(segment.key.encode())
    return state.cache.use(digest.hexdigest(), tokens, CACHE_TTL_SECONDS.get(ttl, 300.0),
                           state.clock.now(), ttl)


def prompt_segments(params: Mapping[str, Any]) -> list[Segment]:
    """The prompt as cacheable segments: each tool, system block and message block."""
    segments: list[Segment] = []
    for tool in params.get("tools") or []:
        text = json.dumps(tool, sort_keys=True)
        segments.append(Segment(text, count_tokens(text), _ttl(tool)))
    system = params.get("system")
    if isinstance(system, str) and system:
        segments.append(Segment(system, count_tokens(system), None))
    elif isinstance(system, list):
        for block in system:
            text = str(block.get("text", "")) if isinstance(block, dict) else str(block)
            segments.append(Segment(text, count_tokens(text), _ttl(block)))
    for message in params["messages"]:
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        segments.append(Segment(message["role"], _MESSAGE_OVERHEAD, None))
        for block in blocks:
            key, tokens = _block_tokens(block)
            segments.append(Segment(key, tokens, _ttl(block)))
    automatic = params.get("cache_control")
    if isinstance(automatic, dict) and segments:
        last = segments[-1]
        segments[-1] = Segment(last.key, last.tokens, str(automatic.get("ttl") or "5m"))
    return segments


def input_tokens(params: Mapping[str, Any]) -> int:
    """Total input tokens of a request (what `count_tokens` reports)."""
    return sum(segment.tokens for segment in prompt_segments(params))


def to_prompt(params: Mapping[str, Any]) -> Prompt:
    """The request as the responder sees it."""
    system = params.get("system") or ""
    if isinstance(system, list):
        system = "\n".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
    turns = tuple((m["role"], _text_of(m["content"])) for m in params["messages"])
    return Prompt(provider="anthropic", endpoint="/v1/messages", model=params["model"],
                  system=str(system), turns=turns, params=params)


def _content(state: EmulatorState, params: Mapping[str, Any], max_tokens: int
             ) -> tuple[list[dict[str, Any]], str, str | None, int, int]:
    """(content blocks, stop_reason, stop_sequence, output tokens, thinking tokens)."""
    if max_tokens == 0:
        return [], "max_tokens", None, 0, 0
    blocks: list[dict[str, Any]] = []
    budget = max_tokens
    thinking_tokens = 0
    if (params.get("thinking") or {}).get("type") in ("enabled", "adaptive"):
        thought = f"The request asks about: {to_prompt(params).last_user_text[:80]}"
        thinking_tokens = min(count_tokens(thought), budget)
        budget -= thinking_tokens
        blocks.append({"type": "thinking", "thinking": truncate_to_tokens(thought, thinking_tokens),
                       "signature": hashlib.sha256(thought.encode()).hexdigest()})
    said = state.responder(to_prompt(params))
    call = forced_tool_use(params, said)
    if call is not None:
        blocks.append(call)
        return blocks, "tool_use", None, thinking_tokens + count_tokens(json.dumps(call)), \
            thinking_tokens
    text = structured_text(params, said)
    stop_reason, stop_sequence = "end_turn", None
    for sequence in params.get("stop_sequences") or []:
        if sequence and sequence in text:
            text, stop_reason, stop_sequence = text[: text.index(sequence)], "stop_sequence", sequence
            break
    if count_tokens(text) > budget:
        text, stop_reason, stop_sequence = truncate_to_tokens(text, budget), "max_tokens", None
    blocks.append({"type": "text", "text": text, "citations": None})
    return blocks, stop_reason, stop_sequence, thinking_tokens + max(count_tokens(text), 1), \
        thinking_tokens


def _container(container: object, state: EmulatorState) -> dict[str, Any] | None:
    if container is None:
        return None
    container_id = container if isinstance(container, str) else None
    if isinstance(container, dict):
        container_id = container.get("id")
    expires = datetime.fromtimestamp(state.clock.now() + 3600, timezone.utc)
    return {"id": container_id or new_id("container_01", 22),
            "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "skills": None}


def _ttl(block: object) -> str | None:
    if isinstance(block, dict) and isinstance(block.get("cache_control"), dict):
        return str(block["cache_control"].get("ttl") or "5m")
    return None


def _block_tokens(block: Mapping[str, Any]) -> tuple[str, int]:
    if block.get("type") == "text":
        text = str(block.get("text", ""))
        return text, count_tokens(text)
    source = block.get("source")
    if isinstance(source, dict) and source.get("type") == "base64":
        digest = hashlib.sha256(str(source.get("data", "")).encode()).hexdigest()
        return digest, _IMAGE_TOKENS
    text = json.dumps(block, sort_keys=True)
    return text, count_tokens(text)


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for block in content if isinstance(content, list) else []:
        if isinstance(block, dict):
            if block.get("type") == "text":
                parts.append(str(block.get("text", "")))
            elif block.get("type") == "tool_result":
                parts.append(_text_of(block.get("content", "")))
    return "\n".join(parts)
