"""Batches that outlive faults: polls failing for a while, result streams that end short
or break. Every call resolves once, nothing is paid twice (Anthropic and OpenAI)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anthropic
import openai
import pytest

import deferrable
from deferrable import BatchSubmissionError, MissingResultError
from deferrable import deferrable as defer
from deferrable.emulator import Emulator, HttpFault
from deferrable.journal import close_journals
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import chat_request, message_request
from tests.ledger_helpers import ledger_rows

RETRIEVE = {"anthropic": "GET /v1/messages/batches/{message_batch_id}",
            "openai": "GET /v1/batches/{batch_id}"}
RESULTS = {"anthropic": "GET /v1/messages/batches/{message_batch_id}/results",
           "openai": "GET /v1/files/{file_id}/content"}
TEXTS = [f"Sentiment: great {i}" for i in range(5)]


def asker(emulator: Emulator, provider: str) -> Callable[[str], Any]:
    """A sync @deferrable asking one question of `provider` (held until `flush()`)."""
    if provider == "anthropic":
        claude = anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url)

        @defer(max_wait=60)
        def ask_claude(text: str) -> str:
            block = claude.messages.create(**message_request(text)).content[0]
            assert block.type == "text"
            return block.text

        return ask_claude
    gpt = openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url)

    @defer(max_wait=60)
    def ask_gpt(text: str) -> str:
        return gpt.chat.completions.create(**chat_request(text)).choices[0].message.content or ""

    return ask_gpt


def outcomes(ask: Callable[[str], Any]) -> list[Any]:
    """The five calls as one batch: each one's value, or its exception."""
    futures = [ask(text) for text in TEXTS]
    deferrable.flush()
    return [f.exception(timeout=60) or f.result() for f in futures]


def batch_calls_in_ledger() -> int:
    """Deferred calls the ledger recorded as paid."""
    return sum(row["calls"] for row in ledger_rows() if row["mode"] == "batch")


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_polls_failing_for_a_while_do_not_fail_the_calls(
        emulator: Emulator, provider: str, caplog: pytest.LogCaptureFixture) -> None:
    """Twelve failed polls in a row (more than the old limit of eight) are ridden out, with a
    WARNING each: every call gets its answer, from one batch."""
    emulator.inject(HttpFault(RETRIEVE[provider], status=503, times=12, should_retry=False))
    answers = outcomes(asker(emulator, provider))
    assert all(isinstance(answer, str) and answer for answer in answers)
    stats = emulator.stats()
    assert stats["batches"][f"{provider}_batches"] == 1
    assert stats["requests"][RETRIEVE[provider]] >= 13
    assert sum("polling batch" in r.getMessage() for r in caplog.records) == 12


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
@pytest.mark.parametrize("mode", ["clean", "abort"])
def test_a_short_results_stream_is_read_again_and_a_rerun_collects(
        emulator: Emulator, provider: str, mode: str) -> None:
    """A stream that stays short (ended cleanly or cut) is read again; the missing calls then
    fail with MissingResultError, the batch is not recorded as collected, and a rerun reads
    the rest from the same batch: one batch, every line paid once in the ledger."""
    emulator.faults.truncate_results_after = 2
    emulator.faults.truncate_mode = mode  # type: ignore[assignment]
    first = outcomes(asker(emulator, provider))
    missing = [o for o in first if isinstance(o, MissingResultError)]
    assert len(missing) == 3
    assert "a rerun reads them again" in str(missing[0])
    assert emulator.stats()["requests"][RESULTS[provider]] == 5  # read_attempts
    emulator.faults.truncate_results_after = None
    close_journals()  # a rerun: a new process numbers identical calls afresh
    second = outcomes(asker(emulator, provider))
    assert all(isinstance(answer, str) and answer for answer in second)
    assert emulator.stats()["batches"][f"{provider}_batches"] == 1
    assert batch_calls_in_ledger() == 5


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_batch_its_provider_forgot_sends_its_calls_again_once(
        emulator: Emulator, provider: str, caplog: pytest.LogCaptureFixture) -> None:
    """Two polls answered 404: the batch is taken as unknown, its calls go in a new batch
    (once, with a WARNING) and are answered; two batches were created."""
    emulator.inject(HttpFault(RETRIEVE[provider], status=404, times=2, should_retry=False))
    answers = outcomes(asker(emulator, provider))
    assert all(isinstance(answer, str) and answer for answer in answers)
    assert emulator.stats()["batches"][f"{provider}_batches"] == 2
    assert any("unknown to its provider" in record.getMessage() for record in caplog.records)


def test_a_second_forgotten_batch_fails_its_calls(emulator: Emulator) -> None:
    """Forgotten again after going again once: the calls fail with BatchSubmissionError."""
    emulator.inject(HttpFault(RETRIEVE["anthropic"], status=404, times=4, should_retry=False))
    answers = outcomes(asker(emulator, "anthropic"))
    assert all(isinstance(answer, BatchSubmissionError) for answer in answers)
    assert "unknown to its provider" in str(answers[0])
    assert emulator.stats()["batches"]["anthropic_batches"] == 2
