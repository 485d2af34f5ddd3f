"""OpenAI: which ``POST`` requests to `/v1/chat/completions`, `/v1/responses` and
`/v1/embeddings` a Batch can serve, the JSONL line each becomes (uploaded through Files),
and each output or error line turned back into the HTTP answer the live call would have had
(the SDK builds the return value or raises from it)."""

from __future__ import annotations

import contextlib
import functools
import json
import re
import tempfile
from collections.abc import Hashable, Iterable, Iterator, Mapping
from typing import Any

import httpx2
import openai

from .._errors import BatchCanceledError, BatchExpiredError, BatchValidationError, DeferrableError
from .._options import Options
from ..engine import TRANSIENT_STATUSES, BatchStatus, Outcome
from ..ledger import Tokens, openai_tokens
from . import _openai_sdk as sdk
from ._deferral import (
    Answer,
    Deferral,
    Live,
    Replay,
    SharedPool,
    Spent,
    TargetCache,
    body_of,
    canonical_json,
    destination,
    fingerprint,
    json_bytes,
    lines_of,
    query_of,
    serving_headers,
    spend_of,
)
from ._replay import openai_chat_chunks, openai_response_events

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
EMBEDDINGS = "/v1/embeddings"
ENDPOINTS = {"/chat/completions": CHAT, "/responses": RESPONSES, "/embeddings": EMBEDDINGS}
"""The deferrable endpoints, by their path under the client's base URL."""
PROVIDER = "openai"
REQUEST_ID_HEADER = "x-request-id"
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
MAX_EMBEDDING_INPUTS = 50_000
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
FIRST_PARTY = (openai.OpenAI, openai.AsyncOpenAI)
TAG_KEY = "deferrable"
"""The batch metadata key whose value names the batch for deferrable (its journal)."""
_LINE_OVERHEAD = len('{"custom_id":"","method":"POST","url":"","body":}\n') + 48
"""A line's bytes beyond its body and URL: the framing and a custom id (40 hex digits, a
dash and an occurrence number)."""
FLEX_ENDPOINTS = frozenset({CHAT, RESPONSES})
FLEX_MODELS = frozenset({"o3", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5.5"})
"""Models known to offer flex processing, which ``lane="auto"`` may choose (with their
dated snapshots). Sources: OpenAI's flex-processing guide at launch (2025-04-17: o3 and
o4-mini) and the pricing page's flex column from 2025-08 (gpt-5, -mini, -nano); gpt-5.5
as reported accepted by /v1/responses (openai/codex#31562). ``lane="flex"`` tries any
model; one answered "Unsupported service_tier" is not tried again in the process."""
_no_flex: set[str] = set()
"""Models a flex request was refused for, in this process."""
_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")
RECOVERY_HORIZON = 300.0
"""Seconds before the journal's record of a create call after which a lost batch is
looked for (clock skew)."""


def endpoint_of(client: Any, request: httpx2.Request) -> str | None:
    """The deferrable endpoint a request of `client` goes to (e.g. ``/v1/embeddings``), or
    None for any other request. For a client of another cloud (Azure's deployment URLs,
    say) any path ending as one of them counts, so that it goes live saying why."""
    if request.method != "POST":
        return None
    path = request.url.path
    if type(client) not in FIRST_PARTY:
        return next((e for tail, e in ENDPOINTS.items() if path.endswith(tail)), None)
    base = client.base_url.path.rstrip("/")
    return ENDPOINTS.get(path[len(base):]) if path.startswith(base) else None


def examine(client: object, request: httpx2.Request, options: Options,
            endpoint: str) -> Deferral | Live:
    """Whether `request` of `client` to `endpoint` goes into a batch (and how) or live
    (and why)."""
    if type(client) not in FIRST_PARTY:
        return Live(f"{type(client).__name__} is not a first-party OpenAI client")
    assert isinstance(client, (openai.OpenAI, openai.AsyncOpenAI))
    if sdk.has_provider(client):
        return Live("an OpenAI client configured with a provider is not first-party")
    refreshed = sdk.refreshed_credential(client)
    if isinstance(client, openai.AsyncOpenAI) and refreshed is not None:
        return Live("an AsyncOpenAI client with refreshed credentials cannot lend them to a batch")
    params = body_of(request)
    if params is None:
        return Live("the request body is not a JSON object")
    replay = _replay(endpoint, params)
    if replay is not None and not options.defer_streams:
        return Live("a streaming call, and defer_streams is off", params)
    credentials, headers = serving_headers(request.headers)
    model = params.get("model")
    units = _input_count(params.get("input")) if endpoint == EMBEDDINGS else 1
    if refreshed is not None:
        credentials = fingerprint(id(refreshed))
    target = _target(client, endpoint=endpoint, model=model if isinstance(model, str) else None,
                     credentials=credentials, headers=headers, raw_query=request.url.query)
    size = len(request.content) + len(endpoint) + _LINE_OVERHEAD
    return Deferral(target, params, size, units, replay)


def _replay(endpoint: str, params: dict[str, Any]) -> Replay | None:
    """For a streaming call, how its result is replayed (its streaming fields are taken
    out of `params`, which is what the batch runs); None for any other call."""
    if endpoint == EMBEDDINGS or not params.get("stream"):
        return None
    del params["stream"]
    stream_options = params.pop("stream_options", None) or {}
    if endpoint == RESPONSES:
        return openai_response_events
    return functools.partial(openai_chat_chunks,
                             include_usage=bool(stream_options.get("include_usage")))


class OpenAITarget:
    """Batches of one destination (base URL, credentials, organization and project, the
    headers and query that change how requests are served), endpoint and model: a batch
    file holds one model."""

    provider = "openai"
    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES
    tags_batches = True
    """Each batch carries its journal token in its metadata."""

    def __init__(self, key: Hashable, client: openai.OpenAI, *, endpoint: str,
                 destination: str, model: str | None = None) -> None:
        self.key = key
        self._model = model
        self.destination = destination
        self._client = client
        self._create_once = client.with_options(max_retries=0)
        """Uploads inputs and creates batches without the SDK's retries, which could
        repeat a call whose answer was lost: the engine retries, after looking for the
        batch (and deleting an input uploaded for none)."""
        self._endpoint = endpoint
        self.max_units: int | None = MAX_EMBEDDING_INPUTS if endpoint == EMBEDDINGS else None

    @property
    def offers_flex(self) -> bool:
        """Whether the endpoint and model are known to offer flex processing."""
        return self._endpoint in FLEX_ENDPOINTS and self._model is not None and _flex_model(
            self._model)

    def canonical(self, body: Any) -> str:
        """The body the live call sends, as canonical JSON."""
        return canonical_json(body)

    def submit(self, requests: list[tuple[str, Any]], tag: str) -> str:
        """Upload the JSONL input (from a private temporary file) and create the batch,
        tagged `tag` in its metadata; returns its id."""
        with tempfile.TemporaryFile() as handle:
            for custom_id, body in requests:
                handle.write(json_bytes({"custom_id": custom_id, "method": "POST",
                                         "url": self._endpoint, "body": body}) + b"\n")
            handle.seek(0)
            # Without the SDK's retries, as the create: an upload whose answer was lost is
            # found by its name and deleted when the batch is looked for (`recover`).
            uploaded = self._create_once.files.create(file=(_input_name(tag), handle),
                                                      purpose="batch")
        try:
            batch = self._create_once.batches.create(
                input_file_id=uploaded.id, endpoint=self._endpoint,  # type: ignore[arg-type]
                completion_window="24h", metadata={TAG_KEY: tag})
        except openai.APIStatusError:
            self._delete(uploaded.id)
            raise
        return batch.id

    def poll(self, batch_id: str) -> BatchStatus:
        """Whether the batch has ended (completed, failed, expired or cancelled), and its
        requests done out of its total."""
        batch = self._retrieve(batch_id)
        counts = batch.request_counts
        done, total = (counts.completed + counts.failed, counts.total) if counts else (0, 0)
        return BatchStatus(batch.status in ENDED, done, total)

    def results(self, batch_id: str) -> Iterator[tuple[str, Any]]:
        """Each line of the output and error files as (custom_id, {"line", "status"});
        for a batch that failed validation, each request of its input with the failure
        as {"invalid": ...}."""
        batch = self._retrieve(batch_id)
        if batch.status == "failed":
            yield from self._validation_failures(batch)
            return
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id is None:
                continue
            for line in self._lines(file_id):
                yield str(line["custom_id"]), {"line": line, "status": batch.status}

    def outcome(self, line: Any, batch: tuple[str, Any] | None = None) -> Outcome:
        """The answer the live call would have had for a line of `results()` (the SDK
        raises its own exception for an error status), or the error of an outcome only a
        batch can have."""
        invalid = line.get("invalid")
        if invalid is not None:
            return None, BatchValidationError(invalid["message"], code=invalid.get("code"),
                                              line=invalid.get("line"))
        found, status = line["line"], line["status"]
        response = found.get("response")
        if response is not None:
            code = int(response.get("status_code") or 500)
            body = response.get("body")
            request_id = response.get("request_id") or f"req_deferred_{found.get('custom_id')}"
            spent = spend_of(body, openai_tokens) if 200 <= code < 300 else None
            return Answer(code, json_bytes(body), str(request_id), spent, batch), None
        error = found.get("error") or {}
        reason = f"{error.get('code')}: {error.get('message')}"
        if error.get("code") == "batch_expired" or status == "expired":
            return None, BatchExpiredError(f"the request's batch expired before it ran ({reason})")
        if status in ("cancelled", "cancelling"):
            return None, BatchCanceledError(f"the request's batch was cancelled before it ran "
                                            f"({reason})")
        return None, DeferrableError(f"the batch could not run the request ({reason})")

    def transient(self, line: Any) -> bool:
        """Whether the line's failure may pass if sent again: expired or cancelled before
        it ran, or a rate-limit or server error."""
        if line.get("invalid") is not None:
            return False
        found, status = line["line"], line["status"]
        response = found.get("response")
        if response is not None:
            return int(response.get("status_code") or 500) in TRANSIENT_STATUSES
        code = (found.get("error") or {}).get("code")
        return code in ("batch_expired", "batch_cancelled") or status in (
            "expired", "cancelled", "cancelling")

    @property
    def retries(self) -> int:
        """The caller's client's ``max_retries``."""
        return int(self._client.max_retries)

    def succeeded(self, line: Any) -> bool:
        """Whether the line holds a successful response."""
        response = (line.get("line") or {}).get("response") or {}
        return 200 <= int(response.get("status_code") or 0) < 300

    def spent(self, line: Any) -> Spent | None:
        """The model and tokens a successful line was billed for."""
        body = ((line.get("line") or {}).get("response") or {}).get("body") or {}
        return str(body.get("model", "?")), openai_tokens(body.get("usage"))

    def recover(self, tag: str, created_at: float, requests: int) -> list[str]:
        """The batch whose metadata carries `tag`, looked for among those created since
        shortly before `created_at` (newest first)."""
        found = tagged_with(self._client.batches.list(limit=100), tag, created_at)
        if found is not None:
            return [found]
        self._delete_input_of(tag, since=created_at - RECOVERY_HORIZON)
        return []

    def _delete_input_of(self, tag: str, since: float) -> None:
        """Delete the input file uploaded (after `since`) for a batch never created."""
        name = _input_name(tag)
        for uploaded in self._client.files.list(purpose="batch"):
            if uploaded.created_at < since:
                break
            if uploaded.filename == name:
                self._delete(uploaded.id)

    def cancel(self, batch_id: str) -> None:
        """Cancel the batch (requests already run keep their results)."""
        self._client.batches.cancel(batch_id)

    def kept(self, custom_id: str, body: Any, request_id: str) -> Any:
        """A successful live answer as a line of the batch's output file would hold it."""
        return {"line": {"custom_id": custom_id, "response": {
                    "status_code": 200, "request_id": request_id, "body": body}},
                "status": "completed"}

    def discard(self, batch_id: str) -> None:
        """Delete the batch's input, output and error files."""
        batch = self._retrieve(batch_id)
        for file_id in (batch.input_file_id, batch.output_file_id, batch.error_file_id):
            if file_id is not None:
                self._delete(file_id)

    def _validation_failures(self, batch: openai.types.Batch) -> Iterator[tuple[str, Any]]:
        """Each request of a `failed` batch with its failure: its own error when a line
        names it, else the batch's."""
        found = list(batch.errors.data or []) if batch.errors is not None else []
        by_line = {error.line: error for error in found if error.line is not None}
        summary = "; ".join(f"{e.code}: {e.message}" for e in found) or "no reason given"
        for number, line in enumerate(self._lines(batch.input_file_id), 1):
            error = by_line.get(number)
            if error is None:
                invalid: dict[str, Any] = {
                    "message": f"batch {batch.id} failed validation: {summary}"}
            else:
                invalid = {"message": f"batch {batch.id} failed validation: {error.code} at "
                                      f"line {number}: {error.message}",
                           "code": error.code, "line": number}
            yield str(line["custom_id"]), {"invalid": invalid}

    def _lines(self, file_id: str) -> Iterator[dict[str, Any]]:
        """A JSONL file's lines, streamed."""
        with self._client.files.with_streaming_response.content(file_id) as response:
            yield from lines_of(response)

    def _retrieve(self, batch_id: str) -> openai.types.Batch:
        return self._client.batches.retrieve(batch_id)

    def _delete(self, file_id: str) -> None:
        with contextlib.suppress(openai.NotFoundError):
            self._client.files.delete(file_id)


_targets: TargetCache[OpenAITarget] = TargetCache()
_pool = SharedPool(openai.DefaultHttpxClient)


def _target(client: openai.OpenAI | openai.AsyncOpenAI, *, endpoint: str, model: str | None,
            credentials: str, headers: dict[str, str], raw_query: bytes) -> OpenAITarget:
    base_url = str(client.base_url)
    key = ("openai", endpoint, model, base_url, credentials, tuple(sorted(headers.items())),
           raw_query)

    def make() -> OpenAITarget:
        query = query_of(raw_query)
        return OpenAITarget(
            key, _engine_client(client, headers, query), endpoint=endpoint, model=model,
            destination=destination("openai", base_url=base_url, endpoint=endpoint, model=model,
                                    credentials=credentials, organization=client.organization,
                                    project=client.project,
                                    headers=headers, query=query))

    return _targets.get(key, make)


def _engine_client(client: openai.OpenAI | openai.AsyncOpenAI, headers: Mapping[str, str],
                   query: tuple[tuple[str, str], ...]) -> openai.OpenAI:
    """A sync client of the destination for the engine's worker threads: the caller's
    credentials, with the request's serving headers and query on every batch call. All
    such clients share one connection pool (the caller may close theirs meanwhile)."""
    credentials: dict[str, Any] = {"api_key": client.api_key}
    if client.workload_identity is not None:
        credentials = {"workload_identity": client.workload_identity}
    elif isinstance(client, openai.OpenAI) and sdk.refreshed_credential(client) is not None:
        credentials = {"api_key": sdk.refreshed_credential(client)}
    return openai.OpenAI(
        **credentials, admin_api_key=client.admin_api_key, organization=client.organization,
        project=client.project, base_url=client.base_url, default_headers=dict(headers),
        default_query=dict(query), max_retries=client.max_retries, timeout=client.timeout,
        http_client=_pool.get())



def tagged_with(batches: Iterable[Any], tag: str, created_at: float) -> str | None:
    """Of `batches` (SDK Batches, newest first), the id of the one whose metadata carries
    `tag`, looked for among those created since shortly before `created_at`."""
    for batch in batches:
        if batch.created_at < created_at - RECOVERY_HORIZON:
            break
        if (batch.metadata or {}).get(TAG_KEY) == tag:
            return str(batch.id)
    return None


def _input_name(tag: str) -> str:
    """The name of the input file uploaded for the batch tagged `tag`."""
    return f"deferrable-{tag}.jsonl"


def _input_count(value: object) -> int:
    """How many embedding inputs `input` holds (a string or one token list is one)."""
    if isinstance(value, list) and value and not all(isinstance(item, int) for item in value):
        return len(value)
    return 1


def _flex_model(model: str) -> bool:
    """Whether `model` (or the model its dated snapshot belongs to) is known to offer flex."""
    base = _SNAPSHOT.sub("", model)
    return base not in _no_flex and model not in _no_flex and (
        model in FLEX_MODELS or base in FLEX_MODELS)


def flex_request(request: httpx2.Request) -> httpx2.Request | None:
    """`request` with ``service_tier: "flex"`` (the SDK's own encoding otherwise as it
    is), or None when it cannot go flex: another endpoint, or a model refused before."""
    if not request.url.path.endswith(("/chat/completions", "/responses")):
        return None
    body = body_of(request)
    if body is None or str(body.get("model")) in _no_flex:
        return None
    body["service_tier"] = "flex"
    headers = [(name, value) for name, value in request.headers.raw
               if name.lower() != b"content-length"]
    return httpx2.Request(request.method, request.url, headers=headers, content=json_bytes(body),
                          extensions=request.extensions)


def flex_verdict(response: httpx2.Response) -> str:
    """What a flex answer means: ``"served"`` (an answer for the SDK, error or not),
    ``"busy"`` (no capacity now, 429 Resource Unavailable, or a 408 or 5xx: try again
    later) or ``"unsupported"`` (the model offers no flex)."""
    status = response.status_code
    if status in TRANSIENT_STATUSES:
        return "busy"
    if status != 400:
        return "served"
    error = (body_of_response(response) or {}).get("error") or {}
    if error.get("param") != "service_tier":
        return "served"
    model = (body_of(response.request) or {}).get("model")
    if isinstance(model, str):
        _no_flex.add(model)
    return "unsupported"


def body_of_response(response: httpx2.Response) -> dict[str, Any] | None:
    """The JSON object an answer carries (None if none, or not read)."""
    try:
        body = json.loads(response.content)
    except (ValueError, httpx2.ResponseNotRead):
        return None
    return body if isinstance(body, dict) else None


def live_spend(body: object) -> Spent | None:
    """The model and tokens of a live answer's body (None without usage)."""
    return spend_of(body, openai_tokens)


def upper_bound(params: Mapping[str, Any]) -> tuple[str, Tokens]:
    """The model of a request and the most tokens it can be billed for: its input
    estimated at four characters a token, and its output limit (0 when it names none)."""
    prompt = {k: params.get(k) for k in ("messages", "input", "instructions", "tools")
              if k in params}
    size = len(json.dumps(prompt, default=str))
    limit = next((params[k] for k in ("max_completion_tokens", "max_tokens", "max_output_tokens")
                  if isinstance(params.get(k), int)), 0)
    return str(params.get("model", "?")), Tokens(input=(size + 3) // 4, output=int(limit))
