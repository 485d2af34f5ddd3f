"""Deadlines, sync: a batch still running when a call's deadline (less its margin) comes is
cancelled, what finished is delivered at the batch price, the rest runs live; each call is
paid exactly once (Anthropic and OpenAI, against the emulator)."""

from __future__ import annotations

import time
from typing import Any

import anthropic
import openai
import pytest

import deferrable
from deferrable import DeadlineExceededError
from deferrable import deferrable as defer
from deferrable.emulator import Emulator, HttpFault
from deferrable.engine import engine
from deferrable.journal import close_journals
from tests.emulator_helpers import chat_request, message_request

TEXTS = [f"Sentiment: great {i}" for i in range(12)]
LONG_BATCH = 600.0
"""Seconds the emulator takes for a batch: far past any deadline of these tests."""


Clients = dict[str, Any]


@pytest.fixture
def clients(anthropic_client: anthropic.Anthropic, openai_client: openai.OpenAI) -> Clients:
    """The test's sync clients of the emulator, by provider."""
    return {"anthropic": anthropic_client, "openai": openai_client}


def asker(clients: Clients, provider: str, **options: Any) -> Any:
    """A sync @deferrable function making one call to `provider`, returning its text."""
    if provider == "anthropic":
        claude: anthropic.Anthropic = clients["anthropic"]

        @defer(**{"max_batch_size": len(TEXTS), "max_wait": 60, **options})
        def ask(text: str) -> str:
            block = claude.messages.create(**message_request(text)).content[0]
            assert block.type == "text"
            return block.text
    else:
        gpt: openai.OpenAI = clients["openai"]

        @defer(**{"max_batch_size": len(TEXTS), "max_wait": 60, **options})
        def ask(text: str) -> str:
            return gpt.chat.completions.create(**chat_request(text)).choices[0].message.content or ""
    return ask


def billed(emulator: Emulator, mode: str) -> int:
    """Requests the emulator billed in `mode` (``batch`` or ``live``)."""
    return int(emulator.stats()["billed_total"][mode]["requests"])


def cancels(emulator: Emulator) -> int:
    """Batch cancel calls the emulator answered."""
    return sum(count for route, count in emulator.stats()["requests"].items()
               if route.endswith("/cancel"))


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_deadline_rescues_what_the_batch_did_not_finish(emulator: Emulator, provider: str,
                                                          clients: Clients) -> None:
    """Half the batch finished before the cancel: those are delivered at the batch price,
    the rest live; every call answered before its deadline and paid exactly once."""
    emulator.batch_latency = LONG_BATCH
    emulator.faults.cancel_completed_fraction = 0.5
    ask = asker(clients, provider, deadline=4.0, rescue_margin=3.0)
    started = time.monotonic()
    futures = [ask(text) for text in TEXTS]
    answers = [future.result(timeout=30) for future in futures]
    assert time.monotonic() - started < 4.0
    assert all(answers)
    assert cancels(emulator) == 1
    in_batch, live = billed(emulator, "batch"), billed(emulator, "live")
    assert in_batch + live == len(TEXTS)
    assert 0 < in_batch < len(TEXTS)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_on_deadline_raise_makes_no_live_call(emulator: Emulator, provider: str,
                                              clients: Clients) -> None:
    """With on_deadline='raise' the unfinished calls raise DeadlineExceededError, the
    finished ones return, and nothing goes live."""
    emulator.batch_latency = LONG_BATCH
    emulator.faults.cancel_completed_fraction = 0.5
    ask = asker(clients, provider, deadline=2.0, rescue_margin=1.5, on_deadline="raise")
    futures = [ask(text) for text in TEXTS]
    errors = [future.exception(timeout=30) for future in futures]
    raised = [e for e in errors if e is not None]
    assert raised
    assert all(isinstance(e, DeadlineExceededError) for e in raised)
    assert len(raised) == len(TEXTS) - billed(emulator, "batch")
    assert billed(emulator, "live") == 0


def test_a_call_too_near_its_deadline_goes_live_without_a_batch(
        emulator: Emulator, clients: Clients) -> None:
    """A deadline inside the rescue margin: no batch is created, the call runs live."""
    ask = asker(clients, "anthropic", deadline=1.0, rescue_margin=120.0)
    assert ask("Sentiment: great").result(timeout=30) == "positive"
    assert emulator.stats()["batches"] == {}
    assert billed(emulator, "live") == 1


def test_a_rerun_is_served_the_rescued_answers(
        emulator: Emulator, clients: Clients) -> None:
    """The live answers of rescued calls are journalled: the same calls again cost nothing."""
    emulator.batch_latency = LONG_BATCH
    ask = asker(clients, "anthropic", deadline=2.0, rescue_margin=1.5)
    first = [future.result(timeout=30) for future in [ask(text) for text in TEXTS]]
    assert billed(emulator, "live") == len(TEXTS)
    engine().finish_cleanups()  # the answers are journalled off the callers' threads
    close_journals()  # a rerun: a new process numbers identical calls afresh
    again = [future.result(timeout=30) for future in [ask(text) for text in TEXTS]]
    assert again == first
    assert billed(emulator, "live") == len(TEXTS)
    assert billed(emulator, "batch") == 0


def test_batches_ending_before_the_deadline_are_untouched(
        emulator: Emulator, clients: Clients) -> None:
    """A batch that ends in time is delivered as usual: no cancel, nothing live."""
    ask = asker(clients, "openai", deadline=60.0, rescue_margin=30.0)
    assert all(future.result(timeout=30) for future in [ask(text) for text in TEXTS])
    assert cancels(emulator) == 0
    assert billed(emulator, "live") == 0
    assert billed(emulator, "batch") == len(TEXTS)


def test_a_scope_deadline_rescues_a_plain_sync_call(emulator: Emulator,
                                                    anthropic_client: anthropic.Anthropic) -> None:
    """`with scope(deadline=...)` on the caller's own thread: the call is rescued live."""
    emulator.batch_latency = LONG_BATCH
    with deferrable.scope(deadline=1.5, rescue_margin=1.0):
        message = anthropic_client.messages.create(**message_request("Sentiment: awful"))
    block = message.content[0]
    assert block.type == "text"
    assert block.text == "negative"
    assert cancels(emulator) == 1
    assert billed(emulator, "live") == 1


def test_a_rescued_call_the_sdk_retries_stays_live(
        emulator: Emulator, clients: Clients) -> None:
    """A rescued call answered 529 live is retried by its SDK, live again: never batched anew."""
    emulator.batch_latency = LONG_BATCH
    emulator.faults.http.append(HttpFault("POST /v1/messages", status=529, times=1))
    ask = asker(clients, "anthropic", deadline=1.5, rescue_margin=1.0)
    answers = [future.result(timeout=30) for future in [ask(text) for text in TEXTS[:3]]]
    assert all(answers)
    assert emulator.stats()["batches"]["anthropic_batches"] == 1
    assert emulator.stats()["requests"]["POST /v1/messages"] == 4
    assert billed(emulator, "live") == 3
