"""OpenTelemetry: a span per deferred call (following the GenAI semantic conventions, plus
its batch, lane, wait and cost), a span per batch that the calls link to, and counters of
calls by mode, batches, tokens and money saved.

Everything goes through `opentelemetry-api`, a no-op until an SDK is configured; with no
tracer provider set, no span is even started. Spans of the SDK instrumentations
(OpenTelemetry's, Sentry's, Logfire's) wrap the SDK's resource methods, above the method
deferrable patches, so they are kept whichever is installed first; a deferred call's span
is then their child.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from .ledger import Tokens, price_of

_tracer = trace.get_tracer("deferrable")
_meter = metrics.get_meter("deferrable")
CALLS = _meter.create_counter(
    "deferrable.calls", unit="{call}",
    description="SDK calls inside deferrable scopes: deferred or live; of the deferred ones, "
                "flex and rescued count those served so")
BATCHES = _meter.create_counter("deferrable.batches", unit="{batch}",
                                description="Batches created")
TOKENS = _meter.create_counter("deferrable.tokens", unit="{token}",
                               description="Tokens of deferred calls' answers, by type")
SAVED = _meter.create_counter("deferrable.saved", unit="USD",
                              description="What deferred answers saved against the live price")


def tracing() -> bool:
    """Whether a tracer provider is configured (else spans are not started at all)."""
    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


@dataclass
class CallTrace:
    """A deferred call's span (None when nothing traces) and when it was made."""

    span: Span | None
    started: float


@contextmanager
def deferred_call(provider: str, path: str, params: Mapping[str, Any],
                  lane: str) -> Iterator[CallTrace]:
    """The span of one deferred call to URL `path`, current while it waits; ended with
    its outcome."""
    CALLS.add(1, {"deferrable.mode": "deferred", "gen_ai.provider.name": provider})
    started = time.monotonic()
    if not tracing():
        yield CallTrace(None, started)
        return
    operation = "embeddings" if path.endswith("/embeddings") else "chat"
    model = str(params.get("model", ""))
    attributes = {"gen_ai.operation.name": operation, "gen_ai.provider.name": provider,
                  "gen_ai.system": provider, "gen_ai.request.model": model,
                  "deferrable.lane": lane}
    with _tracer.start_as_current_span(f"{operation} {model}".strip(), kind=SpanKind.CLIENT,
                                       attributes=attributes,
                                       record_exception=True) as span:
        yield CallTrace(span, started)


def answered(call: CallTrace, provider: str, *, status: int, spent: tuple[str, Tokens] | None,
             batch: tuple[str, Any] | None, lane: str) -> None:
    """Record a deferred call's answer: usage, cost, saving, its batch and its wait."""
    cost = saved = None
    if spent is not None:
        model, tokens = spent
        TOKENS.add(tokens.prompt, {"gen_ai.token.type": "input",
                                   "gen_ai.provider.name": provider})
        TOKENS.add(tokens.output, {"gen_ai.token.type": "output",
                                   "gen_ai.provider.name": provider})
        price = price_of(model)
        live = price.cost(tokens, batch=False) if price is not None else None
        cost = price.cost(tokens, batch=True) if price is not None else None
        if live is not None and cost is not None:
            saved = live - cost
            SAVED.add(saved, {"gen_ai.provider.name": provider})
    span = call.span
    if span is None:
        return
    span.set_attribute("deferrable.lane", lane)
    span.set_attribute("deferrable.wait_s", time.monotonic() - call.started)
    if batch is not None:
        span.set_attribute("deferrable.batch.id", batch[0])
        if batch[1] is not None:
            span.add_link(batch[1])
    if spent is not None:
        span.set_attribute("gen_ai.response.model", spent[0])
        span.set_attribute("gen_ai.usage.input_tokens", spent[1].prompt)
        span.set_attribute("gen_ai.usage.output_tokens", spent[1].output)
    if cost is not None:
        span.set_attribute("deferrable.cost_usd", cost)
    if saved is not None:
        span.set_attribute("deferrable.saved_usd", saved)
    if status >= 400:
        span.set_attribute("error.type", str(status))
        span.set_status(Status(StatusCode.ERROR))


def counted(mode: str, provider: str) -> None:
    """Count a call of a scope that did not wait on a batch (live, flex or rescued)."""
    CALLS.add(1, {"deferrable.mode": mode, "gen_ai.provider.name": provider})


def batch_started(provider: str, batch_id: str, requests: int, *,
                  created: bool) -> tuple[Span | None, Any]:
    """A batch is followed from here (`created` by this process, else resumed): count a
    created one, and start its span (its context is what the calls' spans link to);
    returns (the span, its context), or (None, None) untraced."""
    if created:
        BATCHES.add(1, {"gen_ai.provider.name": provider})
    if not tracing():
        return None, None
    span = _tracer.start_span(f"batch {provider}", kind=SpanKind.CLIENT, attributes={
        "gen_ai.provider.name": provider, "deferrable.batch.id": batch_id,
        "deferrable.batch.requests": requests})
    return span, span.get_span_context()


def batch_ended(span: Span | None, outcome: str) -> None:
    """End a batch's span with how it ended (``done``, ``rescued`` or a give-up reason)."""
    if span is None:
        return
    span.set_attribute("deferrable.batch.outcome", outcome)
    if outcome not in ("done", "rescued"):
        span.set_status(Status(StatusCode.ERROR, outcome))
    span.end()
