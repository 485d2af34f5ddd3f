"""``/v1/responses``: live answers, kept for retrieval, and background responses.

A background response (``background: true``) is checked at once and answered ``queued``;
it is ``in_progress`` after half of `background_latency` (plus `flex_latency` for flex),
and when all of it has passed on the emulator's clock it is answered through `serve()` and
ends ``completed`` (or ``incomplete``), or ``failed`` on an ``{{error:...}}`` marker or
the `error_rate` share. Until then ``POST /v1/responses/{id}/cancel`` makes it
``cancelled``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ._errors import ApiError
from ._http import json_response, read_json_object
from ._ids import new_id
from ._openai_flex import is_flex
from ._openai_generate import RESPONSES, admit, response_shell, serve
from ._openai_live import MAX_LIVE_BYTES, answer, live_key, serve_live
from ._state import EmulatorState

KEPT_LIVE = 10_000
"""Live responses kept for ``GET /v1/responses/{id}``, the newest; background ones stay."""
RUNNING = ("queued", "in_progress")


@dataclass
class StoredResponse:
    """A response as the emulator keeps it: its current ``Response`` JSON. Replaced, never
    mutated in place, and only on the server's loop."""

    body: dict[str, Any]
    created: float = 0.0
    cancel: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def status(self) -> str:
        """The response's ``status``."""
        return str(self.body["status"])

    def update(self, **fields: Any) -> None:
        """Replace some fields of the body."""
        self.body = {**self.body, **fields}


class ResponseRoutes:
    """Handlers of ``/v1/responses`` and the responses it keeps."""

    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._live: OrderedDict[str, StoredResponse] = OrderedDict()
        self._background: dict[str, StoredResponse] = {}
        self._submitted: Counter[str] = Counter()

    async def create(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/responses``: answered live, or started in the background."""
        body = await read_json_object(request, MAX_LIVE_BYTES)
        if body.get("background") is True:
            return await self._start(request, body)
        served = await serve_live(request, self._state, RESPONSES, body)
        if served.body.get("store") is not False:
            self._live[served.body["id"]] = StoredResponse(served.body)
            while len(self._live) > KEPT_LIVE:
                self._live.popitem(last=False)
        return await answer(request, RESPONSES, served, body)

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/responses/{response_id}``: the response as it stands."""
        if request.query.get("stream", "false").lower() not in ("false", "0"):
            raise ApiError(400, "Streaming a stored response is not supported by this "
                                "emulator.", param="stream")
        return json_response(self._require(request).body)

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/responses/{response_id}/cancel``: a queued or in-progress background
        response ends ``cancelled``; cancelling it again answers it as it is. A response
        that ended otherwise answers with the `openai_response_cancel_terminal_status`
        quirk (400 by default), one made without ``background`` with a 400."""
        stored = self._require(request)
        if not stored.body["background"]:
            raise ApiError(400, "Only responses created with the `background` parameter set "
                                "to `true` can be cancelled.")
        if stored.status in RUNNING:
            stored.cancel.set()
            stored.update(status="cancelled")
        elif stored.status != "cancelled":
            status = self._state.quirks.openai_response_cancel_terminal_status
            if status >= 400:
                raise ApiError(status, f"Cannot cancel a response with status "
                                       f"'{stored.status}'.")
            return json_response(stored.body, status=status)
        return json_response(stored.body)

    def _require(self, request: web.Request) -> StoredResponse:
        response_id = request.match_info["response_id"]
        stored = self._background.get(response_id) or self._live.get(response_id)
        if stored is None:
            raise ApiError(404, f"Response with id '{response_id}' not found.")
        return stored

    # -- background --------------------------------------------------------------------

    async def _start(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        """Check `body` as a live request (flex's 429 included), keep it ``queued``, and
        run it in the background."""
        state = self._state
        await asyncio.to_thread(admit, state, RESPONSES, body,
                                flex_key=live_key(request, body))
        now = state.clock.now()
        stored = StoredResponse(response_shell(body, new_id("resp_", 48), now), created=now)
        self._background[stored.body["id"]] = stored
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        self._submitted[digest] += 1
        fail_key = f"background:{digest}:{self._submitted[digest]}"
        answered = json_response(stored.body)
        state.spawn(self._run(stored, body, fail_key))
        return answered

    async def _run(self, stored: StoredResponse, body: Mapping[str, Any], fail_key: str) -> None:
        """Take `stored` from ``queued`` to its end, unless it is cancelled on the way."""
        state = self._state
        latency = state.background_latency + (state.flex_latency if is_flex(RESPONSES, body)
                                               else 0.0)
        if await state.clock.sleep_until_or(stored.created + latency / 2, stored.cancel):
            return
        stored.update(status="in_progress")
        if await state.clock.sleep_until_or(stored.created + latency, stored.cancel):
            return
        try:
            served = await asyncio.to_thread(serve, state, RESPONSES, body, mode="live",
                                             fail_key=fail_key)
        except ApiError as error:
            if not stored.cancel.is_set():
                stored.update(status="failed", error=_response_error(error))
            return
        if not stored.cancel.is_set():  # a cancel during generation wins; tokens are billed
            stored.update(**{key: value for key, value in served.body.items()
                             if key not in ("id", "created_at")})


def _response_error(error: ApiError) -> dict[str, str]:
    """A failed response's ``error``: a `ResponseError` code for the status, the message."""
    if error.status == 429:
        code = "rate_limit_exceeded"
    elif error.status >= 500:
        code = "server_error"
    else:
        code = "invalid_prompt"
    return {"code": code, "message": error.message}
