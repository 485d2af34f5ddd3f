"""OpenAI: which `chat.completions` / `responses` / `embeddings` calls a Batch can serve,
the JSONL line each becomes (uploaded through Files), and each output or error line turned
back into what the live call returns or raises."""

from __future__ import annotations

import contextlib
import functools
import json
import tempfile
from collections.abc import Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from openai._base_client import _merge_mappings
from openai._constants import RAW_RESPONSE_HEADER
from openai._models import add_request_id
from openai._types import NotGiven, Omit, omit
from openai._utils import maybe_transform
from openai._utils._json import openapi_dumps
from openai.lib._chat_completion_resources import validate_response_format
from openai.lib._parsing._embeddings import parse_embedding_response, prepare_embedding_request
from openai.types import CreateEmbeddingResponse, embedding_create_params
from openai.types.chat import ChatCompletion, completion_create_params
from openai.types.responses import Response, response_create_params

from .._errors import BatchCanceledError, BatchExpiredError, BatchValidationError, DeferrableError
from ..engine import Outcome
from ..ledger import Tokens, openai_tokens
from ._deferral import (
    Deferral,
    TargetCache,
    canonical_json,
    destination,
    fingerprint,
    lines_of,
    spend_of,
)

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
EMBEDDINGS = "/v1/embeddings"
PROVIDER = "openai"
MAX_REQUESTS = 50_000
MAX_BYTES = 200 * 1024 * 1024
MAX_EMBEDDING_INPUTS = 50_000
ENDED = frozenset({"completed", "failed", "expired", "cancelled"})
FIRST_PARTY = (openai.OpenAI, openai.AsyncOpenAI)
TAG_KEY = "deferrable"
"""The batch metadata key whose value names the batch for deferrable (its journal)."""
_NOT_BODY = frozenset({"extra_headers", "extra_query", "extra_body", "timeout"})
_LINE_OVERHEAD = 64
RECOVERY_HORIZON = 300.0
"""Seconds before the journal's record of a create call after which a lost batch is
looked for (clock skew)."""


@dataclass(frozen=True)
class _Endpoint:
    """How the SDK builds one endpoint's body and parses its answer."""

    params: Any
    cast_to: type[openai.BaseModel]


_ENDPOINTS = {
    CHAT: _Endpoint(completion_create_params.CompletionCreateParamsNonStreaming, ChatCompletion),
    RESPONSES: _Endpoint(response_create_params.ResponseCreateParamsNonStreaming, Response),
    EMBEDDINGS: _Endpoint(embedding_create_params.EmbeddingCreateParams, CreateEmbeddingResponse),
}


def prepare(client: object, kwargs: Mapping[str, Any], endpoint: str) -> Deferral | str:
    """The deferral of a `create(**kwargs)` call to `endpoint` (e.g. ``/v1/embeddings``),
    or why it must go live."""
    if type(client) not in FIRST_PARTY:
        return f"{type(client).__name__} is not a first-party OpenAI client"
    assert isinstance(client, (openai.OpenAI, openai.AsyncOpenAI))
    if client._provider is not None:
        return "an OpenAI client configured with a provider is not first-party"
    headers = {k.lower(): str(v) for k, v in (kwargs.get("extra_headers") or {}).items()
               if _given(v)}
    if RAW_RESPONSE_HEADER.lower() in headers:
        return "with_raw_response / with_streaming_response need the live HTTP response"
    stream = kwargs.get("stream")
    if _given(stream) and stream:
        return "stream=True needs a live connection"
    if kwargs.get("extra_query"):
        return "extra_query cannot travel in a batch line"
    if isinstance(client, openai.AsyncOpenAI) and (
            client._api_key_provider is not None or client.workload_identity is not None):
        return "an AsyncOpenAI client with refreshed credentials cannot lend them to a batch"
    body, decode = _body(endpoint, kwargs)
    model = body.given.get("model")
    units = _input_count(body.given.get("input")) if endpoint == EMBEDDINGS else 1
    size = len(json.dumps(body.given, default=str)) + len(endpoint) + _LINE_OVERHEAD
    if body.extra is not None:
        size += len(json.dumps(body.extra, default=str))
    target = _target(client, endpoint=endpoint, model=model if isinstance(model, str) else None,
                     decode=decode, headers=tuple(sorted(headers.items())))
    return Deferral(target, body, size, units)


@dataclass(frozen=True)
class _Body:
    """A call's body as given; `json()` makes it what the live call sends. That step (the
    SDK's own transform) is costly, so it runs when the batch file is written, in the
    engine's worker thread, not on the caller's path."""

    endpoint: str
    given: dict[str, Any]
    extra: Mapping[str, Any] | None

    @functools.cached_property
    def sent(self) -> dict[str, Any]:
        """The JSON body the live call would send (computed once). A body of plain JSON
        values passes through the transform unchanged (no create-params type has
        aliases), so only bodies holding other values (files, dates, ...) pay for it."""
        body = self.given
        if not _plain_json(body):
            body = maybe_transform(body, _ENDPOINTS[self.endpoint].params) or {}
        return _merge_mappings(body, self.extra) if self.extra is not None else body


def _body(endpoint: str, kwargs: Mapping[str, Any]) -> tuple[_Body, bool]:
    """The call's body, and whether its embeddings come back decoded from base64 (the SDK
    asks for base64 when the caller named no encoding)."""
    given: dict[str, Any] = {k: v for k, v in kwargs.items() if k not in _NOT_BODY}
    decode = False
    if endpoint == CHAT:
        validate_response_format(given.get("response_format"))
    elif endpoint == EMBEDDINGS:
        encoding = given.get("encoding_format", omit)
        decode = not _given(encoding)
        prepared = prepare_embedding_request(None, given, encoding_format=encoding).body
        assert isinstance(prepared, dict)
        given = prepared
    extra_body = kwargs.get("extra_body")
    return _Body(endpoint, given, extra_body if isinstance(extra_body, Mapping) else None), decode


class OpenAITarget:
    """Batches of one client identity, endpoint and model (a batch file holds one model).

    Embeddings the SDK asked for in base64 on its own (the caller named no encoding) come
    back decoded to floats, as the live call returns them: such calls get a target of
    their own, since nothing in the batch line tells them apart.
    """

    provider = "openai"
    max_requests = MAX_REQUESTS
    max_bytes = MAX_BYTES
    tags_batches = True
    """Each batch carries its journal token in its metadata."""

    def __init__(self, key: Hashable, client: openai.OpenAI, *, endpoint: str, decode: bool,
                 headers: tuple[tuple[str, str], ...], destination: str) -> None:
        self.key = key
        self.destination = destination
        self._client = client
        self._create_once = client.with_options(max_retries=0)
        """Creates batches without the SDK's retries, which could repeat a create whose
        answer was lost: the engine retries, after looking for the batch."""
        self._endpoint = endpoint
        self._spec = _ENDPOINTS[endpoint]
        self._decode = decode
        self._headers = dict(headers)
        self.max_units: int | None = MAX_EMBEDDING_INPUTS if endpoint == EMBEDDINGS else None

    def canonical(self, body: Any) -> str:
        """The body the live call sends, as canonical JSON."""
        return canonical_json(body.sent)

    def submit(self, requests: list[tuple[str, Any]], tag: str) -> str:
        """Upload the JSONL input (from a private temporary file) and create the batch,
        tagged `tag` in its metadata; returns its id."""
        with tempfile.TemporaryFile() as handle:
            for custom_id, body in requests:
                handle.write(openapi_dumps({"custom_id": custom_id, "method": "POST",
                                            "url": self._endpoint, "body": body.sent}) + b"\n")
            handle.seek(0)
            uploaded = self._client.files.create(file=(_input_name(tag), handle),
                                                 purpose="batch", extra_headers=self._headers)
        try:
            batch = self._create_once.batches.create(
                input_file_id=uploaded.id, endpoint=self._endpoint,  # type: ignore[arg-type]
                completion_window="24h", metadata={TAG_KEY: tag}, extra_headers=self._headers)
        except openai.APIStatusError:
            self._delete(uploaded.id)
            raise
        return batch.id

    def poll(self, batch_id: str) -> bool:
        """Whether the batch has ended (completed, failed, expired or cancelled)."""
        return self._retrieve(batch_id).status in ENDED

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

    def outcome(self, line: Any) -> Outcome:
        """What the live call returns or raises for a line of `results()`."""
        invalid = line.get("invalid")
        if invalid is not None:
            return None, BatchValidationError(invalid["message"], code=invalid.get("code"),
                                              line=invalid.get("line"))
        return self._outcome(line["line"], line["status"])

    def succeeded(self, line: Any) -> bool:
        """Whether the line holds a successful response."""
        response = (line.get("line") or {}).get("response") or {}
        return 200 <= int(response.get("status_code") or 0) < 300

    def spent(self, line: Any) -> tuple[str, Tokens] | None:
        """The model and tokens a successful line was billed for."""
        body = ((line.get("line") or {}).get("response") or {}).get("body") or {}
        return str(body.get("model", "?")), openai_tokens(body.get("usage"))

    def recover(self, tag: str, created_at: float, requests: int) -> list[str]:
        """The batch whose metadata carries `tag`, looked for among those created since
        shortly before `created_at` (newest first)."""
        for batch in self._client.batches.list(limit=100, extra_headers=self._headers):
            if batch.created_at < created_at - RECOVERY_HORIZON:
                break
            if (batch.metadata or {}).get(TAG_KEY) == tag:
                return [batch.id]
        self._delete_input_of(tag, since=created_at - RECOVERY_HORIZON)
        return []

    def _delete_input_of(self, tag: str, since: float) -> None:
        """Delete the input file uploaded (after `since`) for a batch never created."""
        name = _input_name(tag)
        for uploaded in self._client.files.list(purpose="batch", extra_headers=self._headers):
            if uploaded.created_at < since:
                break
            if uploaded.filename == name:
                self._delete(uploaded.id)

    def discard(self, batch_id: str) -> None:
        """Delete the batch's input, output and error files."""
        batch = self._retrieve(batch_id)
        for file_id in (batch.input_file_id, batch.output_file_id, batch.error_file_id):
            if file_id is not None:
                self._delete(file_id)

    def _outcome(self, line: Mapping[str, Any], status: str) -> Outcome:
        response = line.get("response")
        if response is not None:
            code = int(response.get("status_code") or 500)
            request_id = response.get("request_id")
            if 200 <= code < 300:
                return self.value(response.get("body"), request_id), None
            return None, self.status_error(code, response.get("body"), request_id)
        error = line.get("error") or {}
        reason = f"{error.get('code')}: {error.get('message')}"
        if error.get("code") == "batch_expired" or status == "expired":
            return None, BatchExpiredError(f"the request's batch expired before it ran ({reason})")
        if status in ("cancelled", "cancelling"):
            return None, BatchCanceledError(f"the request's batch was cancelled before it ran "
                                            f"({reason})")
        return None, DeferrableError(f"the batch could not run the request ({reason})")

    def value(self, body: object, request_id: str | None) -> openai.BaseModel:
        """The object the live call returns for this response body, built as the SDK
        builds it (embeddings decoded from base64 when the live call would decode them)."""
        response = self._response(200, body, request_id)
        value = self._client._process_response_data(data=body, cast_to=self._spec.cast_to,
                                                    response=response)
        if self._decode and isinstance(value, CreateEmbeddingResponse):
            value = parse_embedding_response(value, encoding_format=omit)
        add_request_id(value, request_id)
        return value

    def status_error(self, status: int, body: object,
                     request_id: str | None) -> openai.APIStatusError:
        """The exception the live call raises for this status and error body."""
        return self._client._make_status_error_from_response(
            self._response(status, body, request_id))

    def _response(self, status: int, body: object, request_id: str | None) -> httpx2.Response:
        url = str(self._client.base_url).rstrip("/") + self._endpoint.removeprefix("/v1")
        headers = {"x-request-id": request_id} if request_id else {}
        return httpx2.Response(status, headers=headers, json=body,
                               request=httpx2.Request("POST", url))

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
        with self._client.files.with_streaming_response.content(
                file_id, extra_headers=self._headers) as response:
            yield from lines_of(response)

    def _retrieve(self, batch_id: str) -> openai.types.Batch:
        return self._client.batches.retrieve(batch_id, extra_headers=self._headers)

    def _delete(self, file_id: str) -> None:
        with contextlib.suppress(openai.NotFoundError):
            self._client.files.delete(file_id, extra_headers=self._headers)


_targets: TargetCache[OpenAITarget] = TargetCache()


def _target(client: openai.OpenAI | openai.AsyncOpenAI, *, endpoint: str, model: str | None,
            decode: bool, headers: tuple[tuple[str, str], ...]) -> OpenAITarget:
    credentials = _fingerprint(client)
    client_headers = tuple(sorted((k, str(v)) for k, v in client._custom_headers.items()))
    key = ("openai", endpoint, model, decode, str(client.base_url), credentials,
           client.organization, client.project, client_headers, headers)
    return _targets.get(key, lambda: OpenAITarget(
        key, _blocking_client(client), endpoint=endpoint, decode=decode, headers=headers,
        destination=destination("openai", base_url=str(client.base_url), endpoint=endpoint,
                                model=model, decode=decode, credentials=credentials,
                                organization=client.organization, project=client.project,
                                headers=fingerprint(client_headers, headers))))


def _blocking_client(client: openai.OpenAI | openai.AsyncOpenAI) -> openai.OpenAI:
    """A sync client of the same identity for the engine's worker threads, owning its
    connections: the caller may close theirs while their batches are still followed."""
    credentials: dict[str, Any] = {"api_key": client.api_key}
    if client.workload_identity is not None:
        credentials = {"workload_identity": client.workload_identity}
    elif isinstance(client, openai.OpenAI) and client._api_key_provider is not None:
        credentials = {"api_key": client._api_key_provider}
    return openai.OpenAI(
        **credentials, admin_api_key=client.admin_api_key, organization=client.organization,
        project=client.project, base_url=client.base_url, default_headers=client._custom_headers,
        default_query=client._custom_query, max_retries=client.max_retries,
        timeout=client.timeout)


def _fingerprint(client: openai.OpenAI | openai.AsyncOpenAI) -> str:
    """Identifies the credentials without keeping them (a refreshed credential by its source)."""
    refreshed = [id(source) for source in (client._api_key_provider, client.workload_identity)
                 if source is not None]
    return fingerprint(client.api_key, client.admin_api_key, refreshed)


def _input_name(tag: str) -> str:
    """The name of the input file uploaded for the batch tagged `tag`."""
    return f"deferrable-{tag}.jsonl"


def _plain_json(value: object) -> bool:
    """Whether `value` is made of JSON's own types only."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_json(item) for item in value)
    return value is None or isinstance(value, (str, int, float, bool))


def _input_count(value: object) -> int:
    """How many embedding inputs `input` holds (a string or one token list is one)."""
    if isinstance(value, list) and value and not all(isinstance(item, int) for item in value):
        return len(value)
    return 1


def _given(value: object) -> bool:
    """Whether the caller passed `value` (the SDK's `NOT_GIVEN` / `omit` mean it did not)."""
    return not isinstance(value, (NotGiven, Omit))


def live_spend(value: object) -> tuple[str, Tokens] | None:
    """The model and tokens of what a live call returned (None for a stream or a raw
    response, which carry no usage yet)."""
    return spend_of(value, openai_tokens)


def upper_bound(kwargs: Mapping[str, Any]) -> tuple[str, Tokens]:
    """The model of a call and the most tokens it can be billed for: its input estimated
    at four characters a token, and its output limit (0 when it names none)."""
    prompt = {k: kwargs.get(k) for k in ("messages", "input", "instructions", "tools")
              if _given(kwargs.get(k))}
    size = len(json.dumps(prompt, default=str))
    limit = next((kwargs[k] for k in ("max_completion_tokens", "max_tokens", "max_output_tokens")
                  if isinstance(kwargs.get(k), int)), 0)
    return str(kwargs.get("model", "?")), Tokens(input=(size + 3) // 4, output=int(limit))
