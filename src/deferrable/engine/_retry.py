"""When to create a batch again after its create call failed with an answer.

Batch create calls are made without the SDK's own retries, which would repeat a call
whose answer was lost although the batch exists (paying twice). The engine retries
itself: after an answer that says "try again" (the SDK's own rule: 408, 409, 429, 5xx, or
``x-should-retry``), at once; after no answer at all, only once the batch was looked for
and not found.
"""

from __future__ import annotations

import random
from typing import Any

CREATE_ATTEMPTS = 5
_MAX_DELAY = 30.0


def answered(error: BaseException) -> bool:
    """Whether the provider answered the failed call (so no batch was created)."""
    return getattr(error, "status_code", None) is not None


def retry_delay(error: BaseException, attempt: int) -> float | None:
    """Seconds to wait before creating again after `error` (an answered failure) on
    attempt `attempt` (1-based); None when the answer says not to retry."""
    status = getattr(error, "status_code", None)
    if status is None:
        return None
    headers: Any = getattr(getattr(error, "response", None), "headers", None) or {}
    should_retry = headers.get("x-should-retry")
    if should_retry == "false" or (should_retry != "true" and status not in (408, 409, 429)
                                   and status < 500):
        return None
    return _retry_after(headers) or backoff(attempt)


def _retry_after(headers: Any) -> float | None:
    """The server's requested delay (``retry-after-ms`` or ``retry-after`` seconds)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if 0 <= seconds <= 60:
            return seconds
    return None


def backoff(attempt: int) -> float:
    """Seconds to wait before attempt `attempt` + 1: doubling from 0.5 s, capped, jittered."""
    return min(_MAX_DELAY, 0.5 * 2.0 ** (attempt - 1)) * random.uniform(0.75, 1.0)
