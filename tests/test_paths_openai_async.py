"""Every path to the Chat Completions, Responses and Embeddings endpoints of `AsyncOpenAI`
defers, and the SDK stays the judge: it checks arguments, encodes the request and builds
the answer (the sync twin is test_paths_openai_sync)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion

import deferrable
from deferrable import deferrable as defer
from deferrable.emulator import Emulator
from deferrable.providers import openai as openai_provider
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import chat_request
from tests.scope_helpers import flush_when_deferred
from tests.test_paths_openai_sync import (
    BATCHES,
    EMBED,
    Verdict,
    live_requests,
    response_request,
    served,
)


async def by_chat(client: openai.AsyncOpenAI, text: str) -> Any:
    return (await client.chat.completions.create(**chat_request(text))).choices[0].message.content


async def by_raw_response(client: openai.AsyncOpenAI, text: str) -> Any:
    raw = await client.chat.completions.with_raw_response.create(**chat_request(text))
    completion = raw.parse()
    assert raw.headers["x-request-id"] == completion._request_id
    return completion.choices[0].message.content


async def by_streaming_response(client: openai.AsyncOpenAI, text: str) -> Any:
    async with client.chat.completions.with_streaming_response.create(
            **chat_request(text)) as response:
        body = json.loads(await response.read())
        return ChatCompletion.model_validate(body).choices[0].message.content


async def by_chat_stream_true(client: openai.AsyncOpenAI, text: str) -> Any:
    stream = await client.chat.completions.create(**chat_request(text), stream=True,
                                                  stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert chunks[-1].usage is not None
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def by_chat_stream_helper(client: openai.AsyncOpenAI, text: str) -> Any:
    async with client.chat.completions.stream(**chat_request(text)) as stream:
        return (await stream.get_final_completion()).choices[0].message.content


async def by_chat_parse(client: openai.AsyncOpenAI, text: str) -> Any:
    completion = await client.chat.completions.parse(**chat_request(text), response_format=Verdict)
    return completion.choices[0].message.parsed


async def by_responses(client: openai.AsyncOpenAI, text: str) -> Any:
    return (await client.responses.create(**response_request(text))).output_text


async def by_responses_stream(client: openai.AsyncOpenAI, text: str) -> Any:
    async with client.responses.stream(**response_request(text)) as stream:
        return (await stream.get_final_response()).output_text


async def by_responses_parse(client: openai.AsyncOpenAI, text: str) -> Any:
    return (await client.responses.parse(**response_request(text),
                                         text_format=Verdict)).output_parsed


async def by_embeddings(client: openai.AsyncOpenAI, text: str) -> Any:
    return (await client.embeddings.create(model=EMBED, input=[text, text + "!"])).data[1].embedding


async def by_client_post(client: openai.AsyncOpenAI, text: str) -> Any:
    """The route litellm takes: the client's own `post`."""
    completion = await client.post("/chat/completions", body=chat_request(text),
                                   cast_to=ChatCompletion)
    return completion.choices[0].message.content


PATHS: dict[str, Callable[[openai.AsyncOpenAI, str], Awaitable[Any]]] = {
    "chat": by_chat, "with_raw_response": by_raw_response,
    "with_streaming_response": by_streaming_response, "chat stream=True": by_chat_stream_true,
    "chat.completions.stream": by_chat_stream_helper, "chat.completions.parse": by_chat_parse,
    "responses": by_responses, "responses.stream": by_responses_stream,
    "responses.parse": by_responses_parse, "embeddings": by_embeddings,
    "client.post": by_client_post,
}
CHAT_PATHS = [by_chat, by_raw_response, by_streaming_response, by_chat_stream_true,
              by_chat_stream_helper, by_client_post]


@pytest.mark.asyncio
@pytest.mark.parametrize("path", list(PATHS))
async def test_each_path_defers_and_answers_as_live(async_openai_client: openai.AsyncOpenAI,
                                                    emulator: Emulator, path: str) -> None:
    """Each path answers in a scope what it answers live, through one batch and no live call."""
    text = f"Describe {path} as JSON"
    live = await PATHS[path](async_openai_client, text)
    async with deferrable.scope():
        deferred = await PATHS[path](async_openai_client, text)
    assert deferred == live
    assert (live_requests(emulator), served(emulator)[BATCHES]) == (1, 1)


@pytest.mark.asyncio
async def test_fifty_gathered_chat_paths_make_one_batch(async_openai_client: openai.AsyncOpenAI,
                                                        emulator: Emulator) -> None:
    """50 gathered chat calls, mixing create, raw, streams and post, share one batch."""
    async with deferrable.scope(max_wait=30, max_batch_size=50):
        answers = await asyncio.gather(*(CHAT_PATHS[i % len(CHAT_PATHS)](async_openai_client, f"n{i}")
                                         for i in range(50)))
    assert all(answers)
    assert (live_requests(emulator), served(emulator)[BATCHES]) == (0, 1)


@pytest.mark.asyncio
async def test_a_create_bound_before_patching_defers(emulator: Emulator) -> None:
    """A bound `create` captured before the first patch() (as wrappers do) defers too."""
    deferrable.unpatch()
    async with openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url) as client:
        create = client.chat.completions.create
        deferrable.patch()
        async with deferrable.scope():
            assert (await create(**chat_request("bound early"))).choices
    assert live_requests(emulator) == 0
    assert served(emulator)[BATCHES] == 1


@pytest.mark.asyncio
async def test_a_misspelt_argument_fails_at_once_as_live(async_openai_client: openai.AsyncOpenAI,
                                                         emulator: Emulator) -> None:
    """A typo raises the SDK's TypeError on the call itself, and nothing is submitted."""
    client = async_openai_client
    async with deferrable.scope():
        with pytest.raises(TypeError) as deferred:
            await client.chat.completions.create(model="gpt-6.2-sol", mesages=[])  # type: ignore[call-overload]
    with pytest.raises(TypeError) as live:
        await client.chat.completions.create(model="gpt-6.2-sol", mesages=[])  # type: ignore[call-overload]
    assert str(deferred.value) == str(live.value)
    assert served(emulator) == {}


@pytest.mark.asyncio
async def test_an_unencodable_argument_fails_alone(async_openai_client: openai.AsyncOpenAI,
                                                   emulator: Emulator) -> None:
    """A param the SDK cannot encode fails on its call as live does; its neighbours resolve."""

    @defer(max_wait=30, max_batch_size=2)
    async def ask(content: Any) -> Any:
        return (await async_openai_client.chat.completions.create(
            model="gpt-6.2-sol", messages=[{"role": "user", "content": content}])).choices

    good, bad, other = await asyncio.gather(ask("fine"), ask(object()), ask("also fine"),
                                            return_exceptions=True)
    assert isinstance(bad, TypeError)
    assert good
    assert other
    assert not isinstance(good, BaseException)
    assert served(emulator)[BATCHES] == 1


@pytest.mark.asyncio
async def test_errors_are_the_sdks_own_and_not_retried(async_openai_client: openai.AsyncOpenAI,
                                                        emulator: Emulator) -> None:
    """An error line raises the live exception class once the engine has sent it again
    max_retries times (the SDK adds none); answers carry a request id."""
    async with deferrable.scope():
        with pytest.raises(openai.RateLimitError) as raised:
            await async_openai_client.chat.completions.create(**chat_request("{{error:429}}"))
        completion = await async_openai_client.chat.completions.create(**chat_request("id please"))
    assert raised.value.request_id is not None
    assert completion._request_id is not None
    assert live_requests(emulator) == 0
    assert served(emulator)[BATCHES] == 4  # the 429 went again twice (max_retries), no more


@pytest.mark.asyncio
async def test_refreshed_credentials_go_live_and_say_so(emulator: Emulator,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """An AsyncOpenAI client whose key comes from a provider goes live: a batch cannot borrow it."""

    async def key() -> str:
        return DUMMY_KEY

    async with openai.AsyncOpenAI(api_key=key, base_url=emulator.openai_url) as client, \
            deferrable.scope():
        assert (await client.chat.completions.create(**chat_request("c"))).choices
    assert served(emulator) == {"POST /v1/chat/completions": 1}
    assert any("refreshed credentials" in r.getMessage() for r in caplog.records)
    assert openai_provider.REQUEST_ID_HEADER == "x-request-id"


@pytest.mark.asyncio
async def test_streams_go_live_when_told(async_openai_client: openai.AsyncOpenAI,
                                         emulator: Emulator) -> None:
    """defer_streams=False sends streaming calls live; the rest still defer."""
    async with deferrable.scope(defer_streams=False):
        assert await by_chat_stream_helper(async_openai_client, "stream live")
        assert await by_chat(async_openai_client, "batched")
    assert (served(emulator)["POST /v1/chat/completions"], served(emulator)[BATCHES]) == (1, 1)


@pytest.mark.asyncio
async def test_query_splits_batches_and_tracing_headers_do_not(emulator: Emulator) -> None:
    """default_query and extra_query split batches; per-call tracing headers do not."""
    async with openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url,
                                  default_query={"tenant": "a"}) as one, \
            openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url,
                               default_query={"tenant": "b"}) as two:

        async def ask(client: openai.AsyncOpenAI, i: int, **extra: Any) -> Any:
            return (await client.chat.completions.create(
                **chat_request("q"), extra_headers={"X-Request-Id": f"trace-{i}"}, **extra)).choices

        async with deferrable.scope(max_wait=60):
            calls = asyncio.gather(*(ask(one, i) for i in range(10)), ask(two, 10),
                                   ask(one, 11, extra_query={"r": "eu"}))
            await flush_when_deferred(12)  # one batch per group, however slow the calls
            answers = await calls
        assert all(answers)
    assert served(emulator)[BATCHES] == 3
