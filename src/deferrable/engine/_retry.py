"""What a failed batch create call says: whether the provider answered it (so no batch was
made), and whether and when it may be made again.

Batch create calls are made without the SDK's own retries, which would repeat a call
whose answer was lost although the batch exists (paying twice). The engine's `Lifecycle`
retries instead: after an answer that says "try again" (the SDK's own rule: 408, 409,
429, 5xx, or ``x-should-retry``), and after no answer only once the batch was looked for
and not found.
"""

from __future__ import annotations

from typing import Any

from ._lifecycle import CreateFailed

_MAX_RETRY_AFTER = 60.0


def create_failure(error: BaseException) -> CreateFailed:
    """The `CreateFailed` event of a create call that raised `error`."""
    status = getattr(error, "status_code", None)
    if status is None:
        return CreateFailed(answered=False)
    headers: Any = getattr(getattr(error, "response", None), "headers", None) or {}
    should_retry = headers.get("x-should-retry")
    retryable = should_retry == "true" or (
        should_retry != "false" and (status in (408, 409, 429) or status >= 500))
    return CreateFailed(answered=True, retryable=retryable, retry_after=retry_after(headers))


def retry_after(headers: Any) -> float | None:
    """The server's requested delay (``retry-after-ms`` or ``retry-after`` seconds)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue
        if 0 <= seconds <= _MAX_RETRY_AFTER:
            return seconds
    return None
