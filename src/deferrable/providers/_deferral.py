"""What provider adapters share: the `Deferral` (or `Live` reason) they decide for a request
the SDK is about to send, the `Answer` a batch result becomes, the cache of their targets,
which request headers change how a provider serves a request, the fingerprint that names
credentials, and the JSON helpers of request identity and result streams."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import urllib.parse
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import httpx2

from .._json_text import read_json
from ..engine import Target
from ..ledger import Tokens

T = TypeVar("T")
Spent = tuple[str, Tokens]
"""A call's model and the tokens it was billed for."""
Replay = Callable[[Mapping[str, Any]], bytes]
"""Turns a final result object into the provider's own event stream (server-sent events)."""


@dataclass(frozen=True)
class Deferral:
    """A request a batch can serve: where it goes, its batch body (the JSON the SDK
    encoded, without streaming fields), its size in the batch file, its units (the
    provider's own per-call count, see `Target.max_units`), and, for a streaming call,
    how its result is replayed as the provider's event stream."""

    target: Target
    params: dict[str, Any]
    size: int
    units: int = 1
    replay: Replay | None = None


@dataclass(frozen=True)
class Live:
    """A request that goes live inside a deferrable scope, and why (`params` is its body,
    for the budgets; None when it was not read)."""

    reason: str
    params: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Answer:
    """A batch result as the HTTP answer the live call would have had: its status, its JSON
    body, a request id, and for a success what it was billed for."""

    status: int
    body: bytes
    request_id: str
    spent: Spent | None = None
    batch: tuple[str, Any] | None = None
    """The batch it came from: its id and its span's context (None when untraced); None
    for an answer served from the journal."""

    def response(self, request: httpx2.Request, *, request_id_header: str,
                 replay: Replay | None) -> httpx2.Response:
        """The `httpx2.Response` handed to the SDK for `request`: JSON, or for a streaming
        call that succeeded, the replayed event stream. An error carries
        ``x-should-retry: false``: the engine has done the retrying a batch allows."""
        headers = {request_id_header: self.request_id}
        if self.status >= 400:
            headers["x-should-retry"] = "false"
        if replay is not None and self.status < 400:
            headers["content-type"] = "text/event-stream"
            content = replay(json.loads(self.body))
        else:
            headers["content-type"] = "application/json"
            content = self.body
        return httpx2.Response(self.status, headers=headers, content=content, request=request)


_compact_text = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
"""`json.dumps` with these arguments, without making an encoder per call."""


def json_bytes(value: object) -> bytes:
    """`value` as compact JSON bytes."""
    return _compact_text(value).encode()


class TargetCache(Generic[T]):
    """One target per destination, made on first use (thread-safe)."""

    def __init__(self) -> None:
        self._targets: dict[Hashable, T] = {}
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self.clear)

    def clear(self) -> None:
        """Forget every target (in a forked child, whose copies hold the parent's
        connections)."""
        self._targets = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The target for `key`, made with `make()` if there is none yet."""
        target = self._targets.get(key)
        if target is None:
            with self._lock:
                target = self._targets.get(key)
                if target is None:
                    target = self._targets[key] = make()
        return target

    def __iter__(self) -> Iterator[Hashable]:
        """The keys cached so far (which hold no secret, only fingerprints)."""
        return iter(list(self._targets))


class SharedPool:
    """One connection pool, made on first use, shared by every client the engine makes for
    a provider: connections stay bounded however many destinations there are."""

    def __init__(self, make: Callable[[], httpx2.Client]) -> None:
        self._make = make
        self._pool: httpx2.Client | None = None
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        """In a forked child: the parent's connections are not the child's to use."""
        self._pool = None
        self._lock = threading.Lock()

    def get(self) -> httpx2.Client:
        """The pool (made now if this is the first use)."""
        with self._lock:
            if self._pool is None:
                self._pool = self._make()
            return self._pool


CREDENTIAL_HEADERS = frozenset({b"authorization", b"x-api-key", b"api-key"})
"""Headers that carry a secret: a destination names them by fingerprint only."""
_NOT_SERVING = frozenset({
    b"accept", b"accept-encoding", b"connection", b"content-length", b"content-type", b"host",
    b"user-agent", b"idempotency-key",
    # tracing and correlation: they name the call, they do not change how it is served
    b"traceparent", b"tracestate", b"baggage", b"sentry-trace", b"x-request-id", b"request-id",
    b"x-correlation-id", b"x-amzn-trace-id", b"x-cloud-trace-context", b"b3", b"uber-trace-id",
})
_NOT_SERVING_PREFIXES = (b"x-stainless-", b"x-b3-", b"x-datadog-", b"ot-")
"""The SDKs' own telemetry (``x-stainless-*``: retry count, timeouts, raw-response mode,
platform) and tracing families."""


def serving_headers(headers: httpx2.Headers) -> tuple[str, dict[str, str]]:
    """A request's headers that change how the provider serves it: the fingerprint of its
    credentials, and the others by lower-case name. Telemetry, tracing ids and
    idempotency keys are left out: they neither split batches nor travel with them."""
    credentials: list[bytes] = []
    serving: dict[str, str] = {}
    for raw_name, value in headers.raw:
        name = raw_name.lower()
        if name in CREDENTIAL_HEADERS:
            credentials += (name, value)
        elif name not in _NOT_SERVING and not name.startswith(_NOT_SERVING_PREFIXES):
            serving[name.decode("latin-1")] = value.decode("latin-1")
    return _fingerprint_of(tuple(credentials)), serving


@functools.lru_cache(maxsize=64)
def _fingerprint_of(credentials: tuple[bytes, ...]) -> str:
    return fingerprint(*credentials)


def query_of(query: bytes, *, drop: frozenset[str] = frozenset()) -> tuple[tuple[str, str], ...]:
    """The parameters of a request's raw query (but `drop`), sorted: part of its
    destination."""
    if not query:
        return ()
    pairs = urllib.parse.parse_qsl(query.decode("ascii"), keep_blank_values=True)
    return tuple(sorted((k, v) for k, v in pairs if k not in drop))


def fingerprint(*secrets: object) -> str:
    """Identifies credentials without keeping them (a truncated SHA-256)."""
    return hashlib.sha256("\0".join(str(s or "") for s in secrets).encode()).hexdigest()[:16]


def canonical_json(value: object) -> str:
    """`value` as canonical JSON (sorted keys, no spaces); values JSON has no form for
    are written as their text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def destination(provider: str, *, base_url: str, headers: Mapping[str, str],
                query: tuple[tuple[str, str], ...], **fields: object) -> str:
    """A target's destination as stable JSON text: the base URL without any user info,
    the serving headers and query by fingerprint, and `fields` (which must hold no secret)."""
    parts = urllib.parse.urlsplit(base_url)
    public = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return canonical_json({"provider": provider, "base_url": public, **fields,
                           "headers": fingerprint(sorted(headers.items())),
                           "query": fingerprint(query) if query else None})


def body_of(request: httpx2.Request) -> dict[str, Any] | None:
    """The JSON object a request carries, as the SDK encoded it (None if it carries none)."""
    try:
        body = json.loads(request.content)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class _LineStream(Protocol):
    def iter_lines(self) -> Iterator[str]: ...
    def close(self) -> None: ...


def lines_of(response: _LineStream) -> Iterator[dict[str, Any]]:
    """The JSON objects of a streamed JSONL response, each keeping its text (the journal
    writes it as is), and the response is closed when done (or when the iteration is
    abandoned)."""
    try:
        for text in response.iter_lines():
            if text.strip():
                yield read_json(text)
    finally:
        response.close()


def spend_of(body: object, tokens_of: Callable[[Any], Tokens]) -> Spent | None:
    """The model and tokens (read by `tokens_of` from its usage) of a response body;
    None for one without usage."""
    if not isinstance(body, Mapping):
        return None
    usage = body.get("usage")
    model = body.get("model")
    if not isinstance(usage, Mapping) or not isinstance(model, str):
        return None
    return model, tokens_of(usage)


def live_body(response: httpx2.Response, streamed: bool) -> Any:
    """The JSON body of a live answer that succeeded, when it was read whole (a stream's is
    not read here: its caller reads it)."""
    if streamed or not response.is_success:
        return None
    try:
        return json.loads(response.content)
    except (ValueError, httpx2.ResponseNotRead):
        return None
