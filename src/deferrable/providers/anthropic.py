"""Anthropic: which ``POST /v1/messages`` requests a Message Batch can serve, the batch
request each becomes, and each result line turned back into the HTTP answer the live call
would have had (the SDK builds the return value or raises from it)."""

from __future__ import annotations

import json
import re
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import Any

import anthropic
import httpx2

from .._errors import BatchCanceledError, BatchExpiredError
from .._options import Options
from ..engine import TRANSIENT_STATUSES, BatchStatus, Outcome, RequestRejectedError
from ..ledger import Tokens, anthropic_tokens
from ._deferral import (
    Answer,
    Deferral,
    Live,
    SharedPool,
    Spent,
    TargetCache,
    body_of,
    canonical_json,
    destination,
    json_bytes,
    lines_of,
    query_of,
    serving_headers,
    spend_of,
)
from ._replay import anthropic_events

PROVIDER = "anthropic"
REQUEST_ID_HEADER = "request-id"
MAX_REQUESTS = 100_000
MAX_BYTES = 256 * 1024 * 1024
FIRST_PARTY = (anthropic.Anthropic, anthropic.AsyncAnthropic)
STATUS_BY_ERROR_TYPE = {
    "invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
    "permission_error": 403, "not_found_error": 404, "conflict_error": 409,
    "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
    "timeout_error": 504, "overloaded_error": 529,
}
_LINE_OVERHEAD = len('{"custom_id":"","params":},') + 48
"""A batch request's bytes beyond its params: the framing and a custom id (40 hex digits,
a dash and an occurrence number)."""
_REJECTED_REQUEST = re.compile(r"\brequests\.(\d+)\.")
RECOVERY_WINDOW = (-300.0, 3600.0)
"""Seconds around the journal's record of a create call within which a batch may be the
one that call made (clock skew before; retries and a slow upload after)."""


def examine(client: object, request: httpx2.Request, options: Options) -> Deferral | Live:
    """Whether the Messages request `request` of `client` goes into a batch (and how) or
    live (and why)."""
    if type(client) not in FIRST_PARTY:
        return Live(f"{type(client).__name__} is not a first-party Anthropic client")
    assert isinstance(client, (anthropic.Anthropic, anthropic.AsyncAnthropic))
    params = body_of(request)
    if params is None:
        return Live("the request body is not a JSON object")
    stream = bool(params.pop("stream", False))
    if stream and not options.defer_streams:
        return Live("a streaming call, and defer_streams is off", params)
    if params.get("max_tokens") == 0:
        return Live("max_tokens=0 (cache pre-warming) is served live only", params)
    if params.get("speed") == "fast":
        return Live("speed='fast' (fast mode) is served live only", params)
    credentials, headers = serving_headers(request.headers)
    beta_header = headers.pop("anthropic-beta", "")
    betas = tuple(sorted({b.strip() for b in beta_header.split(",") if b.strip()})) if beta_header else ()
    target = _target(client, credentials, headers, betas, request.url.query)
    return Deferral(target, params, len(request.content) + _LINE_OVERHEAD,
                    replay=anthropic_events if stream else None)


class AnthropicTarget:
    """Message Batches of one destination: base URL, credentials, the headers that change
    how requests are served (API version, workspace, custom ones), betas and query."""

    provider = "anthropic"
    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES
    max_units: int | None = None
    offers_flex = False
    tags_batches = False
    """A Message Batch keeps no metadata: a lost batch is found by its time, its size
    and, once ended, its custom ids."""

    def __init__(self, key: Hashable, client: anthropic.Anthropic, *, betas: tuple[str, ...],
                 destination: str) -> None:
        self.key = key
        self.destination = destination
        self._client = client
        self._create_once = client.with_options(max_retries=0)
        """Creates without the SDK's retries, which could repeat a create whose answer was
        lost: the engine retries, after looking for the batch."""
        self._betas = list(betas)

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

    def poll(self, batch_id: str) -> BatchStatus:
        """Whether the batch has ended, and its requests done out of its total."""
        batch = self._batches().retrieve(batch_id, **self._extra())
        counts = batch.request_counts
        done = counts.succeeded + counts.errored + counts.canceled + counts.expired
        return BatchStatus(batch.processing_status == "ended", done, done + counts.processing)

    def results(self, batch_id: str) -> Iterator[tuple[str, Any]]:
        """Each result line, as the provider wrote it: (custom_id, line)."""
        decoder = self._batches().results(batch_id, **self._extra())
        for line in lines_of(decoder.http_response):
            yield str(line["custom_id"]), line

    def outcome(self, line: Any, batch: tuple[str, Any] | None = None) -> Outcome:
        """The answer the live call would have had for this result line (the SDK raises
        its own exception for an error status), or the error of an outcome only a batch
        can have."""
        result, custom_id = line["result"], str(line["custom_id"])
        kind = result["type"]
        if kind == "succeeded":
            message = result["message"]
            return Answer(200, json_bytes(message), _request_id(custom_id),
                          self.spent(line), batch), None
        if kind == "errored":
            envelope = result.get("error") or {}
            error_type = (envelope.get("error") or {}).get("type")
            return Answer(STATUS_BY_ERROR_TYPE.get(str(error_type), 500), json_bytes(envelope),
                          envelope.get("request_id") or _request_id(custom_id),
                          batch=batch), None
        if kind == "expired":
            return None, BatchExpiredError("the request's batch expired before it was processed")
        return None, BatchCanceledError("the request's batch was canceled before it ran")

    def transient(self, line: Any) -> bool:
        """Whether the line's failure may pass if sent again: expired or canceled before
        it ran, or a rate-limit, overloaded or server error."""
        result = line["result"]
        kind = result["type"]
        if kind in ("expired", "canceled"):
            return True
        if kind != "errored":
            return False
        error_type = ((result.get("error") or {}).get("error") or {}).get("type")
        return STATUS_BY_ERROR_TYPE.get(str(error_type), 500) in TRANSIENT_STATUSES

    @property
    def retries(self) -> int:
        """The caller's client's ``max_retries``."""
        return int(self._client.max_retries)

    def succeeded(self, line: Any) -> bool:
        """Whether the line holds a message."""
        return bool(line["result"]["type"] == "succeeded")

    def spent(self, line: Any) -> Spent | None:
        """The model and tokens a succeeded line was billed for."""
        message = line["result"].get("message") or {}
        return str(message.get("model", "?")), anthropic_tokens(message.get("usage"))

    def recover(self, tag: str, created_at: float, requests: int) -> list[str]:
        """Batches created around `created_at` with `requests` requests, newest first."""
        return sized_like(self._batches().list(limit=100, **self._extra()), created_at,
                          requests)

    def cancel(self, batch_id: str) -> None:
        """Cancel the batch (requests already processed keep their results)."""
        self._batches().cancel(batch_id, **self._extra())

    def kept(self, custom_id: str, body: Any, request_id: str) -> Any:
        """A successful live answer as the batch's result line would have held it."""
        return {"custom_id": custom_id, "result": {"type": "succeeded", "message": body}}

    def discard(self, batch_id: str) -> None:
        """Nothing to delete: a Message Batch keeps no files (its results expire)."""

    def _batches(self, client: anthropic.Anthropic | None = None) -> Any:
        """The SDK's batches resource (beta when there are betas) of `client` (by default
        the target's)."""
        client = client or self._client
        return client.beta.messages.batches if self._betas else client.messages.batches

    def _extra(self) -> dict[str, Any]:
        return {"betas": self._betas} if self._betas else {}


def sized_like(batches: Iterable[Any], created_at: float, requests: int) -> list[str]:
    """Of `batches` (SDK Message Batches, newest first), the ids of those created within
    `RECOVERY_WINDOW` of `created_at` that hold `requests` requests: the candidates for a
    batch whose create call's answer was lost (a Message Batch keeps no tag)."""
    earliest, latest = created_at + RECOVERY_WINDOW[0], created_at + RECOVERY_WINDOW[1]
    found = []
    for batch in batches:
        when = batch.created_at.timestamp()
        if when < earliest:
            break
        counts = batch.request_counts
        total = (counts.processing + counts.succeeded + counts.errored + counts.canceled
                 + counts.expired)
        if when <= latest and total == requests:
            found.append(str(batch.id))
    return found


def _request_id(custom_id: str) -> str:
    """The request id of an answer the provider gave none for: names the batch request."""
    return f"req_deferred_{custom_id}"


_targets: TargetCache[AnthropicTarget] = TargetCache()
_pool = SharedPool(anthropic.DefaultHttpxClient)


def _target(client: anthropic.Anthropic | anthropic.AsyncAnthropic, credentials: str,
            headers: dict[str, str], betas: tuple[str, ...], raw_query: bytes) -> AnthropicTarget:
    base_url = str(client.base_url)
    key = ("anthropic", base_url, credentials, tuple(sorted(headers.items())), betas, raw_query)

    def make() -> AnthropicTarget:
        query = query_of(raw_query, drop=frozenset({"beta"}))
        return AnthropicTarget(
            key, _engine_client(client, headers, query), betas=betas,
            destination=destination("anthropic", base_url=base_url, credentials=credentials,
                                    beta=bool(betas), betas=list(betas),
                                    workspace=headers.get("anthropic-workspace-id"),
                                    headers=headers, query=query))

    return _targets.get(key, make)


def _engine_client(client: anthropic.Anthropic | anthropic.AsyncAnthropic, headers: Mapping[str, str],
                   query: tuple[tuple[str, str], ...]) -> anthropic.Anthropic:
    """A sync client of the destination for the engine's worker threads: the caller's
    credentials, with the request's serving headers and query on every batch call. All
    such clients share one connection pool (the caller may close theirs meanwhile)."""
    credentials: dict[str, Any] = {"api_key": client.api_key, "auth_token": client.auth_token}
    if client.api_key is None and client.auth_token is None and isinstance(client, anthropic.Anthropic):
        credentials = {"credentials": client.credentials}
    return anthropic.Anthropic(
        **credentials, base_url=client.base_url, default_headers=dict(headers),
        default_query=dict(query), max_retries=client.max_retries, timeout=client.timeout,
        http_client=_pool.get())



def flex_request(request: httpx2.Request) -> httpx2.Request | None:
    """None: Anthropic has no flex processing (the flex lane falls back to a batch)."""
    return None


def flex_verdict(response: httpx2.Response) -> str:
    """Never asked (there is no flex request)."""
    return "served"


def live_spend(body: object) -> Spent | None:
    """The model and tokens of a live answer's body (None without usage)."""
    return spend_of(body, anthropic_tokens)


def upper_bound(params: Mapping[str, Any]) -> tuple[str, Tokens]:
    """The model of a Messages request and the most tokens it can be billed for: its prompt
    estimated at four characters a token, all as uncached input (caching only lowers it),
    and `max_tokens` of output."""
    prompt = {k: params.get(k) for k in ("system", "messages", "tools") if k in params}
    size = len(json.dumps(prompt, default=str))
    max_tokens = params.get("max_tokens")
    output = int(max_tokens) if isinstance(max_tokens, int) else 0
    return str(params.get("model", "?")), Tokens(input=(size + 3) // 4, output=output)
