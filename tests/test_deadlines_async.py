"""Deadlines, async: a batch still running when a call's deadline (less its margin) comes
is cancelled, what finished is delivered at the batch price, the rest runs live on the
caller's loop; each call is paid exactly once (Anthropic and OpenAI, against the emulator)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anthropic
import openai
import pytest
import pytest_asyncio

import deferrable
from deferrable import DeadlineExceededError
from deferrable import deferrable as defer
from deferrable.emulator import Emulator
from deferrable.engine import engine
from deferrable.journal import close_journals
from tests.emulator_helpers import chat_request, message_request
from tests.test_deadlines_sync import LONG_BATCH, TEXTS, billed, cancels

pytestmark = pytest.mark.asyncio


Clients = dict[str, Any]


@pytest_asyncio.fixture
async def clients(async_anthropic_client: anthropic.AsyncAnthropic,
                  async_openai_client: openai.AsyncOpenAI) -> Clients:
    """The test's async clients of the emulator, by provider."""
    return {"anthropic": async_anthropic_client, "openai": async_openai_client}


def asker(clients: Clients, provider: str, **options: Any) -> Any:
    """An async @deferrable function making one call to `provider`, returning its text."""
    if provider == "anthropic":
        claude: anthropic.AsyncAnthropic = clients["anthropic"]

        @defer(**{"max_batch_size": len(TEXTS), "max_wait": 60, **options})
        async def ask(text: str) -> str:
            block = (await claude.messages.create(**message_request(text))).content[0]
            assert block.type == "text"
            return block.text
    else:
        gpt: openai.AsyncOpenAI = clients["openai"]

        @defer(**{"max_batch_size": len(TEXTS), "max_wait": 60, **options})
        async def ask(text: str) -> str:
            answer = await gpt.chat.completions.create(**chat_request(text))
            return answer.choices[0].message.content or ""
    return ask


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_a_deadline_rescues_what_the_batch_did_not_finish(emulator: Emulator, provider: str,
                                                                clients: Clients) -> None:
    """Half the batch finished before the cancel: those are delivered at the batch price,
    the rest live; every call answered before its deadline and paid exactly once."""
    emulator.batch_latency = LONG_BATCH
    emulator.faults.cancel_completed_fraction = 0.5
    ask = asker(clients, provider, deadline=4.0, rescue_margin=3.0)
    started = time.monotonic()
    answers = await asyncio.wait_for(asyncio.gather(*(ask(text) for text in TEXTS)), 30)
    assert time.monotonic() - started < 4.0
    assert all(answers)
    assert cancels(emulator) == 1
    in_batch, live = billed(emulator, "batch"), billed(emulator, "live")
    assert in_batch + live == len(TEXTS)
    assert 0 < in_batch < len(TEXTS)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
async def test_on_deadline_raise_makes_no_live_call(emulator: Emulator, provider: str,
                                          clients: Clients) -> None:
    """With on_deadline='raise' the unfinished calls raise DeadlineExceededError, the
    finished ones return, and nothing goes live."""
    emulator.batch_latency = LONG_BATCH
    emulator.faults.cancel_completed_fraction = 0.5
    ask = asker(clients, provider, deadline=2.0, rescue_margin=1.5, on_deadline="raise")
    outcomes = await asyncio.wait_for(
        asyncio.gather(*(ask(text) for text in TEXTS), return_exceptions=True), 30)
    raised = [o for o in outcomes if isinstance(o, BaseException)]
    assert raised
    assert all(isinstance(e, DeadlineExceededError) for e in raised)
    assert len(raised) == len(TEXTS) - billed(emulator, "batch")
    assert billed(emulator, "live") == 0


async def test_a_call_too_near_its_deadline_goes_live_without_a_batch(
        emulator: Emulator, clients: Clients) -> None:
    """A deadline inside the rescue margin: no batch is created, the call runs live."""
    ask = asker(clients, "anthropic", deadline=1.0, rescue_margin=120.0)
    assert await asyncio.wait_for(ask("Sentiment: great"), 30) == "positive"
    assert emulator.stats()["batches"] == {}
    assert billed(emulator, "live") == 1


async def test_a_rerun_is_served_the_rescued_answers(emulator: Emulator,
                                                    clients: Clients) -> None:
    """The live answers of rescued calls are journalled: the same calls again cost nothing."""
    emulator.batch_latency = LONG_BATCH
    ask = asker(clients, "anthropic", deadline=2.0, rescue_margin=1.5)
    first = await asyncio.wait_for(asyncio.gather(*(ask(text) for text in TEXTS)), 30)
    assert billed(emulator, "live") == len(TEXTS)
    await asyncio.to_thread(engine().finish_cleanups)  # journalled off the callers' loop
    close_journals()  # a rerun: a new process numbers identical calls afresh
    again = await asyncio.wait_for(asyncio.gather(*(ask(text) for text in TEXTS)), 30)
    assert again == first
    assert billed(emulator, "live") == len(TEXTS)
    assert billed(emulator, "batch") == 0


async def test_batches_ending_before_the_deadline_are_untouched(
        emulator: Emulator, clients: Clients) -> None:
    """A batch that ends in time is delivered as usual: no cancel, nothing live."""
    ask = asker(clients, "openai", deadline=60.0, rescue_margin=30.0)
    assert all(await asyncio.wait_for(asyncio.gather(*(ask(text) for text in TEXTS)), 30))
    assert cancels(emulator) == 0
    assert billed(emulator, "live") == 0
    assert billed(emulator, "batch") == len(TEXTS)


async def test_a_scope_deadline_rescues_a_plain_async_call(
        emulator: Emulator, async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """`async with scope(deadline=...)`: the call is rescued live on the caller's loop."""
    emulator.batch_latency = LONG_BATCH
    async with deferrable.scope(deadline=1.5, rescue_margin=1.0):
        message = await async_anthropic_client.messages.create(**message_request("Sentiment: awful"))
    block = message.content[0]
    assert block.type == "text"
    assert block.text == "negative"
    assert cancels(emulator) == 1
    assert billed(emulator, "live") == 1
