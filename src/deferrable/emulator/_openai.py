"""OpenAI's routes: live Chat Completions, Responses and Embeddings, Files and Batches."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable

from aiohttp import web

from ._http import json_response, read_json_object, send_events
from ._openai_batches import BatchRoutes
from ._openai_files import FileRoutes, FileStore
from ._openai_generate import CHAT, EMBEDDINGS, RESPONSES, serve
from ._openai_stream import stream_events
from ._state import EmulatorState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

MAX_LIVE_BYTES = 32 * 1024 * 1024


def routes(state: EmulatorState) -> list[web.RouteDef]:
    """OpenAI's routes, sharing one file store and one batch store."""
    files = FileStore(state)
    file_routes = FileRoutes(state, files)
    batches = BatchRoutes(state, files)
    table: list[tuple[str, str, Handler]] = [
        ("POST", CHAT, live_handler(state, CHAT)),
        ("POST", RESPONSES, live_handler(state, RESPONSES)),
        ("POST", EMBEDDINGS, live_handler(state, EMBEDDINGS)),
        ("POST", "/v1/files", file_routes.upload),
        ("GET", "/v1/files", file_routes.listing),
        ("GET", "/v1/files/{file_id}", file_routes.retrieve),
        ("GET", "/v1/files/{file_id}/content", file_routes.content),
        ("DELETE", "/v1/files/{file_id}", file_routes.delete),
        ("POST", "/v1/batches", batches.create),
        ("GET", "/v1/batches", batches.listing),
        ("GET", "/v1/batches/{batch_id}", batches.retrieve),
        ("POST", "/v1/batches/{batch_id}/cancel", batches.cancel),
    ]
    return [web.route(method, path, handler) for method, path, handler in table]


def live_handler(state: EmulatorState, endpoint: str) -> Handler:
    """A live endpoint: the body answered by `serve()`, off the event loop.

    With ``stream: true`` the same answer goes out as server-sent events; a failure is the
    JSON error it would be without streaming, sent before any event. The `error_rate`
    share is keyed by the body and the SDK's retry count, so that a retry may succeed.
    """

    async def handle(request: web.Request) -> web.StreamResponse:
        body = await read_json_object(request, MAX_LIVE_BYTES)
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        retry = request.headers.get("x-stainless-retry-count", "0")
        served = await asyncio.to_thread(serve, state, endpoint, body, mode="live",
                                         fail_key=f"live:{digest}:{retry}")
        if body.get("stream") is True:
            return await send_events(request, stream_events(endpoint, served.body, body))
        return json_response(served.body)

    return handle
