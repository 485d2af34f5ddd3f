"""LangChain (`langchain-anthropic`, `langchain-openai`) inside deferrable scopes: chat models,
their structured output, tool calls, streams and `OpenAIEmbeddings`, against the emulator."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import reduce
from typing import Any

import httpx2
import pytest
import pytest_asyncio
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings

import deferrable
from deferrable import deferrable as defer
from deferrable.emulator import Emulator
from tests.conftest import DUMMY_KEY
from tests.frameworks.helpers import (
    ANTHROPIC_MODEL,
    CHAT,
    EMBEDDING_MODEL,
    EMBEDDINGS,
    FAN_OUT,
    MESSAGES,
    OPENAI_MODEL,
    QUESTION,
    RESPONSES,
    City,
    Endpoint,
    Traffic,
    fan_out_scope,
    prompts,
    stable,
)


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


@dataclass(frozen=True)
class Chat:
    """A LangChain chat model pointed at the emulator, and the endpoint it calls."""

    model: BaseChatModel
    endpoint: Endpoint


@pytest_asyncio.fixture(params=["anthropic", "openai-chat", "openai-responses"])
async def chat(request: pytest.FixtureRequest, emulator: Emulator) -> AsyncIterator[Chat]:
    """Each chat model in turn: ChatAnthropic, and ChatOpenAI on Chat Completions and on the
    Responses API; the HTTP clients they open are closed after the test."""
    if request.param == "anthropic":
        model = ChatAnthropic(model=ANTHROPIC_MODEL, api_key=DUMMY_KEY, base_url=emulator.url)
        yield Chat(model, MESSAGES)
        # ChatAnthropic takes no HTTP client: close the clients it made for itself.
        model._client.close()
        await model._async_client.close()
        return
    responses = request.param == "openai-responses"
    async with httpx2.AsyncClient() as async_http:
        with httpx2.Client() as http:
            model = ChatOpenAI(model=OPENAI_MODEL, api_key=DUMMY_KEY, base_url=emulator.openai_url,
                               use_responses_api=responses, http_client=http,
                               http_async_client=async_http)
            yield Chat(model, RESPONSES if responses else CHAT)


@pytest_asyncio.fixture
async def embeddings(emulator: Emulator) -> AsyncIterator[OpenAIEmbeddings]:
    """`OpenAIEmbeddings` pointed at the emulator. `check_embedding_ctx_length=False`: the
    length check tokenizes with tiktoken, which downloads its encodings from the internet."""
    async with httpx2.AsyncClient() as async_http:
        with httpx2.Client() as http:
            yield OpenAIEmbeddings(model=EMBEDDING_MODEL, api_key=DUMMY_KEY,
                                   base_url=emulator.openai_url, check_embedding_ctx_length=False,
                                   http_client=http, http_async_client=async_http)


def tokens(message: AIMessageChunk) -> tuple[int, int, int] | None:
    """The (input, output, total) token counts a streamed message reports, if any."""
    usage = message.usage_metadata
    if usage is None:
        return None
    return usage["input_tokens"], usage["output_tokens"], usage["total_tokens"]


# -- chat models -----------------------------------------------------------------------


def test_invoke_defers_and_equals_live(chat: Chat, emulator: Emulator) -> None:
    """`invoke` in a scope goes through one batch and returns the live `AIMessage`."""
    live = chat.model.invoke(QUESTION)
    traffic = Traffic(emulator)
    with deferrable.scope():
        deferred = chat.model.invoke(QUESTION)
    traffic.assert_deferred(chat.endpoint, calls=1)
    assert stable(deferred) == stable(live)
    assert deferred.text == live.text != ""


@pytest.mark.asyncio
async def test_ainvoke_defers_and_equals_live(chat: Chat, emulator: Emulator) -> None:
    """`ainvoke` in an async scope goes through one batch and returns the live `AIMessage`."""
    live = await chat.model.ainvoke(QUESTION)
    traffic = Traffic(emulator)
    async with deferrable.scope():
        deferred = await chat.model.ainvoke(QUESTION)
    traffic.assert_deferred(chat.endpoint, calls=1)
    assert stable(deferred) == stable(live)


def test_batch_of_fifty_is_one_batch(chat: Chat, emulator: Emulator) -> None:
    """`batch()` of 50 on 50 threads makes one provider batch of 50 and the live answers."""
    config: Any = {"max_concurrency": FAN_OUT}
    live = chat.model.batch(prompts(), config=config)
    traffic = Traffic(emulator)
    with fan_out_scope():
        deferred = chat.model.batch(prompts(), config=config)
    traffic.assert_deferred(chat.endpoint, calls=FAN_OUT)
    assert stable(deferred) == stable(live)


@pytest.mark.asyncio
async def test_abatch_of_fifty_is_one_batch(chat: Chat, emulator: Emulator) -> None:
    """`abatch()` of 50 makes one provider batch of 50 and the live answers."""
    live = await chat.model.abatch(prompts())
    traffic = Traffic(emulator)
    async with fan_out_scope():
        deferred = await chat.model.abatch(prompts())
    traffic.assert_deferred(chat.endpoint, calls=FAN_OUT)
    assert stable(deferred) == stable(live)


def test_deferrable_functions_share_one_batch(chat: Chat, emulator: Emulator) -> None:
    """50 calls of a sync `@deferrable` function around `invoke` make one batch, no threads."""

    @defer(max_wait=30, max_batch_size=FAN_OUT)
    def answer(prompt: str) -> str:
        return chat.model.invoke(prompt).text

    live = [chat.model.invoke(prompt).text for prompt in prompts()]
    traffic = Traffic(emulator)
    futures = [answer(prompt) for prompt in prompts()]
    assert [future.result() for future in futures] == live
    traffic.assert_deferred(chat.endpoint, calls=FAN_OUT)


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_structured_output_equals_live(chat: Chat, emulator: Emulator, method: str) -> None:
    """`with_structured_output(City)` (JSON schema or tool call) defers and parses the live City."""
    structured = chat.model.with_structured_output(City, method=method, include_raw=True)
    live = structured.invoke(QUESTION)
    traffic = Traffic(emulator)
    with deferrable.scope():
        deferred = structured.invoke(QUESTION)
    traffic.assert_deferred(chat.endpoint, calls=1)
    assert deferred["parsing_error"] is live["parsing_error"] is None
    assert isinstance(deferred["parsed"], City)
    assert deferred["parsed"] == live["parsed"]
    assert stable(deferred["raw"]) == stable(live["raw"])


@pytest.mark.asyncio
async def test_forced_tool_call_equals_live(chat: Chat, emulator: Emulator) -> None:
    """A model bound to a tool it must call defers and returns the live tool call."""
    bound = chat.model.bind_tools([get_weather], tool_choice="get_weather")
    live = await bound.ainvoke("What is the weather in Paris?")
    traffic = Traffic(emulator)
    async with deferrable.scope():
        deferred = await bound.ainvoke("What is the weather in Paris?")
    traffic.assert_deferred(chat.endpoint, calls=1)
    assert [call["name"] for call in deferred.tool_calls] == ["get_weather"]
    assert stable(deferred.tool_calls) == stable(live.tool_calls)
    assert stable(deferred) == stable(live)


def test_stream_replays_the_batch_result(chat: Chat, emulator: Emulator) -> None:
    """`stream()` in a scope is answered from one batch; its chunks add up to the live text."""
    live: AIMessageChunk = reduce(operator.add, chat.model.stream(QUESTION))
    traffic = Traffic(emulator)
    with deferrable.scope():
        deferred: AIMessageChunk = reduce(operator.add, chat.model.stream(QUESTION))
    traffic.assert_deferred(chat.endpoint, calls=1)
    assert deferred.text == live.text != ""
    assert tokens(deferred) == tokens(live)


@pytest.mark.asyncio
async def test_astream_replays_the_batch_result(chat: Chat, emulator: Emulator) -> None:
    """`astream()` in an async scope is answered from one batch with the live text."""
    live = [chunk async for chunk in chat.model.astream(QUESTION)]
    traffic = Traffic(emulator)
    async with deferrable.scope():
        deferred = [chunk async for chunk in chat.model.astream(QUESTION)]
    traffic.assert_deferred(chat.endpoint, calls=1)
    assert "".join(c.text for c in deferred) == "".join(c.text for c in live) != ""


# -- embeddings ------------------------------------------------------------------------


def test_embed_documents_defers_and_equals_live(embeddings: OpenAIEmbeddings,
                                                emulator: Emulator) -> None:
    """`embed_documents` in a scope sends one batched request and returns the live vectors."""
    texts = ["The cat sat on the mat.", "A dog barked at the moon.", "Rain is forecast."]
    live = embeddings.embed_documents(texts)
    traffic = Traffic(emulator)
    with deferrable.scope():
        deferred = embeddings.embed_documents(texts)
    traffic.assert_deferred(EMBEDDINGS, calls=1)
    assert len(deferred) == len(texts)
    assert deferred == live


@pytest.mark.asyncio
async def test_aembed_documents_defers_and_equals_live(embeddings: OpenAIEmbeddings,
                                                       emulator: Emulator) -> None:
    """`aembed_documents` in an async scope is one batched request with the live vectors."""
    texts = ["The cat sat on the mat.", "A dog barked at the moon.", "Rain is forecast."]
    live = await embeddings.aembed_documents(texts)
    traffic = Traffic(emulator)
    async with deferrable.scope():
        deferred = await embeddings.aembed_documents(texts)
    traffic.assert_deferred(EMBEDDINGS, calls=1)
    assert deferred == live


@pytest.mark.asyncio
async def test_gathered_embed_queries_share_one_batch(embeddings: OpenAIEmbeddings,
                                                      emulator: Emulator) -> None:
    """50 gathered `aembed_query` calls make one batch of 50 with the live vectors."""
    live = [await embeddings.aembed_query(text) for text in prompts()]
    traffic = Traffic(emulator)
    async with fan_out_scope():
        deferred = await asyncio.gather(*(embeddings.aembed_query(text) for text in prompts()))
    traffic.assert_deferred(EMBEDDINGS, calls=FAN_OUT)
    assert deferred == live
