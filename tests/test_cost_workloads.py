"""The arithmetic behind the seed workloads' costs, pinned with the price table and
`Tokens`; and the benchmark's legal-documents and cached-summaries workloads run small
against the emulator (benchmarks/cost_before_after.py)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deferrable.ledger import Price, Tokens, anthropic_tokens, openai_tokens, price_of

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "cost_before_after.py"
CENT = 1e-9
"""Tolerance of dollar sums (float rounding only)."""


def price(model: str) -> Price:
    """The table's price of `model`, which must have one."""
    found = price_of(model)
    assert found is not None, model
    return found


def usd(model: str, tokens: Tokens, *, batch: bool) -> float:
    """What `tokens` of `model` cost, which must be known."""
    cost = price(model).cost(tokens, batch=batch)
    assert cost is not None, (model, tokens)
    return cost


def test_legal_documents_cost_60_live_and_30_in_a_batch() -> None:
    """1,000 documents of 50,000 input + 5,000 output tokens on claude-3-5-haiku: $60 / $30."""
    rate = price("claude-3-5-haiku")
    assert (rate.input, rate.output) == (0.80, 4.00)
    document = Tokens(input=50_000, output=5_000)
    assert 1_000 * usd("claude-3-5-haiku", document, batch=False) == pytest.approx(60.0, abs=CENT)
    assert 1_000 * usd("claude-3-5-haiku", document, batch=True) == pytest.approx(30.0, abs=CENT)
    assert usd("claude-3-5-haiku", document, batch=False) == pytest.approx(
        (50_000 * 0.80 + 5_000 * 4.00) / 1e6, abs=CENT)


def test_cached_summaries_batch_input_is_about_5_percent_of_live_uncached() -> None:
    """100,000 calls reading a 2,000-token cached prompt in a batch pay ~5 % of live uncached input."""
    calls, system, user = 100_000, 2_000, 10
    first = Tokens(input=user, cache_write=system)  # the one 5-minute write
    later = Tokens(input=user, cache_read=system)
    batch_input = (usd("claude-haiku-4-5", first, batch=True)
                   + (calls - 1) * usd("claude-haiku-4-5", later, batch=True))
    live_uncached_input = calls * usd("claude-haiku-4-5", Tokens(input=system + user), batch=False)
    # $1.00/M input, write $1.25/M, read $0.10/M, all halved in a batch.
    assert batch_input == pytest.approx(
        ((user + system * 1.25) + (calls - 1) * (user + system * 0.10)) * 0.5 / 1e6, abs=CENT)
    assert live_uncached_input == pytest.approx(calls * (system + user) / 1e6, abs=CENT)
    assert batch_input / live_uncached_input == pytest.approx(0.05, rel=0.05)


def test_sentiment_calls_cost_twice_as_much_live() -> None:
    """5,000 sentiment calls (30 input, 2 output tokens each) cost live exactly 2x the batch."""
    call = Tokens(input=30, output=2)
    live = 5_000 * usd("claude-haiku-4-5", call, batch=False)
    batch = 5_000 * usd("claude-haiku-4-5", call, batch=True)
    assert live == pytest.approx(5_000 * (30 * 1.00 + 2 * 5.00) / 1e6, abs=CENT)
    assert live == pytest.approx(2 * batch, abs=CENT)


def test_batch_discount_stacks_with_caching() -> None:
    """A cache read in a batch costs 0.05x the input price per token (0.1x read, 0.5x batch)."""
    tokens = 100_000  # under claude-sonnet-4-6's long-context threshold
    for model in ("claude-haiku-4-5", "claude-3-5-haiku", "claude-sonnet-4-6"):
        rate = price(model)
        read = usd(model, Tokens(cache_read=tokens), batch=True)
        write = usd(model, Tokens(cache_write=tokens), batch=True)
        assert read == pytest.approx(0.05 * rate.input * tokens / 1e6, abs=CENT), model
        assert write == pytest.approx(0.625 * rate.input * tokens / 1e6, abs=CENT), model


def test_unknown_model_or_unpriced_class_has_no_price() -> None:
    """An unknown model has no price; tokens in a class without a price cost None, not $0."""
    assert price_of("claude-nonexistent-9") is None
    embedding = price("text-embedding-3-small")
    assert embedding.cache_read is None
    assert embedding.cost(Tokens(input=100, cache_read=50), batch=False) is None
    assert embedding.cost(Tokens(input=100, cache_read=50), batch=True) is None
    assert embedding.cost(Tokens(input=1_000_000), batch=False) == pytest.approx(0.02, abs=CENT)
    custom = Price(input=1.0, output=2.0, cache_write=None, cache_write_long=None,
                   cache_read=None)
    assert custom.cost(Tokens(input=10, cache_write=5), batch=False) is None


def test_usage_conventions_of_both_providers() -> None:
    """Anthropic's input excludes cache writes; OpenAI's prompt tokens include cache reads."""
    assert anthropic_tokens({"input_tokens": 10, "cache_creation_input_tokens": 2000,
                             "cache_read_input_tokens": 0, "output_tokens": 5}) == Tokens(
        input=10, cache_write=2000, cache_write_long=0, cache_read=0, output=5)
    assert openai_tokens({"prompt_tokens": 2010, "completion_tokens": 5,
                          "prompt_tokens_details": {"cached_tokens": 2000}}) == Tokens(
        input=10, cache_read=2000, output=5)


def test_long_context_request_pays_double_input_and_one_and_a_half_output() -> None:
    """A 250,000-token prompt on claude-sonnet-4-6 pays 2x input and 1.5x output."""
    long = Tokens(input=250_000, output=1_000)
    assert usd("claude-sonnet-4-6", long, batch=False) == pytest.approx(
        (250_000 * 3.00 * 2 + 1_000 * 15.00 * 1.5) / 1e6, abs=CENT)
    assert usd("claude-sonnet-4-6", long, batch=True) == pytest.approx(
        (250_000 * 3.00 * 2 + 1_000 * 15.00 * 1.5) / 2e6, abs=CENT)
    cached = Tokens(input=50_000, cache_read=200_000)  # cache tokens count toward the prompt
    assert usd("claude-sonnet-4-6", cached, batch=False) == pytest.approx(
        (50_000 * 3.00 + 200_000 * 0.30) * 2 / 1e6, abs=CENT)
    short = Tokens(input=150_000, output=1_000)
    assert usd("claude-sonnet-4-6", short, batch=False) == pytest.approx(
        (150_000 * 3.00 + 1_000 * 15.00) / 1e6, abs=CENT)


def test_dated_model_id_has_its_alias_price() -> None:
    """claude-haiku-4-5-20251001 is priced as claude-haiku-4-5."""
    assert price_of("claude-haiku-4-5-20251001") == price("claude-haiku-4-5")


@pytest.fixture(scope="module")
def benchmark() -> Iterator[Any]:
    """benchmarks/cost_before_after.py, imported from its path (benchmarks is no package)."""
    spec = importlib.util.spec_from_file_location("cost_before_after", BENCHMARK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_benchmark_legal_documents_cost_what_the_arithmetic_says(benchmark: Any,
                                                                tmp_path: Path) -> None:
    """4 legal documents through the benchmark cost $0.24 live, $0.12 deferred, on the emulator."""
    outcome = benchmark.run_workload(benchmark.WORKLOADS[3], 4, tmp_path)
    live, deferred = outcome.live, outcome.deferred
    assert live.paid == pytest.approx(0.24, abs=CENT)
    assert deferred.paid == pytest.approx(0.12, abs=CENT)
    for way in (live, deferred):
        assert way.report["tokens"]["input"] == 4 * 50_000
        assert way.report["tokens"]["output"] == 4 * 5_000
        assert way.answered == 4
        assert way.ledger_matches_emulator()
    assert live.requests == {"POST /v1/messages": 4}
    assert deferred.requests["POST /v1/messages/batches"] == 1
    assert "POST /v1/messages" not in deferred.requests
    expected = benchmark.WORKLOADS[3].expected(4)
    assert (expected.live_usd, expected.batch_usd) == pytest.approx((0.24, 0.12), abs=CENT)


def test_benchmark_cached_summaries_write_once_and_read_after(benchmark: Any,
                                                             tmp_path: Path) -> None:
    """50 cached summaries: one cache write and 49 reads each way, costs as the arithmetic says."""
    outcome = benchmark.run_workload(benchmark.WORKLOADS[4], 50, tmp_path)
    expected = benchmark.WORKLOADS[4].expected(50)
    for way in (outcome.live, outcome.deferred):
        tokens = way.report["tokens"]
        assert (tokens["cache_write"], tokens["cache_read"]) == (2_000, 49 * 2_000), way.name
        assert way.ledger_matches_emulator()
    assert outcome.live.paid == pytest.approx(expected.live_usd, abs=CENT)
    assert outcome.deferred.paid == pytest.approx(expected.batch_usd, abs=CENT)
