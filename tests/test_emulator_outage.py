"""An outage on the emulator's clock: every route of both providers answers 503 (or the
status asked for) until the outage ends, while batches run on; judged by the official SDKs
(sync, no retries)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import openai
import pytest

from deferrable.emulator import Emulator, HttpFault
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import message_request, wait_until
from tests.test_emulator_anthropic import batch_of
from tests.test_emulator_openai import batch_lines, chat_body, upload

OUTAGE = 300.0
LATENCY = 600.0


@pytest.fixture
def claude(emulator: Emulator) -> Iterator[anthropic.Anthropic]:
    """A sync Anthropic client that raises on the first error instead of retrying it."""
    with anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url, max_retries=0) as client:
        yield client


@pytest.fixture
def gpt(emulator: Emulator) -> Iterator[openai.OpenAI]:
    """A sync OpenAI client that raises on the first error instead of retrying it."""
    with openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url,
                       max_retries=0) as client:
        yield client


def anthropic_calls(client: anthropic.Anthropic) -> dict[str, Callable[[], Any]]:
    """One call on each kind of Anthropic route, by its stats key."""
    batches = client.messages.batches
    return {
        "POST /v1/messages": lambda: client.messages.create(**message_request("Hi")),
        "POST /v1/messages/count_tokens": lambda: client.messages.count_tokens(
            model="claude-haiku-4-5", messages=[{"role": "user", "content": "Hi"}]),
        "POST /v1/messages/batches": lambda: batches.create(requests=batch_of(["Hi"])),
        "GET /v1/messages/batches": lambda: batches.list(),
        "GET /v1/messages/batches/{message_batch_id}": lambda: batches.retrieve("msgbatch_nothing"),
    }


def openai_calls(client: openai.OpenAI) -> dict[str, Callable[[], Any]]:
    """One call on each kind of OpenAI route, by its stats key."""
    return {
        "POST /v1/chat/completions": lambda: client.chat.completions.create(**chat_body("Hi")),
        "POST /v1/responses": lambda: client.responses.create(model="gpt-6.2-sol", input="Hi"),
        "POST /v1/embeddings": lambda: client.embeddings.create(
            model="text-embedding-3-small", input="Hi"),
        "POST /v1/files": lambda: upload(client, batch_lines([chat_body("Hi")])),
        "GET /v1/batches": lambda: client.batches.list(),
        "GET /v1/batches/{batch_id}": lambda: client.batches.retrieve("batch_nothing"),
    }


def assert_refused(call: Callable[[], Any], error: type[Exception], status: int = 503) -> Any:
    """`call` raises the SDK's `error` with `status`, marked not to be retried; its body."""
    with pytest.raises(error) as caught:
        call()
    assert isinstance(caught.value, anthropic.APIStatusError | openai.APIStatusError)
    assert caught.value.status_code == status
    assert caught.value.response.headers["x-should-retry"] == "false"
    return caught.value.response.json()


def test_anthropic_routes_answer_503_until_the_outage_ends(
        claude: anthropic.Anthropic, emulator: Emulator) -> None:
    """During an outage every Anthropic route answers 503 in Anthropic's envelope, counted
    in stats; a second before its end it still does, and at its end all answer again."""
    calls = anthropic_calls(claude)
    emulator.outage(OUTAGE)
    for call in calls.values():
        body = assert_refused(call, anthropic.InternalServerError)
        assert body["type"] == "error"
        assert body["error"]["type"] == "api_error"
        assert body["request_id"].startswith("req_")
    assert emulator.stats()["requests"] == dict.fromkeys(calls, 1)
    assert emulator.fetch_stats()["requests"] == dict.fromkeys(calls, 1)  # still served
    emulator.advance(OUTAGE - 1)
    assert_refused(calls["POST /v1/messages"], anthropic.InternalServerError)
    emulator.advance(1)
    assert claude.messages.create(**message_request("Hi")).content
    assert claude.messages.batches.create(requests=batch_of(["Hi"])).id
    assert len(claude.messages.batches.list().data) == 1


def test_openai_routes_answer_503_until_the_outage_ends(gpt: openai.OpenAI,
                                                        emulator: Emulator) -> None:
    """During an outage every OpenAI route answers 503 in OpenAI's envelope, counted in
    stats; a second before its end it still does, and at its end all answer again."""
    calls = openai_calls(gpt)
    emulator.outage(OUTAGE)
    for call in calls.values():
        body = assert_refused(call, openai.InternalServerError)
        assert body["error"]["type"] == "server_error"
    assert emulator.stats()["requests"] == dict.fromkeys(calls, 1)
    emulator.advance(OUTAGE - 1)
    assert_refused(calls["POST /v1/chat/completions"], openai.InternalServerError)
    emulator.advance(1)
    assert gpt.chat.completions.create(**chat_body("Hi")).choices
    file = upload(gpt, batch_lines([chat_body("Hi")]))
    assert gpt.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                              completion_window="24h").status == "validating"


def test_outage_status_is_chosen(claude: anthropic.Anthropic, gpt: openai.OpenAI,
                                 emulator: Emulator) -> None:
    """`outage(seconds, status)` answers with that status: 529 is Anthropic's overloaded."""
    emulator.outage(60, status=529)
    body = assert_refused(anthropic_calls(claude)["POST /v1/messages"],
                          anthropic.OverloadedError, 529)
    assert body["error"]["type"] == "overloaded_error"
    assert_refused(openai_calls(gpt)["GET /v1/batches"], openai.InternalServerError, 529)


def test_faults_wait_for_the_outage_to_end(claude: anthropic.Anthropic,
                                           emulator: Emulator) -> None:
    """No injected fault is spent on a request refused by the outage; after it, the fault fires."""
    fault = emulator.inject(HttpFault("POST /v1/messages", status=500, retry_after_ms=None))
    emulator.outage(OUTAGE)
    assert_refused(anthropic_calls(claude)["POST /v1/messages"], anthropic.InternalServerError)
    assert fault.times == 1
    emulator.outage(0)  # ends it
    with pytest.raises(anthropic.InternalServerError) as caught:
        claude.messages.create(**message_request("Hi"))
    assert caught.value.status_code == 500
    assert fault.times == 0
    assert claude.messages.create(**message_request("Hi")).content


def test_outage_arguments_are_checked(emulator: Emulator) -> None:
    """A negative (or nan) length, or a status that is not an error, is a ValueError."""
    for seconds, status in ((-1.0, 503), (float("nan"), 503), (60.0, 200), (60.0, 600)):
        with pytest.raises(ValueError, match="outage"):
            emulator.outage(seconds, status)
    assert emulator.faults.outage_until is None


def test_batches_created_before_an_outage_end_on_time() -> None:
    """Batches made before an outage end `batch_latency` after their creation on the clock,
    in the middle of the outage, and are found ended (and billed once) after it."""
    with Emulator(batch_latency=LATENCY) as emu, \
            anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emu.url, max_retries=0) as claude, \
            openai.OpenAI(api_key=DUMMY_KEY, base_url=emu.openai_url, max_retries=0) as gpt:
        message_batch = claude.messages.batches.create(requests=batch_of(["a", "b"]))
        file = upload(gpt, batch_lines([chat_body("c"), chat_body("d")]))
        batch = gpt.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                                   completion_window="24h")
        emu.outage(LATENCY + OUTAGE)
        emu.advance(LATENCY)  # the batches end during the outage
        wait_until(lambda: emu.stats()["billed_total"]["batch"]["requests"] == 4)
        assert_refused(lambda: claude.messages.batches.retrieve(message_batch.id),
                       anthropic.InternalServerError)
        assert_refused(lambda: gpt.batches.retrieve(batch.id), openai.InternalServerError)
        emu.advance(OUTAGE)
        ended = claude.messages.batches.retrieve(message_batch.id)
        assert ended.processing_status == "ended"
        assert ended.request_counts.succeeded == 2
        assert ended.ended_at is not None
        took = ended.ended_at - ended.created_at
        assert LATENCY <= took.total_seconds() < LATENCY + 30
        completed = gpt.batches.retrieve(batch.id)
        assert completed.status == "completed"
        assert completed.completed_at is not None
        assert LATENCY - 1 <= completed.completed_at - completed.created_at < LATENCY + 30
        assert emu.stats()["billed_total"]["batch"]["requests"] == 4
