"""What an emulator can be told: faults to inject, limits to enforce, and switches for
the behaviours the providers have not documented (the ⚠ items of the wire spec)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

MIB = 1024 * 1024
DAY = 86_400.0
FLEX_MODELS = frozenset({
    # OpenAI's flex-processing guide at launch (2025-04-17): o3 and o4-mini only.
    "o3", "o4-mini",
    # The pricing page's flex column from 2025-08 (third-party copies of it list these).
    "gpt-5", "gpt-5-mini", "gpt-5-nano",
    # Reported accepted by /v1/responses in 2026 (openai/codex#31562, #37813).
    "gpt-5.5", "gpt-5.6-sol", "gpt-5.6-terra", "gpt-5.6-luna",
    # ⚠ Not verified: the GPT-6 models this project tests with, assumed to offer flex as
    # every flagship family since GPT-5 has. Pass `flex_models` to choose otherwise.
    "gpt-6-sol", "gpt-6-luna", "gpt-6.1-sol", "gpt-6.2-sol", "gpt-6.2-luna"})
"""Models that offer flex processing (``service_tier: "flex"``), each with its dated
snapshots (``o3-2025-04-16``). The specs in shared/specs do not list them: the flex guide
says only that "supported models are listed on the pricing page"."""


@dataclass
class HttpFault:
    """One injected HTTP failure on a route, served `times` times and then spent.

    `route` is a stats key such as ``"POST /v1/messages/batches"`` or ``"*"`` for any
    route. A fault either answers with `status` in the provider's error envelope (with
    `retry-after-ms` / `retry-after` / `x-should-retry` headers when set) or, with
    `drop_connection`, closes the socket without answering.
    """

    route: str
    status: int = 500
    times: int = 1
    retry_after_ms: int | None = 1
    retry_after: float | None = None
    should_retry: bool | None = None
    drop_connection: bool = False

    def matches(self, route: str) -> bool:
        """Whether this fault applies to `route` and has uses left."""
        return self.times > 0 and self.route in ("*", route)


@dataclass
class Hold:
    """A delay on a route, for `times` requests (None: every request) and then spent.

    `route` is a stats key or ``"*"``, as for `HttpFault`. `before` seconds pass after the
    request is counted and before it is handled; a client gone by then is never served
    (the request is lost on the way: no handler runs, nothing is created). `after`
    seconds pass between handling and answering (the batch exists, the client still
    waits); a streamed download is already sent by then.
    """

    route: str
    before: float = 0.0
    after: float = 0.0
    times: int | None = 1

    def matches(self, route: str) -> bool:
        """Whether this hold applies to `route` and has uses left."""
        return (self.times is None or self.times > 0) and self.route in ("*", route)


@dataclass
class Faults:
    """Faults the emulator injects. Mutable while the emulator runs (`emu.faults`).

    Per-request errors: a request whose text holds ``{{error:STATUS}}`` or
    ``{{error:error_type}}`` (e.g. ``{{error:429}}``, ``{{error:overloaded_error}}``)
    fails with that error, live and in a batch alike; `error_rate` fails that share of
    requests with `error_rate_status`, chosen deterministically from `seed`.

    Timing: `holds` delay requests before or after they are handled (every matching
    hold with uses left applies, one use each, and their delays add up);
    `results_line_delay` slows result downloads line by line.

    An outage: until `outage_until` on the emulator's clock, every request is answered
    with `outage_status` (see `Emulator.outage()`). Batches run on meanwhile.
    """

    error_rate: float = 0.0
    error_rate_status: int = 500
    seed: int = 0
    flex_unavailable_rate: float = 0.0
    """Share of live flex requests (``service_tier: "flex"``) refused with OpenAI's
    429 "Resource Unavailable", chosen deterministically from `seed` (a retry may pass)."""
    expire_batches: bool = False
    """Batches expire when their latency ends instead of completing."""
    expire_completed_fraction: float = 0.0
    """Of an expiring batch, the share of requests that completed before expiry."""
    cancel_completed_fraction: float = 0.0
    """Of a canceled batch, the share of requests that still finish (the cancel race)."""
    truncate_results_after: int | None = None
    """Result downloads (Anthropic results, OpenAI file contents) stop after this many lines."""
    truncate_mode: Literal["abort", "clean"] = "abort"
    """`abort` cuts the connection mid-stream; `clean` ends a well-formed but short stream."""
    results_line_delay: float = 0.0
    """Seconds waited before sending each line of a result download (Anthropic results,
    OpenAI file contents), so that a reader can be stopped mid-stream."""
    outage_until: float | None = None
    """While the emulator's clock (`emu.state.clock.now()`) is before this time, every
    request on any route of either provider is answered with `outage_status` in the
    provider's error envelope and ``x-should-retry: false`` (no injected fault or hold is
    spent on it); ``/_emulator/`` routes still answer, and batches keep running: the API is
    unreachable, the batches are not failing."""
    outage_status: int = 503
    """The status of every answer during an outage."""
    http: list[HttpFault] = field(default_factory=list)
    holds: list[Hold] = field(default_factory=list)


@dataclass(frozen=True)
class Limits:
    """Provider limits, lowerable so that tests can reach them cheaply."""

    anthropic_batch_requests: int = 100_000
    anthropic_batch_bytes: int = 256 * MIB
    anthropic_message_bytes: int = 32 * MIB
    openai_batch_requests: int = 50_000
    openai_batch_file_bytes: int = 200 * MIB
    openai_upload_bytes: int = 512 * MIB
    openai_embedding_inputs: int = 50_000
    min_cacheable_tokens: int = 1024


@dataclass(frozen=True)
class Quirks:
    """Switches for behaviour the wire spec marks ⚠ (not verified against the service).

    Each default is the spec's suggestion; flip one to test a pipeline against the
    other reading.
    """

    anthropic_batch_param_errors: Literal["errored", "reject"] = "errored"
    """Disallowed batch params (stream, speed, max_tokens 0, sampling params under
    2026-10-21): `errored` result lines, or `reject` the create call with a 400."""
    anthropic_custom_id_status: int = 400
    """Status for a malformed or duplicate custom_id at batch create."""
    anthropic_batch_service_tier: str | None = "batch"
    """`usage.service_tier` inside batch results."""
    anthropic_results_content_type: str = "application/binary"
    anthropic_bad_state_status: int = 400
    """Status for deleting an in-progress batch or canceling an ended one."""
    anthropic_archived_results_status: int = 404
    anthropic_request_too_large_envelope: bool = True
    """413 bodies use the standard error envelope (False: a plain-text body)."""
    openai_cancelled_error_code: str = "batch_cancelled"
    """Error-file code for requests of a cancelled batch that never ran."""
    openai_cancel_terminal_status: int = 400
    openai_response_cancel_terminal_status: int = 400
    """Status for cancelling a background response that already ended (completed, failed,
    incomplete); one already cancelled is answered as it is (the background guide:
    "Cancelling twice is idempotent")."""
    openai_unrun_count_as_failed: bool = True
    """Requests that never ran (expired / cancelled) count in `request_counts.failed`."""
    openai_output_filename: str = "batch_{batch_id}_output.jsonl"
    openai_error_filename: str = "batch_{batch_id}_error.jsonl"
    openai_batch_file_check: Literal["extension", "content"] = "extension"
    """Batch uploads are checked by their `.jsonl` name, or by parsing the content."""
    openai_missing_input_file: Literal["reject", "fail"] = "reject"
    """A batch naming a missing or non-batch file: 400 at create, or a `failed` batch."""
    openai_stream_in_batch: Literal["line_error", "ignore"] = "line_error"
    """A batch line with `stream: true`: a per-line 400, or served as if not streaming."""
