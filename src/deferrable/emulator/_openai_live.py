"""Answering a live OpenAI request: `serve()` off the event loop, flex processing's latency,
then the body as JSON or as server-sent events."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ._http import json_response, send_events
from ._openai_flex import is_flex
from ._openai_generate import Served, serve
from ._openai_stream import stream_events
from ._state import EmulatorState

MAX_LIVE_BYTES = 32 * 1024 * 1024


def live_key(request: web.Request, body: Mapping[str, Any]) -> str:
    """The key of a live request's fault draws: its body and the SDK's retry count, so that
    a retry may succeed where the first attempt failed."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    retry = request.headers.get("x-stainless-retry-count", "0")
    return f"live:{digest}:{retry}"


async def serve_live(request: web.Request, state: EmulatorState, endpoint: str,
                     body: Mapping[str, Any]) -> Served:
    """`serve()` in a worker thread; a flex answer waits until `flex_latency` has passed on
    the emulator's clock since the request arrived."""
    arrived = state.clock.now()
    key = live_key(request, body)
    served = await asyncio.to_thread(serve, state, endpoint, body, mode="live", fail_key=key,
                                     flex_key=key)
    if is_flex(endpoint, body) and state.flex_latency > 0:
        await state.clock.sleep_until(arrived + state.flex_latency)
    return served


async def answer(request: web.Request, endpoint: str, served: Served,
                 body: Mapping[str, Any]) -> web.StreamResponse:
    """The served body as JSON, or as events with ``stream: true``."""
    if body.get("stream") is True:
        return await send_events(request, stream_events(endpoint, served.body, body))
    return json_response(served.body)
