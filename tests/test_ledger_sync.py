"""The ledger with sync code: every deferred call priced at the batch rate beside its live
price, live calls in scopes (and under observe()) at the live rate, each under its call
site, with the providers' usage conventions (the async twin is test_ledger_async)."""

from __future__ import annotations

import anthropic
import openai
import pytest

import deferrable
from deferrable.emulator import Emulator
from deferrable.journal import close_journals
from deferrable.ledger import Tokens, anthropic_tokens, build_report, openai_tokens
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import chat_request, message_request
from tests.ledger_helpers import cost, ledger_rows

LONG = "The quarterly filing restates revenue recognition policies in detail. " * 120


def test_deferred_calls_are_priced_at_the_batch_rate(anthropic_client: anthropic.Anthropic) -> None:
    """Ten deferred calls: one row under the function's name, paid = batch price of their usage, live = 2x."""

    @deferrable.deferrable
    def classify(text: str) -> anthropic.types.Message:
        return anthropic_client.messages.create(**message_request(text))

    messages = [f.result(timeout=60) for f in [classify(f"item {i}") for i in range(10)]]
    tokens = sum((anthropic_tokens(m.usage) for m in messages), Tokens())
    [row] = ledger_rows()
    assert (row["site"], row["mode"], row["model"], row["calls"]) == (
        f"{__name__}.test_deferred_calls_are_priced_at_the_batch_rate.<locals>.classify",
        "batch", "claude-haiku-4-5", 10)
    assert (row["input"], row["output"]) == (tokens.input, tokens.output)
    assert row["paid_usd"] == pytest.approx(cost("claude-haiku-4-5", tokens, batch=True))
    assert row["live_usd"] == pytest.approx(2 * row["paid_usd"])


def test_a_call_that_goes_live_in_a_scope_is_recorded_live(emulator: Emulator) -> None:
    """A call a batch cannot serve (a subclassed client) is recorded at the live price."""

    class Custom(anthropic.Anthropic):
        pass

    with Custom(api_key=DUMMY_KEY, base_url=emulator.url) as client, deferrable.scope():
        message = client.messages.create(**message_request("hello"))
    [row] = ledger_rows()
    assert (row["mode"], row["calls"]) == ("live", 1)
    tokens = anthropic_tokens(message.usage)
    assert row["paid_usd"] == pytest.approx(cost("claude-haiku-4-5", tokens, batch=False))
    assert row["batch_usd"] == pytest.approx(row["paid_usd"] / 2)


def test_a_live_stream_in_a_scope_is_a_candidate_of_unknown_cost(
        anthropic_client: anthropic.Anthropic) -> None:
    """A stream sent live in a scope (usage unknown here) is recorded, unpriced, as a candidate."""
    with deferrable.scope(defer_streams=False), anthropic_client.messages.stream(
            **message_request("stream")) as stream:
        assert stream.get_final_message().content
    [row] = ledger_rows()
    assert (row["mode"], row["calls"], row["unpriced"], row["model"]) == (
        "live", 1, 1, "claude-haiku-4-5")
    [candidate] = build_report(ledger_rows())["candidates"]
    assert candidate["unpriced_calls"] == 1
    assert candidate["site"] == f"{__name__}.test_a_live_stream_in_a_scope_is_a_candidate_of_unknown_cost"


def test_observe_records_live_calls_with_their_site(anthropic_client: anthropic.Anthropic) -> None:
    """Under observe(), live calls outside any scope are recorded under the caller's function."""
    deferrable.observe()
    try:
        for text in ("a", "b", "c"):
            anthropic_client.messages.create(**message_request(text))
    finally:
        deferrable.observe(False)
    [row] = ledger_rows()
    assert row["mode"] == "live"
    assert row["calls"] == 3
    assert row["site"] == f"{__name__}.test_observe_records_live_calls_with_their_site"


def test_live_calls_are_not_recorded_unless_observed(anthropic_client: anthropic.Anthropic) -> None:
    """Patched but not observing: a live call outside a scope costs no ledger write."""
    deferrable.patch()
    anthropic_client.messages.create(**message_request("a"))
    assert ledger_rows() == []


def test_a_rerun_served_from_the_journal_is_not_paid_again(
        anthropic_client: anthropic.Anthropic) -> None:
    """Calls answered from the journal on a rerun add nothing to the ledger."""

    def run() -> None:
        with deferrable.scope():
            futures = [deferrable.deferrable(anthropic_client.messages.create)(
                **message_request(f"q{i}")) for i in range(4)]
        for future in futures:
            future.result(timeout=60)

    run()
    before = ledger_rows()
    close_journals()
    run()
    assert ledger_rows() == before


def test_anthropic_cache_writes_and_reads_are_priced_by_class(
        anthropic_client: anthropic.Anthropic) -> None:
    """A 1-hour cache write then reads: the ledger keeps write, long write and read apart."""
    system = [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral", "ttl": "1h"}}]

    @deferrable.deferrable
    def ask(text: str) -> anthropic.types.Message:
        return anthropic_client.messages.create(**message_request(text, system=system))

    first = ask("first").result(timeout=60)
    rest = [f.result(timeout=60) for f in [ask(f"then {i}") for i in range(3)]]
    tokens = sum((anthropic_tokens(m.usage) for m in [first, *rest]), Tokens())
    assert tokens.cache_write_long > 0
    assert tokens.cache_read > 0
    [row] = ledger_rows()
    assert (row["cache_write_long"], row["cache_read"], row["input"]) == (
        tokens.cache_write_long, tokens.cache_read, tokens.input)
    assert row["paid_usd"] == pytest.approx(cost("claude-haiku-4-5", tokens, batch=True))


def test_openai_cached_tokens_are_taken_out_of_the_prompt(openai_client: openai.OpenAI) -> None:
    """OpenAI's prompt_tokens include cached and written tokens: the ledger counts each once."""

    @deferrable.deferrable
    def ask(text: str) -> openai.types.chat.ChatCompletion:
        return openai_client.chat.completions.create(**chat_request(text, messages=[
            {"role": "system", "content": LONG}, {"role": "user", "content": text}]))

    completions = [ask("first").result(timeout=60), ask("second").result(timeout=60)]
    usages = [c.usage for c in completions if c.usage is not None]
    details = [u.prompt_tokens_details for u in usages if u.prompt_tokens_details is not None]
    prompt = sum(u.prompt_tokens for u in usages)
    cached = sum(d.cached_tokens or 0 for d in details)
    written = sum(d.cache_write_tokens or 0 for d in details)  # billed on gpt-6.2-sol
    assert cached > 0
    assert written > 0
    [row] = ledger_rows()
    assert (row["input"], row["cache_write"], row["cache_read"]) == (
        prompt - cached - written, written, cached)
    tokens = sum((openai_tokens(u) for u in usages), Tokens())
    assert row["paid_usd"] == pytest.approx(cost("gpt-6.2-sol", tokens, batch=True))


def test_an_unknown_model_is_counted_but_never_priced(anthropic_client: anthropic.Anthropic) -> None:
    """A model without a price: its calls and tokens are recorded, its dollars marked unknown."""
    with deferrable.scope():
        future = deferrable.deferrable(anthropic_client.messages.create)(
            **message_request("x", model="claude-unreleased-9"))
    future.result(timeout=60)
    [row] = ledger_rows()
    assert (row["calls"], row["unpriced"], row["paid_usd"], row["live_usd"]) == (1, 1, 0, 0)
    assert row["input"] > 0
