"""Transient results go again in a later batch, as the SDKs retry them live; permanent
errors raise at once (Anthropic and OpenAI, sync and async)."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import openai
import pytest

from deferrable import BatchExpiredError
from deferrable import deferrable as defer
from deferrable.emulator import Emulator
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import chat_request, message_request, wait_until

TEXTS = [f"Sentiment: great {i}" for i in range(20)]


def ask_all(emulator: Emulator, provider: str, texts: list[str], **options: Any) -> list[Any]:
    """The calls as sync @deferrable futures: each one's text, or its exception."""
    if provider == "anthropic":
        claude = anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url)

        @defer(**options)
        def ask(text: str) -> str:
            block = claude.messages.create(**message_request(text)).content[0]
            assert block.type == "text"
            return block.text
    else:
        gpt = openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url)

        @defer(**options)
        def ask(text: str) -> str:
            return gpt.chat.completions.create(**chat_request(text)).choices[0].message.content or ""

    futures = [ask(text) for text in texts]
    return [f.exception(timeout=60) or f.result() for f in futures]


def billed(emulator: Emulator) -> int:
    """Requests the emulator billed at the batch price."""
    return int(emulator.stats()["billed_total"]["batch"]["requests"])


def batches(emulator: Emulator, provider: str) -> int:
    """Batches the emulator accepted for `provider`."""
    return int(emulator.stats()["batches"].get(f"{provider}_batches", 0))


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
@pytest.mark.parametrize("status", [529, 500, 429])
def test_transient_errors_are_resubmitted_until_they_pass(emulator: Emulator, provider: str,
                                                           status: int) -> None:
    """With 30 % of batch lines failing transiently, every call still succeeds, in later
    batches, and each is paid for once."""
    emulator.faults.error_rate, emulator.faults.error_rate_status = 0.3, status
    outcomes = ask_all(emulator, provider, TEXTS, max_retries=6)
    assert all(isinstance(outcome, str) and outcome for outcome in outcomes), outcomes
    assert batches(emulator, provider) >= 2
    assert billed(emulator) == len(TEXTS)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_resubmission_stops_at_max_retries(emulator: Emulator, provider: str) -> None:
    """Requests whose batches always expire go again `max_retries` times, then raise
    BatchExpiredError; nothing is paid."""
    emulator.faults.expire_batches = True
    outcomes = ask_all(emulator, provider, TEXTS[:3], max_retries=2)
    assert all(isinstance(outcome, BatchExpiredError) for outcome in outcomes), outcomes
    assert batches(emulator, provider) == 3
    assert billed(emulator) == 0


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_permanent_errors_raise_at_once(emulator: Emulator, provider: str) -> None:
    """A 400 in a batch line raises the SDK's BadRequestError, with no second batch."""
    error = anthropic.BadRequestError if provider == "anthropic" else openai.BadRequestError
    outcomes = ask_all(emulator, provider, ["{{error:400}} please", "Sentiment: fine"])
    assert isinstance(outcomes[0], error)
    assert isinstance(outcomes[1], str)
    assert batches(emulator, provider) == 1


@pytest.mark.asyncio
async def test_async_calls_are_resubmitted_too(
        async_anthropic_client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """Async deferred calls with transient line errors succeed from later batches."""
    emulator.faults.error_rate, emulator.faults.error_rate_status = 0.3, 529

    @defer(max_retries=6)
    async def ask(text: str) -> str:
        block = (await async_anthropic_client.messages.create(**message_request(text))).content[0]
        assert block.type == "text"
        return block.text

    answers = await asyncio.gather(*(ask(text) for text in TEXTS))
    assert all(answers)
    assert batches(emulator, "anthropic") >= 2
    assert billed(emulator) == len(TEXTS)


def test_a_batch_cancelled_by_someone_else_is_sent_again(anthropic_client: anthropic.Anthropic,
                                                         emulator: Emulator) -> None:
    """A batch cancelled at the provider (not through `deferrable cancel`) has its requests
    sent again in a new batch, and the call gets its answer."""
    emulator.batch_latency = 60
    ask = defer(lambda text: anthropic_client.messages.create(**message_request(text)).content[0])
    future = ask("Sentiment: great")
    wait_until(lambda: batches(emulator, "anthropic") == 1)
    [batch] = anthropic_client.messages.batches.list().data
    emulator.batch_latency = 0
    anthropic_client.messages.batches.cancel(batch.id)
    assert future.result(timeout=60).text == "positive"
    assert batches(emulator, "anthropic") == 2
