"""An error inside the engine's loop fails only the call it concerns, is logged, and does
not stall the calls made with it or after it."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from deferrable import deferrable as defer
from deferrable._options import defaults
from deferrable.engine import engine
from tests.emulator_helpers import message_request


class UnbufferableTarget:
    """A provider target with a bug: its key cannot be hashed, so it cannot be buffered."""

    provider = "anthropic"
    max_requests = 10
    max_bytes = 1000
    max_units = None

    def __init__(self) -> None:
        self.key: Any = ["not", "hashable"]


def test_a_call_the_engine_cannot_buffer_fails_alone(anthropic_client: anthropic.Anthropic,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The broken call raises its error; a good call made with it and one made after resolve."""

    @defer
    def ask(text: str) -> str:
        block = anthropic_client.messages.create(**message_request(f"Sentiment: {text}")).content[0]
        assert block.type == "text"
        return block.text

    good = ask("great")
    broken = engine().submit(UnbufferableTarget(), {}, 2, defaults())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="unhashable"):
        broken.result(timeout=30)
    assert good.result(timeout=30) == "positive"
    assert ask("awful").result(timeout=30) == "negative"
    assert any("buffering a call failed" in r.getMessage() for r in caplog.records)
