"""Anthropic's HTTP routes: Messages (live, streaming too) and Message Batches."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from . import _anthropic_messages as messages
from ._anthropic_batches import BatchStore, MessageBatch
from ._anthropic_threads import ThreadStore
from ._errors import ApiError
from ._http import REQUEST_ID, json_response, read_json_object, request_id_header, stream_file
from ._state import EmulatorState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BATCH = "/v1/messages/batches/{message_batch_id}"


def routes(state: EmulatorState) -> list[web.RouteDef]:
    """Anthropic's routes, bound to one emulator's state."""
    threads = ThreadStore()
    store = BatchStore(state, threads)
    api = _AnthropicApi(state, store, threads)
    return [
        web.post("/v1/messages", api.create_message),
        web.post("/v1/messages/count_tokens", api.count_tokens),
        web.post("/v1/messages/batches", api.create_batch),
        web.get("/v1/messages/batches", api.list_batches),
        web.get(BATCH, api.retrieve_batch),
        web.delete(BATCH, api.delete_batch),
        web.post(BATCH + "/cancel", api.cancel_batch),
        web.get(BATCH + "/results", api.batch_results),
    ]


class _AnthropicApi:
    def __init__(self, state: EmulatorState, store: BatchStore, threads: ThreadStore) -> None:
        self._state = state
        self._store = store
        self._threads = threads

    async def create_message(self, request: web.Request) -> web.StreamResponse:
        params = await read_json_object(request, self._state.limits.anthropic_message_bytes)
        messages.validate(params, _version(request), in_batch=False)
        failure = messages.injected_failure(self._state, params, request[REQUEST_ID])
        if failure is not None:
            raise failure
        message = self._threads.answer(
            params, lambda full: messages.answer(self._state, full, mode="live"))
        if params.get("stream"):
            return await _stream_message(request, message)
        return json_response(message)

    async def count_tokens(self, request: web.Request) -> web.StreamResponse:
        params = await read_json_object(request, self._state.limits.anthropic_message_bytes)
        if "thread" in params:
            raise ApiError(400, "thread: Extra inputs are not permitted")
        checked = {"max_tokens": 1, **params}
        messages.validate(checked, _version(request), in_batch=False)
        return json_response({"input_tokens": messages.input_tokens(checked)})

    async def create_batch(self, request: web.Request) -> web.StreamResponse:
        body = await read_json_object(request, self._state.limits.anthropic_batch_bytes)
        batch = self._store.create(body, _version(request), _workspace(request))
        return self._batch_json(request, batch)

    async def list_batches(self, request: web.Request) -> web.StreamResponse:
        limit = _int_query(request, "limit", 20, 1, 1000)
        page, has_more = self._store.page(_workspace(request), limit,
                                          request.query.get("after_id"),
                                          request.query.get("before_id"))
        data = [self._batch_dict(request, batch) for batch in page]
        return json_response({"data": data, "has_more": has_more,
                              "first_id": data[0]["id"] if data else None,
                              "last_id": data[-1]["id"] if data else None})

    async def retrieve_batch(self, request: web.Request) -> web.StreamResponse:
        return self._batch_json(request, self._batch(request))

    async def cancel_batch(self, request: web.Request) -> web.StreamResponse:
        batch = self._batch(request)
        self._store.cancel(batch)
        return self._batch_json(request, batch)

    async def delete_batch(self, request: web.Request) -> web.StreamResponse:
        batch = self._batch(request)
        self._store.delete(batch)
        return json_response({"id": batch.id, "type": "message_batch_deleted"})

    async def batch_results(self, request: web.Request) -> web.StreamResponse:
        batch = self._batch(request)
        if batch.status != "ended":
            raise ApiError(400, f"Batch '{batch.id}' has not ended yet; results are not ready.")
        if batch.archived(self._state.clock.now()):
            raise ApiError(self._state.quirks.anthropic_archived_results_status,
                           f"Results of batch '{batch.id}' have been archived.")
        return await stream_file(request, self._state, batch.results_path,
                                 self._state.quirks.anthropic_results_content_type)

    def _batch(self, request: web.Request) -> MessageBatch:
        return self._store.get(request.match_info["message_batch_id"], _workspace(request))

    def _batch_dict(self, request: web.Request, batch: MessageBatch) -> dict[str, Any]:
        origin = f"{request.scheme}://{request.host}"
        return batch.to_json(origin, self._state.clock.now())

    def _batch_json(self, request: web.Request, batch: MessageBatch) -> web.StreamResponse:
        return json_response(self._batch_dict(request, batch))


def _version(request: web.Request) -> str:
    return request.headers.get("anthropic-version", messages.LATEST_VERSION)


def _workspace(request: web.Request) -> str | None:
    return request.headers.get("anthropic-workspace-id")


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name}: Input should be a valid integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name}: Input should be between {low} and {high}")
    return value


_DELTA_USAGE = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
                "output_tokens", "output_tokens_details", "server_tool_use")
"""The usage a `message_delta` event carries (the API's cumulative counts, without the
breakdowns and labels `message_start` already gave)."""


async def _stream_message(request: web.Request, message: dict[str, Any]) -> web.StreamResponse:
    """Send `message` as the server-sent events of a streaming Messages call."""
    response = web.StreamResponse(headers={"content-type": "text/event-stream",
                                           "cache-control": "no-cache",
                                           **request_id_header(request)})
    await response.prepare(request)

    async def send(event: str, data: dict[str, Any]) -> None:
        payload = json.dumps({"type": event, **data}, separators=(",", ":"))
        await response.write(f"event: {event}\ndata: {payload}\n\n".encode())

    usage = message["usage"]
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {**usage, "output_tokens": 1}}
    await send("message_start", {"message": start})
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            await send("content_block_start", {"index": index,
                                               "content_block": {**block, "text": ""}})
            await send("content_block_delta", {"index": index, "delta": {
                "type": "text_delta", "text": block["text"]}})
        elif block["type"] == "thinking":
            await send("content_block_start", {"index": index, "content_block": {
                **block, "thinking": "", "signature": ""}})
            await send("content_block_delta", {"index": index, "delta": {
                "type": "thinking_delta", "thinking": block["thinking"]}})
            await send("content_block_delta", {"index": index, "delta": {
                "type": "signature_delta", "signature": block["signature"]}})
        else:
            await send("content_block_start", {"index": index,
                                               "content_block": {**block, "input": {}}})
            await send("content_block_delta", {"index": index, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps(block.get("input", {}))}})
        await send("content_block_stop", {"index": index})
    await send("message_delta", {
        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"],
                  "stop_details": None, "container": message["container"]},
        "usage": {name: usage[name] for name in _DELTA_USAGE if name in usage}})
    await send("message_stop", {})
    await response.write_eof()
    return response
