"""`@deferrable` on async code with `AsyncOpenAI`: real SDK, real HTTP, the emulator
judging (the sync twin is test_shim_openai_sync)."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
import pytest_asyncio
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion

import deferrable
from deferrable import BatchCanceledError, BatchExpiredError, BatchValidationError, DeferrableError
from deferrable import deferrable as defer
from deferrable.emulator import Emulator, Limits
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import chat_request, until
from tests.scope_helpers import flush_when_deferred
from tests.test_shim_openai_sync import EMBED, stable


@pytest_asyncio.fixture
async def client(emulator: Emulator) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official async client, pointed at the emulator."""
    async with openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url) as client:
        yield client


def requests_of(emulator: Emulator) -> dict[str, int]:
    """HTTP requests the emulator served, by route."""
    return emulator.stats()["requests"]


async def no_files(client: openai.AsyncOpenAI) -> bool:
    """Whether the account holds no file."""
    return [f async for f in client.files.list()] == []


@pytest.mark.asyncio
async def test_concurrent_calls_become_batches(client: openai.AsyncOpenAI,
                                               emulator: Emulator) -> None:
    """N gathered calls resolve with ceil(N / max_batch_size) files and batches, 0 live."""

    @defer(max_batch_size=25, max_wait=60)
    async def sentiment(review: str) -> str | None:
        completion = await client.chat.completions.create(**chat_request(f"Sentiment: {review}"))
        return completion.choices[0].message.content

    await client.chat.completions.create(**chat_request("warm up"))  # its first call yields more
    emulator.reset_stats()
    tasks = [asyncio.ensure_future(sentiment(r)) for r in ["great", "awful", "fine"] * 20]
    await asyncio.sleep(0)  # every task reaches its call
    await deferrable.aflush()  # the last, partial batch goes now, not after max_wait
    labels = await asyncio.gather(*tasks)
    assert labels == ["positive", "negative", "neutral"] * 20
    routes = requests_of(emulator)
    assert routes["POST /v1/batches"] == routes["POST /v1/files"] == math.ceil(60 / 25)
    assert "POST /v1/chat/completions" not in routes


@pytest.mark.asyncio
async def test_deferred_values_equal_the_live_ones(client: openai.AsyncOpenAI,
                                                   emulator: Emulator) -> None:
    """Chat, Responses and embeddings (default base64 and float) return what the live call does."""
    chat: dict[str, Any] = chat_request("Summarise as JSON: the hotel was clean", seed=7,
                                        response_format={"type": "json_object"})
    response: dict[str, Any] = {"model": "gpt-6.2-sol", "input": "I loved it, great",
                                "max_output_tokens": 30}
    default: dict[str, Any] = {"model": EMBED, "input": "the cat sat"}
    floats: dict[str, Any] = {**default, "encoding_format": "float", "dimensions": 64}

    def calls() -> list[Any]:
        return [client.chat.completions.create(**chat), client.responses.create(**response),
                client.embeddings.create(**default), client.embeddings.create(**floats)]

    live = await asyncio.gather(*calls())
    async with deferrable.scope(max_wait=60):
        pending = asyncio.gather(*calls())
        await flush_when_deferred(4)  # one batch per group, however slow the calls
        deferred = await pending
    for got, want in zip(deferred, live, strict=True):
        assert type(got) is type(want)
        assert stable(got) == stable(want)
        assert got._request_id is not None
    assert len(deferred[3].data[0].embedding) == 64
    # one per endpoint and model: base64 and float embeddings share theirs (the SDK decodes)
    assert requests_of(emulator)["POST /v1/batches"] == 3


@pytest.mark.asyncio
async def test_error_lines_raise_the_live_exception(client: openai.AsyncOpenAI) -> None:
    """Each error line raises the SDK class the live call raises, with a request id; neighbours succeed."""
    texts = ["fine", "{{error:400}}", "{{error:429}}", "{{error:500}}", "ok"]
    async with deferrable.scope():
        outcomes = await asyncio.gather(
            *(client.chat.completions.create(**chat_request(text)) for text in texts),
            return_exceptions=True)
    live = client.with_options(max_retries=0)
    for text, outcome in zip(texts, outcomes, strict=True):
        if "error" not in text:
            assert isinstance(outcome, ChatCompletion)
            continue
        with pytest.raises(openai.APIStatusError) as caught:
            await live.chat.completions.create(**chat_request(text))
        assert type(outcome) is type(caught.value)
        assert isinstance(outcome, openai.APIStatusError)
        assert (outcome.status_code, outcome.message) == (caught.value.status_code,
                                                          caught.value.message)
        assert outcome.code == caught.value.code
        assert outcome.request_id is not None


@pytest.mark.asyncio
async def test_expired_and_cancelled_batches(client: openai.AsyncOpenAI,
                                             emulator: Emulator) -> None:
    """Expired lines raise BatchExpiredError, cancelled ones BatchCanceledError (not sent again with
    max_retries=0): both DeferrableError."""
    emulator.faults.expire_batches = True
    async with deferrable.scope(max_retries=0):
        with pytest.raises(BatchExpiredError) as expired:
            await client.embeddings.create(model=EMBED, input="late")
    assert isinstance(expired.value, DeferrableError)
    emulator.faults.expire_batches = False
    emulator.batch_latency = 3600

    async def running() -> list[str]:
        return [b.id async for b in client.batches.list() if b.status == "in_progress"]

    async def cancel_when_created() -> None:
        await until(lambda: _nonempty(running()))
        for batch_id in await running():
            await client.batches.cancel(batch_id)

    async with deferrable.scope(max_retries=0):
        cancelled, _ = await asyncio.gather(
            client.chat.completions.create(**chat_request("never runs")), cancel_when_created(),
            return_exceptions=True)
    assert isinstance(cancelled, BatchCanceledError)


async def _nonempty(items: Any) -> bool:
    return bool(await items)


@pytest.mark.asyncio
async def test_a_failed_batch_fails_every_call_with_its_reason() -> None:
    """A batch failing validation as a whole (too many embedding inputs) fails each call clearly."""
    with Emulator(limits=Limits(openai_embedding_inputs=3)) as emu:
        async with openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=emu.openai_url) as client:
            async with deferrable.scope(max_batch_size=2, max_wait=60):  # one batch of the two
                outcomes = await asyncio.gather(
                    *(client.embeddings.create(model=EMBED, input=["a", "b"]) for _ in range(2)),
                    return_exceptions=True)
            assert all(isinstance(o, BatchValidationError) for o in outcomes)
            assert all("too_many_tasks" in str(o) for o in outcomes)
            await until(lambda: no_files(client))


@pytest.mark.asyncio
async def test_files_are_deleted_unless_kept(client: openai.AsyncOpenAI) -> None:
    """Input and output files are deleted after reading; delete_files=False keeps them."""
    async with deferrable.scope():
        await client.embeddings.create(model=EMBED, input="a")
    await until(lambda: no_files(client))
    async with deferrable.scope(delete_files=False):
        assert isinstance(await client.embeddings.create(model=EMBED, input="b"),
                          CreateEmbeddingResponse)
    await asyncio.sleep(0.3)  # nothing is deleted, however long we wait
    assert sorted([f.purpose async for f in client.files.list()]) == ["batch", "batch_output"]


def test_a_call_created_before_its_loop(emulator: Emulator) -> None:
    """`asyncio.run(client.chat.completions.create(...))` in a scope defers, with no loop at the call."""
    client = openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url)
    with deferrable.scope():
        completion = asyncio.run(client.chat.completions.create(**chat_request("Sentiment: great")))
    assert completion.choices[0].message.content == "positive"
    assert "POST /v1/chat/completions" not in requests_of(emulator)
