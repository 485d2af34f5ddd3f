"""The emulator serves OpenAI flex processing (``service_tier: "flex"``) on Chat Completions
and Responses as the service does: answered with service tier "flex" after `flex_latency`,
billed in its own mode, refused with 429 "Resource Unavailable" for the
`flex_unavailable_rate` share and with a 400 for a model without flex, judged by the
official SDK (sync, with one async test at the end) and OpenAI's published schemas."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from deferrable.emulator import FLEX_MODELS, Emulator, Faults
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import wait_until
from tests.schemas import validate_openai
from tests.test_emulator_openai import MODEL, batch_lines, chat_body, run_batch

CHAT = "/v1/chat/completions"
RESPONSES = "/v1/responses"
NO_FLEX = "gpt-4.1"
"""A model that never offered flex."""


def flex_chat(text: str, model: str = MODEL) -> dict[str, Any]:
    """A Chat Completions body asking for flex processing."""
    return {**chat_body(text, service_tier="flex"), "model": model}


def no_retries(emulator: Emulator) -> openai.OpenAI:
    """A sync client that raises on the first error instead of retrying it."""
    return openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url, max_retries=0)


def test_flex_chat_is_served_and_billed_as_flex(openai_client: openai.OpenAI,
                                                emulator: Emulator) -> None:
    """A flex chat answer says service tier "flex", fits the schema and is billed as flex."""
    raw = openai_client.chat.completions.with_raw_response.create(**flex_chat("Hello there"))
    data = json.loads(raw.text)
    validate_openai("CreateChatCompletionResponse", data)
    completion = ChatCompletion.model_validate(data)
    assert completion.service_tier == "flex"
    assert completion.usage is not None
    stats = emulator.stats()
    assert stats["billed"]["live"] == {}
    assert stats["billed"]["flex"][MODEL]["requests"] == 1
    assert stats["billed"]["flex"][MODEL]["input_tokens"] == completion.usage.prompt_tokens
    assert stats["billed"]["flex"][MODEL]["output_tokens"] == completion.usage.completion_tokens
    assert stats["billed_total"]["flex"]["requests"] == 1
    assert stats["billed_total"]["live"]["requests"] == 0


def test_flex_response_is_served_and_billed_as_flex(openai_client: openai.OpenAI,
                                                    emulator: Emulator) -> None:
    """A flex Responses answer says service tier "flex", fits the schema and is billed as flex."""
    raw = openai_client.responses.with_raw_response.create(
        model="o3", input="Sentiment: a wonderful stay", service_tier="flex")
    data = json.loads(raw.text)
    validate_openai("Response", data)
    response = Response.model_validate(data)
    assert response.service_tier == "flex"
    assert response.output_text == "positive"
    assert response.usage is not None
    assert emulator.stats()["billed"]["flex"]["o3"]["output_tokens"] == response.usage.output_tokens


def test_flex_answer_equals_the_default_one_but_for_its_tier(openai_client: openai.OpenAI,
                                                             emulator: Emulator) -> None:
    """Flex changes the tier and the billing mode, not the answer."""
    flex = openai_client.chat.completions.create(**flex_chat("Same question"))
    default = openai_client.chat.completions.create(**chat_body("Same question"))
    assert flex.choices[0].message.content == default.choices[0].message.content
    assert default.service_tier == "default"
    billed = emulator.stats()["billed_total"]
    assert (billed["live"]["requests"], billed["flex"]["requests"]) == (1, 1)


@pytest.mark.parametrize("model", ["o3-2025-04-16", "o4-mini", "gpt-5-nano"])
def test_flex_models_and_their_snapshots_are_served(openai_client: openai.OpenAI,
                                                    model: str) -> None:
    """A documented flex model, or a dated snapshot of one, is served with flex."""
    completion = openai_client.chat.completions.create(**flex_chat("hi", model))
    assert completion.service_tier == "flex"


@pytest.mark.parametrize("endpoint", [CHAT, RESPONSES])
@pytest.mark.parametrize("model", [NO_FLEX, "o3-mini"])
def test_model_without_flex_is_400(openai_client: openai.OpenAI, emulator: Emulator,
                                   endpoint: str, model: str) -> None:
    """Flex on a model without it is a 400 naming `service_tier`, with no fallback and no bill."""
    if endpoint == CHAT:
        body: dict[str, Any] = flex_chat("hi", model)
    else:
        body = {"model": model, "input": "hi", "service_tier": "flex"}
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.post(endpoint.removeprefix("/v1"), body=body, cast_to=object)
    error = caught.value.response.json()
    validate_openai("ErrorResponse", error)
    assert error["error"] == {"message": "Unsupported service_tier: flex",
                              "type": "invalid_request_error", "param": "service_tier",
                              "code": "unsupported_value"}
    assert emulator.stats()["billed_total"]["flex"]["requests"] == 0
    assert emulator.stats()["billed_total"]["live"]["requests"] == 0


def test_flex_models_are_configurable() -> None:
    """`flex_models` replaces the default set: a listed model is served, another refused."""
    assert "o3" in FLEX_MODELS
    with Emulator(flex_models={NO_FLEX}) as emu, no_retries(emu) as client:
        assert client.chat.completions.create(**flex_chat("hi", NO_FLEX)).service_tier == "flex"
        with pytest.raises(openai.BadRequestError):
            client.chat.completions.create(**flex_chat("hi", "o3"))


def test_flex_unavailable_is_429_resource_unavailable() -> None:
    """With no flex capacity the request fails with 429 "Resource Unavailable", unbilled."""
    with Emulator(faults=Faults(flex_unavailable_rate=1.0)) as emu, no_retries(emu) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(**flex_chat("hi"))
        error = caught.value.response.json()
        validate_openai("ErrorResponse", error)
        assert caught.value.code == "resource_unavailable"
        assert error["error"]["message"].startswith("Resource Unavailable")
        with pytest.raises(openai.RateLimitError):
            client.responses.create(model=MODEL, input="hi", service_tier="flex")
        completion = client.chat.completions.create(**chat_body("hi"))  # default tier: served
        assert completion.service_tier == "default"
        stats = emu.stats()
        assert stats["billed_total"]["flex"]["requests"] == 0
        assert stats["requests"][f"POST {CHAT}"] == 2


def test_sdk_retries_flex_unavailability(openai_client: openai.OpenAI,
                                         emulator: Emulator) -> None:
    """The 429 carries a 1 ms retry hint: the SDK retries it twice, then raises."""
    emulator.faults.flex_unavailable_rate = 1.0
    with pytest.raises(openai.RateLimitError):
        openai_client.chat.completions.create(**flex_chat("hi"))
    assert emulator.stats()["requests"][f"POST {CHAT}"] == 3


def test_flex_unavailability_is_a_deterministic_share() -> None:
    """`flex_unavailable_rate` refuses a share chosen from `seed`: the same share every run."""
    refused: list[set[int]] = []
    for _ in range(2):
        with Emulator(faults=Faults(flex_unavailable_rate=0.5, seed=7)) as emu, \
                no_retries(emu) as client:
            failed = set()
            for index in range(40):
                try:
                    client.chat.completions.create(**flex_chat(f"question {index}"))
                except openai.RateLimitError:
                    failed.add(index)
            assert emu.stats()["billed_total"]["flex"]["requests"] == 40 - len(failed)
        refused.append(failed)
    assert 5 < len(refused[0]) < 35
    assert refused[0] == refused[1]


def test_flex_latency_runs_on_the_clock() -> None:
    """A flex answer waits `flex_latency` on the emulator's clock; other tiers do not."""
    with Emulator(flex_latency=3600) as emu, no_retries(emu) as client:
        answers: list[ChatCompletion] = []
        waiting = threading.Thread(
            target=lambda: answers.append(client.chat.completions.create(**flex_chat("hi"))))
        waiting.start()
        wait_until(lambda: emu.stats()["requests"].get(f"POST {CHAT}") == 1)
        assert client.chat.completions.create(**chat_body("hi")).service_tier == "default"
        time.sleep(0.1)
        assert answers == []
        emu.advance(3600)
        waiting.join(timeout=30)
        assert answers[0].service_tier == "flex"


def test_flex_stream_says_flex(openai_client: openai.OpenAI) -> None:
    """A streamed flex answer carries service tier "flex" in every chunk."""
    chunks = list(openai_client.chat.completions.create(**flex_chat("hi"), stream=True))
    assert chunks
    assert {chunk.service_tier for chunk in chunks} == {"flex"}


def test_flex_in_a_batch_line_is_billed_as_batch(openai_client: openai.OpenAI,
                                                 emulator: Emulator) -> None:
    """A batch line asking for flex runs as a batch request: never refused, billed as batch."""
    emulator.faults.flex_unavailable_rate = 1.0
    batch = run_batch(openai_client, batch_lines([flex_chat("q0"), flex_chat("q1")]))
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert batch.request_counts.completed == 2
    billed = emulator.stats()["billed_total"]
    assert (billed["batch"]["requests"], billed["flex"]["requests"]) == (2, 0)


@pytest.mark.asyncio
async def test_async_flex_served_and_refused() -> None:
    """Through `AsyncOpenAI`: flex is served as flex, then refused with 429 when unavailable."""
    with Emulator() as emu:
        async with openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=emu.openai_url,
                                      max_retries=0) as client:
            response = await client.responses.create(model=MODEL, input="hi",
                                                     service_tier="flex")
            assert response.service_tier == "flex"
            emu.faults.flex_unavailable_rate = 1.0
            with pytest.raises(openai.RateLimitError) as caught:
                await client.responses.create(model=MODEL, input="hi", service_tier="flex")
            assert caught.value.code == "resource_unavailable"
        assert emu.stats()["billed_total"]["flex"]["requests"] == 1
