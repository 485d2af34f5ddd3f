"""The async twin of test_emulator_anthropic: the same behaviours, judged by `AsyncAnthropic`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
import pytest
import pytest_asyncio
from anthropic.types import Message, MessageTokensCount
from anthropic.types.messages import (
    DeletedMessageBatch,
    MessageBatch,
    MessageBatchIndividualResponse,
)

from deferrable.emulator import Emulator, Faults, HttpFault, Limits, Quirks
from tests.anthropic_types import validate_anthropic
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import ANTHROPIC_HEADERS, message_request, raw_request, until


@pytest_asyncio.fixture
async def client(emulator: Emulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The official async client, pointed at the emulator."""
    async with anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emulator.url) as client:
        yield client


@contextlib.asynccontextmanager
async def emulated(**options: Any) -> AsyncIterator[tuple[Emulator, anthropic.AsyncAnthropic]]:
    """An emulator with `options` and an async client pointed at it."""
    with Emulator(**options) as emu:
        async with anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emu.url) as client:
            yield emu, client


LONG_SYSTEM = "You are a careful reviewer of product feedback. " * 120  # > 1024 tokens


async def ended(client: anthropic.AsyncAnthropic, batch_id: str) -> MessageBatch:
    """Poll until the batch has ended and return it."""
    async def has_ended() -> bool:
        return (await client.messages.batches.retrieve(batch_id)).processing_status == "ended"

    await until(has_ended)
    return await client.messages.batches.retrieve(batch_id)


def batch_of(texts: list[str], **params: object) -> list[dict[str, object]]:
    """Batch requests with custom_ids r0, r1, ..."""
    return [{"custom_id": f"r{i}", "params": message_request(text, **params)}
            for i, text in enumerate(texts)]


# -- Messages --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_message_validates_strictly_against_the_sdk_type(client: anthropic.AsyncAnthropic) -> None:
    """A live answer parses strictly as `Message`, declares no unknown field, and has a request-id."""
    raw = await client.messages.with_raw_response.create(
        model="claude-haiku-4-5", max_tokens=50,
        messages=[{"role": "user", "content": "Sentiment: I love it, a great buy"}])
    message = validate_anthropic(Message, await raw.text())
    assert raw.headers["request-id"].startswith("req_")
    assert message.content[0].type == "text"
    assert message.content[0].text == "positive"
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0
    assert message.usage.service_tier == "standard"


@pytest.mark.asyncio
async def test_responder_is_pluggable_and_deterministic() -> None:
    """A custom responder decides the text, and the same request gets the same answer twice."""
    async with emulated(responder=lambda prompt: prompt.last_user_text.upper()) as (_, client):
        first = await client.messages.create(**message_request("shout this"))
        second = await client.messages.create(**message_request("shout this"))
    assert first.content[0].type == "text"
    assert first.content[0].text == "SHOUT THIS"
    assert first.content == second.content
    assert first.id != second.id


@pytest.mark.asyncio
async def test_output_never_exceeds_max_tokens(client: anthropic.AsyncAnthropic) -> None:
    """A tight max_tokens truncates the text and reports stop_reason max_tokens."""
    message = await client.messages.create(**message_request("word " * 200, max_tokens=3))
    assert message.usage.output_tokens <= 3
    assert message.stop_reason == "max_tokens"


@pytest.mark.asyncio
async def test_stop_sequences_cut_the_answer(client: anthropic.AsyncAnthropic) -> None:
    """A stop sequence found in the answer ends it there, as the service reports."""
    message = await client.messages.create(**message_request(
        "alpha beta gamma", stop_sequences=["beta"]))
    assert message.stop_reason == "stop_sequence"
    assert message.stop_sequence == "beta"
    assert message.content[0].type == "text"
    assert "beta" not in message.content[0].text


@pytest.mark.asyncio
async def test_forced_tool_and_thinking_blocks(client: anthropic.AsyncAnthropic) -> None:
    """tool_choice forces a tool_use block matching the schema; thinking adds a thinking block."""
    raw = await client.messages.with_raw_response.create(
        **message_request("Weather in Paris?", max_tokens=500),
        tools=[{"name": "weather", "description": "get weather", "input_schema": {
            "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}],
        tool_choice={"type": "tool", "name": "weather"}, thinking={"type": "adaptive"})
    message = validate_anthropic(Message, await raw.text())
    assert [block.type for block in message.content] == ["thinking", "tool_use"]
    tool_use = message.content[1]
    assert tool_use.type == "tool_use"
    assert tool_use.name == "weather"
    assert set(tool_use.input) == {"city"}
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens_details is not None
    assert message.usage.output_tokens_details.thinking_tokens > 0


@pytest.mark.asyncio
async def test_prompt_cache_writes_then_reads(client: anthropic.AsyncAnthropic) -> None:
    """A cached system prefix is written by the first call, read by the next; input_tokens excludes both."""
    system = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}]
    first = await client.messages.create(**message_request("first review"), system=system)
    second = await client.messages.create(**message_request("second review"), system=system)
    assert first.usage.cache_creation_input_tokens is not None
    assert first.usage.cache_creation_input_tokens > 1024
    assert first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == first.usage.cache_creation_input_tokens
    assert second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens < 20
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == first.usage.cache_creation_input_tokens


@pytest.mark.asyncio
async def test_uncached_request_reports_no_cache_tokens(client: anthropic.AsyncAnthropic) -> None:
    """Without cache_control the same long prompt is never cached."""
    for _ in range(2):
        message = await client.messages.create(**message_request("x"), system=LONG_SYSTEM)
        assert message.usage.cache_read_input_tokens == 0
        assert message.usage.cache_creation_input_tokens == 0
        assert message.usage.input_tokens > 1024


@pytest.mark.asyncio
async def test_streaming_gives_the_same_message(client: anthropic.AsyncAnthropic) -> None:
    """A stream=True call delivers the same content and usage as the plain call."""
    params = message_request("tell me something")
    plain = await client.messages.create(**params)
    async with client.messages.stream(**params) as stream:
        streamed = await stream.get_final_message()
    assert streamed.content[0].type == "text"
    assert plain.content[0].type == "text"
    assert streamed.content[0].text == plain.content[0].text
    assert streamed.usage.output_tokens == plain.usage.output_tokens
    assert streamed.stop_reason == plain.stop_reason


@pytest.mark.asyncio
async def test_count_tokens_matches_message_usage(client: anthropic.AsyncAnthropic) -> None:
    """count_tokens reports the input tokens the Messages call bills."""
    params = message_request("How many tokens is this?")
    counted = await client.messages.count_tokens(model=params["model"],
                                                     messages=params["messages"])
    assert isinstance(counted, MessageTokensCount)
    assert counted.input_tokens == (await client.messages.create(**params)).usage.input_tokens


@pytest.mark.asyncio
async def test_sampling_params_rejected_under_new_version(client: anthropic.AsyncAnthropic) -> None:
    """Under 2026-10-21 `temperature` is a 400 with the service's message; 2023-06-01 accepts it."""
    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(**message_request("hi"), extra_body={"temperature": 0.2})
    assert "temperature: Extra inputs are not permitted" in str(caught.value)
    assert caught.value.request_id is not None
    old = client.with_options(default_headers={"anthropic-version": "2023-06-01"})
    answer = await old.messages.create(**message_request("hi"), extra_body={"temperature": 0.2})
    assert answer.content


@pytest.mark.asyncio
async def test_unknown_model_is_not_found(client: anthropic.AsyncAnthropic) -> None:
    """A model that is not Claude gives NotFoundError, as the service does."""
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.create(**{**message_request("hi"), "model": "gpt-4o"})


@pytest.mark.asyncio
async def test_authentication_headers(emulator: Emulator) -> None:
    """Bearer and x-api-key are accepted; no key is a 401 and no version a 400, in the real envelope."""
    url = emulator.url + "/v1/messages"
    body = message_request("hi")
    assert raw_request(url, body, ANTHROPIC_HEADERS)[0] == 200
    with_key = {**ANTHROPIC_HEADERS, "x-api-key": "k"}
    del with_key["authorization"]
    assert raw_request(url, body, with_key)[0] == 200
    no_key = {k: v for k, v in ANTHROPIC_HEADERS.items() if k != "authorization"}
    status, headers, error = raw_request(url, body, no_key)
    assert status == 401
    assert error["type"] == "error"
    assert error["error"]["type"] == "authentication_error"
    assert error["request_id"] == headers["request-id"]
    no_version = {k: v for k, v in ANTHROPIC_HEADERS.items() if k != "anthropic-version"}
    status, _, error = raw_request(url, body, no_version)
    assert status == 400
    assert "anthropic-version" in error["error"]["message"]


@pytest.mark.asyncio
async def test_marker_errors_raise_the_sdk_class(client: anthropic.AsyncAnthropic) -> None:
    """An {{error:...}} marker makes the live call fail with the matching SDK exception."""
    client = client.with_options(max_retries=0)
    cases = {"400": anthropic.BadRequestError, "429": anthropic.RateLimitError,
             "500": anthropic.InternalServerError, "overloaded_error": anthropic.OverloadedError}
    for marker, error_class in cases.items():
        with pytest.raises(error_class) as caught:
            await client.messages.create(**message_request(f"please fail {{{{error:{marker}}}}}"))
        assert "Injected error" in caught.value.message


# -- Message Batches -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_batch_counts_stay_processing_until_the_end() -> None:
    """request_counts hold every request in processing until the whole batch ends, then fill in."""
    async with emulated(batch_latency=0.3) as (emu, client):
        raw = await client.messages.batches.with_raw_response.create(
            requests=batch_of(["a", "b {{error:400}}", "c"]))
        created = validate_anthropic(MessageBatch, await raw.text())
        assert created.processing_status == "in_progress"
        assert created.request_counts.processing == 3
        assert created.request_counts.succeeded == created.request_counts.errored == 0
        assert created.results_url is None
        assert created.expires_at - created.created_at == __import__("datetime").timedelta(days=1)
        batch = await ended(client, created.id)
        assert batch.request_counts.processing == 0
        assert (batch.request_counts.succeeded, batch.request_counts.errored) == (2, 1)
        assert batch.ended_at is not None
        assert batch.results_url == f"{emu.url}/v1/messages/batches/{batch.id}/results"


@pytest.mark.asyncio
async def test_batch_results_validate_and_match_live_answers(client: anthropic.AsyncAnthropic,
                                                             emulator: Emulator) -> None:
    """Each result line parses strictly; a succeeded message equals the live answer to the same params."""
    params = message_request(
        "Summarise: the hotel was clean", system="Be brief.", metadata={"user_id": "u1"},
        stop_sequences=["###"], tools=[{"name": "t", "input_schema": {"type": "object"}}],
        tool_choice={"type": "auto"}, thinking={"type": "adaptive"},
        output_config={"effort": "low"})
    batch = await client.messages.batches.create(
        requests=[{"custom_id": "only", "params": params}])
    await ended(client, batch.id)
    raw = await client.get(f"/v1/messages/batches/{batch.id}/results",
                               cast_to=httpx2.Response)
    lines = raw.text.splitlines()
    assert len(lines) == 1
    result = validate_anthropic(MessageBatchIndividualResponse, lines[0])
    assert result.result.type == "succeeded"
    batched = result.result.message
    live = await client.messages.create(**params)
    assert batched.usage.service_tier == "batch"
    assert batched.model_dump(exclude={"id", "usage"}) == live.model_dump(exclude={"id", "usage"})
    assert batched.usage.model_dump(exclude={"service_tier"}) == live.usage.model_dump(
        exclude={"service_tier"})


@pytest.mark.asyncio
async def test_results_come_in_arbitrary_order(client: anthropic.AsyncAnthropic) -> None:
    """Results are not in request order, so clients must match them by custom_id."""
    batch = await client.messages.batches.create(requests=batch_of([str(i) for i in range(6)]))
    await ended(client, batch.id)
    order = [r.custom_id async for r in await client.messages.batches.results(batch.id)]
    assert sorted(order) == sorted(f"r{i}" for i in range(6))
    assert order != [f"r{i}" for i in range(6)]


@pytest.mark.asyncio
async def test_errored_lines_carry_the_live_error(client: anthropic.AsyncAnthropic) -> None:
    """A marker gives an errored line with the error type the live call raises, and a request_id."""
    batch = await client.messages.batches.create(requests=batch_of(
        ["ok", "{{error:429}}", "{{error:overloaded_error}}", "x"]))
    await ended(client, batch.id)
    results = {r.custom_id: r.result async for r in await client.messages.batches.results(batch.id)}
    kinds = {cid: (r.error.error.type if r.type == "errored" else r.type)
             for cid, r in results.items()}
    assert kinds == {"r0": "succeeded", "r1": "rate_limit_error", "r2": "overloaded_error",
                     "r3": "succeeded"}
    errored = results["r1"]
    assert errored.type == "errored"
    assert errored.error.request_id is not None


@pytest.mark.asyncio
async def test_batch_params_validation_is_asynchronous_by_default(
                                                                  client: anthropic.AsyncAnthropic) -> None:
    """Disallowed params (stream, max_tokens 0, temperature) become errored lines, not a 400."""
    batch = await client.messages.batches.create(requests=[
        {"custom_id": "s", "params": message_request("a", stream=True)},
        {"custom_id": "z", "params": message_request("b", max_tokens=0)},
        {"custom_id": "t", "params": message_request("c", temperature=0.1)},
        {"custom_id": "ok", "params": message_request("d")}])
    await ended(client, batch.id)
    results = {r.custom_id: r.result async for r in await client.messages.batches.results(batch.id)}
    assert {cid: r.type for cid, r in results.items()} == {
        "s": "errored", "z": "errored", "t": "errored", "ok": "succeeded"}
    temperature = results["t"]
    assert temperature.type == "errored"
    assert temperature.error.error.type == "invalid_request_error"
    assert "temperature" in temperature.error.error.message


@pytest.mark.asyncio
async def test_batch_params_validation_switch_rejects_at_create() -> None:
    """With the quirk set to reject, a disallowed param fails the create call with a 400."""
    async with emulated(quirks=Quirks(anthropic_batch_param_errors="reject")) as (emu, client):
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.batches.create(requests=[
                {"custom_id": "s", "params": message_request("a", stream=True)}])
        assert "requests.0.params.stream" in caught.value.message
        assert emu.stats()["batches"] == {}


@pytest.mark.asyncio
async def test_custom_id_rules(client: anthropic.AsyncAnthropic) -> None:
    """A malformed or duplicate custom_id is a 400 naming the offending request."""
    for custom_ids in (["ok", "bad id!"], ["same", "same"], ["x" * 65]):
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.batches.create(requests=[
                {"custom_id": cid, "params": message_request("a")} for cid in custom_ids])
        assert "custom_id" in caught.value.message


@pytest.mark.asyncio
async def test_batch_limits_give_the_providers_errors() -> None:
    """Over the request count is a 400, over the byte size a 413 request_too_large."""
    limits = Limits(anthropic_batch_requests=3, anthropic_batch_bytes=4000)
    async with emulated(limits=limits) as (_, client):
        with pytest.raises(anthropic.BadRequestError) as too_many:
            await client.messages.batches.create(requests=batch_of(["a"] * 4))
        assert "at most 3" in too_many.value.message
        with pytest.raises(anthropic.ContentTooLargeError) as too_big:
            await client.messages.batches.create(requests=batch_of(["x" * 3000, "y" * 3000]))
        assert isinstance(too_big.value.body, dict)
        assert too_big.value.body["error"]["type"] == "request_too_large"
        assert (await client.messages.batches.create(requests=batch_of(["a"] * 3))).id


@pytest.mark.asyncio
async def test_list_pages_newest_first(client: anthropic.AsyncAnthropic) -> None:
    """list is newest first, pages with has_more / last_id, and auto-paging sees every batch."""
    ids = [(await client.messages.batches.create(requests=batch_of(["a"]))).id
           for _ in range(5)]
    page = await client.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2]
    assert page.has_more
    assert page.last_id == ids[3]
    assert [b.id async for b in client.messages.batches.list(limit=2)] == ids[::-1]
    before = await client.messages.batches.list(before_id=ids[1], limit=2)
    assert [b.id for b in before.data] == [ids[3], ids[2]]


@pytest.mark.asyncio
async def test_cancel_race_leaves_some_succeeded() -> None:
    """Canceling ends the batch with canceled lines, while a share of requests still succeed."""
    async with emulated(batch_latency=3600, faults=Faults(cancel_completed_fraction=0.5)) as (_, client):
        batch = await client.messages.batches.create(requests=batch_of([str(i) for i in range(40)]))
        canceling = await client.messages.batches.cancel(batch.id)
        assert canceling.processing_status == "canceling"
        assert canceling.cancel_initiated_at is not None
        done = await ended(client, batch.id)
        counts = done.request_counts
        assert counts.canceled > 0
        assert counts.succeeded > 0
        assert counts.canceled + counts.succeeded == 40
        types = [r.result.type async for r in await client.messages.batches.results(batch.id)]
        assert types.count("canceled") == counts.canceled
        with pytest.raises(anthropic.BadRequestError):
            await client.messages.batches.cancel(batch.id)


@pytest.mark.asyncio
async def test_expiry_fault_and_the_24_hour_clock() -> None:
    """An expiring batch reports expired lines; advancing the clock 24 h expires a slow batch."""
    faults = Faults(expire_batches=True, expire_completed_fraction=0.5)
    async with emulated(faults=faults) as (emu, client):
        batch = await ended(client, (await client.messages.batches.create(
            requests=batch_of([str(i) for i in range(20)]))).id)
        assert batch.request_counts.expired > 0
        assert batch.request_counts.succeeded > 0
        assert batch.request_counts.expired + batch.request_counts.succeeded == 20
        faults.expire_batches = False
        faults.expire_completed_fraction = 0.0
        emu.batch_latency = 10**9
        slow = await client.messages.batches.create(requests=batch_of(["a", "b"]))
        assert (await client.messages.batches.retrieve(slow.id)).processing_status == "in_progress"
        emu.advance(86_400)
        assert (await ended(client, slow.id)).request_counts.expired == 2


@pytest.mark.asyncio
async def test_archived_results_are_gone_after_29_days(client: anthropic.AsyncAnthropic,
                                                       emulator: Emulator) -> None:
    """29 days after creation archived_at is set and the results download is a 404."""
    batch = await ended(client, (await client.messages.batches.create(
        requests=batch_of(["a"]))).id)
    assert batch.archived_at is None
    emulator.advance(29 * 86_400)
    assert (await client.messages.batches.retrieve(batch.id)).archived_at is not None
    with pytest.raises(anthropic.NotFoundError):
        [r async for r in await client.messages.batches.results(batch.id)]


@pytest.mark.asyncio
async def test_delete_only_after_the_end(client: anthropic.AsyncAnthropic,
                                         emulator: Emulator) -> None:
    """Deleting an in-progress batch is refused; an ended one is deleted and then not found."""
    emulator.batch_latency = 3600
    running = await client.messages.batches.create(requests=batch_of(["a"]))
    with pytest.raises(anthropic.BadRequestError):
        await client.messages.batches.delete(running.id)
    emulator.batch_latency = 0
    batch = await ended(client, (await client.messages.batches.create(
        requests=batch_of(["a"]))).id)
    raw = await client.messages.batches.with_raw_response.delete(batch.id)
    deleted = validate_anthropic(DeletedMessageBatch, await raw.text())
    assert deleted.id == batch.id
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.batches.retrieve(batch.id)


@pytest.mark.asyncio
async def test_batches_are_scoped_to_a_workspace(client: anthropic.AsyncAnthropic) -> None:
    """A batch created in one workspace is not found from another."""
    other = client.with_options(default_headers={"anthropic-workspace-id": "wrkspc_b"})
    batch = await other.messages.batches.create(requests=batch_of(["a"]))
    assert (await other.messages.batches.retrieve(batch.id)).id == batch.id
    with pytest.raises(anthropic.NotFoundError):
        await client.messages.batches.retrieve(batch.id)


@pytest.mark.asyncio
async def test_batch_prompt_cache_reads_after_the_first_write(client: anthropic.AsyncAnthropic
                                                              ) -> None:
    """In a batch sharing a cached system prompt, one request writes the prefix, the rest read it."""
    system = [{"type": "text", "text": LONG_SYSTEM,
               "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    batch = await client.messages.batches.create(
        requests=batch_of([f"review {i}" for i in range(5)], system=system))
    await ended(client, batch.id)
    usages = [r.result.message.usage async for r in await client.messages.batches.results(batch.id)
              if r.result.type == "succeeded"]
    writes = [u for u in usages if u.cache_creation_input_tokens]
    assert len(writes) == 1
    assert writes[0].cache_creation is not None
    assert writes[0].cache_creation.ephemeral_1h_input_tokens == writes[0].cache_creation_input_tokens
    assert sum(1 for u in usages if u.cache_read_input_tokens) == 4


# -- the classic hand-written pipeline ---------------------------------------------------


@pytest.mark.asyncio
async def test_classic_pipeline_with_retry_of_errored() -> None:
    """Build, create, poll, read results, resubmit the errored until all succeed: unmodified but base_url."""
    async with emulated(batch_latency=0.05, faults=Faults(error_rate=0.3, seed=7)) as (emu, client):
        reviews = {f"review-{i}": f"Sentiment of: {'great' if i % 2 else 'awful'} stay"
                   for i in range(30)}
        answers: dict[str, str] = {}
        pending = dict(reviews)
        rounds = 0
        while pending and rounds < 8:
            rounds += 1
            batch = await client.messages.batches.create(requests=[
                {"custom_id": cid, "params": message_request(text)} for cid, text in pending.items()])
            await ended(client, batch.id)
            async for item in await client.messages.batches.results(batch.id):
                if item.result.type == "succeeded":
                    block = item.result.message.content[0]
                    assert block.type == "text"
                    answers[item.custom_id] = block.text
                    del pending[item.custom_id]
        assert not pending
        assert rounds > 1
        assert {answers[f"review-{i}"] for i in range(1, 30, 2)} == {"positive"}
        assert {answers[f"review-{i}"] for i in range(0, 30, 2)} == {"negative"}
        stats = emu.stats()
        assert stats["requests"]["POST /v1/messages/batches"] == rounds
        assert "POST /v1/messages" not in stats["requests"]
        assert stats["billed"]["batch"]["claude-haiku-4-5"]["requests"] == 30
        assert stats["billed"]["live"] == {}


# -- HTTP faults -----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_429_with_retry_after_ms_is_retried_by_the_sdk(client: anthropic.AsyncAnthropic,
                                                             emulator: Emulator) -> None:
    """A 429 with retry-after-ms on create is retried by the SDK: one batch, two requests served."""
    fault = emulator.inject(HttpFault(route="POST /v1/messages/batches", status=429))
    batch = await client.messages.batches.create(requests=batch_of(["a"]))
    assert batch.id
    assert fault.times == 0
    stats = emulator.stats()
    assert stats["requests"]["POST /v1/messages/batches"] == 2
    assert stats["batches"]["anthropic_batches"] == 1


@pytest.mark.asyncio
async def test_server_errors_without_retry(client: anthropic.AsyncAnthropic,
                                           emulator: Emulator) -> None:
    """500 / 529 raise InternalServerError / OverloadedError; x-should-retry false stops SDK retries."""
    emulator.inject(HttpFault(route="GET /v1/messages/batches", status=529, should_retry=False))
    with pytest.raises(anthropic.OverloadedError):
        await client.messages.batches.list()
    emulator.inject(HttpFault(route="POST /v1/messages", status=500, should_retry=False))
    with pytest.raises(anthropic.InternalServerError) as caught:
        await client.messages.create(**message_request("a"))
    assert caught.value.body is not None
    assert emulator.stats()["requests"] == {"GET /v1/messages/batches": 1, "POST /v1/messages": 1}


@pytest.mark.asyncio
async def test_dropped_connection(client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """A dropped connection surfaces as APIConnectionError; a retry after it succeeds."""
    emulator.inject(HttpFault(route="POST /v1/messages", drop_connection=True))
    with pytest.raises(anthropic.APIConnectionError):
        await client.with_options(max_retries=0).messages.create(**message_request("a"))
    emulator.inject(HttpFault(route="POST /v1/messages", drop_connection=True))
    assert (await client.messages.create(**message_request("a"))).content


@pytest.mark.asyncio
async def test_truncated_results_stream(client: anthropic.AsyncAnthropic,
                                        emulator: Emulator) -> None:
    """A results download cut mid-stream fails the reader; a clean truncation ends it short."""
    batch = await ended(client, (await client.messages.batches.create(
        requests=batch_of([str(i) for i in range(10)]))).id)
    emulator.faults.truncate_results_after = 4
    with pytest.raises((httpx2.HTTPError, anthropic.APIConnectionError)):
        [r async for r in await client.messages.batches.results(batch.id)]
    emulator.faults.truncate_mode = "clean"
    assert len([r async for r in await client.messages.batches.results(batch.id)]) == 4
    emulator.faults.truncate_results_after = None
    assert len([r async for r in await client.messages.batches.results(batch.id)]) == 10


@pytest.mark.asyncio
async def test_stats_over_http_match(client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """GET /_emulator/stats reports the same counts as Emulator.stats() and is not counted itself."""
    await client.messages.create(**message_request("a"))
    assert emulator.fetch_stats() == emulator.stats()
    assert emulator.stats()["requests"] == {"POST /v1/messages": 1}
    assert emulator.stats()["billed_total"]["live"]["requests"] == 1
