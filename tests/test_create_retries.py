"""Creating a batch never pays twice: the engine, not the SDK, retries a create call, and
one whose answer was lost is looked for before it is made again (Anthropic and OpenAI)."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

import deferrable
from deferrable.emulator import Emulator, Hold, HttpFault
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import chat_request, message_request

CREATE = {"anthropic": "POST /v1/messages/batches", "openai": "POST /v1/batches"}
TEXTS = [f"question {i}" for i in range(5)]


def ask_all(emulator: Emulator, provider: str, timeout: float = 5.0) -> list[Any]:
    """The five calls, deferred through a client with `timeout`; their outcomes."""
    if provider == "anthropic":
        with anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url,
                                 timeout=timeout) as claude, deferrable.scope(max_wait=60):
            futures = [deferrable.deferrable(lambda t: claude.messages.create(
                **message_request(t)))(text) for text in TEXTS]
            deferrable.flush()  # one batch
            return [f.result(timeout=60) for f in futures]
    with openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url,
                       timeout=timeout) as gpt, deferrable.scope(max_wait=60):
        futures = [deferrable.deferrable(lambda t: gpt.chat.completions.create(
            **chat_request(t)))(text) for text in TEXTS]
        deferrable.flush()  # one batch
        return [f.result(timeout=60) for f in futures]


def created(emulator: Emulator, provider: str) -> tuple[int, int]:
    """(batches created, create calls received) for `provider`."""
    stats = emulator.stats()
    return (stats["batches"].get(f"{provider}_batches", 0),
            stats["requests"].get(CREATE[provider], 0))


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_create_answered_with_try_again_is_retried(emulator: Emulator, provider: str) -> None:
    """Two 529 answers to the create call, then success: one batch, every call answered."""
    emulator.faults.http.append(HttpFault(CREATE[provider], status=529, times=2))
    assert len(ask_all(emulator, provider)) == len(TEXTS)
    assert created(emulator, provider) == (1, 3)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_create_refused_for_good_fails_its_calls(emulator: Emulator, provider: str) -> None:
    """A 403 answer is not retried: each call raises the SDK's PermissionDeniedError."""
    emulator.faults.http.append(HttpFault(CREATE[provider], status=403, times=1))
    error = anthropic.PermissionDeniedError if provider == "anthropic" else openai.PermissionDeniedError
    with pytest.raises(error):
        ask_all(emulator, provider)
    assert created(emulator, provider) == (0, 1)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_create_whose_answer_was_lost_is_found_not_repeated(emulator: Emulator,
                                                              provider: str) -> None:
    """The create call times out after the batch was made: the batch is found, not made twice."""
    emulator.faults.holds.append(Hold(CREATE[provider], after=1.5, times=1))
    assert len(ask_all(emulator, provider, timeout=0.5)) == len(TEXTS)
    assert created(emulator, provider) == (1, 1)


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_create_that_never_arrived_is_made_again(emulator: Emulator, provider: str) -> None:
    """The create call times out before the provider took it: no batch is found, so it is made again."""
    emulator.faults.holds.append(Hold(CREATE[provider], before=1.0, times=1))
    assert len(ask_all(emulator, provider, timeout=0.5)) == len(TEXTS)
    assert created(emulator, provider) == (1, 2)
