"""Every private name of the `anthropic` SDK that deferrable relies on, in one place.

`tests/test_sdk_private_names.py` names each, so an SDK release that moves one fails there
first; CI runs the suite against the lowest supported SDK version too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2

SEND_MODULE = "anthropic._base_client"
SEND_SYNC = "SyncAPIClient._attempt_request"
SEND_ASYNC = "AsyncAPIClient._attempt_request"
"""One HTTP attempt of any request of any client: ``(options, *, stream, retries_taken,
call) -> (httpx2.Response, options)``. Every resource method, helper, raw or streaming
wrapper and middleware chain of the SDK goes through it."""
NAMES = (
    f"{SEND_MODULE}.{SEND_SYNC}", f"{SEND_MODULE}.{SEND_ASYNC}",
    f"{SEND_MODULE}.SyncAPIClient._prepare_options", f"{SEND_MODULE}.SyncAPIClient._build_request",
    f"{SEND_MODULE}.SyncAPIClient._prepare_request",
    f"{SEND_MODULE}.AsyncAPIClient._prepare_options",
    f"{SEND_MODULE}.AsyncAPIClient._prepare_request",
    f"{SEND_MODULE}.SyncAPIClient._should_retry_exception",
)
"""The private names used here (a test checks each exists)."""


def attempt_arguments(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Any, bool, int, Any]:
    """(options, stream, retries_taken, call) of an `_attempt_request` call."""
    options = args[0] if args else kwargs["options"]
    return (options, bool(kwargs.get("stream", False)), int(kwargs.get("retries_taken", 0)),
            kwargs.get("call"))


def targets_messages(options: Any) -> bool:
    """Whether an attempt's options are a ``POST /v1/messages`` (beta or not)."""
    return bool(options.url == "/v1/messages" and options.method.lower() == "post")


def build_request(client: Any, options: Any, retries_taken: int, call: Any) -> httpx2.Request:
    """The request an attempt would send, built as `_attempt_request` builds it."""
    options = client._prepare_options(options.model_copy())
    request: httpx2.Request = client._build_request(options, retries_taken=retries_taken)
    client._prepare_request(request)
    if call is not None:
        call.sending(request, options)
    return request


async def build_request_async(client: Any, options: Any, retries_taken: int,
                              call: Any) -> httpx2.Request:
    """`build_request` for an async client."""
    options = await client._prepare_options(options.model_copy())
    request: httpx2.Request = client._build_request(options, retries_taken=retries_taken)
    await client._prepare_request(request)
    if call is not None:
        call.sending(request, options)
    return request


def sdk_would_retry(client: Any, error: BaseException) -> bool:
    """Whether the SDK's retry loop would send again after `error` (it walks the chain)."""
    return bool(client._should_retry_exception(error)[0])
