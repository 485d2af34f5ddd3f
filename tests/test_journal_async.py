"""The journal with async code: request identity (occurrences, dedupe), reruns served from
it, and what it keeps (the sync twin, with the refused journals, is test_journal_sync)."""

from __future__ import annotations

import asyncio

import anthropic
import pytest

import deferrable
from deferrable.emulator import Emulator
from deferrable.journal import close_journals
from tests.emulator_helpers import message_request
from tests.test_journal_sync import PROMPTS, batch_requests, request_ids, store


async def ask(client: anthropic.AsyncAnthropic, text: str) -> str:
    """One call's text."""
    message = await client.messages.create(**message_request(text))
    block = message.content[0]
    return block.text if block.type == "text" else ""


async def run(client: anthropic.AsyncAnthropic, prompts: list[str], **options: object) -> list[str]:
    """One 'run' of a job: the prompts gathered under a scope, answers in order."""
    async with deferrable.scope(**options):
        return list(await asyncio.gather(*(ask(client, text) for text in prompts)))


async def new_process() -> None:
    """Forget the journal objects, as a new process would (occurrences count afresh)."""
    await asyncio.to_thread(deferrable.engine.engine().finish_cleanups)
    close_journals()


@pytest.mark.asyncio
async def test_identical_calls_are_distinct_requests(
        async_anthropic_client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """n identical calls gathered in one run are n requests, numbered by occurrence."""
    await run(async_anthropic_client, PROMPTS)
    assert batch_requests(emulator) == 5
    occurrences = sorted(custom_id.rsplit("-", 1)[1] for custom_id in request_ids())
    assert occurrences == ["0", "0", "0", "1", "2"]


@pytest.mark.asyncio
async def test_dedupe_collapses_identical_requests(
        async_anthropic_client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """With dedupe=True identical calls share one request, and each gets the answer."""
    answers = await run(async_anthropic_client, PROMPTS, dedupe=True)
    assert batch_requests(emulator) == 3
    assert answers[0] == answers[1] == answers[2] != answers[3]


@pytest.mark.asyncio
async def test_a_rerun_is_served_from_the_journal(
        async_anthropic_client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """A second run of the same calls is answered from the journal: no request is sent."""
    first = await run(async_anthropic_client, PROMPTS)
    await new_process()
    served = emulator.stats()["requests"]
    assert await run(async_anthropic_client, PROMPTS) == first
    assert emulator.stats()["requests"] == served


@pytest.mark.asyncio
async def test_a_longer_rerun_pays_only_for_the_new_occurrences(
        async_anthropic_client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """A rerun with one more identical call pays for that one only (the k-th maps to the k-th)."""
    await run(async_anthropic_client, PROMPTS)
    await new_process()
    await run(async_anthropic_client, [*PROMPTS, "same question"])
    assert batch_requests(emulator) == 6


@pytest.mark.asyncio
async def test_reuse_for_zero_pays_again(
        async_anthropic_client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """reuse_for=0: a result handed out once is not served to a later run."""
    await run(async_anthropic_client, PROMPTS, reuse_for=0)
    await new_process()
    await run(async_anthropic_client, PROMPTS, reuse_for=0)
    assert batch_requests(emulator) == 10


@pytest.mark.asyncio
async def test_failed_requests_are_tried_again(
        async_anthropic_client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """An errored request is not kept: the rerun submits it again (and it fails again)."""
    for attempt in (1, 2):
        async with deferrable.scope():
            ok, bad = await asyncio.gather(
                ask(async_anthropic_client, "fine"),
                ask(async_anthropic_client, "{{error:invalid_request_error}}"), return_exceptions=True)
        assert isinstance(ok, str)
        assert isinstance(bad, anthropic.APIStatusError)
        await new_process()
        assert batch_requests(emulator) == 1 + attempt


@pytest.mark.asyncio
async def test_journal_false_keeps_nothing(async_anthropic_client: anthropic.AsyncAnthropic) -> None:
    """journal=False writes nothing on disk, and calls still resolve."""
    assert await run(async_anthropic_client, ["a"], journal=False)
    assert not store().exists()
