"""Closing a scope's batches when every call is in: for tests that count batches."""

from __future__ import annotations

import deferrable
from deferrable._scope import _tally
from tests.emulator_helpers import until


async def flush_when_deferred(count: int, timeout: float = 30.0) -> int:
    """Once `count` calls have been deferred in the current scope (each is then in the
    engine's hands), flush them; returns the batches started. Tests that count batches close
    their last one so, not by a short `max_wait` that a slow run can outlast."""
    tally = _tally.get()
    assert tally is not None, "flush_when_deferred() belongs inside a deferrable scope"

    async def all_deferred() -> bool:
        return tally.deferred >= count

    await until(all_deferred, timeout)
    return await deferrable.aflush()
