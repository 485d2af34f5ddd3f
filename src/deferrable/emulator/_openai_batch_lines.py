"""The per-line work of an OpenAI batch, run in a worker thread: validating the input file,
then answering each line into the output and error files. Both stream line by line."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TextIO

from ._config import Limits
from ._errors import ApiError, openai_error_body
from ._ids import new_id, openai_request_id
from ._openai_embed import input_count
from ._openai_generate import EMBEDDINGS, serve
from ._state import EmulatorState

log = logging.getLogger("deferrable.emulator")
Ending = Literal["completed", "expired", "cancelled"]
MAX_REPORTED_ERRORS = 100
"""A failed batch reports at most this many `errors.data` entries."""
EXPIRED_MESSAGE = "This request could not be executed before the completion window expired."
CANCELLED_MESSAGE = "This request was not executed because the batch was cancelled."
_COMPACT = (",", ":")


@dataclass
class Validation:
    """What validating an input file found."""

    count: int = 0
    model: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, code: str, message: str, line: int | None = None,
            param: str | None = None) -> None:
        """Record one `errors.data` entry."""
        self.errors.append({"code": code, "message": message, "param": param, "line": line})


def validate_input(path: Path, endpoint: str, limits: Limits) -> Validation:
    """Check every line of a batch input file as the Batch API does before running it.

    Codes: ``invalid_json_line``, ``missing_required_parameter``, ``invalid_method``,
    ``url_mismatch``, ``duplicate_custom_id``, ``model_mismatch`` (one model per file),
    ``empty_file`` and ``too_many_tasks`` (requests, or embedding inputs in total).
    """
    found = Validation()
    seen: set[str] = set()
    inputs = 0
    with path.open("rb") as source:
        for number, raw in enumerate(source, 1):
            if len(found.errors) >= MAX_REPORTED_ERRORS:
                break
            if not raw.strip():
                continue
            found.count += 1
            if found.count > limits.openai_batch_requests:
                found.add("too_many_tasks", f"The batch input file contains more than "
                                            f"{limits.openai_batch_requests} requests.")
                return found
            line = _parse(raw)
            if line is None:
                found.add("invalid_json_line", "This line is not parseable as valid JSON.",
                          number)
                continue
            _check_line(found, line, number, endpoint, seen)
            if endpoint == EMBEDDINGS and isinstance(line.get("body"), dict):
                inputs += input_count(line["body"].get("input"))
    if found.count == 0 and not found.errors:
        found.add("empty_file", "The batch input file is empty.")
    if inputs > limits.openai_embedding_inputs:
        found.add("too_many_tasks", f"An embeddings batch may hold at most "
                                    f"{limits.openai_embedding_inputs} inputs in total; this "
                                    f"file holds {inputs}.")
    return found


def _check_line(found: Validation, line: dict[str, Any], number: int, endpoint: str,
                seen: set[str]) -> None:
    for name in ("custom_id", "method", "url", "body"):
        if line.get(name) is None:
            found.add("missing_required_parameter", f"Missing required parameter: '{name}'.",
                      number, name)
            return
    custom_id, body = line["custom_id"], line["body"]
    if not isinstance(custom_id, str) or not custom_id:
        found.add("invalid_custom_id", "custom_id must be a non-empty string.", number,
                  "custom_id")
    elif line["method"] != "POST":
        found.add("invalid_method", f"Unsupported method '{line['method']}'. Only POST is "
                                    "supported.", number, "method")
    elif line["url"] != endpoint:
        found.add("url_mismatch", f"The URL provided for this request ('{line['url']}') does "
                                  f"not match the batch endpoint ('{endpoint}').", number, "url")
    elif not isinstance(body, dict):
        found.add("invalid_json_line", "The request body must be a JSON object.", number,
                  "body")
    elif custom_id in seen:
        found.add("duplicate_custom_id", "The custom_id for this request is a duplicate of "
                                         "another request. The custom_id parameter must be "
                                         "unique for each request in a batch.", number,
                  "custom_id")
    else:
        seen.add(custom_id)
        model = body.get("model")
        if isinstance(model, str):
            if found.model is None:
                found.model = model
            elif model != found.model:
                found.add("model_mismatch", f"The model of this request ('{model}') differs "
                                            f"from the file's model ('{found.model}'); a batch "
                                            "input file may use only one model.", number,
                          "body.model")


@dataclass
class Plan:
    """How a batch ends, which decides which of its lines run."""

    ending: Ending
    completed_share: float = 1.0
    """Of an expiring or cancelled batch, the share of lines that ran."""
    cancel: threading.Event = field(default_factory=threading.Event)
    """Set when a cancel arrives while the lines are being answered."""
    cancel_share: float = 0.0
    """Of the lines left when such a late cancel arrives, the share that still runs."""
    abandoned: threading.Event = field(default_factory=threading.Event)
    """Set when the emulator stops: the worker gives up at the next line."""


@dataclass
class Outcome:
    """What answering a batch's lines produced."""

    succeeded: int = 0
    errored: int = 0
    unrun: int = 0
    input_tokens: int = 0
    cached_tokens: int = 0
    output_tokens: int = 0


def process_lines(state: EmulatorState, batch_id: str, endpoint: str, source: Path,
                  output: Path, errors: Path, plan: Plan) -> Outcome:
    """Answer each line of `source` into `output` (successes) and `errors` (the rest)."""
    outcome = Outcome()
    unrun_code = ("batch_expired" if plan.ending == "expired"
                  else state.quirks.openai_cancelled_error_code)
    unrun_message = EXPIRED_MESSAGE if plan.ending == "expired" else CANCELLED_MESSAGE
    runs = _chooser(state, batch_id, plan)
    with source.open("rb") as lines, output.open("w", encoding="utf-8") as good, \
            errors.open("w", encoding="utf-8") as bad:
        for raw in lines:
            if plan.abandoned.is_set():
                break
            if not raw.strip():
                continue
            line = json.loads(raw)
            custom_id: str = line["custom_id"]
            if not runs(custom_id):
                outcome.unrun += 1
                _write(bad, custom_id, None, {"code": unrun_code, "message": unrun_message})
                continue
            status, body = _answer(state, batch_id, endpoint, custom_id, line["body"], outcome)
            sink = good if status == 200 else bad
            _write(sink, custom_id, {"status_code": status, "request_id": openai_request_id(),
                                     "body": body}, None)
    return outcome


def _chooser(state: EmulatorState, batch_id: str, plan: Plan) -> Callable[[str], bool]:
    """Whether a line runs: all of a completing batch, a fixed share of an ending one."""

    def runs(custom_id: str) -> bool:
        key = f"{batch_id}:{custom_id}"
        if plan.ending == "completed":
            if not plan.cancel.is_set():
                return True
            return state.in_share(key, plan.cancel_share, "cancel")
        salt = "expire" if plan.ending == "expired" else "cancel"
        return state.in_share(key, plan.completed_share, salt)

    return runs


def _answer(state: EmulatorState, batch_id: str, endpoint: str, custom_id: str,
            body: dict[str, Any], outcome: Outcome) -> tuple[int, dict[str, Any]]:
    """(status, body) of one line, through the same `serve()` as the live endpoints."""
    try:
        if body.get("stream"):
            if state.quirks.openai_stream_in_batch == "line_error":
                raise ApiError(400, "Streaming is not supported in the Batch API.",
                               param="stream", code="unsupported_parameter")
            body = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
        served = serve(state, endpoint, body, mode="batch", fail_key=f"{batch_id}:{custom_id}")
    except ApiError as error:
        outcome.errored += 1
        return error.status, openai_error_body(error)
    except Exception as error:  # a bug must cost one line, not the whole batch
        log.exception("emulator failed on batch line %s", custom_id)
        outcome.errored += 1
        return 500, openai_error_body(ApiError(500, f"The server had an error while processing your "
                                             f"request ({type(error).__name__})."))
    outcome.succeeded += 1
    outcome.input_tokens += served.input_tokens
    outcome.cached_tokens += served.cache.read
    outcome.output_tokens += served.output_tokens
    return 200, served.body


def _write(sink: TextIO, custom_id: str, response: dict[str, Any] | None,
           error: dict[str, str] | None) -> None:
    line = {"id": new_id("batch_req_", 32), "custom_id": custom_id, "response": response,
            "error": error}
    sink.write(json.dumps(line, separators=_COMPACT) + "\n")


def _parse(raw: bytes) -> dict[str, Any] | None:
    try:
        line = json.loads(raw)
    except ValueError:
        return None
    return line if isinstance(line, dict) else None
