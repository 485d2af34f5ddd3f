"""The aiohttp application: both providers' routes behind one middleware that counts,
stamps request ids, injects outages and HTTP faults, checks authentication and renders
errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.typedefs import Middleware

from . import _anthropic, _openai
from ._errors import ApiError, anthropic_error_body, injected_error, openai_error_body
from ._http import PROVIDER, REQUEST_ID, json_response, request_id_header
from ._ids import anthropic_request_id, openai_request_id
from ._state import EmulatorState, log

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STATE = web.AppKey("state", EmulatorState)
ANTHROPIC_VERSIONS = frozenset({"2023-06-01", "2026-10-21"})


def build_app(state: EmulatorState) -> web.Application:
    """The emulator's application, serving Anthropic, OpenAI and ``/_emulator`` routes."""
    app = web.Application(middlewares=[_middleware(state)],
                          client_max_size=state.limits.anthropic_batch_bytes + 1)
    app[STATE] = state
    app.add_routes(_anthropic.routes(state))
    app.add_routes(_openai.routes(state))
    app.add_routes([web.get("/_emulator/stats", _stats_handler(state))])
    return app


def route_key(request: web.Request) -> str:
    """``"METHOD /path-template"`` for a matched route, else the raw path."""
    resource = request.match_info.route.resource
    path = resource.canonical if resource is not None else request.path
    return f"{request.method} {path}"


def _stats_handler(state: EmulatorState) -> Handler:
    async def stats(request: web.Request) -> web.StreamResponse:
        return json_response(state.stats.snapshot())

    return stats


def _middleware(state: EmulatorState) -> Middleware:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_emulator/"):
            return await handler(request)
        anthropic = request.path.startswith("/v1/messages") or "anthropic-version" in request.headers
        request[PROVIDER] = "anthropic" if anthropic else "openai"
        request[REQUEST_ID] = anthropic_request_id() if anthropic else openai_request_id()
        route = route_key(request)
        state.stats.count_request(route)
        outage = _outage_error(state)
        if outage is not None:  # the API is unreachable: no hold or fault is spent
            refused = _render(request, outage, state)
            refused.headers.update(request_id_header(request))
            return refused
        before, after = state.take_holds(route)
        if before > 0:
            await asyncio.sleep(before)
            if _client_gone(request):  # lost on the way: nothing runs, nothing is created
                return _drop(request)
        response = await _answer(request, handler, state, route, anthropic)
        if after > 0:
            await asyncio.sleep(after)
        return response

    return middleware


async def _answer(request: web.Request, handler: Handler, state: EmulatorState, route: str,
                  anthropic: bool) -> web.StreamResponse:
    """The handler's response, or an injected fault, or the provider's error for a failure."""
    try:
        fault = state.take_http_fault(route)
        if fault is not None:
            if fault.drop_connection:
                return _drop(request)
            error = injected_error(fault.status)
            error.headers = _fault_headers(fault.retry_after_ms, fault.retry_after,
                                           fault.should_retry)
            raise error
        _check_anthropic(request) if anthropic else _check_openai(request)
        response = await handler(request)
    except ApiError as error:
        response = _render(request, error, state)
    except web.HTTPException as error:
        response = _render(request, ApiError(error.status, _http_message(error)), state)
    except Exception:
        log.exception("emulator route %s failed", route)
        response = _render(request, ApiError(500, "Internal server error."), state)
    if not response.prepared:
        response.headers.update(request_id_header(request))
    return response


def _outage_error(state: EmulatorState) -> ApiError | None:
    """The error every request gets while an outage lasts (`Faults.outage_until`), if one
    does: `outage_status`, which the SDKs are told not to retry."""
    faults = state.faults
    until = faults.outage_until
    if until is None or state.clock.now() >= until:
        return None
    error = injected_error(faults.outage_status)
    error.message = "The service is unavailable: an outage injected by the emulator's faults."
    error.headers = _fault_headers(None, None, should_retry=False)
    return error


def _check_anthropic(request: web.Request) -> None:
    headers = request.headers
    bearer = headers.get("authorization", "")
    if not headers.get("x-api-key") and not bearer.lower().startswith("bearer "):
        raise ApiError(401, "Missing authentication: send `Authorization: Bearer <key>` "
                            "or `x-api-key: <key>`.")
    version = headers.get("anthropic-version")
    if version is None:
        raise ApiError(400, "anthropic-version: header is required")
    if version not in ANTHROPIC_VERSIONS:
        raise ApiError(400, f"anthropic-version: unknown version '{version}'")


def _check_openai(request: web.Request) -> None:
    bearer = request.headers.get("authorization", "")
    if not bearer.lower().startswith("bearer ") or not bearer[7:].strip():
        raise ApiError(401, "You didn't provide an API key. You need to provide your API key "
                            "in an Authorization header using Bearer auth.",
                       code="invalid_api_key")


def _render(request: web.Request, error: ApiError, state: EmulatorState) -> web.Response:
    headers = dict(error.headers)
    if request[PROVIDER] == "anthropic":
        if error.status == 413 and not state.quirks.anthropic_request_too_large_envelope:
            return web.Response(status=413, text="Request Entity Too Large", headers=headers)
        body = anthropic_error_body(error, request[REQUEST_ID])
    else:
        body = openai_error_body(error)
    return web.Response(body=json.dumps(body).encode(), status=error.status,
                        content_type="application/json", headers=headers)


def _fault_headers(retry_after_ms: int | None, retry_after: float | None,
                   should_retry: bool | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    if retry_after_ms is not None:
        headers["retry-after-ms"] = str(retry_after_ms)
    if retry_after is not None:
        headers["retry-after"] = f"{retry_after:g}"
    if should_retry is not None:
        headers["x-should-retry"] = "true" if should_retry else "false"
    return headers


def _http_message(error: web.HTTPException) -> str:
    if error.status == 404:
        return "Not found."
    if error.status == 405:
        return "Method not allowed."
    return error.reason


def _client_gone(request: web.Request) -> bool:
    """Whether the client has closed its connection."""
    return request.transport is None or request.transport.is_closing()


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the socket without answering (the client sees a dropped connection)."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=500)
