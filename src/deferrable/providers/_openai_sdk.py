"""Every private name of the `openai` SDK that deferrable relies on, in one place.

`tests/test_sdk_private_names.py` names each, so an SDK release that moves one fails there
first; CI runs the suite against the lowest supported SDK version too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing deferrable does not import the SDK
    import openai

SEND_MODULE = "openai._base_client"
SEND_SYNC = "SyncAPIClient._send_request"
SEND_ASYNC = "AsyncAPIClient._send_request"
"""Sends one built request: ``(request, *, stream, **httpx_args) -> httpx2.Response``.
Every resource method, helper and raw or streaming wrapper of the SDK goes through it, and
an `OpenAIError` or any exception that is not httpx's own propagates from it as it is."""
NAMES = (
    f"{SEND_MODULE}.{SEND_SYNC}", f"{SEND_MODULE}.{SEND_ASYNC}",
    "openai.OpenAI._api_key_provider", "openai.OpenAI._provider",
)
"""The private names used here (a test checks each exists)."""


def retries_taken(request: Any) -> int:
    """How many times the SDK has sent this request before (it numbers its attempts in
    the ``x-stainless-retry-count`` header)."""
    try:
        return int(request.headers.get("x-stainless-retry-count", "0"))
    except ValueError:
        return 0


def refreshed_credential(client: openai.OpenAI | openai.AsyncOpenAI) -> Any:
    """The source of a client's refreshed credential (a key provider, a workload
    identity), or None for a fixed key."""
    provider = client._api_key_provider
    return provider if provider is not None else client.workload_identity


def has_provider(client: openai.OpenAI | openai.AsyncOpenAI) -> bool:
    """Whether the client was configured with a provider other than OpenAI."""
    return client._provider is not None
