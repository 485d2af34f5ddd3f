"""`@deferrable` on sync code with `OpenAI`: real SDK, real HTTP, the emulator judging
(the async twin is test_shim_openai_async)."""

from __future__ import annotations

import math
import time
from typing import Any

import httpx2
import openai
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

import deferrable
from deferrable import (
    BatchCanceledError,
    BatchExpiredError,
    BatchValidationError,
    DeferrableError,
    Deferred,
)
from deferrable import deferrable as defer
from deferrable._options import defaults
from deferrable.emulator import Emulator, Limits
from deferrable.providers import openai as openai_provider
from deferrable.providers._deferral import Deferral
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import chat_request, wait_until

VOLATILE = {"id", "created", "created_at", "completed_at"}
EMBED = "text-embedding-3-small"


def requests_of(emulator: Emulator) -> dict[str, int]:
    """HTTP requests the emulator served, by route."""
    return emulator.stats()["requests"]


def stable(value: Any) -> Any:
    """A model's fields (or JSON) without ids and timestamps, at any depth."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def test_calls_return_futures_and_become_batches(openai_client: openai.OpenAI,
                                                 emulator: Emulator) -> None:
    """N calls return Deferreds at once: ceil(N / max_batch_size) files and batches, 0 live."""

    @defer(max_batch_size=25, max_wait=60)
    def sentiment(review: str) -> str | None:
        completion = openai_client.chat.completions.create(**chat_request(f"Sentiment: {review}"))
        return completion.choices[0].message.content

    futures = [sentiment(r) for r in ["great", "awful", "fine"] * 20]
    assert all(isinstance(f, Deferred) for f in futures)
    deferrable.flush()  # the last, partial batch goes now, not after max_wait
    assert [f.result(timeout=60) for f in futures] == ["positive", "negative", "neutral"] * 20
    routes = requests_of(emulator)
    assert routes["POST /v1/batches"] == routes["POST /v1/files"] == math.ceil(60 / 25)
    assert "POST /v1/chat/completions" not in routes


def test_deferred_values_equal_the_live_ones(openai_client: openai.OpenAI,
                                             emulator: Emulator) -> None:
    """Chat, Responses and embeddings (default base64 and float) return what the live call does."""
    chat: dict[str, Any] = chat_request(
        "Summarise: the hotel was clean", max_completion_tokens=40, seed=7, metadata={"k": "v"},
        tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}],
        extra_body={"temperature": 0.5})
    response: dict[str, Any] = {"model": "gpt-6.2-sol", "input": "I hated it, awful",
                                "instructions": "Answer with the sentiment."}
    default: dict[str, Any] = {"model": EMBED, "input": ["the cat sat", "on the mat"]}
    floats: dict[str, Any] = {**default, "encoding_format": "float"}
    live = (openai_client.chat.completions.create(**chat), openai_client.responses.create(**response),
            openai_client.embeddings.create(**default), openai_client.embeddings.create(**floats))

    @defer(max_wait=0.1)
    def all_four() -> tuple[ChatCompletion, Response, CreateEmbeddingResponse,
                            CreateEmbeddingResponse]:
        return (openai_client.chat.completions.create(**chat),
                openai_client.responses.create(**response),
                openai_client.embeddings.create(**default),
                openai_client.embeddings.create(**floats))

    deferred = all_four().result(timeout=60)
    for got, want in zip(deferred, live, strict=True):
        assert type(got) is type(want)
        assert stable(got) == stable(want)
        assert got._request_id is not None
    assert isinstance(deferred[2].data[0].embedding[0], float)
    assert deferred[2].data[0].embedding == deferred[3].data[0].embedding
    assert requests_of(emulator)["POST /v1/embeddings"] == 2  # the live ones only


def test_one_batch_per_model_and_endpoint(openai_client: openai.OpenAI,
                                          emulator: Emulator) -> None:
    """Two chat models and an embedding model in one scope make three batches, one model each."""

    @defer(max_batch_size=6, max_wait=60)  # sharing would fill one batch of six
    def ask(model: str) -> str | None:
        return openai_client.chat.completions.create(
            **chat_request("Sentiment: great", model=model)).choices[0].message.content

    @defer(max_batch_size=3, max_wait=60)
    def embed() -> int:
        return len(openai_client.embeddings.create(model=EMBED, input="x").data)

    futures = [ask(m) for m in ("gpt-6.2-sol", "gpt-6.2-luna") * 3]
    embedded = [embed() for _ in range(3)]
    deferrable.flush()
    assert {f.result(timeout=60) for f in futures} == {"positive"}
    assert [f.result(timeout=60) for f in embedded] == [1, 1, 1]
    batches = list(openai_client.batches.list())
    assert len(batches) == 3
    assert sorted(str(b.model) for b in batches) == ["gpt-6.2-luna", "gpt-6.2-sol", EMBED]
    assert all(b.metadata and b.metadata["deferrable"] for b in batches)


def test_error_lines_raise_the_live_exception(openai_client: openai.OpenAI) -> None:
    """Each error line raises the SDK class the live call raises, with a request id; neighbours succeed."""
    texts = ["fine", "{{error:400}}", "{{error:429}}", "{{error:500}}", "ok"]

    @defer(max_wait=0.1)
    def ask(text: str) -> ChatCompletion:
        return openai_client.chat.completions.create(**chat_request(text))

    futures = [ask(text) for text in texts]
    live = openai_client.with_options(max_retries=0)
    for text, future in zip(texts, futures, strict=True):
        if "error" not in text:
            assert isinstance(future.result(timeout=60), ChatCompletion)
            continue
        outcome = future.exception(timeout=60)
        with pytest.raises(openai.APIStatusError) as caught:
            live.chat.completions.create(**chat_request(text))
        assert type(outcome) is type(caught.value)
        assert isinstance(outcome, openai.APIStatusError)
        assert outcome.status_code == caught.value.status_code
        assert outcome.message == caught.value.message
        assert outcome.body == caught.value.body
        assert outcome.request_id is not None


def test_expired_and_cancelled_batches(openai_client: openai.OpenAI,
                                       emulator: Emulator) -> None:
    """Expired lines raise BatchExpiredError, cancelled ones BatchCanceledError (not sent again with
    max_retries=0): both DeferrableError."""
    emulator.faults.expire_batches = True
    with deferrable.scope(max_retries=0), pytest.raises(BatchExpiredError) as expired:
        openai_client.chat.completions.create(**chat_request("late"))
    assert isinstance(expired.value, DeferrableError)
    emulator.faults.expire_batches = False
    emulator.batch_latency = 3600

    @defer(max_wait=0.01, max_retries=0)
    def ask() -> ChatCompletion:
        return openai_client.chat.completions.create(**chat_request("never runs"))

    future = ask()

    def running() -> list[str]:
        return [b.id for b in openai_client.batches.list() if b.status == "in_progress"]

    wait_until(lambda: bool(running()))
    for batch_id in running():
        openai_client.batches.cancel(batch_id)
    assert isinstance(future.exception(timeout=60), BatchCanceledError)


def test_a_failed_batch_fails_every_call_with_its_reason() -> None:
    """A batch failing validation as a whole (too many embedding inputs) fails each call clearly."""
    with Emulator(limits=Limits(openai_embedding_inputs=3)) as emu, \
            openai.OpenAI(api_key=DUMMY_KEY, base_url=emu.openai_url) as client:

        @defer(max_batch_size=2, max_wait=60)  # one batch of the two, however slow the calls
        def embed() -> CreateEmbeddingResponse:
            return client.embeddings.create(model=EMBED, input=["a", "b"])

        errors = [f.exception(timeout=60) for f in [embed(), embed()]]
        assert all(isinstance(e, BatchValidationError) for e in errors)
        assert all("too_many_tasks" in str(e) for e in errors)
        assert all(isinstance(e, BatchValidationError) and e.line is None for e in errors)
        wait_until(lambda: list(client.files.list()) == [])


def test_a_failed_batch_names_the_line_it_blames(openai_client: openai.OpenAI) -> None:
    """The line a failed batch blames (model_mismatch, line 2) gets its code; the rest, the batch's reason."""
    def deferral(body: dict[str, Any]) -> Deferral:
        request = httpx2.Request("POST", f"{openai_client.base_url}chat/completions", json=body)
        decided = openai_provider.examine(openai_client, request, defaults(), openai_provider.CHAT)
        assert isinstance(decided, Deferral)
        return decided

    decision = deferral(chat_request("a"))
    other = deferral({**chat_request("a"), "model": "gpt-6.2-luna"})
    target = decision.target  # both lines into one file: two models, which the batch refuses
    batch_id = target.submit([("first", decision.params), ("second", other.params)], "tag")
    wait_until(lambda: target.poll(batch_id).ended)
    outcomes = {custom_id: target.outcome(line) for custom_id, line in target.results(batch_id)}
    first, second = outcomes["first"][1], outcomes["second"][1]
    assert isinstance(first, BatchValidationError)
    assert isinstance(second, BatchValidationError)
    assert (second.code, second.line) == ("model_mismatch", 2)
    assert "model_mismatch at line 2" in str(second)
    assert (first.code, first.line) == (None, None)
    assert "model_mismatch" in str(first)
    target.discard(batch_id)
    assert list(openai_client.files.list()) == []


def test_files_are_deleted_unless_kept(openai_client: openai.OpenAI) -> None:
    """Input, output and error files are deleted after reading; delete_files=False keeps all three."""
    with deferrable.scope():
        openai_client.chat.completions.create(**chat_request("a"))
    wait_until(lambda: list(openai_client.files.list()) == [])  # deleted after resolving

    @defer(delete_files=False, max_batch_size=2, max_wait=60)  # one batch: one file each
    def ask(text: str) -> ChatCompletion:
        return openai_client.chat.completions.create(**chat_request(text))

    futures = [ask("b"), ask("{{error:400}}")]
    assert isinstance(futures[0].result(timeout=60), ChatCompletion)
    assert isinstance(futures[1].exception(timeout=60), openai.BadRequestError)
    time.sleep(0.3)  # nothing is deleted, however long we wait
    kept = list(openai_client.files.list())
    assert sorted(f.purpose for f in kept) == ["batch", "batch_output", "batch_output"]


def test_embedding_inputs_split_batches(openai_client: openai.OpenAI, emulator: Emulator,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Embedding batches close before passing the inputs limit (lowered to 5 here)."""
    monkeypatch.setattr(openai_provider, "MAX_EMBEDDING_INPUTS", 5)

    @defer(max_wait=60)
    def embed() -> int:
        return len(openai_client.embeddings.create(model=EMBED, input=["a", "b"]).data)

    futures = [embed() for _ in range(4)]
    deferrable.flush()  # the second batch: the first closed at the inputs limit
    assert [f.result(timeout=60) for f in futures] == [2] * 4
    assert requests_of(emulator)["POST /v1/batches"] == 2


def test_pass_through_outside_a_scope(openai_client: openai.OpenAI, emulator: Emulator) -> None:
    """Patched but outside a scope: same types, same exceptions, one live request each."""
    deferrable.patch()
    assert type(openai_client.chat.completions.create(**chat_request("a"))) is ChatCompletion
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(**chat_request("b", model="llama-3"))
    assert requests_of(emulator) == {"POST /v1/chat/completions": 2}


def test_clients_with_different_keys_never_share_a_batch(emulator: Emulator) -> None:
    """Calls of two clients with different credentials go into different batches."""
    with openai.OpenAI(api_key="key-one", base_url=emulator.openai_url) as one, \
            openai.OpenAI(api_key="key-two", base_url=emulator.openai_url) as two:

        @defer(max_wait=0.2)
        def ask(client: openai.OpenAI) -> ChatCompletion:
            return client.chat.completions.create(**chat_request("a"))

        futures = [ask(one), ask(two)]
        assert all(f.result(timeout=60).choices for f in futures)
    assert requests_of(emulator)["POST /v1/batches"] == 2
    assert not any("key-one" in str(key) for key in openai_provider._targets)
