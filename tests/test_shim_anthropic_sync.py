"""`@deferrable` on sync code with `Anthropic`: real SDK, real HTTP, the emulator judging
(the async twin is test_shim_anthropic_async)."""

from __future__ import annotations

import concurrent.futures
import math
from typing import Any

import anthropic
import pytest
from anthropic.types import Message
from anthropic.types.beta import BetaMessage

import deferrable
from deferrable import (
    BatchCanceledError,
    BatchExpiredError,
    DeferrableError,
    Deferred,
    MissingResultError,
)
from deferrable import (
    deferrable as defer,
)
from deferrable.emulator import Emulator, Quirks
from deferrable.providers.anthropic import AnthropicTarget
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import message_request, wait_until


def requests_of(emulator: Emulator) -> dict[str, int]:
    """HTTP requests the emulator served, by route."""
    return emulator.stats()["requests"]


def text_of(message: Message) -> str:
    """The text of a one-block answer."""
    block = message.content[0]
    assert block.type == "text"
    return block.text


def test_calls_return_futures_and_become_batches(anthropic_client: anthropic.Anthropic,
                                                 emulator: Emulator) -> None:
    """N calls of a sync @deferrable return Deferreds at once; ceil(N / max_batch_size) batches, 0 live."""

    @defer(max_batch_size=40, max_wait=60)
    def sentiment(review: str) -> str:
        return text_of(anthropic_client.messages.create(**message_request(f"Sentiment: {review}")))

    futures = [sentiment(r) for r in ["great", "awful", "fine"] * 50]
    assert all(isinstance(f, Deferred) for f in futures)
    assert not any(f.done() for f in futures[120:])  # the partial batch waits for max_wait
    deferrable.flush()  # the last, partial batch goes now, not after max_wait
    assert [f.result(timeout=60) for f in futures] == ["positive", "negative", "neutral"] * 50
    routes = requests_of(emulator)
    assert routes["POST /v1/messages/batches"] == math.ceil(150 / 40)
    assert "POST /v1/messages" not in routes


def test_a_function_may_make_several_deferred_calls(anthropic_client: anthropic.Anthropic,
                                                    emulator: Emulator) -> None:
    """A sync @deferrable suspends at each deferred call in turn: two rounds, two batches."""

    @defer(max_batch_size=2, max_wait=60)  # each round is one batch, however slow the calls
    def two_steps(review: str) -> tuple[str, str]:
        first = text_of(anthropic_client.messages.create(**message_request(f"Sentiment: {review}")))
        second = text_of(anthropic_client.messages.create(**message_request(f"Echo {first}")))
        return first, second

    futures = [two_steps(r) for r in ("great", "awful")]
    results = [f.result(timeout=60) for f in futures]
    assert [first for first, _ in results] == ["positive", "negative"]
    assert all("Echo" in second for _, second in results)
    assert requests_of(emulator)["POST /v1/messages/batches"] == 2


def test_deferred_value_equals_the_live_answer(anthropic_client: anthropic.Anthropic) -> None:
    """The deferred call returns a `Message` equal to the live one, every field carried."""
    params: dict[str, Any] = message_request(
        "Summarise: the hotel was clean", system=[{"type": "text", "text": "Be brief."}],
        metadata={"user_id": "u-1"}, stop_sequences=["###"], thinking={"type": "adaptive"},
        tools=[{"name": "lookup", "input_schema": {"type": "object"}}],
        tool_choice={"type": "auto"}, output_config={"effort": "low"}, max_tokens=300)
    live = anthropic_client.messages.create(**params)
    with deferrable.scope():
        deferred = anthropic_client.messages.create(**params)
    assert type(deferred) is Message
    assert deferred.model_dump(exclude={"id", "usage"}) == live.model_dump(exclude={"id", "usage"})
    assert deferred.usage.service_tier == "batch"
    assert deferred.usage.input_tokens == live.usage.input_tokens


def test_extra_body_and_forced_tool_are_carried(anthropic_client: anthropic.Anthropic,
                                                emulator: Emulator) -> None:
    """extra_body is merged into the batch params and a forced tool comes back as tool_use."""
    with deferrable.scope():
        message = anthropic_client.messages.create(
            **message_request("Weather?"), extra_body={"tool_choice": {"type": "any"}},
            tools=[{"name": "weather", "input_schema": {
                "type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]}}])
    assert message.stop_reason == "tool_use"
    assert message.content[0].type == "tool_use"
    assert "POST /v1/messages" not in requests_of(emulator)


def test_beta_calls_defer_with_their_betas(anthropic_client: anthropic.Anthropic,
                                           emulator: Emulator) -> None:
    """client.beta.messages.create defers too and returns a BetaMessage."""
    with deferrable.scope():
        message = anthropic_client.beta.messages.create(**message_request("hello"),
                                                        betas=["output-300k-2026-03-24"])
    assert type(message) is BetaMessage
    assert requests_of(emulator)["POST /v1/messages/batches"] == 1


def test_errored_lines_raise_the_live_exception(anthropic_client: anthropic.Anthropic) -> None:
    """Each errored line raises the SDK class the live call raises, and its neighbours succeed."""
    texts = ["fine", "{{error:400}}", "{{error:429}}", "{{error:overloaded_error}}", "ok"]

    @defer(max_wait=0.1)
    def ask(text: str) -> Message:
        return anthropic_client.messages.create(**message_request(text))

    futures = [ask(text) for text in texts]
    live = anthropic_client.with_options(max_retries=0)
    for text, future in zip(texts, futures, strict=True):
        if "error" not in text:
            assert isinstance(future.result(timeout=60), Message)
            continue
        outcome = future.exception(timeout=60)
        with pytest.raises(anthropic.APIStatusError) as caught:
            live.messages.create(**message_request(text))
        assert type(outcome) is type(caught.value)
        assert isinstance(outcome, anthropic.APIStatusError)
        assert outcome.status_code == caught.value.status_code
        assert outcome.request_id is not None
        assert "Injected error" in str(outcome.body)


def test_expired_and_canceled_batches(anthropic_client: anthropic.Anthropic,
                                      emulator: Emulator) -> None:
    """Expired lines raise BatchExpiredError, canceled ones BatchCanceledError (not sent again with
    max_retries=0): both DeferrableError."""
    emulator.faults.expire_batches = True
    with deferrable.scope(max_retries=0), pytest.raises(BatchExpiredError) as expired:
        anthropic_client.messages.create(**message_request("late"))
    assert isinstance(expired.value, DeferrableError)
    emulator.faults.expire_batches = False
    emulator.batch_latency = 3600

    @defer(max_wait=0.01, max_retries=0)
    def ask() -> Message:
        return anthropic_client.messages.create(**message_request("never runs"))

    future = ask()
    deferrable.flush()

    def running() -> list[str]:
        return [b.id for b in anthropic_client.messages.batches.list()
                if b.processing_status == "in_progress"]

    wait_until(lambda: bool(running()))
    for batch_id in running():
        anthropic_client.messages.batches.cancel(batch_id)
    assert isinstance(future.exception(timeout=60), BatchCanceledError)


def test_age_threshold_and_flush(anthropic_client: anthropic.Anthropic,
                                 emulator: Emulator) -> None:
    """A lone call waits for max_wait; with a long max_wait, flush() submits it at once."""
    with deferrable.scope(max_wait=0.05):
        assert anthropic_client.messages.create(**message_request("a")).content

    @defer(max_wait=3600)
    def ask() -> Message:
        return anthropic_client.messages.create(**message_request("b"))

    future = ask()
    with pytest.raises(concurrent.futures.TimeoutError):
        future.result(timeout=0.2)
    assert deferrable.flush() == 1
    assert future.result(timeout=30).content
    assert requests_of(emulator)["POST /v1/messages/batches"] == 2


def test_byte_threshold_splits_batches(anthropic_client: anthropic.Anthropic,
                                       emulator: Emulator) -> None:
    """max_batch_bytes splits one group into batches no larger than the limit."""

    @defer(max_batch_bytes=1000, max_wait=60)
    def ask() -> Message:
        return anthropic_client.messages.create(**message_request("x" * 300))

    futures = [ask() for _ in range(6)]
    deferrable.flush()  # the last batch: the first two closed at the limit
    assert all(f.result(timeout=60).content for f in futures)
    assert requests_of(emulator)["POST /v1/messages/batches"] == 3


def test_threads_in_a_scope_pool_into_shared_batches(anthropic_client: anthropic.Anthropic,
                                                     emulator: Emulator) -> None:
    """Blocking calls from 20 threads inside scope() share batches instead of one each."""

    def work(review: str) -> str:
        with deferrable.scope(max_wait=0.3):
            return text_of(anthropic_client.messages.create(**message_request(f"Sentiment: {review}")))

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        labels = list(pool.map(work, ["great", "awful"] * 20))
    assert labels == ["positive", "negative"] * 20
    assert requests_of(emulator)["POST /v1/messages/batches"] <= 4


def test_pass_through_outside_a_scope(anthropic_client: anthropic.Anthropic,
                                      emulator: Emulator) -> None:
    """Patched but outside a scope: same types, same exceptions, one live request each."""
    deferrable.patch()
    assert type(anthropic_client.messages.create(**message_request("a"))) is Message
    with pytest.raises(anthropic.NotFoundError):
        anthropic_client.messages.create(**{**message_request("b"), "model": "gpt-4o"})
    assert requests_of(emulator) == {"POST /v1/messages": 2}


def test_clients_with_different_keys_never_share_a_batch(emulator: Emulator) -> None:
    """Calls of two clients with different credentials go into different batches."""
    with anthropic.Anthropic(api_key="key-one", base_url=emulator.url) as one, \
            anthropic.Anthropic(api_key="key-two", base_url=emulator.url) as two:

        @defer(max_batch_size=2, max_wait=60)  # sharing would fill one batch of two
        def ask(client: anthropic.Anthropic) -> Message:
            return client.messages.create(**message_request("a"))

        futures = [ask(one), ask(two)]
        deferrable.flush()
        assert all(f.result(timeout=60).content for f in futures)
    assert requests_of(emulator)["POST /v1/messages/batches"] == 2


def test_ten_thousand_pending_sync_calls(emulator: Emulator) -> None:
    """10,000 suspended sync calls resolve from one thread, in one batch."""
    with anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url) as client:

        @defer(max_wait=120)
        def ask(i: int) -> str:
            return text_of(client.messages.create(**message_request(f"Sentiment {i}: great")))

        futures = [ask(i) for i in range(10_000)]
        deferrable.flush()
        assert {f.result(timeout=120) for f in futures} == {"positive"}
    assert requests_of(emulator)["POST /v1/messages/batches"] == 1
    assert DUMMY_KEY not in str(emulator.stats())


def test_a_result_line_that_never_comes_is_an_error(anthropic_client: anthropic.Anthropic,
                                                    emulator: Emulator) -> None:
    """A results stream that ends short resolves the calls it names and fails the rest, no hang."""
    emulator.faults.truncate_results_after = 2
    emulator.faults.truncate_mode = "clean"

    @defer(max_batch_size=5, max_wait=60)  # one batch of the five, however slow the calls
    def ask(i: int) -> Message:
        return anthropic_client.messages.create(**message_request(str(i)))

    futures = [ask(i) for i in range(5)]
    errors = [f.exception(timeout=60) for f in futures]
    assert sum(e is None for e in errors) == 2
    assert sum(isinstance(e, MissingResultError) for e in errors) == 3


def test_batches_split_at_the_provider_limit(anthropic_client: anthropic.Anthropic,
                                             emulator: Emulator,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """max_batch_size above the provider's limit is capped by it (limit lowered to 5 here)."""
    monkeypatch.setattr(AnthropicTarget, "max_requests", 5)

    @defer(max_batch_size=1_000, max_wait=60)
    def ask(i: int) -> Message:
        return anthropic_client.messages.create(**message_request(str(i)))

    futures = [ask(i) for i in range(12)]
    deferrable.flush()  # the last two: the first ten went by the limit
    assert all(f.result(timeout=60).content for f in futures)
    assert requests_of(emulator)["POST /v1/messages/batches"] == 3


def test_nested_sync_functions_wait_on_each_other(anthropic_client: anthropic.Anthropic,
                                                  emulator: Emulator) -> None:
    """A sync @deferrable may call others and wait on their futures: every level resolves."""

    @defer(max_wait=0.1)
    def label(review: str) -> str:
        return text_of(anthropic_client.messages.create(**message_request(f"Sentiment: {review}")))

    @defer(max_wait=0.1)
    def compare(first: str, second: str) -> tuple[str, str]:
        a, b = label(first), label(second)
        return a.result(timeout=60), b.result(timeout=60)

    outer = [compare("great", "awful"), compare("awful", "great")]
    assert repr(outer[0]) == "<Deferred pending>"
    assert [f.result(timeout=60) for f in outer] == [("positive", "negative"),
                                                     ("negative", "positive")]
    assert repr(outer[0]) == "<Deferred done>"
    assert "POST /v1/messages" not in requests_of(emulator)


def test_a_request_that_sinks_its_batch_fails_alone() -> None:
    """When the provider rejects a whole batch over one request, only that call fails."""
    with Emulator(quirks=Quirks(anthropic_batch_param_errors="reject")) as emu, \
            anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emu.url) as client:

        @defer(max_batch_size=3, max_wait=60)  # one batch of the three, however slow the calls
        def ask(text: str, extra: dict[str, Any]) -> Message:
            return client.messages.create(**message_request(text), extra_body=extra)

        futures = [ask("sentiment: great", {}), ask("hot", {"temperature": 1}),
                   ask("sentiment: awful", {})]
        good, bad, also_good = (f.exception(timeout=60) for f in futures)
        assert good is None
        assert also_good is None
        assert isinstance(bad, anthropic.BadRequestError)
        assert "temperature" in bad.message
        assert emu.stats()["batches"]["anthropic_batches"] == 1


def test_a_sync_function_inherits_the_enclosing_scope() -> None:
    """A sync @deferrable called inside scope(...) runs with that scope's options under its own."""
    from deferrable._scope import active_options

    @defer(max_batch_size=7)
    def options_inside() -> tuple[float, int]:
        options = active_options()
        assert options is not None
        return options.max_wait, options.max_batch_size

    with deferrable.scope(max_wait=42):
        assert options_inside().result(timeout=5) == (42, 7)
