"""OpenAI's Batch API routes: create, retrieve, list and cancel."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path
from typing import Any

from aiohttp import web

from ._errors import ApiError
from ._http import json_response, openai_page, read_json_object
from ._ids import new_id
from ._openai_batch_record import ACTIVE, BatchRecord, BatchStore
from ._openai_errors import invalid, invalid_type, not_found
from ._openai_files import MAX_EXPIRY, MIN_EXPIRY, FileStore
from ._openai_generate import ENDPOINTS
from ._openai_lifecycle import BatchRunner
from ._openai_params import check_metadata, check_params, optional_int, optional_str
from ._state import EmulatorState

BATCH_PARAMS = frozenset({"input_file_id", "endpoint", "completion_window", "metadata",
                          "output_expires_after"})
SDK_ENDPOINTS = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions",
                 "/v1/moderations", "/v1/images/generations", "/v1/images/edits", "/v1/videos")
MAX_CREATE_BYTES = 1024 * 1024


class BatchRoutes:
    """Handlers of ``/v1/batches``."""

    def __init__(self, state: EmulatorState, files: FileStore) -> None:
        self._state = state
        self._files = files
        self._batches = BatchStore()
        self._runner = BatchRunner(state, files)
        self._inputs = state.data_dir / "openai" / "batch-inputs"
        self._inputs.mkdir(mode=0o700, parents=True, exist_ok=True)

    async def create(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/batches``: answers `validating`; the rest happens in the background."""
        body = await read_json_object(request, MAX_CREATE_BYTES)
        check_params(body, BATCH_PARAMS, ("input_file_id", "endpoint", "completion_window"))
        input_file_id = optional_str(body, "input_file_id") or ""
        endpoint = optional_str(body, "endpoint", SDK_ENDPOINTS) or ""
        if endpoint not in ENDPOINTS:
            raise invalid("endpoint", f"'{endpoint}' batches are not supported by this "
                                      "emulator; use one of " + ", ".join(ENDPOINTS) + ".")
        window = optional_str(body, "completion_window", ("24h",)) or "24h"
        metadata = check_metadata(body.get("metadata"))
        lifetime = _output_lifetime(body.get("output_expires_after"))
        problem = self._input_problem(input_file_id)
        if problem is not None and self._state.quirks.openai_missing_input_file == "reject":
            raise ApiError(400, problem["message"], param="input_file_id")
        batch = BatchRecord(id=new_id("batch_", 32), endpoint=endpoint,
                            input_file_id=input_file_id, completion_window=window,
                            created=self._state.clock.now(), latency=self._state.batch_latency,
                            metadata=metadata, output_lifetime=lifetime)
        source = None
        if problem is None:
            source = self._inputs / f"{batch.id}.jsonl"
            await asyncio.to_thread(_snapshot, self._files.require(input_file_id).path, source)
        self._batches.add(batch)
        self._state.spawn(self._runner.run(batch, source, problem))
        return json_response(batch.to_json())

    def _input_problem(self, file_id: str) -> dict[str, Any] | None:
        """Why `file_id` cannot feed a batch (an `errors.data` entry), or None."""
        stored = self._files.get(file_id)
        if stored is None:
            return {"code": "invalid_input_file", "param": "input_file_id", "line": None,
                    "message": f"Invalid 'input_file_id': '{file_id}'. File with ID "
                               f"'{file_id}' not found."}
        if stored.purpose != "batch":
            return {"code": "invalid_input_file", "param": "input_file_id", "line": None,
                    "message": f"Invalid 'input_file_id': '{file_id}'. The file has purpose "
                               f"'{stored.purpose}'; a batch input file must have purpose "
                               "'batch'."}
        return None

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/batches/{batch_id}``."""
        return json_response(self._require(request).to_json())

    async def listing(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/batches?after=&limit=``, newest first."""
        limit = optional_int(_int_query(request, "limit"), "limit", 1, 100) or 20
        return openai_page(self._batches.newest_first(), request.query.get("after"), limit)

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1/batches/{batch_id}/cancel``: `cancelling` now, `cancelled` soon after.

        A batch that has already ended answers with the `openai_cancel_terminal_status`
        quirk (400 by default).
        """
        batch = self._require(request)
        if batch.status in ACTIVE:
            batch.reach("cancelling", self._state.clock.now())
            batch.cancel_requested.set()
            batch.plan.cancel.set()
        elif batch.status != "cancelling":
            status = self._state.quirks.openai_cancel_terminal_status
            if status >= 400:
                raise ApiError(status, f"Cannot cancel a batch with status '{batch.status}'.")
            return json_response(batch.to_json(), status=status)
        return json_response(batch.to_json())

    def _require(self, request: web.Request) -> BatchRecord:
        batch_id = request.match_info["batch_id"]
        batch = self._batches.get(batch_id)
        if batch is None:
            raise not_found("Batch", batch_id)
        return batch


def _output_lifetime(value: object) -> int | None:
    """``output_expires_after.seconds``, checked."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_type("output_expires_after", "an object", value)
    if value.get("anchor") != "created_at":
        raise invalid("output_expires_after.anchor", f"Invalid value: '{value.get('anchor')}'. "
                                                     "Supported values are: 'created_at'.")
    seconds = optional_int(value, "seconds", MIN_EXPIRY, MAX_EXPIRY)
    if seconds is None:
        raise invalid("output_expires_after.seconds", "a number of seconds is required.")
    return seconds


def _int_query(request: web.Request, name: str) -> dict[str, Any]:
    """``{name: int}`` from the query string (empty when absent), for `optional_int`."""
    raw = request.query.get(name)
    if raw is None:
        return {}
    try:
        return {name: int(raw)}
    except ValueError:
        raise invalid(name, f"Expected an integer, but got '{raw}' instead.",
                      code="invalid_type") from None


def _snapshot(source: Path, target: Path) -> None:
    """A private copy of a batch's input (a hard link when possible), so that deleting
    the uploaded file does not pull it from under a running batch."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
