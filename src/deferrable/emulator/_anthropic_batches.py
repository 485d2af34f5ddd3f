"""Anthropic Message Batches: the store, the lifecycle and the results file.

Requests are spooled to disk as the batch is created; when the batch ends, one pass
over that file writes the results JSONL, which downloads stream from disk. Memory stays
flat whatever the batch size.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from . import _anthropic_messages as messages
from ._anthropic_threads import ThreadStore
from ._errors import ANTHROPIC_ERROR_TYPES, ApiError
from ._ids import anthropic_request_id, new_id
from ._state import EmulatorState

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
DAY = 86_400.0
ARCHIVE_AFTER = 29 * DAY
OUTCOMES = ("succeeded", "errored", "canceled", "expired")

Ending = Literal["normal", "canceled", "expired"]


@dataclass
class MessageBatch:
    """One batch as the emulator keeps it; `to_json()` is the wire `MessageBatch`."""

    id: str
    workspace: str | None
    version: str
    total: int
    created_at: float
    requests_path: Path
    results_path: Path
    status: Literal["in_progress", "canceling", "ended"] = "in_progress"
    ended_at: float | None = None
    cancel_initiated_at: float | None = None
    counts: Counter[str] = field(default_factory=Counter)
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def expires_at(self) -> float:
        """24 hours after creation."""
        return self.created_at + DAY

    def archived(self, now: float) -> bool:
        """Whether results are no longer available (29 days after creation)."""
        return now >= self.created_at + ARCHIVE_AFTER

    def to_json(self, origin: str, now: float) -> dict[str, Any]:
        """The wire object, with `results_url` on the emulator's own address."""
        ended = self.status == "ended"
        counts = {name: self.counts[name] if ended else 0 for name in OUTCOMES}
        return {
            "id": self.id,
            "type": "message_batch",
            "processing_status": self.status,
            "request_counts": {"processing": 0 if ended else self.total, **counts},
            "created_at": rfc3339(self.created_at),
            "expires_at": rfc3339(self.expires_at),
            "ended_at": rfc3339(self.ended_at),
            "cancel_initiated_at": rfc3339(self.cancel_initiated_at),
            "archived_at": rfc3339(self.created_at + ARCHIVE_AFTER) if self.archived(now) else None,
            "results_url": f"{origin}/v1/messages/batches/{self.id}/results" if ended else None,
        }


def rfc3339(moment: float | None) -> str | None:
    """RFC 3339 with microseconds and a trailing Z, as the service writes timestamps."""
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class BatchStore:
    """Every batch of one emulator, newest last, with its background processing."""

    def __init__(self, state: EmulatorState, threads: ThreadStore) -> None:
        self._state = state
        self._threads = threads
        self._batches: dict[str, MessageBatch] = {}
        self._lock = threading.Lock()
        self._dir = state.data_dir / "anthropic-batches"
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)

    # -- create ------------------------------------------------------------------------

    def create(self, body: dict[str, Any], version: str, workspace: str | None) -> MessageBatch:
        """Check and spool a create body; the batch starts processing in the background."""
        requests = body.get("requests")
        if set(body) - {"requests"}:
            extra = sorted(set(body) - {"requests"})[0]
            raise ApiError(400, f"{extra}: Extra inputs are not permitted")
        if not isinstance(requests, list) or not requests:
            raise ApiError(400, "requests: List should have at least 1 item after validation")
        limit = self._state.limits.anthropic_batch_requests
        if len(requests) > limit:
            raise ApiError(400, f"requests: List should have at most {limit} items after "
                                f"validation, not {len(requests)}")
        self._check_requests(requests, version)
        batch_id = new_id("msgbatch_01", 22)
        requests_path = self._dir / f"{batch_id}.requests.jsonl"
        with requests_path.open("w", encoding="utf-8") as spool:
            for request in requests:
                spool.write(json.dumps([request["custom_id"], request["params"]],
                                       separators=(",", ":")))
                spool.write("\n")
        batch = MessageBatch(id=batch_id, workspace=workspace, version=version,
                             total=len(requests), created_at=self._state.clock.now(),
                             requests_path=requests_path,
                             results_path=self._dir / f"{batch_id}.results.jsonl")
        with self._lock:
            self._batches[batch_id] = batch
        self._state.stats.count_batch("anthropic", batch.total)
        self._state.spawn(self._run(batch))
        return batch

    def _check_requests(self, requests: list[Any], version: str) -> None:
        seen: set[str] = set()
        status = self._state.quirks.anthropic_custom_id_status
        reject_params = self._state.quirks.anthropic_batch_param_errors == "reject"
        for index, request in enumerate(requests):
            if not isinstance(request, dict) or not isinstance(request.get("params"), dict):
                raise ApiError(400, f"requests.{index}.params: Field required")
            custom_id = request.get("custom_id")
            if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
                raise ApiError(status, f"requests.{index}.custom_id: String should match "
                                       f"pattern '{CUSTOM_ID.pattern}'")
            if custom_id in seen:
                raise ApiError(status, f"requests.{index}.custom_id: Duplicate custom_id "
                                       f"'{custom_id}'; custom_id must be unique within a batch")
            seen.add(custom_id)
            if reject_params:
                try:
                    messages.validate(request["params"], version, in_batch=True)
                except ApiError as error:
                    raise ApiError(400, f"requests.{index}.params.{error.message}") from None

    # -- lookups -------------------------------------------------------------------------

    def get(self, batch_id: str, workspace: str | None) -> MessageBatch:
        """The batch, or the service's 404 (batches are scoped to a workspace)."""
        with self._lock:
            batch = self._batches.get(batch_id)
        if batch is None or batch.workspace != workspace:
            raise ApiError(404, f"No message batch found with id '{batch_id}'")
        return batch

    def page(self, workspace: str | None, limit: int, after_id: str | None,
             before_id: str | None) -> tuple[list[MessageBatch], bool]:
        """One page of batches, newest first, with whether more remain."""
        with self._lock:
            newest_first = [b for b in reversed(self._batches.values()) if b.workspace == workspace]
        ids = [b.id for b in newest_first]
        if after_id is not None:
            start = ids.index(after_id) + 1 if after_id in ids else len(ids)
            chosen = newest_first[start:start + limit]
            return chosen, start + limit < len(ids)
        if before_id is not None:
            end = ids.index(before_id) if before_id in ids else 0
            start = max(end - limit, 0)
            return newest_first[start:end], start > 0
        return newest_first[:limit], limit < len(ids)

    def cancel(self, batch: MessageBatch) -> None:
        """Begin canceling; requests still in flight may finish (the cancel race)."""
        if batch.status == "ended":
            raise ApiError(self._state.quirks.anthropic_bad_state_status,
                           f"Batch '{batch.id}' has already ended and cannot be canceled.")
        if batch.status == "in_progress":
            batch.status = "canceling"
            batch.cancel_initiated_at = self._state.clock.now()
            batch.cancel_requested.set()

    def delete(self, batch: MessageBatch) -> None:
        """Remove an ended batch and its files."""
        if batch.status != "ended":
            raise ApiError(self._state.quirks.anthropic_bad_state_status,
                           f"Batch '{batch.id}' is still processing; cancel it before deleting.")
        with self._lock:
            self._batches.pop(batch.id, None)
        batch.requests_path.unlink(missing_ok=True)
        batch.results_path.unlink(missing_ok=True)

    # -- lifecycle -----------------------------------------------------------------------

    async def _run(self, batch: MessageBatch) -> None:
        clock = self._state.clock
        end = min(batch.created_at + self._state.batch_latency, batch.expires_at)
        sleeper = asyncio.ensure_future(clock.sleep_until(end))
        canceled = asyncio.ensure_future(batch.cancel_requested.wait())
        try:
            await asyncio.wait({sleeper, canceled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            canceled.cancel()
        ending: Ending = "normal"
        if batch.cancel_requested.is_set():
            ending = "canceled"
        elif self._state.faults.expire_batches or clock.now() >= batch.expires_at:
            ending = "expired"
        await asyncio.to_thread(self._finish, batch, ending)
        batch.ended_at = clock.now()
        batch.status = "ended"

    def _finish(self, batch: MessageBatch, ending: Ending) -> None:
        """Write the results file: one line per request, in an order unlike the input's."""
        temporary = batch.results_path.with_suffix(".partial")
        with temporary.open("w", encoding="utf-8") as out:
            for parity in (1, 0):
                for index, (custom_id, params) in enumerate(_spooled(batch.requests_path)):
                    if index % 2 == parity:
                        result = self._result(batch, custom_id, params, ending)
                        batch.counts[result["type"]] += 1
                        out.write(json.dumps({"custom_id": custom_id, "result": result},
                                             separators=(",", ":")))
                        out.write("\n")
        temporary.replace(batch.results_path)

    def _result(self, batch: MessageBatch, custom_id: str, params: dict[str, Any],
                ending: Ending) -> dict[str, Any]:
        state = self._state
        if ending == "canceled" and not state.in_share(
                custom_id, state.faults.cancel_completed_fraction, batch.id + ":cancel"):
            return {"type": "canceled"}
        if ending == "expired" and not state.in_share(
                custom_id, state.faults.expire_completed_fraction, batch.id + ":expire"):
            return {"type": "expired"}
        try:
            messages.validate(params, batch.version, in_batch=True)
            failure = messages.injected_failure(state, params, f"{batch.id}:{custom_id}")
            if failure is not None:
                raise failure
            message = self._threads.answer(
                params, lambda full: messages.answer(state, full, mode="batch"))
            return {"type": "succeeded", "message": message}
        except ApiError as error:
            kind = error.kind or ANTHROPIC_ERROR_TYPES.get(error.status, "api_error")
            return {"type": "errored", "error": {
                "type": "error", "error": {"type": kind, "message": error.message},
                "request_id": anthropic_request_id()}}


def _spooled(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    with path.open(encoding="utf-8") as spool:
        for line in spool:
            custom_id, params = json.loads(line)
            yield custom_id, params
