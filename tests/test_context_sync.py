"""The scope reaches where the work goes: thread pools that carry it, plain ones that say
they don't, and decorated generators while iterated (the async twin is
test_context_async)."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterator

import anthropic
import pytest

import deferrable
from deferrable import deferrable as defer
from deferrable.emulator import Emulator
from tests.emulator_helpers import message_request


def routes(emulator: Emulator) -> dict[str, int]:
    """HTTP requests the emulator served, by route."""
    return emulator.stats()["requests"]


def test_deferrable_thread_pool_carries_the_scope(anthropic_client: anthropic.Anthropic,
                                                  emulator: Emulator) -> None:
    """Work submitted to deferrable.ThreadPoolExecutor inside a scope is deferred: one batch."""

    def ask(text: str) -> str:
        block = anthropic_client.messages.create(**message_request(f"Sentiment: {text}")).content[0]
        assert block.type == "text"
        return block.text

    with deferrable.scope(max_wait=0.3), deferrable.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, ["great", "awful", "fine", "great"]))
    assert answers == ["positive", "negative", "neutral", "positive"]
    assert emulator.stats()["batches"]["anthropic_batch_requests"] == 4
    assert "POST /v1/messages" not in routes(emulator)


def test_a_plain_thread_pool_goes_live_and_says_why(anthropic_client: anthropic.Anthropic,
                                                    emulator: Emulator,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    """A plain pool's threads do not inherit the scope: their calls go live, with a warning
    naming the reason and the remedy."""
    with deferrable.scope(), concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda text: anthropic_client.messages.create(**message_request(text)),
                      ["a", "b"]))
    assert routes(emulator)["POST /v1/messages"] == 2
    warnings = [r.getMessage() for r in caplog.records if "outside any deferrable scope" in r.getMessage()]
    assert len(warnings) == 1
    assert "deferrable.ThreadPoolExecutor" in warnings[0]


def test_no_warning_without_a_scope_anywhere(anthropic_client: anthropic.Anthropic,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """Live calls from threads while no scope is open anywhere are not warned about."""
    deferrable.patch()
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda text: anthropic_client.messages.create(**message_request(text)),
                      ["a", "b"]))
    assert not [r for r in caplog.records if r.name == "deferrable"]


def test_a_decorated_generator_defers_while_iterated(anthropic_client: anthropic.Anthropic,
                                                     emulator: Emulator) -> None:
    """Each step of a @deferrable generator is in its scope; the consumer's code is not."""

    @defer
    def answers(texts: list[str]) -> Iterator[str]:
        for text in texts:
            block = anthropic_client.messages.create(**message_request(f"Sentiment: {text}")).content[0]
            assert block.type == "text"
            yield block.text

    seen = []
    for answer in answers(["great", "awful"]):
        seen.append(answer)
        anthropic_client.messages.create(**message_request("between steps"))  # the consumer's
    assert seen == ["positive", "negative"]
    assert emulator.stats()["batches"]["anthropic_batch_requests"] == 2
    assert routes(emulator)["POST /v1/messages"] == 2


def test_a_decorated_generator_passes_send_and_close(anthropic_client: anthropic.Anthropic) -> None:
    """`send()` reaches the inner generator, and `close()` runs its cleanup inside the scope."""
    closed: list[bool] = []

    @defer
    def echo() -> Iterator[str]:
        text = "start"
        try:
            while True:
                text = yield text
        finally:
            closed.append(deferrable._scope.active_options() is not None)

    steps = echo()
    assert next(steps) == "start"
    assert steps.send("again") == "again"
    steps.close()
    assert closed == [True]


def test_pending_deferrable_calls_do_not_flag_live_calls_elsewhere(
        anthropic_client: anthropic.Anthropic, caplog: pytest.LogCaptureFixture) -> None:
    """A live call outside any scope while sync @deferrable calls wait (their scopes are on
    the driver thread) is not warned about: it cannot belong to them."""

    @defer(max_wait=60)
    def ask(text: str) -> str:
        return str(anthropic_client.messages.create(**message_request(text)).id)

    pending = ask("waiting")
    anthropic_client.messages.create(**message_request("live on purpose"))
    assert not [r for r in caplog.records if "outside any deferrable scope" in r.getMessage()]
    deferrable.flush()
    assert pending.result(timeout=60)
