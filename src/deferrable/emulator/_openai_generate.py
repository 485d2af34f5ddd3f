"""The one code path that answers an OpenAI request, live, in the background or as a
batch line.

`serve()` checks the body as the endpoint does, applies the per-request faults, asks the
responder for the text, works out usage (prompt caching included) and bills it. The live
handlers, background responses and the batch processor all call it, so a batch line's body
is what the live endpoint returns for the same request, but for ids and timestamps.
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
from ._openai_flex import is_flex, offers_flex, unavailable, unsupported
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
          fail_key: str, flex_key: str | None = None) -> Served:
    """Answer `body` sent to `endpoint` and bill it, or raise the `ApiError` it earns.

    Order: an ``{{error:...}}`` marker anywhere in the body, then `admit()`, then the
    `error_rate` share (keyed by `fail_key`), then generation. A live flex request is
    billed in mode ``flex``.
    """
    marked = marked_error(json.dumps(body))
    if marked is not None:
        raise marked
    run = admit(state, endpoint, body, flex_key=flex_key)
    if state.fails_by_rate(fail_key):
        raise injected_error(state.faults.error_rate_status)
    served = run(state)
    billed: Mode = "flex" if mode == "live" and is_flex(endpoint, body) else mode
    state.stats.bill(billed, served.model,
                     input_tokens=served.input_tokens - served.cache.read - served.cache.write,
                     output_tokens=served.output_tokens, cache_write_tokens=served.cache.write,
                     cache_read_tokens=served.cache.read)
    return served


def admit(state: EmulatorState, endpoint: str, body: Mapping[str, Any], *,
          flex_key: str | None = None) -> Callable[[EmulatorState], Served]:
    """Validate `body` as `endpoint` does; return the generation step that answers it.

    Flex on a model without it is a 400. With `flex_key`, a flex request falls in the
    `flex_unavailable_rate` share (keyed by it) or not: those get the 429.
    """
    run = _prepare(endpoint, body)
    if is_flex(endpoint, body):
        if not offers_flex(state.flex_models, str(body["model"])):
            raise unsupported()
        if flex_key is not None and state.in_share(
                flex_key, state.faults.flex_unavailable_rate, "flex"):
            raise unavailable()
    return run


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
    for name in ("conversation", "prompt"):
        if body.get(name):
            raise ApiError(400, f"'{name}' is not supported by this emulator.", param=name)
    _check_background(body)
    shape = responses_shape(body, model)
    limit = optional_int(body, "max_output_tokens", MIN_OUTPUT_TOKENS)
    optional_str(body, "service_tier", SERVICE_TIERS)
    _cache_settings(body, ("30m", "12h"))
    check_metadata(body.get("metadata"))
    optional_object(body, "reasoning")
    plan = responses_plan(body, shape.text)

    def run(state: EmulatorState) -> Served:
        cache = _use_cache(state, model, body, shape)
        items, output, complete = responses_output(plan, _answer(state, shape), limit)
        now = state.clock.now()
        response = {
            **response_shell(body, new_id("resp_", 48), now),
            "status": "completed" if complete else "incomplete",
            "completed_at": int(now) if complete else None,
            "incomplete_details": None if complete else {"reason": "max_output_tokens"},
            "output": items,
            "usage": {
                "input_tokens": shape.tokens,
                "input_tokens_details": {
                    "cached_tokens": cache.read, "cache_write_tokens": cache.write,
                    "cache_write_tokens_details": {
                        "ttl_30m_tokens": cache.write if cache.ttl == "30m" else 0,
                        "ttl_12h_tokens": cache.write if cache.ttl != "30m" else 0}},
                "output_tokens": output, "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": shape.tokens + output}}
        return Served(response, model, shape.tokens, output, cache)

    return run


def response_shell(body: Mapping[str, Any], response_id: str, now: float) -> dict[str, Any]:
    """The Response object for a validated `body` before it has an answer: ``queued``, with
    no output and no usage (a background response until it ends)."""
    cache_mode, cache_ttl = _cache_settings(body, ("30m", "12h"))
    return {
        "id": response_id, "object": "response", "created_at": int(now), "status": "queued",
        "background": body.get("background") is True, "completed_at": None, "error": None,
        "incomplete_details": None, "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": body.get("max_tool_calls"), "model": body["model"], "output": [],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "prompt_cache_key": body.get("prompt_cache_key"),
        "prompt_cache_options": {"mode": cache_mode, "ttl": cache_ttl},
        "prompt_cache_retention": body.get("prompt_cache_retention"),
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "safety_identifier": body.get("safety_identifier"),
        "service_tier": _served_tier(body.get("service_tier")), "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"), "tools": responses_tools_echo(body),
        "top_logprobs": body.get("top_logprobs", 0), "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"), "usage": None,
        "user": body.get("user"), "metadata": body.get("metadata") or {}}


def _check_background(body: Mapping[str, Any]) -> None:
    """`background` a boolean that needs `store`; `background_options` as the SDK has it
    (the discounted ``2h`` / ``8h`` windows need background, standard processing and no
    streaming)."""
    background = body.get("background")
    if background is not None and not isinstance(background, bool):
        raise invalid_type("background", "a boolean", background)
    if background and body.get("store") is False:
        raise ApiError(400, "Background mode requires 'store' to be true.", param="store")
    if background and body.get("stream") is True:
        raise ApiError(400, "Streaming a background response is not supported by this "
                            "emulator; poll it with GET /v1/responses/{response_id}.",
                       param="stream")
    options = optional_object(body, "background_options")
    if options is None:
        return
    param = "background_options.completion_window"
    window = optional_str({param: options.get("completion_window")}, param,
                          ("soonest", "2h", "8h"))
    optional_str({"background_options.continuation_id": options.get("continuation_id")},
                 "background_options.continuation_id")
    if window in ("2h", "8h") and (not background or body.get("stream") is True
                                   or body.get("service_tier") not in (None, "auto", "default")):
        raise invalid(param, f"the '{window}' completion window requires background=true, "
                             "standard processing and no streaming.")


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
