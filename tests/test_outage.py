"""Deferred calls ride out an API outage while their batch runs: polls fail and go on, and
when the API is back the batch is read once (Anthropic and OpenAI, sync, on the emulator's
virtual clock)."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anthropic
import openai
import pytest

from deferrable import Deferred
from deferrable import deferrable as defer
from deferrable.emulator import Emulator, Prompt, default_responder
from tests.emulator_helpers import chat_request, message_request, wait_until

TEXTS = [f"Question {i} asked while the API goes down" for i in range(10)]
MODEL = {"anthropic": str(message_request("")["model"]), "openai": str(chat_request("")["model"])}
ENDPOINT = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions"}
POLL = {"anthropic": "GET /v1/messages/batches/{message_batch_id}",
        "openai": "GET /v1/batches/{batch_id}"}
OUTAGE = 300.0
LATENCY = 600.0
FAILED_POLLS = 5
"""Failed polls awaited in each half of the outage."""


def asker(request: pytest.FixtureRequest, provider: str) -> Callable[[str], Deferred[str]]:
    """A sync @deferrable function that asks `provider`'s SDK (the test's client) about a text."""
    if provider == "anthropic":
        claude: anthropic.Anthropic = request.getfixturevalue("anthropic_client")

        @defer
        def ask(text: str) -> str:
            block = claude.messages.create(**message_request(text)).content[0]
            assert block.type == "text"
            return block.text
    else:
        gpt: openai.OpenAI = request.getfixturevalue("openai_client")

        @defer
        def ask(text: str) -> str:
            return gpt.chat.completions.create(**chat_request(text)).choices[0].message.content or ""

    return ask


def expected(provider: str, text: str) -> str:
    """The emulator's answer to `text` from `provider`'s model."""
    return default_responder(Prompt(provider, ENDPOINT[provider], MODEL[provider], "",
                                    (("user", text),), {}))


def polls(emulator: Emulator, provider: str) -> int:
    """Polls of a batch the emulator has counted (refused ones included)."""
    return int(emulator.stats()["requests"].get(POLL[provider], 0))


def failed_polls_pass(emulator: Emulator, provider: str) -> None:
    """Wait until `FAILED_POLLS` more polls have come (the outage refuses them all)."""
    start = polls(emulator, provider)
    wait_until(lambda: polls(emulator, provider) >= start + FAILED_POLLS)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_calls_ride_out_a_five_minute_outage(emulator: Emulator, provider: str,
                                             caplog: pytest.LogCaptureFixture,
                                             request: pytest.FixtureRequest) -> None:
    """Through a 5-minute outage while their batch runs, every call gets its own answer from
    the one batch, billed once, nothing live, the failed polls logged as warnings."""
    caplog.set_level(logging.WARNING, logger="deferrable")
    emulator.batch_latency = LATENCY
    ask = asker(request, provider)
    futures = [ask(text) for text in TEXTS]
    wait_until(lambda: emulator.stats()["batches"].get(f"{provider}_batches", 0) == 1)
    emulator.outage(OUTAGE)
    failed_polls_pass(emulator, provider)
    emulator.advance(OUTAGE / 2)
    failed_polls_pass(emulator, provider)
    emulator.advance(OUTAGE / 2)  # the outage is over; the batch runs on
    emulator.advance(LATENCY)
    answers = [future.result(timeout=60) for future in futures]
    assert answers == [expected(provider, text) for text in TEXTS]
    stats = emulator.stats()
    assert stats["batches"][f"{provider}_batches"] == 1
    assert stats["billed_total"]["batch"]["requests"] == len(TEXTS)
    assert stats["billed_total"]["live"]["requests"] == 0
    assert f"POST {ENDPOINT[provider]}" not in stats["requests"]
    warnings = [record for record in caplog.records
                if record.levelno == logging.WARNING and "polling batch" in record.getMessage()]
    assert len(warnings) >= 2 * FAILED_POLLS
