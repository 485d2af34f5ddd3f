"""Anthropic: which `messages.create` calls a Message Batch can serve, the batch request
each becomes, and each result line turned back into what the live call returns or raises."""

from __future__ import annotations

import json
import re
from collections.abc import Hashable, Iterator, Mapping
from typing import Any

import anthropic
import httpx2
from anthropic._constants import RAW_RESPONSE_HEADER
from anthropic._models import construct_type_unchecked
from anthropic._types import NotGiven, Omit
from anthropic.types.beta.messages import BetaMessageBatchResult
from anthropic.types.messages import MessageBatchResult

from .._errors import BatchCanceledError, BatchExpiredError
from ..engine import Outcome, RequestRejectedError
from ..ledger import Tokens, anthropic_tokens
from ._deferral import (
    Deferral,
    TargetCache,
    canonical_json,
    destination,
    fingerprint,
    lines_of,
    spend_of,
)

PROVIDER = "anthropic"
MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
FIRST_PARTY = (anthropic.Anthropic, anthropic.AsyncAnthropic)
_NOT_BODY = frozenset({"extra_headers", "extra_query", "extra_body", "timeout", "betas",
                       "user_profile_id", "workspace_id"})
_HEADER_PARAMS = {"user_profile_id": "anthropic-user-profile-id",
                  "workspace_id": "anthropic-workspace-id"}
STATUS_BY_ERROR_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
    "permission_error": 403, "not_found_error": 404, "conflict_error": 409,
    "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
}
_LINE_OVERHEAD = 64
_REJECTED_REQUEST = re.compile(r"\brequests\.(\d+)\.")
RECOVERY_WINDOW = (-300.0, 3600.0)
"""Seconds around the journal's record of a create call within which a batch may be the
one that call made (clock skew before; retries and a slow upload after)."""


def prepare(client: object, kwargs: Mapping[str, Any], *, beta: bool) -> Deferral | str:
    """The deferral for `client.messages.create(**kwargs)`, or why it must go live."""
    if type(client) not in FIRST_PARTY:
        return f"{type(client).__name__} is not a first-party Anthropic client"
    assert isinstance(client, (anthropic.Anthropic, anthropic.AsyncAnthropic))
    headers = {k.lower(): str(v) for k, v in (kwargs.get("extra_headers") or {}).items()
               if not isinstance(v, (NotGiven, Omit))}
    if RAW_RESPONSE_HEADER.lower() in headers:
        return "with_raw_response / with_streaming_response need the live HTTP response"
    stream = kwargs.get("stream")
    if _given(stream) and stream:
        return "stream=True needs a live connection"
    params = {k: v for k, v in kwargs.items() if k not in _NOT_BODY and _given(v)}
    extra_body = kwargs.get("extra_body")
    if isinstance(extra_body, Mapping):
        params.update(extra_body)
    for name, header in _HEADER_PARAMS.items():
        value = kwargs.get(name)
        if value is not None and _given(value):
            headers[header] = str(value)
    betas = [b.strip() for b in headers.pop("anthropic-beta", "").split(",") if b.strip()]
    given_betas = kwargs.get("betas")
    if _given(given_betas) and given_betas is not None:
        betas.extend(str(b) for b in given_betas)
    size = len(json.dumps(params, default=str)) + _LINE_OVERHEAD
    target = _target(client, beta=beta or bool(betas), betas=tuple(sorted(set(betas))),
                     headers=tuple(sorted(headers.items())))
    return Deferral(target, params, size)


class AnthropicTarget:
    """Message Batches of one client identity (base URL, credentials, headers, betas)."""

    provider = "anthropic"
    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES
    max_units: int | None = None
    tags_batches = False
    """A Message Batch keeps no metadata: a lost batch is found by its time, its size
    and, once ended, its custom ids."""

    def __init__(self, key: Hashable, client: anthropic.Anthropic, *, beta: bool,
                 betas: tuple[str, ...], headers: tuple[tuple[str, str], ...],
                 destination: str) -> None:
        self.key = key
        self.destination = destination
        self._client = client
        self._create_once = client.with_options(max_retries=0)
        """Creates without the SDK's retries, which could repeat a create whose answer was
        lost: the engine retries, after looking for the batch."""
        self._beta = beta
        self._betas = list(betas)
        self._headers = dict(headers)
        self._result_type: Any = BetaMessageBatchResult if beta else MessageBatchResult

    def canonical(self, body: Any) -> str:
        """The request's params as canonical JSON."""
        return canonical_json(body)

    def submit(self, requests: list[tuple[str, Any]], tag: str) -> str:
        """Create the batch; returns its id. A 400 naming one request (``requests.N...``)
        becomes `RequestRejectedError`, so that the other requests still go. (`tag` has
        nowhere to go: a Message Batch has no metadata.)"""
        body = [{"custom_id": custom_id, "params": params} for custom_id, params in requests]
        try:
            return str(self._batches(self._create_once).create(requests=body, **self._extra()).id)
        except anthropic.BadRequestError as error:
            culprit = _REJECTED_REQUEST.search(error.message)
            if culprit is None or int(culprit.group(1)) >= len(requests):
                raise
            raise RequestRejectedError(requests[int(culprit.group(1))][0], error) from error

    def poll(self, batch_id: str) -> bool:
        """Whether the batch has ended."""
        return bool(self._batches().retrieve(batch_id, **self._extra()).processing_status
                    == "ended")

    def results(self, batch_id: str) -> Iterator[tuple[str, Any]]:
        """Each result line, as the provider wrote it: (custom_id, line)."""
        decoder = self._batches().results(batch_id, **self._extra())
        for line in lines_of(decoder.http_response):
            yield str(line["custom_id"]), line

    def outcome(self, line: Any) -> Outcome:
        """What the live call returns or raises for this result line."""
        result = construct_type_unchecked(value=line["result"], type_=self._result_type)
        if result.type == "succeeded":
            return result.message, None
        if result.type == "errored":
            return None, self.status_error(result.error)
        if result.type == "expired":
            return None, BatchExpiredError("the request's batch expired before it was processed")
        return None, BatchCanceledError("the request's batch was canceled before it ran")

    def succeeded(self, line: Any) -> bool:
        """Whether the line holds a message."""
        return bool(line["result"]["type"] == "succeeded")

    def spent(self, line: Any) -> tuple[str, Tokens] | None:
        """The model and tokens a succeeded line was billed for."""
        message = line["result"].get("message") or {}
        return str(message.get("model", "?")), anthropic_tokens(message.get("usage"))

    def recover(self, tag: str, created_at: float, requests: int) -> list[str]:
        """Batches created around `created_at` with `requests` requests, newest first."""
        earliest, latest = created_at + RECOVERY_WINDOW[0], created_at + RECOVERY_WINDOW[1]
        found = []
        for batch in self._batches().list(limit=100, **self._extra()):
            when = batch.created_at.timestamp()
            if when < earliest:
                break
            counts = batch.request_counts
            total = (counts.processing + counts.succeeded + counts.errored + counts.canceled
                     + counts.expired)
            if when <= latest and total == requests:
                found.append(batch.id)
        return found

    def discard(self, batch_id: str) -> None:
        """Nothing to delete: a Message Batch keeps no files (its results expire)."""

    def _batches(self, client: anthropic.Anthropic | None = None) -> Any:
        """The SDK's batches resource (beta or not) of `client` (by default the target's)."""
        client = client or self._client
        return client.beta.messages.batches if self._beta else client.messages.batches

    def _extra(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"extra_headers": self._headers}
        if self._beta:
            extra["betas"] = self._betas
        return extra

    def status_error(self, error: Any) -> anthropic.APIStatusError:
        """The exception the live call raises for this error envelope."""
        body = error.model_dump(mode="json", exclude_unset=True)
        status = STATUS_BY_ERROR_TYPE.get(error.error.type, 500)
        headers = {"request-id": error.request_id} if error.request_id else {}
        url = str(self._client.base_url).rstrip("/") + "/v1/messages"
        response = httpx2.Response(status, headers=headers, json=body,
                                   request=httpx2.Request("POST", url))
        return self._client._make_status_error_from_response(response)


_targets: TargetCache[AnthropicTarget] = TargetCache()


def _target(client: anthropic.Anthropic | anthropic.AsyncAnthropic, *, beta: bool,
            betas: tuple[str, ...], headers: tuple[tuple[str, str], ...]) -> AnthropicTarget:
    credentials = fingerprint(client.api_key, client.auth_token)
    client_headers = tuple(sorted((k, str(v)) for k, v in client._custom_headers.items()))
    key = ("anthropic", beta, str(client.base_url), credentials, client_headers, headers, betas)
    return _targets.get(key, lambda: AnthropicTarget(
        key, _blocking_client(client), beta=beta, betas=betas, headers=headers,
        destination=destination("anthropic", base_url=str(client.base_url),
                                credentials=credentials, beta=beta, betas=list(betas),
                                headers=fingerprint(client_headers, headers))))


def _blocking_client(client: anthropic.Anthropic | anthropic.AsyncAnthropic) -> anthropic.Anthropic:
    """A sync client of the same identity, owned by the engine: the caller may close theirs
    while batches are still in flight. (A custom `http_client` is not carried over.)"""
    return anthropic.Anthropic(
        api_key=client.api_key, auth_token=client.auth_token, base_url=client.base_url,
        default_headers=client._custom_headers, default_query=client._custom_query,
        max_retries=client.max_retries, timeout=client.timeout)


def _given(value: object) -> bool:
    """Whether the caller passed `value` (the SDK's `NOT_GIVEN` / `omit` mean it did not)."""
    return not isinstance(value, (NotGiven, Omit))


def live_spend(value: object) -> tuple[str, Tokens] | None:
    """The model and tokens of what a live call returned (None for a stream or a raw
    response, which carry no usage yet)."""
    return spend_of(value, anthropic_tokens)


def upper_bound(kwargs: Mapping[str, Any]) -> tuple[str, Tokens]:
    """The model of a `messages.create(**kwargs)` call and the most tokens it can be
    billed for: its prompt estimated at four characters a token, all as uncached input
    (caching only lowers it), and `max_tokens` of output."""
    prompt = {k: kwargs.get(k) for k in ("system", "messages", "tools") if _given(kwargs.get(k))}
    size = len(json.dumps(prompt, default=str))
    max_tokens = kwargs.get("max_tokens")
    output = int(max_tokens) if isinstance(max_tokens, int) else 0
    return str(kwargs.get("model", "?")), Tokens(input=(size + 3) // 4, output=output)
