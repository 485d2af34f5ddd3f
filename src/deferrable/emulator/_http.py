"""HTTP helpers shared by both providers' routes: JSON in and out, server-sent events,
streamed downloads."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aiohttp import web

from ._errors import ApiError
from ._state import EmulatorState

REQUEST_ID = web.RequestKey("request_id", str)
PROVIDER = web.RequestKey("provider", str)
_CHUNK = 256 * 1024


def request_id_header(request: web.Request) -> dict[str, str]:
    """The request-id header of the provider this request speaks to."""
    name = "request-id" if request[PROVIDER] == "anthropic" else "x-request-id"
    return {name: request[REQUEST_ID]}


def json_response(data: Any, status: int = 200) -> web.Response:
    """A compact JSON response."""
    return web.Response(body=json.dumps(data, separators=(",", ":")).encode(), status=status,
                        content_type="application/json")


async def send_events(request: web.Request,
                      events: Iterable[tuple[str | None, dict[str, Any] | str]]
                      ) -> web.StreamResponse:
    """Answer with server-sent events: an ``event:`` line when named, then ``data:`` (a JSON
    object, or raw text such as ``[DONE]``)."""
    response = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8",
                                           "cache-control": "no-cache",
                                           **request_id_header(request)})
    await response.prepare(request)
    for name, data in events:
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        head = f"event: {name}\n" if name else ""
        await response.write(f"{head}data: {payload}\n\n".encode())
    await response.write_eof()
    return response


def openai_page(items: list[Any], after: str | None, limit: int) -> web.Response:
    """One page of an OpenAI list (``{"object": "list", "data", "first_id", ...}``) of
    objects with an ``id`` and a ``to_json()``, starting after the id `after`."""
    if after is not None:
        ids = [item.id for item in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    page = items[:limit]
    return json_response({"object": "list", "data": [item.to_json() for item in page],
                          "first_id": page[0].id if page else None,
                          "last_id": page[-1].id if page else None,
                          "has_more": len(items) > limit})


async def read_json_object(request: web.Request, max_bytes: int) -> dict[str, Any]:
    """The request body as a JSON object, or the provider's 400 / 413."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, f"Request exceeds the maximum allowed size of {max_bytes} bytes.")
    raw = bytearray()
    async for chunk in request.content.iter_any():
        raw += chunk
        if len(raw) > max_bytes:
            raise ApiError(413, f"Request exceeds the maximum allowed size of {max_bytes} bytes.")
    try:
        body = json.loads(raw)
    except ValueError as error:
        raise ApiError(400, f"The request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.")
    return body


async def stream_file(request: web.Request, state: EmulatorState, path: Path,
                      content_type: str) -> web.StreamResponse:
    """Send a JSONL file in chunks, honouring the truncated and slow stream faults."""
    response = web.StreamResponse(headers={"content-type": content_type,
                                           **request_id_header(request)})
    await response.prepare(request)
    limit = state.faults.truncate_results_after
    delay = state.faults.results_line_delay
    with path.open("rb") as source:
        if limit is None and delay <= 0:
            while chunk := source.read(_CHUNK):
                await response.write(chunk)
        else:
            for sent, line in enumerate(source):
                if limit is not None and sent >= limit:
                    break
                if delay > 0:
                    await asyncio.sleep(delay)
                await response.write(line)
            if limit is not None and state.faults.truncate_mode == "abort":
                _abort(request)
                return response
    await response.write_eof()
    return response


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
