"""Every path to ``POST /v1/messages`` of the sync `Anthropic` client defers, and the SDK stays
the judge: it checks arguments, encodes the request and builds the answer (the async twin is
test_paths_anthropic_async)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anthropic
import pytest
from anthropic.types import Message
from pydantic import BaseModel

import deferrable
from deferrable import LiveCallError
from deferrable import deferrable as defer
from deferrable.emulator import Emulator
from deferrable.engine import engine
from deferrable.journal import close_journals
from deferrable.providers import anthropic as anthropic_provider
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import message_request

LIVE = "POST /v1/messages"
BATCHES = "POST /v1/messages/batches"


class Verdict(BaseModel):
    """A structured answer."""

    label: str
    score: int


def served(emulator: Emulator) -> dict[str, int]:
    """HTTP requests the emulator served, by route."""
    return emulator.stats()["requests"]


def text_of(message: Any) -> str:
    """The text of a one-block answer."""
    return str(message.content[0].text)


def by_create(client: anthropic.Anthropic, request: dict[str, Any]) -> str:
    return text_of(client.messages.create(**request))


def by_raw_response(client: anthropic.Anthropic, request: dict[str, Any]) -> str:
    raw = client.messages.with_raw_response.create(**request)
    assert raw.headers["request-id"] == raw.parse()._request_id
    return text_of(raw.parse())


def by_streaming_response(client: anthropic.Anthropic, request: dict[str, Any]) -> str:
    with client.messages.with_streaming_response.create(**request) as response:
        return text_of(Message.model_validate(json.loads(response.read())))


def by_stream_helper(client: anthropic.Anthropic, request: dict[str, Any]) -> str:
    with client.messages.stream(**request) as stream:
        text = "".join(stream.text_stream)
        assert text == text_of(stream.get_final_message())
        return text


def by_stream_true(client: anthropic.Anthropic, request: dict[str, Any]) -> str:
    return "".join(event.delta.text for event in client.messages.create(**request, stream=True)
                   if event.type == "content_block_delta" and event.delta.type == "text_delta")


def by_beta(client: anthropic.Anthropic, request: dict[str, Any]) -> str:
    return text_of(client.beta.messages.create(**request, betas=["context-1m-2025-08-07"]))


def by_client_post(client: anthropic.Anthropic, request: dict[str, Any]) -> str:
    return text_of(client.post("/v1/messages", body=request, cast_to=Message))


PATHS: dict[str, Callable[[anthropic.Anthropic, dict[str, Any]], str]] = {
    "create": by_create, "with_raw_response": by_raw_response,
    "with_streaming_response": by_streaming_response, "messages.stream": by_stream_helper,
    "stream=True": by_stream_true, "beta.messages.create": by_beta, "client.post": by_client_post,
}


@pytest.mark.parametrize("path", list(PATHS))
def test_each_path_defers_and_answers_as_live(anthropic_client: anthropic.Anthropic,
                                              emulator: Emulator, path: str) -> None:
    """Each path answers in a scope what it answers live, through one batch and no live call."""
    request = message_request(f"Describe {path}")
    live = PATHS[path](anthropic_client, request)
    with deferrable.scope():
        deferred = PATHS[path](anthropic_client, request)
    assert deferred == live
    assert (served(emulator)[LIVE], served(emulator)[BATCHES]) == (1, 1)


@pytest.mark.parametrize("beta", [False, True])
def test_parse_helpers_defer(anthropic_client: anthropic.Anthropic, emulator: Emulator,
                             beta: bool) -> None:
    """messages.parse / beta.messages.parse return the parsed model, deferred as live."""
    resource: Any = anthropic_client.beta.messages if beta else anthropic_client.messages
    request = message_request("Rate this hotel", max_tokens=200)
    live = resource.parse(**request, output_format=Verdict).parsed_output
    with deferrable.scope():
        deferred = resource.parse(**request, output_format=Verdict).parsed_output
    assert isinstance(deferred, Verdict)
    assert deferred == live
    assert (served(emulator)[LIVE], served(emulator)[BATCHES]) == (1, 1)


def test_a_create_bound_before_patching_defers(emulator: Emulator) -> None:
    """A bound `create` captured before the first patch() (as wrappers do) defers too."""
    deferrable.unpatch()
    with anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url) as client:
        create = client.messages.create
        deferrable.patch()
        with deferrable.scope():
            assert text_of(create(**message_request("bound early")))
    assert LIVE not in served(emulator)
    assert served(emulator)[BATCHES] == 1


def test_a_misspelt_argument_fails_at_once_as_live(anthropic_client: anthropic.Anthropic,
                                                   emulator: Emulator) -> None:
    """A typo raises the SDK's TypeError on the call itself, and nothing is submitted."""
    with deferrable.scope(), pytest.raises(TypeError) as deferred:
        anthropic_client.messages.create(model="claude-haiku-4-5", max_tokenz=5,  # type: ignore[call-overload]
                                         messages=[{"role": "user", "content": "hi"}])
    with pytest.raises(TypeError) as live:
        anthropic_client.messages.create(model="claude-haiku-4-5", max_tokenz=5,  # type: ignore[call-overload]
                                         messages=[{"role": "user", "content": "hi"}])
    assert str(deferred.value) == str(live.value)
    assert served(emulator) == {}


def test_arguments_are_taken_when_the_call_is_made(anthropic_client: anthropic.Anthropic) -> None:
    """Refilling one prompt dict after each call sends each prompt as it was at its call."""
    prompt: dict[str, Any] = {"role": "user", "content": ""}

    @defer(max_wait=30)
    def ask() -> str:
        return text_of(anthropic_client.messages.create(**message_request("x") | {"messages": [prompt]}))

    futures = []
    for review in ("first review", "second review", "third review"):
        prompt["content"] = review
        futures.append(ask())
    deferrable.flush()
    answers = [f.result(timeout=60) for f in futures]
    assert [review in answer for review, answer in
            zip(("first review", "second review", "third review"), answers, strict=True)] == [True] * 3


def test_an_unencodable_argument_fails_alone(anthropic_client: anthropic.Anthropic,
                                             emulator: Emulator) -> None:
    """A param the SDK cannot encode fails on its call as live does; its neighbours resolve."""

    @defer(max_wait=30)
    def ask(content: Any) -> str:
        return text_of(anthropic_client.messages.create(
            **message_request("x") | {"messages": [{"role": "user", "content": content}]}))

    good, bad, other = ask("fine"), ask(object()), ask("also fine")
    deferrable.flush()
    assert isinstance(bad.exception(timeout=60), TypeError)
    assert good.result(timeout=60)
    assert other.result(timeout=60)
    assert served(emulator)[BATCHES] == 1


def test_deferred_answers_carry_a_request_id(anthropic_client: anthropic.Anthropic) -> None:
    """`_request_id` is set on a deferred Message, as on a live one, and names the request."""
    with deferrable.scope():
        message = anthropic_client.messages.create(**message_request("id please"))
    assert message._request_id is not None
    assert message._request_id.startswith("req_")


def test_errors_are_the_sdks_own_and_not_retried(anthropic_client: anthropic.Anthropic,
                                                  emulator: Emulator) -> None:
    """An errored line raises the live exception class once the engine has sent it again
    max_retries times in later batches; the SDK adds no retry of its own."""
    with deferrable.scope(), pytest.raises(anthropic.RateLimitError) as raised:
        anthropic_client.messages.create(**message_request("{{error:429}}"))
    assert raised.value.request_id is not None
    assert LIVE not in served(emulator)
    assert served(emulator)[BATCHES] == 3  # the 429 went again twice (max_retries), no more


def test_workspace_reaches_every_batch_call(anthropic_client: anthropic.Anthropic,
                                            emulator: Emulator) -> None:
    """workspace_id goes with the batch's create, retrieve and results, so the answer arrives."""
    with deferrable.scope():
        message = anthropic_client.messages.create(**message_request("in a workspace"),
                                                   workspace_id="wrkspc_test")
    assert text_of(message)
    assert len(list(anthropic_client.messages.batches.list(workspace_id="wrkspc_test"))) == 1
    assert list(anthropic_client.messages.batches.list()) == []


def test_calls_the_batch_api_refuses_go_live_and_say_so(
        anthropic_client: anthropic.Anthropic, emulator: Emulator,
        caplog: pytest.LogCaptureFixture) -> None:
    """max_tokens=0 and fast mode go live, warned once per site and reason, and summed up."""
    with caplog.at_level(logging.INFO, logger="deferrable"), deferrable.scope():
        for _ in range(2):
            warmed = anthropic_client.messages.create(**message_request("warm", max_tokens=0))
            assert warmed.stop_reason == "max_tokens"
            assert anthropic_client.messages.create(**message_request("quick"), speed="fast")
        assert anthropic_client.messages.create(**message_request("batched"))
    records = [r for r in caplog.records if r.name == "deferrable"]
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert sum("max_tokens=0" in m and __name__ in m for m in warnings) == 1
    assert sum("fast mode" in m for m in warnings) == 1
    [summary] = [r.getMessage() for r in records
                 if r.levelno == logging.INFO and "deferred," in r.getMessage()]
    assert "1 deferred, 4 live" in summary
    assert served(emulator)[LIVE] == 4


def test_strict_refuses_a_call_that_would_go_live(anthropic_client: anthropic.Anthropic,
                                                  emulator: Emulator) -> None:
    """Under strict=True a call that would go live raises LiveCallError, and nothing is sent."""
    with deferrable.scope(strict=True), pytest.raises(LiveCallError, match="max_tokens=0"):
        anthropic_client.messages.create(**message_request("warm", max_tokens=0))
    assert served(emulator) == {}


def test_streams_go_live_when_told(anthropic_client: anthropic.Anthropic,
                                   emulator: Emulator) -> None:
    """defer_streams=False sends streaming calls live; the rest still defer."""
    with deferrable.scope(defer_streams=False):
        assert by_stream_helper(anthropic_client, message_request("stream live"))
        assert by_create(anthropic_client, message_request("batched"))
    assert (served(emulator)[LIVE], served(emulator)[BATCHES]) == (1, 1)


def test_tracing_headers_neither_split_batches_nor_travel(anthropic_client: anthropic.Anthropic,
                                                          emulator: Emulator) -> None:
    """30 calls each with its own X-Request-Id and idempotency key share one batch and one target."""

    @defer(max_wait=30, max_batch_size=30)
    def ask(i: int) -> str:
        return text_of(anthropic_client.messages.create(
            **message_request(f"call {i}"),
            extra_headers={"X-Request-Id": f"trace-{i}", "Idempotency-Key": f"key-{i}"}))

    anthropic_provider._targets.clear()  # an earlier test's emulator may have had this port
    assert all(f.result(timeout=60) for f in [ask(i) for i in range(30)])
    assert served(emulator)[BATCHES] == 1
    assert len(list(anthropic_provider._targets)) == 1


def test_query_and_serving_headers_split_batches(emulator: Emulator) -> None:
    """Clients differing only in default_query, or calls in extra_query, never share a batch."""
    with anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url,
                             default_query={"tenant": "a"}) as one, \
            anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url,
                                default_query={"tenant": "b"}) as two:

        @defer(max_wait=30, max_batch_size=3)
        def ask(client: anthropic.Anthropic, **extra: Any) -> str:
            return text_of(client.messages.create(**message_request("q"), **extra))

        futures = [ask(one), ask(two), ask(one, extra_query={"region": "eu"})]
        deferrable.flush()
        assert all(f.result(timeout=60) for f in futures)
    assert served(emulator)[BATCHES] == 3


def test_messages_given_as_a_generator_are_identified_by_content(
        anthropic_client: anthropic.Anthropic, emulator: Emulator) -> None:
    """`messages` as a generator is the same request on a rerun: served from the journal."""

    def ask() -> str:
        turns = ({"role": "user", "content": text} for text in ["a generator of turns"])
        with deferrable.scope():
            return text_of(anthropic_client.messages.create(
                model="claude-haiku-4-5", max_tokens=20, messages=turns))

    first = ask()
    engine().finish_cleanups()
    close_journals()  # as a new process: occurrences count afresh
    assert ask() == first
    assert served(emulator)[BATCHES] == 1


def test_other_clouds_are_refused_under_strict(emulator: Emulator) -> None:
    """A Vertex client's call would go live (its cloud has no Message Batches here): strict
    refuses it by name, before anything is sent."""
    with anthropic.AnthropicVertex(region="us-east5", project_id="test", access_token="t",
                                   base_url=emulator.url) as vertex, \
            deferrable.scope(strict=True), pytest.raises(LiveCallError, match="AnthropicVertex"):
        vertex.messages.create(**message_request("hi"))
    assert served(emulator) == {}
