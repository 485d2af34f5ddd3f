"""OpenTelemetry: a span per deferred call (GenAI conventions, batch id, lane, wait, cost)
linked to its batch's span, and counters of calls, batches, tokens and money saved; read
from the OpenTelemetry SDK's in-memory exporters (Anthropic and OpenAI, sync and async)."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import openai
import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from deferrable import deferrable as defer
from deferrable.engine import engine
from tests.emulator_helpers import chat_request, message_request

_spans = InMemorySpanExporter()
_metrics = InMemoryMetricReader()
_installed = False


@pytest.fixture
def telemetry() -> tuple[InMemorySpanExporter, InMemoryMetricReader]:
    """The process's OpenTelemetry SDK (installed once: providers are set once per
    process), with the spans of earlier tests cleared."""
    global _installed
    if not _installed:
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(_spans))
        trace.set_tracer_provider(tracer_provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[_metrics]))
        _installed = True
    _spans.clear()
    return _spans, _metrics


def finished(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    """The spans ended so far (batch spans end once their results are delivered)."""
    engine().finish_cleanups()
    return list(spans.get_finished_spans())


def counter(reader: InMemoryMetricReader, name: str, **attributes: Any) -> float:
    """The current sum of counter `name` over the points whose attributes include these."""
    data = reader.get_metrics_data()
    total = 0.0
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    if all(point.attributes.get(k) == v for k, v in attributes.items()):
                        total += point.value
    return total


def check_spans(spans: list[ReadableSpan], provider: str, model: str, count: int) -> None:
    """`count` call spans of `provider`, named for their model, each linked to the one
    batch span whose id it names, with usage and cost."""
    [batch] = [s for s in spans if s.name == f"batch {provider}"]
    calls = [s for s in spans if s.name == f"chat {model}"]
    assert len(calls) == count
    assert batch.attributes is not None
    assert batch.attributes["deferrable.batch.outcome"] == "done"
    batch_id = batch.attributes["deferrable.batch.id"]
    for span in calls:
        attributes = span.attributes or {}
        assert attributes["gen_ai.operation.name"] == "chat"
        assert attributes["gen_ai.provider.name"] == provider
        assert attributes["gen_ai.request.model"] == model
        assert attributes["gen_ai.response.model"]
        assert int(attributes["gen_ai.usage.output_tokens"]) > 0
        assert attributes["deferrable.batch.id"] == batch_id
        assert attributes["deferrable.lane"] == "batch"
        assert float(attributes["deferrable.wait_s"]) >= 0
        assert [link.context.span_id for link in span.links] == [batch.context.span_id]


def test_sync_calls_have_spans_linked_to_their_batch(
        telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader],
        anthropic_client: anthropic.Anthropic) -> None:
    """Three deferred Anthropic calls: three call spans, one batch span they link to, and
    the counters moved by three calls, one batch and a positive saving."""
    spans, reader = telemetry
    before = (counter(reader, "deferrable.calls", **{"deferrable.mode": "deferred"}),
              counter(reader, "deferrable.batches"), counter(reader, "deferrable.saved"))
    ask = defer(lambda text: anthropic_client.messages.create(**message_request(text)))
    assert all(f.result(timeout=60) for f in [ask(f"Sentiment: fine {i}") for i in range(3)])
    model = str(message_request("")["model"])
    check_spans(finished(spans), "anthropic", model, 3)
    assert counter(reader, "deferrable.calls", **{"deferrable.mode": "deferred"}) == before[0] + 3
    assert counter(reader, "deferrable.batches") == before[1] + 1
    assert counter(reader, "deferrable.saved") > before[2]


@pytest.mark.asyncio
async def test_async_calls_have_spans_linked_to_their_batch(
        telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader],
        async_openai_client: openai.AsyncOpenAI) -> None:
    """Three gathered OpenAI calls: three call spans linked to their one batch span."""
    spans, _ = telemetry

    @defer
    async def ask(text: str) -> Any:
        return await async_openai_client.chat.completions.create(**chat_request(text))

    await asyncio.gather(*(ask(f"Sentiment: fine {i}") for i in range(3)))
    model = str(chat_request("")["model"])
    check_spans(await asyncio.to_thread(finished, spans), "openai", model, 3)


def test_a_flex_call_has_a_span_without_a_batch(
        telemetry: tuple[InMemorySpanExporter, InMemoryMetricReader],
        openai_client: openai.OpenAI) -> None:
    """A call served by flex: its span says lane flex, with usage, and links to no batch."""
    spans, reader = telemetry
    before = counter(reader, "deferrable.calls", **{"deferrable.mode": "flex"})
    ask = defer(lane="flex")(lambda text: openai_client.chat.completions.create(
        **chat_request(text)))
    assert ask("Sentiment: great").result(timeout=60)
    [span] = [s for s in finished(spans) if s.name.startswith("chat ")]
    assert (span.attributes or {})["deferrable.lane"] == "flex"
    assert int((span.attributes or {})["gen_ai.usage.output_tokens"]) > 0
    assert not span.links
    assert counter(reader, "deferrable.calls", **{"deferrable.mode": "flex"}) == before + 1
