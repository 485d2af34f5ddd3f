"""Budgets: a scope's max_cost_usd refuses, before submitting anything, a call that could
take the scope's spend past the cap; the others still resolve (sync and async)."""

from __future__ import annotations

import asyncio
import logging

import anthropic
import pytest

import deferrable
from deferrable import BudgetExceededError
from deferrable.emulator import Emulator
from deferrable.providers.anthropic import upper_bound
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import message_request
from tests.ledger_helpers import cost


def most_a_call_costs(text: str, *, batch: bool = True) -> float:
    """The budget's estimate of one call: its prompt and max_tokens, at the batch price (a
    deferred call without a deadline) or the live one."""
    model, tokens = upper_bound(message_request(text))
    return cost(model, tokens, batch=batch)


def batch_requests(emulator: Emulator) -> int:
    """Requests the emulator accepted in batches."""
    return int(emulator.stats()["batches"].get("anthropic_batch_requests", 0))


def test_calls_past_the_cap_are_refused_before_submission(anthropic_client: anthropic.Anthropic,
                                                          emulator: Emulator) -> None:
    """Cap = 2.5 calls' worth: of five pending calls two go, three raise BudgetExceededError."""

    @deferrable.deferrable(max_cost_usd=2.5 * most_a_call_costs("q0"))
    def ask(text: str) -> anthropic.types.Message:
        return anthropic_client.messages.create(**message_request(text))

    futures = [ask(f"q{i}") for i in range(5)]
    outcomes = [f.exception(timeout=60) for f in futures]
    refused = [e for e in outcomes if isinstance(e, BudgetExceededError)]
    assert len(refused) == 3
    assert outcomes[:2] == [None, None]
    assert "past its budget" in str(refused[0])
    assert batch_requests(emulator) == 2


def test_spend_is_charged_at_what_calls_cost(anthropic_client: anthropic.Anthropic) -> None:
    """Once answered, a call holds its batch cost, not its estimate: more calls fit than
    the estimates alone allow, and then the cap still holds."""
    answered, error = 0, None
    with deferrable.scope(max_cost_usd=1.5 * most_a_call_costs("q0")):
        while error is None and answered < 100:  # one at a time: each settles first
            error = deferrable.deferrable(anthropic_client.messages.create)(
                **message_request(f"q{answered}")).exception(timeout=60)
            answered += error is None
    assert isinstance(error, BudgetExceededError)
    assert answered >= 2


def test_a_model_without_a_price_cannot_run_under_a_budget(
        anthropic_client: anthropic.Anthropic, emulator: Emulator) -> None:
    """Under a budget, a call to a model of unknown price is refused rather than counted as $0."""
    with deferrable.scope(max_cost_usd=100.0), pytest.raises(BudgetExceededError, match="unknown"):
        deferrable.deferrable(anthropic_client.messages.create)(
            **message_request("x", model="claude-unreleased-9")).result(timeout=60)
    assert batch_requests(emulator) == 0


@pytest.mark.asyncio
async def test_calls_past_the_cap_are_refused_before_submission_async(
        async_anthropic_client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """Async: of five gathered calls under a 2.5-call cap, two go and three are refused."""
    async with deferrable.scope(max_cost_usd=2.5 * most_a_call_costs("q0")):
        outcomes = await asyncio.gather(
            *(async_anthropic_client.messages.create(**message_request(f"q{i}")) for i in range(5)),
            return_exceptions=True)
    assert sum(isinstance(o, BudgetExceededError) for o in outcomes) == 3
    assert sum(isinstance(o, anthropic.types.Message) for o in outcomes) == 2
    assert await asyncio.to_thread(batch_requests, emulator) == 2


@pytest.mark.asyncio
async def test_a_call_that_must_go_live_is_held_to_the_budget_too(emulator: Emulator) -> None:
    """A call going live in a scope (a subclassed client) is refused by the budget before it is sent."""

    class Custom(anthropic.AsyncAnthropic):
        pass

    async with Custom(api_key=DUMMY_KEY, base_url=emulator.url) as client, \
            deferrable.scope(max_cost_usd=0.5 * most_a_call_costs("x", batch=False)):
        with pytest.raises(BudgetExceededError):
            await client.messages.create(**message_request("x"))
    assert "POST /v1/messages" not in emulator.stats()["requests"]


def test_a_call_that_must_go_live_is_held_to_the_budget_too_sync(emulator: Emulator) -> None:
    """Sync: a call going live in a scope is refused by the budget before it is sent."""

    class Custom(anthropic.Anthropic):
        pass

    with Custom(api_key=DUMMY_KEY, base_url=emulator.url) as client, \
            deferrable.scope(max_cost_usd=0.5 * most_a_call_costs("x", batch=False)), \
            pytest.raises(BudgetExceededError):
        client.messages.create(**message_request("x"))
    assert "POST /v1/messages" not in emulator.stats()["requests"]


def test_failed_live_attempts_hold_nothing(anthropic_client: anthropic.Anthropic) -> None:
    """A live call in a scope whose attempts all fail (the SDK retrying a 500) leaves the
    budget as it was: the next call still fits a cap of one call's worth."""
    failing = message_request("{{error:500}}", speed="fast")  # fast mode goes live
    with deferrable.scope(max_cost_usd=1.2 * most_a_call_costs("{{error:500}}", batch=False)):
        with pytest.raises(anthropic.InternalServerError):
            anthropic_client.with_options(max_retries=2).messages.create(**failing)
        assert anthropic_client.messages.create(**message_request("fits", speed="fast"))


@pytest.mark.parametrize(("options", "admitted"), [
    ({}, 4), ({"deadline": 3600}, 2), ({"deadline": 3600, "on_deadline": "raise"}, 4)])
def test_a_budget_admits_what_the_lane_can_bill(anthropic_client: anthropic.Anthropic,
                                                emulator: Emulator, options: dict[str, object],
                                                admitted: int) -> None:
    """A cap of 2.4 live worst cases admits 4 deferred calls (held at the batch price), but
    only 2 when a deadline may rescue them live; 'raise' makes them batch-only again."""
    cap = 2.4 * most_a_call_costs("q0", batch=False)

    @deferrable.deferrable(max_cost_usd=cap, **options)
    def ask(text: str) -> anthropic.types.Message:
        return anthropic_client.messages.create(**message_request(text))

    outcomes = [f.exception(timeout=60) for f in [ask(f"q{i}") for i in range(6)]]
    assert sum(outcome is None for outcome in outcomes) == admitted
    assert batch_requests(emulator) == admitted


def test_a_scope_ends_saying_what_its_budget_spent_and_held(
        anthropic_client: anthropic.Anthropic, caplog: pytest.LogCaptureFixture) -> None:
    """The scope's closing INFO line gives the cap, the spend and what is still held."""
    caplog.set_level(logging.INFO, logger="deferrable")
    with deferrable.scope(max_cost_usd=1.0):
        anthropic_client.messages.create(**message_request("Sentiment: great"))
    [line] = [m for m in caplog.messages if "scope" in m and "ended" in m]
    assert "1 deferred, 0 live; budget $1.000000: spent $0.0" in line
    assert line.endswith("held $0.000000")
    spent = float(line.split("spent $")[1].split(",")[0])
    assert 0 < spent < most_a_call_costs("Sentiment: great")
