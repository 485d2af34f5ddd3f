"""Every path to ``POST /v1/messages`` of `AsyncAnthropic` defers, and the SDK stays the judge:
it checks arguments, encodes the request and builds the answer (the sync twin is
test_paths_anthropic_sync)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anthropic
import pytest
import pytest_asyncio
from anthropic.types import Message

import deferrable
from deferrable import LiveCallError
from deferrable import deferrable as defer
from deferrable.emulator import Emulator
from deferrable.engine import engine
from deferrable.journal import close_journals
from deferrable.providers import anthropic as anthropic_provider
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import message_request
from tests.test_paths_anthropic_sync import BATCHES, LIVE, Verdict, served, text_of

Path = Callable[[anthropic.AsyncAnthropic, dict[str, Any]], Awaitable[str]]


@pytest_asyncio.fixture
async def client(emulator: Emulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The official async client, pointed at the emulator."""
    async with anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emulator.url) as client:
        yield client


async def by_create(client: anthropic.AsyncAnthropic, request: dict[str, Any]) -> str:
    return text_of(await client.messages.create(**request))


async def by_raw_response(client: anthropic.AsyncAnthropic, request: dict[str, Any]) -> str:
    raw = await client.messages.with_raw_response.create(**request)
    message = await raw.parse()
    assert raw.headers["request-id"] == message._request_id
    return text_of(message)


async def by_streaming_response(client: anthropic.AsyncAnthropic, request: dict[str, Any]) -> str:
    async with client.messages.with_streaming_response.create(**request) as response:
        return text_of(Message.model_validate(json.loads(await response.read())))


async def by_stream_helper(client: anthropic.AsyncAnthropic, request: dict[str, Any]) -> str:
    async with client.messages.stream(**request) as stream:
        text = "".join([piece async for piece in stream.text_stream])
        assert text == text_of(await stream.get_final_message())
        return text


async def by_stream_true(client: anthropic.AsyncAnthropic, request: dict[str, Any]) -> str:
    return "".join([event.delta.text async for event in await client.messages.create(
        **request, stream=True) if event.type == "content_block_delta"
        and event.delta.type == "text_delta"])


async def by_beta(client: anthropic.AsyncAnthropic, request: dict[str, Any]) -> str:
    return text_of(await client.beta.messages.create(**request, betas=["context-1m-2025-08-07"]))


async def by_client_post(client: anthropic.AsyncAnthropic, request: dict[str, Any]) -> str:
    return text_of(await client.post("/v1/messages", body=request, cast_to=Message))


PATHS: dict[str, Path] = {
    "create": by_create, "with_raw_response": by_raw_response,
    "with_streaming_response": by_streaming_response, "messages.stream": by_stream_helper,
    "stream=True": by_stream_true, "beta.messages.create": by_beta, "client.post": by_client_post,
}


@pytest.mark.asyncio
@pytest.mark.parametrize("path", list(PATHS))
async def test_each_path_defers_and_answers_as_live(client: anthropic.AsyncAnthropic,
                                                    emulator: Emulator, path: str) -> None:
    """Each path answers in a scope what it answers live, through one batch and no live call."""
    request = message_request(f"Describe {path}")
    live = await PATHS[path](client, request)
    async with deferrable.scope():
        deferred = await PATHS[path](client, request)
    assert deferred == live
    assert (served(emulator)[LIVE], served(emulator)[BATCHES]) == (1, 1)


@pytest.mark.asyncio
async def test_fifty_gathered_paths_make_one_batch(client: anthropic.AsyncAnthropic,
                                                   emulator: Emulator) -> None:
    """50 gathered calls, mixing create, raw, streaming and post, share one batch."""
    paths = [path for path in PATHS.values() if path is not by_beta]  # betas: a batch apart
    async with deferrable.scope(max_wait=30, max_batch_size=50):
        answers = await asyncio.gather(*(paths[i % len(paths)](client, message_request(f"n{i}"))
                                         for i in range(50)))
    assert all(answers)
    assert served(emulator)[BATCHES] == 1
    assert LIVE not in served(emulator)


@pytest.mark.asyncio
@pytest.mark.parametrize("beta", [False, True])
async def test_parse_helpers_defer(client: anthropic.AsyncAnthropic, emulator: Emulator,
                                   beta: bool) -> None:
    """messages.parse / beta.messages.parse return the parsed model, deferred as live."""
    resource: Any = client.beta.messages if beta else client.messages
    request = message_request("Rate this hotel", max_tokens=200)
    live = (await resource.parse(**request, output_format=Verdict)).parsed_output
    async with deferrable.scope():
        deferred = (await resource.parse(**request, output_format=Verdict)).parsed_output
    assert isinstance(deferred, Verdict)
    assert deferred == live
    assert (served(emulator)[LIVE], served(emulator)[BATCHES]) == (1, 1)


@pytest.mark.asyncio
async def test_a_create_bound_before_patching_defers(emulator: Emulator) -> None:
    """A bound `create` captured before the first patch() (as wrappers do) defers too."""
    deferrable.unpatch()
    async with anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emulator.url) as client:
        create = client.messages.create
        deferrable.patch()
        async with deferrable.scope():
            assert text_of(await create(**message_request("bound early")))
    assert LIVE not in served(emulator)
    assert served(emulator)[BATCHES] == 1


@pytest.mark.asyncio
async def test_a_misspelt_argument_fails_at_once_as_live(client: anthropic.AsyncAnthropic,
                                                         emulator: Emulator) -> None:
    """A typo raises the SDK's TypeError on the call itself, and nothing is submitted."""
    async with deferrable.scope():
        with pytest.raises(TypeError) as deferred:
            await client.messages.create(model="claude-haiku-4-5", max_tokenz=5,  # type: ignore[call-overload]
                                         messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(TypeError) as live:
        await client.messages.create(model="claude-haiku-4-5", max_tokenz=5,  # type: ignore[call-overload]
                                     messages=[{"role": "user", "content": "hi"}])
    assert str(deferred.value) == str(live.value)
    assert served(emulator) == {}


@pytest.mark.asyncio
async def test_arguments_are_taken_when_the_call_is_made(client: anthropic.AsyncAnthropic) -> None:
    """Refilling one prompt dict after each call has started sends what live sends: each
    prompt as it was when its call was encoded."""
    reviews = ("first review", "second review", "third review")

    async def refill() -> list[str]:
        prompt: dict[str, Any] = {"role": "user", "content": ""}
        tasks = []
        for review in reviews:
            prompt["content"] = review
            tasks.append(asyncio.create_task(client.messages.create(
                **message_request("x") | {"messages": [prompt]})))
            await asyncio.sleep(0)  # the call runs up to its send
        return [text_of(message) for message in await asyncio.gather(*tasks)]

    await client.messages.create(**message_request("warm up"))  # its first call yields once more
    live = await refill()
    async with deferrable.scope(max_wait=30, max_batch_size=3):
        deferred = await refill()
    assert deferred == live
    assert [review in answer for review, answer in zip(reviews, deferred, strict=True)] == [True] * 3


@pytest.mark.asyncio
async def test_an_unencodable_argument_fails_alone(client: anthropic.AsyncAnthropic,
                                                   emulator: Emulator) -> None:
    """A param the SDK cannot encode fails on its call as live does; its neighbours resolve."""

    @defer(max_wait=30, max_batch_size=2)
    async def ask(content: Any) -> str:
        return text_of(await client.messages.create(
            **message_request("x") | {"messages": [{"role": "user", "content": content}]}))

    good, bad, other = await asyncio.gather(ask("fine"), ask(object()), ask("also fine"),
                                            return_exceptions=True)
    assert isinstance(bad, TypeError)
    assert isinstance(good, str)
    assert isinstance(other, str)
    assert served(emulator)[BATCHES] == 1


@pytest.mark.asyncio
async def test_errors_are_the_sdks_own_and_not_retried(client: anthropic.AsyncAnthropic,
                                                        emulator: Emulator) -> None:
    """An errored line raises the live exception class once the engine has sent it again
    max_retries times in later batches; the SDK adds no retry of its own."""
    async with deferrable.scope():
        with pytest.raises(anthropic.RateLimitError) as raised:
            await client.messages.create(**message_request("{{error:429}}"))
        message = await client.messages.create(**message_request("id please"))
    assert raised.value.request_id is not None
    assert message._request_id is not None
    assert LIVE not in served(emulator)
    assert served(emulator)[BATCHES] == 4  # the 429 went again twice (max_retries), no more


@pytest.mark.asyncio
async def test_workspace_reaches_every_batch_call(client: anthropic.AsyncAnthropic) -> None:
    """workspace_id goes with the batch's create, retrieve and results, so the answer arrives."""
    async with deferrable.scope():
        message = await client.messages.create(**message_request("in a workspace"),
                                               workspace_id="wrkspc_test")
    assert text_of(message)
    assert len([b async for b in client.messages.batches.list(workspace_id="wrkspc_test")]) == 1
    assert [b async for b in client.messages.batches.list()] == []


@pytest.mark.asyncio
async def test_calls_the_batch_api_refuses_go_live_and_say_so(
        client: anthropic.AsyncAnthropic, emulator: Emulator,
        caplog: pytest.LogCaptureFixture) -> None:
    """max_tokens=0 and fast mode go live, warned once per site and reason, and summed up."""
    with caplog.at_level(logging.INFO, logger="deferrable"):
        async with deferrable.scope():
            for _ in range(2):
                warmed = await client.messages.create(**message_request("warm", max_tokens=0))
                assert warmed.stop_reason == "max_tokens"
                assert await client.messages.create(**message_request("quick"), speed="fast")
            assert await client.messages.create(**message_request("batched"))
    records = [r for r in caplog.records if r.name == "deferrable"]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert sum("max_tokens=0" in m and __name__ in m for m in warnings) == 1
    assert sum("fast mode" in m for m in warnings) == 1
    [summary] = [r.getMessage() for r in records
                 if r.levelno == logging.INFO and "deferred," in r.getMessage()]
    assert "1 deferred, 4 live" in summary
    assert served(emulator)[LIVE] == 4


@pytest.mark.asyncio
async def test_strict_refuses_a_call_that_would_go_live(client: anthropic.AsyncAnthropic,
                                                        emulator: Emulator) -> None:
    """Under strict=True a call that would go live raises LiveCallError, and nothing is sent."""
    async with deferrable.scope(strict=True):
        with pytest.raises(LiveCallError, match="max_tokens=0"):
            await client.messages.create(**message_request("warm", max_tokens=0))
    assert served(emulator) == {}


@pytest.mark.asyncio
async def test_streams_go_live_when_told(client: anthropic.AsyncAnthropic,
                                         emulator: Emulator) -> None:
    """defer_streams=False sends streaming calls live; the rest still defer."""
    async with deferrable.scope(defer_streams=False):
        assert await by_stream_helper(client, message_request("stream live"))
        assert await by_create(client, message_request("batched"))
    assert (served(emulator)[LIVE], served(emulator)[BATCHES]) == (1, 1)


@pytest.mark.asyncio
async def test_tracing_headers_neither_split_batches_nor_travel(client: anthropic.AsyncAnthropic,
                                                                emulator: Emulator) -> None:
    """30 calls each with its own X-Request-Id and idempotency key share one batch and one target."""

    async def ask(i: int) -> str:
        return text_of(await client.messages.create(
            **message_request(f"call {i}"),
            extra_headers={"X-Request-Id": f"trace-{i}", "Idempotency-Key": f"key-{i}"}))

    anthropic_provider._targets.clear()  # an earlier test's emulator may have had this port
    async with deferrable.scope(max_wait=30, max_batch_size=30):
        assert all(await asyncio.gather(*(ask(i) for i in range(30))))
    assert served(emulator)[BATCHES] == 1
    assert len(list(anthropic_provider._targets)) == 1


@pytest.mark.asyncio
async def test_query_and_serving_headers_split_batches(emulator: Emulator) -> None:
    """Clients differing only in default_query, or calls in extra_query, never share a batch."""
    async with anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emulator.url,
                                        default_query={"tenant": "a"}) as one, \
            anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emulator.url,
                                     default_query={"tenant": "b"}) as two:

        async def ask(client: anthropic.AsyncAnthropic, **extra: Any) -> str:
            return text_of(await client.messages.create(**message_request("q"), **extra))

        async with deferrable.scope(max_wait=0.2):
            answers = await asyncio.gather(ask(one), ask(two), ask(one, extra_query={"region": "eu"}))
        assert all(answers)
    assert served(emulator)[BATCHES] == 3


@pytest.mark.asyncio
async def test_messages_given_as_a_generator_are_identified_by_content(
        client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """`messages` as a generator is the same request on a rerun: served from the journal."""

    async def ask() -> str:
        turns = ({"role": "user", "content": text} for text in ["a generator of turns"])
        async with deferrable.scope():
            return text_of(await client.messages.create(
                model="claude-haiku-4-5", max_tokens=20, messages=turns))

    first = await ask()
    await asyncio.to_thread(engine().finish_cleanups)
    close_journals()  # as a new process: occurrences count afresh
    assert await ask() == first
    assert served(emulator)[BATCHES] == 1


@pytest.mark.asyncio
async def test_other_clouds_are_refused_under_strict(emulator: Emulator) -> None:
    """A Vertex client's call would go live (its cloud has no Message Batches here): strict
    refuses it by name, before anything is sent."""
    async with anthropic.AsyncAnthropicVertex(region="us-east5", project_id="test",
                                              access_token="t", base_url=emulator.url) as vertex, \
            deferrable.scope(strict=True):
        with pytest.raises(LiveCallError, match="AsyncAnthropicVertex"):
            await vertex.messages.create(**message_request("hi"))
    assert served(emulator) == {}
