"""Errors as each provider puts them on the wire, and the in-prompt error markers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

ANTHROPIC_ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
ANTHROPIC_STATUS_BY_TYPE = {kind: status for status, kind in ANTHROPIC_ERROR_TYPES.items()}

OPENAI_ERROR_KINDS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", None),
    409: ("invalid_request_error", None),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}

_MARKER = re.compile(r"\{\{error:([a-z_]+|\d{3})\}\}")


@dataclass
class ApiError(Exception):
    """An error answer; the HTTP layer renders it in the calling provider's envelope."""

    status: int
    message: str
    kind: str | None = None
    param: str | None = None
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"


def marked_error(text: str) -> ApiError | None:
    """The error that an ``{{error:...}}`` marker in a request's text asks for, if any."""
    match = _MARKER.search(text)
    if match is None:
        return None
    token = match.group(1)
    if token.isdigit():
        status = int(token)
        kind = None
    else:
        kind = token
        status = ANTHROPIC_STATUS_BY_TYPE.get(token, 400)
    return injected_error(status, kind)


def injected_error(status: int, kind: str | None = None) -> ApiError:
    """An error the emulator injects on purpose, with a 1 ms `retry-after-ms` wherever the
    SDKs retry (408, 409, 429, 5xx) so that retrying tests stay fast."""
    retried = status in (408, 409, 429) or status >= 500
    headers = {"retry-after-ms": "1", "retry-after": "0"} if retried else {}
    return ApiError(status, f"Injected error ({status}) requested by the emulator's faults.",
                    kind=kind, headers=headers)


def anthropic_error_body(error: ApiError, request_id: str) -> dict[str, Any]:
    """Anthropic's envelope: ``{"type": "error", "error": {...}, "request_id": ...}``."""
    kind = error.kind or ANTHROPIC_ERROR_TYPES.get(
        error.status, "api_error" if error.status >= 500 else "invalid_request_error")
    body: dict[str, Any] = {"type": kind, "message": error.message}
    if error.code is not None:
        body["details"] = {"error_code": error.code}
    return {"type": "error", "error": body, "request_id": request_id}


def openai_error_body(error: ApiError) -> dict[str, Any]:
    """OpenAI's envelope: ``{"error": {"message", "type", "param", "code"}}``."""
    default_kind, default_code = OPENAI_ERROR_KINDS.get(
        error.status, ("server_error" if error.status >= 500 else "invalid_request_error", None))
    kind = error.kind if error.kind and error.kind in _OPENAI_KINDS else default_kind
    return {"error": {"message": error.message, "type": kind, "param": error.param,
                      "code": error.code if error.code is not None else default_code}}


_OPENAI_KINDS = {kind for kind, _ in OPENAI_ERROR_KINDS.values()} | {"insufficient_quota", "tokens"}
