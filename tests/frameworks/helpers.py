"""What the framework tests share: the endpoints the frameworks reach, what the emulator
served while a block ran, and answers compared without their ids and timestamps."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

import deferrable
from deferrable.emulator import Emulator

ANTHROPIC_MODEL = "claude-haiku-4-5"
OPENAI_MODEL = "gpt-4o-mini"
EMBEDDING_MODEL = "text-embedding-3-small"
QUESTION = "Which city is the capital of France?"
FAN_OUT = 50
"""Calls a framework runs at once in the concurrency tests: exactly one batch's worth."""

VOLATILE = frozenset({"id", "call_id", "tool_call_id", "response_id", "created", "created_at",
                      "timestamp", "service_tier"})
"""Fields that differ between two answers to the same request: ids, times, and the tier
(``batch`` for a deferred Anthropic call, ``standard`` live)."""


class City(BaseModel):
    """A city and the country it is in: the structured answer the tests ask for."""

    name: str
    country: str


@dataclass(frozen=True)
class Endpoint:
    """An API endpoint a framework call reaches, and the route of its live requests."""

    provider: str
    live_route: str

    @property
    def batch_route(self) -> str:
        """The route that creates this provider's batches."""
        if self.provider == "anthropic":
            return "POST /v1/messages/batches"
        return "POST /v1/batches"


MESSAGES = Endpoint("anthropic", "POST /v1/messages")
CHAT = Endpoint("openai", "POST /v1/chat/completions")
RESPONSES = Endpoint("openai", "POST /v1/responses")
EMBEDDINGS = Endpoint("openai", "POST /v1/embeddings")


class Traffic:
    """What the emulator served from the moment this was made."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._start = emulator.stats()

    def _since(self, key: str) -> Counter[str]:
        now = Counter(self._emulator.stats()[key])
        now.subtract(self._start[key])
        return +now

    def requests(self) -> Counter[str]:
        """HTTP requests served since, by route."""
        return self._since("requests")

    def batches(self) -> Counter[str]:
        """Batches accepted since (``<provider>_batches``) and the requests in them
        (``<provider>_batch_requests``)."""
        return self._since("batches")

    def billed_live(self) -> int:
        """Live requests billed since."""
        now = self._emulator.stats()["billed_total"]["live"]["requests"]
        return int(now - self._start["billed_total"]["live"]["requests"])

    def assert_deferred(self, endpoint: Endpoint, *, calls: int, batches: int = 1) -> None:
        """Since this was made, `calls` requests to `endpoint` went through `batches`
        batches, and nothing went live."""
        requests = self.requests()
        assert requests[endpoint.live_route] == 0, f"{endpoint.live_route} went live: {requests}"
        assert self.billed_live() == 0
        assert requests[endpoint.batch_route] == batches, requests
        made = self.batches()
        assert made[f"{endpoint.provider}_batches"] == batches, made
        assert made[f"{endpoint.provider}_batch_requests"] == calls, made


def fan_out_scope() -> deferrable.scope:
    """A scope whose batch closes at its `FAN_OUT`-th call, not on a timer: `FAN_OUT`
    concurrent calls make exactly one batch, and fewer would stall visibly."""
    return deferrable.scope(max_wait=30, max_batch_size=FAN_OUT)


def prompts(count: int = FAN_OUT) -> list[str]:
    """`count` distinct prompts."""
    return [f"Summarise item {index} of the catalogue." for index in range(count)]


def stable(value: Any) -> Any:
    """`value` (a pydantic model, or JSON) without ids, timestamps and service tiers, at
    any depth."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {key: stable(item) for key, item in value.items() if key not in VOLATILE}
    if isinstance(value, list | tuple):
        return [stable(item) for item in value]
    return value
