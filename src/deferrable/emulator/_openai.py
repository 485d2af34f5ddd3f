"""OpenAI's routes: live Chat Completions, Responses (background ones included) and
Embeddings, Files and Batches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from ._http import read_json_object
from ._openai_batches import BatchRoutes
from ._openai_files import FileRoutes, FileStore
from ._openai_generate import CHAT, EMBEDDINGS, RESPONSES
from ._openai_live import MAX_LIVE_BYTES, answer, serve_live
from ._openai_responses import ResponseRoutes
from ._state import EmulatorState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def routes(state: EmulatorState) -> list[web.RouteDef]:
    """OpenAI's routes, sharing one file store and one batch store."""
    files = FileStore(state)
    file_routes = FileRoutes(state, files)
    batches = BatchRoutes(state, files)
    responses = ResponseRoutes(state)
    table: list[tuple[str, str, Handler]] = [
        ("POST", CHAT, live_handler(state, CHAT)),
        ("POST", RESPONSES, responses.create),
        ("GET", RESPONSES + "/{response_id}", responses.retrieve),
        ("POST", RESPONSES + "/{response_id}/cancel", responses.cancel),
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
        return await answer(request, endpoint, await serve_live(request, state, endpoint, body),
                            body)

    return handle
