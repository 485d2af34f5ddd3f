"""The one code path that answers an OpenAI request, live or as a batch line.

`serve()` checks the body as the endpoint does, applies the per-request faults, asks the
responder for the text, works out usage (prompt caching included) and bills it. The live
handlers and the batch processor both call it, so a batch line's body is what the live
endpoint returns for the same request, but for ids and timestamps.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._cache import NO_CACHE, CacheUse
from ._errors import ApiError, injected_error, marked_error
from ._ids import new_id
from ._openai_embed import embeddings_body
from ._openai_errors import invalid, invalid_type
from ._openai_output import chat_choice, chat_plan, responses_output, responses_plan
from ._openai_params import (
    check_metadata,
    check_model,
    check_params,
    check_stream,
    optional_int,
    optional_object,
    optional_str,
)
from ._openai_prompt import PromptShape, chat_shape, responses_shape
from ._openai_tools import responses_tools_echo
from ._state import EmulatorState
from ._stats import Mode

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
EMBEDDINGS = "/v1/embeddings"
ENDPOINTS = (RESPONSES, CHAT, EMBEDDINGS)

CHAT_PARAMS = frozenset({
    "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "messages", "metadata", "modalities", "model",
    "moderation", "n", "parallel_tool_calls", "prediction", "presence_penalty",
    "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention", "reasoning_effort",
    "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
    "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user",
    "verbosity", "web_search_options"})
RESPONSES_PARAMS = frozenset({
    "access_programs", "background", "background_options", "context_management",
    "conversation", "image", "include", "input", "instructions", "max_output_tokens",
    "max_tool_calls", "metadata", "model", "moderation", "parallel_tool_calls",
    "previous_response_id", "prompt", "prompt_cache_key", "prompt_cache_options",
    "prompt_cache_retention", "reasoning", "safety_identifier", "service_tier", "store",
    "stream", "stream_options", "temperature", "text", "tool_choice", "tools", "top_logprobs",
    "top_p", "truncation", "user"})
EMBEDDING_PARAMS = frozenset({"input", "model", "dimensions", "encoding_format", "user"})
SERVICE_TIERS = ("auto", "default", "flex", "scale", "priority", "fast")
MIN_OUTPUT_TOKENS = 16
"""The Responses API's floor for `max_output_tokens`."""
_TTL_SECONDS = {"30m": 1800.0, "12h": 43_200.0, "24h": 86_400.0}


@dataclass(frozen=True)
class Served:
    """A successful answer: its body and the tokens it used."""

    body: dict[str, Any]
    model: str
    input_tokens: int
    """All prompt tokens, cached ones included."""
    output_tokens: int
    cache: CacheUse = NO_CACHE


def serve(state: EmulatorState, endpoint: str, body: Mapping[str, Any], *, mode: Mode,
          fail_key: str) -> Served:
    """Answer `body` sent to `endpoint` and bill it, or raise the `ApiError` it earns.

    Order: an ``{{error:...}}`` marker anywhere in the body, then the endpoint's own
    validation, then the `error_rate` share (keyed by `fail_key`), then generation.
    """
    marked = marked_error(json.dumps(body))
    if marked is not None:
        raise marked
    run = _prepare(endpoint, body)
    if state.fails_by_rate(fail_key):
        raise injected_error(state.faults.error_rate_status)
    served = run(state)
    state.stats.bill(mode, served.model,
                     input_tokens=served.input_tokens - served.cache.read - served.cache.write,
                     output_tokens=served.output_tokens, cache_write_tokens=served.cache.write,
                     cache_read_tokens=served.cache.read)
    return served


def _prepare(endpoint: str, body: Mapping[str, Any]) -> Callable[[EmulatorState], Served]:
    """Validate `body`; return the generation step that answers it."""
    check_stream(body)
    if endpoint == CHAT:
        return _prepare_chat(body)
    if endpoint == RESPONSES:
        return _prepare_responses(body)
    if endpoint == EMBEDDINGS:
        return _prepare_embeddings(body)
    raise ApiError(404, f"Invalid URL (POST {endpoint})")


# -- Chat Completions ------------------------------------------------------------------------


def _prepare_chat(body: Mapping[str, Any]) -> Callable[[EmulatorState], Served]:
    check_params(body, CHAT_PARAMS, ("model", "messages"))
    model = check_model(body["model"], "chat", CHAT)
    shape = chat_shape(body, model)
    limit = optional_int(body, "max_completion_tokens", 1)
    if limit is None:
        limit = optional_int(body, "max_tokens", 1)
    choices = optional_int(body, "n", 1, 128) or 1
    stops = _stops(body.get("stop"))
    tier = optional_str(body, "service_tier", SERVICE_TIERS)
    check_metadata(body.get("metadata"))
    _cache_settings(body, ("30m",))
    plan = chat_plan(body, shape.text)

    def run(state: EmulatorState) -> Served:
        cache = _use_cache(state, model, body, shape)
        said = _answer(state, shape)
        answers = [chat_choice(index, plan, said, stops, limit) for index in range(choices)]
        completion = sum(tokens for _, tokens in answers)
        response = {
            "id": new_id("chatcmpl-", 29), "object": "chat.completion",
            "created": int(state.clock.now()), "model": model,
            "choices": [choice for choice, _ in answers],
            "usage": {
                "prompt_tokens": shape.tokens, "completion_tokens": completion,
                "total_tokens": shape.tokens + completion,
                "prompt_tokens_details": {"cached_tokens": cache.read, "audio_tokens": 0,
                                          "cache_write_tokens": cache.write},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0,
                                              "rejected_prediction_tokens": 0}},
            "service_tier": _served_tier(tier), "system_fingerprint": _fingerprint(model)}
        return Served(response, model, shape.tokens, completion, cache)

    return run


def _stops(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and len(value) <= 4 and all(isinstance(s, str) for s in value):
        return list(value)
    raise invalid_type("stop", "a string or an array of at most 4 strings", value)


# -- Responses -------------------------------------------------------------------------------


def _prepare_responses(body: Mapping[str, Any]) -> Callable[[EmulatorState], Served]:
    check_params(body, RESPONSES_PARAMS, ("model",))
    model = check_model(body["model"], "chat", RESPONSES)
    if body.get("previous_response_id") is not None:
        raise ApiError(404, f"Previous response with id '{body['previous_response_id']}' not "
                            "found.", param="previous_response_id")
    for name in ("conversation", "prompt", "background"):
        if body.get(name):
            raise ApiError(400, f"'{name}' is not supported by this emulator.", param=name)
    shape = responses_shape(body, model)
    limit = optional_int(body, "max_output_tokens", MIN_OUTPUT_TOKENS)
    tier = optional_str(body, "service_tier", SERVICE_TIERS)
    cache_mode, cache_ttl = _cache_settings(body, ("30m", "12h"))
    check_metadata(body.get("metadata"))
    optional_object(body, "reasoning")
    plan = responses_plan(body, shape.text)

    def run(state: EmulatorState) -> Served:
        cache = _use_cache(state, model, body, shape)
        items, output, complete = responses_output(plan, _answer(state, shape), limit)
        now = state.clock.now()
        status = "completed" if complete else "incomplete"
        response = {
            "id": new_id("resp_", 48), "object": "response", "created_at": int(now),
            "status": status, "background": False,
            "completed_at": int(now) if complete else None, "error": None,
            "incomplete_details": None if complete else {"reason": "max_output_tokens"},
            "instructions": body.get("instructions"), "max_output_tokens": limit,
            "max_tool_calls": body.get("max_tool_calls"), "model": model,
            "output": items,
            "parallel_tool_calls": body.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "prompt_cache_key": body.get("prompt_cache_key"),
            "prompt_cache_options": {"mode": cache_mode, "ttl": cache_ttl},
            "prompt_cache_retention": body.get("prompt_cache_retention"),
            "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
            "safety_identifier": body.get("safety_identifier"),
            "service_tier": _served_tier(tier), "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"), "tools": responses_tools_echo(body),
            "top_logprobs": body.get("top_logprobs", 0), "top_p": body.get("top_p", 1.0),
            "truncation": body.get("truncation", "disabled"),
            "usage": {
                "input_tokens": shape.tokens,
                "input_tokens_details": {
                    "cached_tokens": cache.read, "cache_write_tokens": cache.write,
                    "cache_write_tokens_details": {
                        "ttl_30m_tokens": cache.write if cache.ttl == "30m" else 0,
                        "ttl_12h_tokens": cache.write if cache.ttl != "30m" else 0}},
                "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": shape.tokens + output},
            "user": body.get("user"), "metadata": body.get("metadata") or {}}
        return Served(response, model, shape.tokens, output, cache)

    return run


# -- Embeddings ------------------------------------------------------------------------------


def _prepare_embeddings(body: Mapping[str, Any]) -> Callable[[EmulatorState], Served]:
    check_params(body, EMBEDDING_PARAMS, ("input", "model"))
    model = check_model(body["model"], "embedding", EMBEDDINGS)
    response, tokens = embeddings_body(body, model)

    def run(state: EmulatorState) -> Served:
        return Served(response, model, tokens, 0)

    return run


# -- shared ----------------------------------------------------------------------------------


def _answer(state: EmulatorState, shape: PromptShape) -> str:
    """The responder's text; a responder that fails is the server's 500."""
    try:
        return state.responder(shape.prompt)
    except Exception as error:
        raise ApiError(500, f"The server had an error while processing your request "
                            f"(responder failed: {type(error).__name__}).") from error


def _cache_settings(body: Mapping[str, Any], ttls: tuple[str, ...]) -> tuple[str, str]:
    """(mode, ttl) of ``prompt_cache_options``, checked; retention checked as well."""
    optional_str(body, "prompt_cache_retention", ("in_memory", "24h"))
    optional_str(body, "prompt_cache_key")
    options = optional_object(body, "prompt_cache_options") or {}
    mode = optional_str(options, "mode", ("implicit", "explicit")) or "implicit"
    ttl = options.get("ttl", "30m")
    if ttl not in ttls:
        listed = ", ".join(f"'{value}'" for value in ttls)
        raise invalid("prompt_cache_options.ttl", f"Invalid value: '{ttl}'. Supported values "
                                                  f"are: {listed}.")
    return mode, str(ttl)


def _use_cache(state: EmulatorState, model: str, body: Mapping[str, Any],
               shape: PromptShape) -> CacheUse:
    """Automatic prompt caching: a long enough prefix is written once and read after.

    The cached length is the prefix rounded down to 128 tokens; it lives 30 minutes after
    its last use, 12 hours with ``prompt_cache_options.ttl: "12h"`` and 24 hours with
    ``prompt_cache_retention: "24h"``.
    """
    options = body.get("prompt_cache_options") or {}
    if options.get("mode") == "explicit":
        return NO_CACHE
    if shape.prefix_tokens < state.limits.min_cacheable_tokens:
        return NO_CACHE
    if body.get("prompt_cache_retention") == "24h":
        label = "24h"
    else:
        label = "12h" if options.get("ttl") == "12h" else "30m"
    key = f"openai:{model}:{body.get('prompt_cache_key') or ''}:{shape.prefix_digest()}"
    return state.cache.use(key, shape.prefix_tokens // 128 * 128, _TTL_SECONDS[label],
                           state.clock.now(), label)


def _served_tier(requested: str | None) -> str:
    if requested in (None, "auto"):
        return "default"
    return "priority" if requested == "fast" else str(requested)


def _fingerprint(model: str) -> str:
    return "fp_" + hashlib.sha256(model.encode()).hexdigest()[:10]
