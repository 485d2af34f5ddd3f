"""Every path to the Chat Completions, Responses and Embeddings endpoints of the sync `OpenAI`
client defers, and the SDK stays the judge: it checks arguments, encodes the request and
builds the answer (the async twin is test_paths_openai_async)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion
from pydantic import BaseModel

import deferrable
from deferrable import deferrable as defer
from deferrable.emulator import Emulator
from deferrable.providers import openai as openai_provider
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import chat_request

BATCHES = "POST /v1/batches"
LIVE = ("POST /v1/chat/completions", "POST /v1/responses", "POST /v1/embeddings")
EMBED = "text-embedding-3-small"


class Verdict(BaseModel):
    """A structured answer."""

    label: str
    score: int


def served(emulator: Emulator) -> dict[str, int]:
    """HTTP requests the emulator served, by route."""
    return emulator.stats()["requests"]


def live_requests(emulator: Emulator) -> int:
    """Requests the emulator answered live, on any of the three endpoints."""
    return sum(served(emulator).get(route, 0) for route in LIVE)


def response_request(text: str) -> dict[str, Any]:
    """Params of a small Responses request."""
    return {"model": "gpt-6.2-sol", "input": text, "max_output_tokens": 40}


def by_chat(client: openai.OpenAI, text: str) -> Any:
    return client.chat.completions.create(**chat_request(text)).choices[0].message.content


def by_raw_response(client: openai.OpenAI, text: str) -> Any:
    raw = client.chat.completions.with_raw_response.create(**chat_request(text))
    completion = raw.parse()
    assert raw.headers["x-request-id"] == completion._request_id
    return completion.choices[0].message.content


def by_streaming_response(client: openai.OpenAI, text: str) -> Any:
    with client.chat.completions.with_streaming_response.create(**chat_request(text)) as response:
        return ChatCompletion.model_validate(json.loads(response.read())).choices[0].message.content


def by_chat_stream_true(client: openai.OpenAI, text: str) -> Any:
    chunks = list(client.chat.completions.create(**chat_request(text), stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[-1].usage is not None
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def by_chat_stream_helper(client: openai.OpenAI, text: str) -> Any:
    with client.chat.completions.stream(**chat_request(text)) as stream:
        return stream.get_final_completion().choices[0].message.content


def by_chat_parse(client: openai.OpenAI, text: str) -> Any:
    completion = client.chat.completions.parse(**chat_request(text), response_format=Verdict)
    return completion.choices[0].message.parsed


def by_responses(client: openai.OpenAI, text: str) -> Any:
    return client.responses.create(**response_request(text)).output_text


def by_responses_stream(client: openai.OpenAI, text: str) -> Any:
    with client.responses.stream(**response_request(text)) as stream:
        return stream.get_final_response().output_text


def by_responses_parse(client: openai.OpenAI, text: str) -> Any:
    return client.responses.parse(**response_request(text), text_format=Verdict).output_parsed


def by_embeddings(client: openai.OpenAI, text: str) -> Any:
    return client.embeddings.create(model=EMBED, input=[text, text + "!"]).data[1].embedding


def by_client_post(client: openai.OpenAI, text: str) -> Any:
    """The route litellm takes: the client's own `post`."""
    completion = client.post("/chat/completions", body=chat_request(text), cast_to=ChatCompletion)
    return completion.choices[0].message.content


PATHS: dict[str, Callable[[openai.OpenAI, str], Any]] = {
    "chat": by_chat, "with_raw_response": by_raw_response,
    "with_streaming_response": by_streaming_response, "chat stream=True": by_chat_stream_true,
    "chat.completions.stream": by_chat_stream_helper, "chat.completions.parse": by_chat_parse,
    "responses": by_responses, "responses.stream": by_responses_stream,
    "responses.parse": by_responses_parse, "embeddings": by_embeddings,
    "client.post": by_client_post,
}


@pytest.mark.parametrize("path", list(PATHS))
def test_each_path_defers_and_answers_as_live(openai_client: openai.OpenAI, emulator: Emulator,
                                              path: str) -> None:
    """Each path answers in a scope what it answers live, through one batch and no live call."""
    text = f"Describe {path} as JSON"
    live = PATHS[path](openai_client, text)
    with deferrable.scope():
        deferred = PATHS[path](openai_client, text)
    assert deferred == live
    assert (live_requests(emulator), served(emulator)[BATCHES]) == (1, 1)


def test_a_create_bound_before_patching_defers(emulator: Emulator) -> None:
    """A bound `create` captured before the first patch() (as wrappers do) defers too."""
    deferrable.unpatch()
    with openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url) as client:
        create = client.chat.completions.create
        deferrable.patch()
        with deferrable.scope():
            assert create(**chat_request("bound early")).choices
    assert live_requests(emulator) == 0
    assert served(emulator)[BATCHES] == 1


def test_a_misspelt_argument_fails_at_once_as_live(openai_client: openai.OpenAI,
                                                   emulator: Emulator) -> None:
    """A typo raises the SDK's TypeError on the call itself, and nothing is submitted."""
    with deferrable.scope(), pytest.raises(TypeError) as deferred:
        openai_client.chat.completions.create(model="gpt-6.2-sol", mesages=[])  # type: ignore[call-overload]
    with pytest.raises(TypeError) as live:
        openai_client.chat.completions.create(model="gpt-6.2-sol", mesages=[])  # type: ignore[call-overload]
    assert str(deferred.value) == str(live.value)
    assert served(emulator) == {}


def test_arguments_are_taken_when_the_call_is_made(openai_client: openai.OpenAI) -> None:
    """Refilling one prompt dict after each call sends each prompt as it was at its call."""
    prompt: dict[str, Any] = {"role": "user", "content": ""}
    reviews = ("first review", "second review", "third review")

    @defer(max_wait=30, max_batch_size=3)
    def ask() -> Any:
        return openai_client.chat.completions.create(
            model="gpt-6.2-sol", messages=[prompt]).choices[0].message.content

    futures = []
    for review in reviews:
        prompt["content"] = review
        futures.append(ask())
    answers = [f.result(timeout=60) for f in futures]
    assert [review in answer for review, answer in zip(reviews, answers, strict=True)] == [True] * 3


def test_an_unencodable_argument_fails_alone(openai_client: openai.OpenAI,
                                             emulator: Emulator) -> None:
    """A param the SDK cannot encode fails on its call as live does; its neighbours resolve."""

    @defer(max_wait=30, max_batch_size=2)
    def ask(content: Any) -> Any:
        return openai_client.chat.completions.create(
            model="gpt-6.2-sol", messages=[{"role": "user", "content": content}]).choices

    good, bad, other = ask("fine"), ask(object()), ask("also fine")
    assert isinstance(bad.exception(timeout=60), TypeError)
    assert good.result(timeout=60)
    assert other.result(timeout=60)
    assert served(emulator)[BATCHES] == 1


def test_errors_are_the_sdks_own_and_not_retried(openai_client: openai.OpenAI,
                                                  emulator: Emulator) -> None:
    """An error line raises the live exception class once the engine has sent it again
    max_retries times (the SDK adds none); answers carry a request id."""
    with deferrable.scope():
        with pytest.raises(openai.RateLimitError) as raised:
            openai_client.chat.completions.create(**chat_request("{{error:429}}"))
        completion = openai_client.chat.completions.create(**chat_request("id please"))
    assert raised.value.request_id is not None
    assert completion._request_id is not None
    assert live_requests(emulator) == 0
    assert served(emulator)[BATCHES] == 4  # the 429 went again twice (max_retries), no more


def test_other_clouds_go_live_and_say_so(emulator: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    """A client of another cloud (an OpenAI subclass, as AzureOpenAI is) goes live, warned once."""

    class ThirdParty(openai.OpenAI):
        """Stands for a client of another cloud."""

    with ThirdParty(api_key=DUMMY_KEY, base_url=emulator.openai_url) as other, \
            caplog.at_level(logging.WARNING, logger="deferrable"), deferrable.scope():
        for _ in range(2):
            assert other.chat.completions.create(**chat_request("c")).choices
    warnings = [r.getMessage() for r in caplog.records if r.name == "deferrable"]
    assert sum("ThirdParty is not a first-party" in w for w in warnings) == 1
    assert served(emulator) == {"POST /v1/chat/completions": 2}


def test_azure_requests_are_recognised() -> None:
    """Azure's deployment URLs are known as chat completions, so they go live saying why."""
    azure = openai.AzureOpenAI(api_key=DUMMY_KEY, api_version="2026-01-01",
                               azure_endpoint="https://example.invalid")
    request = azure._build_request(openai._models.FinalRequestOptions.construct(
        method="post", url="/chat/completions", json_data=chat_request("a")))
    assert openai_provider.endpoint_of(azure, request) == openai_provider.CHAT
    decision = openai_provider.examine(azure, request, deferrable.Options(), openai_provider.CHAT)
    assert getattr(decision, "reason", None) == "AzureOpenAI is not a first-party OpenAI client"


def test_streams_go_live_when_told(openai_client: openai.OpenAI, emulator: Emulator) -> None:
    """defer_streams=False sends streaming calls live; the rest still defer."""
    with deferrable.scope(defer_streams=False):
        assert by_chat_stream_helper(openai_client, "stream live")
        assert by_chat(openai_client, "batched")
    assert (served(emulator)["POST /v1/chat/completions"], served(emulator)[BATCHES]) == (1, 1)


def test_query_splits_batches_and_tracing_headers_do_not(emulator: Emulator) -> None:
    """default_query and extra_query split batches; per-call tracing headers do not."""
    with openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url,
                       default_query={"tenant": "a"}) as one, \
            openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url,
                          default_query={"tenant": "b"}) as two:

        @defer(max_wait=30)
        def ask(client: openai.OpenAI, i: int, **extra: Any) -> Any:
            return client.chat.completions.create(
                **chat_request("q"), extra_headers={"X-Request-Id": f"trace-{i}"}, **extra).choices

        futures = [ask(one, i) for i in range(10)] + [ask(two, 10), ask(one, 11, extra_query={"r": "eu"})]
        deferrable.flush()
        assert all(f.result(timeout=60) for f in futures)
    assert served(emulator)[BATCHES] == 3
