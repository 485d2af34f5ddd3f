"""`deferrable.map`: a plain sync function over many items, every first call in one batch,
results in order (Anthropic and OpenAI)."""

from __future__ import annotations

import anthropic
import openai
import pytest

import deferrable
from deferrable.emulator import Emulator
from tests.emulator_helpers import chat_request, message_request


def test_map_puts_every_call_in_one_batch(anthropic_client: anthropic.Anthropic,
                                          emulator: Emulator) -> None:
    """Forty items, one batch of forty requests, results in the items' order, nothing live."""

    def sentiment(review: str) -> str:
        block = anthropic_client.messages.create(**message_request(f"Sentiment: {review}")).content[0]
        assert block.type == "text"
        return block.text

    reviews = ["great", "awful", "fine", "okay"] * 10
    assert deferrable.map(sentiment, reviews) == ["positive", "negative", "neutral", "neutral"] * 10
    stats = emulator.stats()
    assert stats["batches"] == {"anthropic_batches": 1, "anthropic_batch_requests": 40}
    assert "POST /v1/messages" not in stats["requests"]


def test_map_with_openai_and_later_rounds(openai_client: openai.OpenAI,
                                          emulator: Emulator) -> None:
    """Items that make two calls each: the first calls share one batch, the second ones another."""

    def twice(text: str) -> str:
        first = openai_client.chat.completions.create(**chat_request(text))
        answer = first.choices[0].message.content or ""
        second = openai_client.chat.completions.create(**chat_request(f"again {answer}"))
        return second.choices[0].message.content or ""

    results = deferrable.map(twice, [f"item {i}" for i in range(6)], max_wait=0.05)
    assert len(results) == 6
    assert all(results)
    assert emulator.stats()["batches"] == {"openai_batches": 2, "openai_batch_requests": 12}


def test_map_raises_the_first_failure_after_all_finish(anthropic_client: anthropic.Anthropic,
                                                       emulator: Emulator) -> None:
    """A failing item raises its own exception (once all ended); return_exceptions keeps it."""

    def check(review: str) -> str:
        if review == "bad":
            raise ValueError("not a review")
        anthropic_client.messages.create(**message_request(review))
        return review

    with pytest.raises(ValueError, match="not a review"):
        deferrable.map(check, ["one", "bad", "two"])
    assert emulator.stats()["batches"]["anthropic_batch_requests"] == 2
    results = deferrable.map(check, ["one", "bad", "two"], return_exceptions=True)
    assert results[0::2] == ["one", "two"]
    assert isinstance(results[1], ValueError)


def test_map_refuses_wrong_options() -> None:
    """An unknown or invalid option fails at once, before any item runs."""
    ran: list[int] = []
    with pytest.raises(TypeError):
        deferrable.map(ran.append, [1, 2], max_batch=3)
    assert ran == []


def test_map_inside_a_deferrable_function(anthropic_client: anthropic.Anthropic,
                                          emulator: Emulator) -> None:
    """`map` called from a sync @deferrable body suspends that body instead of blocking."""

    def sentiment(review: str) -> str:
        block = anthropic_client.messages.create(**message_request(f"Sentiment: {review}")).content[0]
        assert block.type == "text"
        return block.text

    @deferrable.deferrable
    def report(reviews: list[str]) -> str:
        return ",".join(deferrable.map(sentiment, reviews))

    assert report(["great", "awful"]).result(timeout=60) == "positive,negative"
    assert emulator.stats()["batches"]["anthropic_batch_requests"] == 2
