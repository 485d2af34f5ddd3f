"""An OpenAI batch's life in the background: validating -> in_progress -> finalizing ->
completed, or failed, expired, cancelled. Timed by the emulator's clock, so that
`Emulator.advance()` moves it; the per-line work runs in a worker thread."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from ._openai_batch_lines import Plan, process_lines, validate_input
from ._openai_batch_record import BatchRecord
from ._openai_files import BATCH_FILE_LIFETIME, FileStore, StoredFile
from ._state import EmulatorState


class BatchRunner:
    """Drives batches through their states; one per emulator."""

    def __init__(self, state: EmulatorState, files: FileStore) -> None:
        self._state = state
        self._files = files

    async def run(self, batch: BatchRecord, source: Path | None,
                  problem: dict[str, Any] | None) -> None:
        """Take `batch` from `validating` to its end; `source` is its private input copy,
        `problem` an input-file error that fails it at once."""
        try:
            if problem is not None or source is None:
                self._fail(batch, [problem or {}])
            else:
                await self._run(batch, source)
        finally:
            if source is not None:
                _discard(source)

    async def _run(self, batch: BatchRecord, source: Path) -> None:
        state = self._state
        found = await asyncio.to_thread(validate_input, source, batch.endpoint, state.limits)
        if found.errors:
            self._fail(batch, found.errors)
            return
        batch.model, batch.total = found.model, found.count
        state.stats.count_batch("openai", found.count)
        faults = state.faults
        if batch.cancel_requested.is_set():
            plan = Plan("cancelled", completed_share=0.0)
        else:
            batch.reach("in_progress", state.clock.now())
            cancelled = await self._wait(batch)
            if cancelled:
                plan = Plan("cancelled", completed_share=faults.cancel_completed_fraction)
            elif state.clock.now() >= batch.expires_at or faults.expire_batches:
                plan = Plan("expired", completed_share=faults.expire_completed_fraction)
            else:
                batch.reach("finalizing", state.clock.now())
                plan = Plan("completed", cancel_share=faults.cancel_completed_fraction)
        batch.plan = plan
        await self._finish(batch, source, plan)

    async def _wait(self, batch: BatchRecord) -> bool:
        """Sleep until the batch's latency ends (or its window closes); True if cancelled."""
        deadline = min(batch.created + batch.latency, float(batch.expires_at))
        sleeper = asyncio.ensure_future(self._state.clock.sleep_until(deadline))
        canceller = asyncio.ensure_future(batch.cancel_requested.wait())
        try:
            await asyncio.wait({sleeper, canceller}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, canceller):
                task.cancel()
            await asyncio.gather(sleeper, canceller, return_exceptions=True)
        return batch.cancel_requested.is_set()

    async def _finish(self, batch: BatchRecord, source: Path, plan: Plan) -> None:
        """Answer the lines, store the output and error files, and end the batch."""
        state = self._state
        output_id, output_path = self._files.new_id()
        error_id, error_path = self._files.new_id()
        try:
            outcome = await asyncio.to_thread(process_lines, state, batch.id, batch.endpoint,
                                              source, output_path, error_path, plan)
        except BaseException:
            plan.abandoned.set()
            output_path.unlink(missing_ok=True)
            error_path.unlink(missing_ok=True)
            raise
        now = state.clock.now()
        quirks = state.quirks
        batch.output_file_id = self._register(batch, output_id, output_path, outcome.succeeded,
                                              quirks.openai_output_filename, now)
        batch.error_file_id = self._register(batch, error_id, error_path,
                                             outcome.errored + outcome.unrun,
                                             quirks.openai_error_filename, now)
        batch.completed = outcome.succeeded
        batch.failed = outcome.errored + (outcome.unrun if quirks.openai_unrun_count_as_failed
                                          else 0)
        batch.input_tokens = outcome.input_tokens
        batch.cached_tokens = outcome.cached_tokens
        batch.output_tokens = outcome.output_tokens
        batch.reach("cancelled" if batch.cancel_requested.is_set() else plan.ending, now)

    def _register(self, batch: BatchRecord, file_id: str, path: Path, lines: int,
                  pattern: str, now: float) -> str | None:
        """Keep a written result file as a `batch_output` file; None (and no file) if empty."""
        if lines == 0:
            path.unlink(missing_ok=True)
            return None
        created = int(now)
        stored = StoredFile(id=file_id, filename=pattern.format(batch_id=batch.id),
                            purpose="batch_output", created_at=created,
                            bytes=path.stat().st_size,
                            expires_at=created + (batch.output_lifetime or BATCH_FILE_LIFETIME),
                            path=path)
        return self._files.add(stored).id

    def _fail(self, batch: BatchRecord, errors: list[dict[str, Any]]) -> None:
        batch.errors = errors
        batch.reach("failed", self._state.clock.now())


def _discard(path: Path) -> None:
    """Remove a private scratch file (a quick, local unlink)."""
    path.unlink(missing_ok=True)
