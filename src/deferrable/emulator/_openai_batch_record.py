"""One OpenAI batch's state and its `Batch` JSON; the store that keeps them all."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from ._openai_batch_lines import Plan

BATCH_WINDOW = 86_400
"""A batch expires 24 hours after its creation."""
ACTIVE = ("validating", "in_progress", "finalizing")


@dataclass
class BatchRecord:
    """A batch as the emulator tracks it. Mutated on the server's loop only."""

    id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    created: float
    latency: float
    metadata: dict[str, str] | None
    output_lifetime: int | None
    """``output_expires_after.seconds``, when given."""
    status: str = "validating"
    model: str | None = None
    errors: list[dict[str, Any]] | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    times: dict[str, int] = field(default_factory=dict)
    """``in_progress_at``, ``finalizing_at``, ... once reached."""
    total: int = 0
    completed: int = 0
    failed: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0
    cancel_requested: asyncio.Event = field(default_factory=asyncio.Event)
    plan: Plan = field(default_factory=lambda: Plan("completed"))

    @property
    def created_at(self) -> int:
        """Creation time in whole seconds."""
        return int(self.created)

    @property
    def expires_at(self) -> int:
        """When the 24-hour window closes."""
        return self.created_at + BATCH_WINDOW

    def reach(self, status: str, now: float) -> None:
        """Enter `status`, stamping its ``<status>_at`` time."""
        self.status = status
        self.times[f"{status}_at"] = int(now)

    def to_json(self) -> dict[str, Any]:
        """The `Batch` object."""
        return {
            "id": self.id, "object": "batch", "endpoint": self.endpoint, "model": self.model,
            "errors": None if self.errors is None else {"object": "list", "data": self.errors},
            "input_file_id": self.input_file_id, "completion_window": self.completion_window,
            "status": self.status, "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id, "created_at": self.created_at,
            "in_progress_at": self.times.get("in_progress_at"), "expires_at": self.expires_at,
            **{f"{name}_at": self.times.get(f"{name}_at")
               for name in ("finalizing", "completed", "failed", "expired", "cancelling",
                            "cancelled")},
            "request_counts": {"total": self.total, "completed": self.completed,
                               "failed": self.failed},
            "usage": {"input_tokens": self.input_tokens,
                      "input_tokens_details": {"cached_tokens": self.cached_tokens},
                      "output_tokens": self.output_tokens,
                      "output_tokens_details": {"reasoning_tokens": 0},
                      "total_tokens": self.input_tokens + self.output_tokens},
            "metadata": self.metadata}


class BatchStore:
    """Every batch of one emulator, in creation order."""

    def __init__(self) -> None:
        self._batches: dict[str, BatchRecord] = {}

    def add(self, batch: BatchRecord) -> BatchRecord:
        """Keep `batch`."""
        self._batches[batch.id] = batch
        return batch

    def get(self, batch_id: str) -> BatchRecord | None:
        """The batch, if known."""
        return self._batches.get(batch_id)

    def newest_first(self) -> list[BatchRecord]:
        """All batches, the newest first."""
        return list(self._batches.values())[::-1]
