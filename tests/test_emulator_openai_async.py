"""The async twin of test_emulator_openai: the same checks through `openai.AsyncOpenAI`."""

from __future__ import annotations

import asyncio
import json
import math
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types import Batch, CreateEmbeddingResponse, FileDeleted, FileObject
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from deferrable.emulator import Emulator, HttpFault
from tests.schemas import validate_openai
from tests.test_emulator_openai import (
    CHAT,
    ENDED,
    INVALID_FILES,
    LONG_SYSTEM,
    LONG_WORDS,
    MODEL,
    batch_lines,
    chat_body,
    checked_batch,
    decode_base64,
    jsonl,
    parse_jsonl,
    stable,
)


async def ended(client: openai.AsyncOpenAI, batch_id: str,
                until: tuple[str, ...] = ENDED) -> Batch:
    """Poll (checking every answer against the schema) until the batch reaches `until`."""
    deadline = time.monotonic() + 30
    while True:
        raw = await client.batches.with_raw_response.retrieve(batch_id)
        batch = checked_batch(raw.text)
        if batch.status in until:
            return batch
        assert time.monotonic() < deadline, "batch did not reach " + "/".join(until)
        await asyncio.sleep(0.02)


async def upload(client: openai.AsyncOpenAI, lines: list[dict[str, Any]]) -> FileObject:
    """Upload batch input lines (each checked against `BatchRequestInput`)."""
    for line in lines:
        validate_openai("BatchRequestInput", line)
    return await client.files.create(file=("input.jsonl", jsonl(lines)), purpose="batch")


async def run_batch(client: openai.AsyncOpenAI, lines: list[dict[str, Any]],
                    url: str = CHAT) -> Batch:
    """Upload `lines`, create a batch on `url` and wait for its end."""
    uploaded = await upload(client, lines)
    batch = await client.batches.create(input_file_id=uploaded.id, endpoint=url,
                                        completion_window="24h")
    return await ended(client, batch.id)


async def text_of(client: openai.AsyncOpenAI, file_id: str | None) -> str:
    """A file's content as text."""
    assert file_id is not None
    return (await client.files.content(file_id)).text


def write_file(path: Path, data: bytes) -> int:
    """Write `data` to `path` (blocking, outside the event loop's coroutines); its size."""
    path.write_bytes(data)
    return len(data)


def write_reviews(path: Path, reviews: list[str]) -> None:
    """The classic pipeline's JSONL, written line by line as a script would."""
    with path.open("w") as out:
        for i, review in enumerate(reviews):
            request = {"custom_id": f"review-{i}", "method": "POST", "url": CHAT,
                       "body": {"model": MODEL, "max_completion_tokens": 20,
                                "messages": [{"role": "system", "content": "Sentiment?"},
                                             {"role": "user", "content": review}]}}
            out.write(json.dumps(request) + "\n")


# -- Chat Completions --------------------------------------------------------------------


@pytest.mark.asyncio
async def test_chat_completion_fits_sdk_type_and_schema(
        async_openai_client: openai.AsyncOpenAI, emulator: Emulator) -> None:
    """A live chat answer fits `ChatCompletion` and the published schema, and is billed live."""
    raw = await async_openai_client.chat.completions.with_raw_response.create(
        **chat_body("Sentiment: I love it, a great buy"))
    data = json.loads(raw.text)
    validate_openai("CreateChatCompletionResponse", data)
    completion = ChatCompletion.model_validate(data)
    assert raw.headers["x-request-id"].startswith("req_")
    assert completion.choices[0].message.content == "positive"
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    billed = emulator.stats()["billed"]["live"][MODEL]
    assert billed["requests"] == 1
    assert billed["input_tokens"] == usage.prompt_tokens
    assert billed["output_tokens"] == usage.completion_tokens


@pytest.mark.asyncio
async def test_chat_truncates_at_max_completion_tokens(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """`max_completion_tokens` caps the output and the finish reason says `length`."""
    completion = await async_openai_client.chat.completions.create(
        **chat_body(LONG_WORDS, max_completion_tokens=5))
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens <= 5


@pytest.mark.asyncio
async def test_prompt_cache_writes_then_reads(async_openai_client: openai.AsyncOpenAI,
                                              emulator: Emulator) -> None:
    """A long prefix is cached once, then read: counted in prompt_tokens, billed as reads."""
    usages = []
    for question in ("first question", "second question"):
        completion = await async_openai_client.chat.completions.create(
            model=MODEL, messages=[{"role": "system", "content": LONG_SYSTEM},
                                   {"role": "user", "content": question}])
        assert completion.usage is not None
        usages.append(completion.usage)
    first, second = (usage.prompt_tokens_details for usage in usages)
    assert first is not None
    assert second is not None
    assert first.cached_tokens == 0
    assert first.cache_write_tokens is not None
    assert first.cache_write_tokens >= 1024
    assert first.cache_write_tokens % 128 == 0
    assert second.cached_tokens == first.cache_write_tokens
    assert second.cache_write_tokens == 0
    assert usages[1].prompt_tokens >= second.cached_tokens
    billed = emulator.stats()["billed"]["live"][MODEL]
    assert billed["cache_write_tokens"] == first.cache_write_tokens
    assert billed["cache_read_tokens"] == second.cached_tokens
    assert billed["input_tokens"] == sum(u.prompt_tokens for u in usages) - 2 * second.cached_tokens


@pytest.mark.asyncio
async def test_unknown_model_is_404_model_not_found(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """An unknown model raises `NotFoundError` with code `model_not_found` in the error schema."""
    with pytest.raises(openai.NotFoundError) as caught:
        await async_openai_client.chat.completions.create(**{**chat_body("hi"),
                                                             "model": "llama-3"})
    validate_openai("ErrorResponse", caught.value.response.json())
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


@pytest.mark.asyncio
async def test_missing_parameter_is_400_with_param(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """A body without `messages` is a 400 `missing_required_parameter` naming the parameter."""
    with pytest.raises(openai.BadRequestError) as caught:
        await async_openai_client.post("/chat/completions", body={"model": MODEL},
                                       cast_to=ChatCompletion)
    validate_openai("ErrorResponse", caught.value.response.json())
    assert caught.value.code == "missing_required_parameter"
    assert caught.value.param == "messages"


@pytest.mark.asyncio
async def test_unknown_parameter_is_rejected(async_openai_client: openai.AsyncOpenAI) -> None:
    """A parameter the endpoint does not know is a 400 naming it."""
    with pytest.raises(openai.BadRequestError) as caught:
        await async_openai_client.chat.completions.create(**chat_body("hi"),
                                                          extra_body={"temprature": 1})
    assert caught.value.param == "temprature"


@pytest.mark.asyncio
async def test_error_marker_fails_live_on_every_attempt(
        async_openai_client: openai.AsyncOpenAI, emulator: Emulator) -> None:
    """An `{{error:429}}` marker fails every attempt; the SDK retries twice, then raises."""
    with pytest.raises(openai.RateLimitError):
        await async_openai_client.chat.completions.create(**chat_body("please {{error:429}}"))
    stats = emulator.stats()
    assert stats["requests"][f"POST {CHAT}"] == 3
    assert stats["billed"]["live"] == {}


# -- Responses ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_response_fits_sdk_type_and_schema(async_openai_client: openai.AsyncOpenAI) -> None:
    """A live Responses answer fits `Response` and the schema; instructions act as system."""
    raw = await async_openai_client.responses.with_raw_response.create(
        model=MODEL, instructions="Answer with the sentiment.", input="I hated it, awful")
    data = json.loads(raw.text)
    validate_openai("Response", data)
    response = Response.model_validate(data)
    assert response.status == "completed"
    assert response.output_text == "negative"
    assert response.usage is not None
    assert response.usage.total_tokens == (response.usage.input_tokens
                                           + response.usage.output_tokens)


@pytest.mark.asyncio
async def test_response_incomplete_at_max_output_tokens(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """`max_output_tokens` caps the output and leaves the response `incomplete`."""
    response = await async_openai_client.responses.create(
        model=MODEL, input=[{"role": "user", "content": [{"type": "input_text",
                                                          "text": LONG_WORDS}]}],
        max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None
    assert response.usage.output_tokens <= 16


# -- Embeddings --------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_embeddings_base64_and_float_agree(async_openai_client: openai.AsyncOpenAI) -> None:
    """The SDK's default base64 answer decodes to exactly the float answer: unit vectors."""
    texts = ["the cat sat", "on the mat"]
    default = await async_openai_client.embeddings.create(model="text-embedding-3-small",
                                                          input=texts)
    raw = await async_openai_client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=texts, encoding_format="float")
    data = json.loads(raw.text)
    validate_openai("CreateEmbeddingResponse", data)
    floats = CreateEmbeddingResponse.model_validate(data)
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]
    assert len(floats.data[0].embedding) == 1536
    assert math.isclose(math.fsum(v * v for v in floats.data[0].embedding), 1.0, rel_tol=1e-5)
    assert floats.data[0].embedding != floats.data[1].embedding


@pytest.mark.asyncio
async def test_embeddings_dimensions_and_token_inputs(
        async_openai_client: openai.AsyncOpenAI) -> None:
    """`dimensions` shortens the vector; token arrays embed; explicit base64 is LE float32."""
    client = async_openai_client
    large = await client.embeddings.create(model="text-embedding-3-large", input="x",
                                           encoding_format="float")
    assert len(large.data[0].embedding) == 3072
    short = await client.embeddings.create(model="text-embedding-3-large", input="x",
                                           dimensions=256, encoding_format="float")
    assert len(short.data[0].embedding) == 256
    tokens = await client.embeddings.create(model="text-embedding-ada-002",
                                            input=[[1, 2, 3], [4, 5]])
    assert [d.index for d in tokens.data] == [0, 1]
    assert tokens.usage.prompt_tokens == 5
    raw = await client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=[7, 8, 9], encoding_format="base64")
    encoded = json.loads(raw.text)["data"][0]["embedding"]
    plain = await client.embeddings.create(model="text-embedding-3-small", input=[7, 8, 9],
                                           encoding_format="float")
    assert decode_base64(encoded) == plain.data[0].embedding


# -- Files -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_file_upload_retrieve_list_content_delete(
        async_openai_client: openai.AsyncOpenAI, tmp_path: Path) -> None:
    """Files round-trip: upload, retrieve, list (filtered, ordered, paged), download, delete."""
    client = async_openai_client
    path = tmp_path / "requests.jsonl"
    data = jsonl(batch_lines([chat_body("one")]))
    size = write_file(path, data)
    raw = await client.files.with_raw_response.create(file=path, purpose="batch")
    validate_openai("OpenAIFile", json.loads(raw.text))
    first = FileObject.model_validate(json.loads(raw.text))
    assert (first.filename, first.purpose, first.status) == ("requests.jsonl", "batch",
                                                             "processed")
    assert first.bytes == size
    assert first.expires_at == first.created_at + 30 * 86_400
    second = await client.files.create(file=("b.jsonl", b"{}\n"), purpose="batch",
                                       expires_after={"anchor": "created_at", "seconds": 3600})
    assert second.expires_at == second.created_at + 3600
    other = await client.files.create(file=("notes.txt", b"hello"), purpose="user_data")
    assert other.expires_at is None
    assert await client.files.retrieve(first.id) == first
    listing = json.loads((await client.files.with_raw_response.list()).text)
    validate_openai("ListFilesResponse", listing)
    assert [f["id"] for f in listing["data"]] == [other.id, second.id, first.id]
    paged = [f.id async for f in client.files.list(purpose="batch", order="asc", limit=1)]
    assert paged == [first.id, second.id]
    assert (await client.files.content(first.id)).content == data
    deleted = await client.files.with_raw_response.delete(first.id)
    validate_openai("DeleteFileResponse", json.loads(deleted.text))
    assert FileDeleted.model_validate(json.loads(deleted.text)).deleted
    with pytest.raises(openai.NotFoundError) as caught:
        await client.files.retrieve(first.id)
    assert caught.value.code is None


@pytest.mark.asyncio
async def test_batch_upload_needs_a_jsonl_name(async_openai_client: openai.AsyncOpenAI) -> None:
    """A batch upload not named `.jsonl` is a 400 with the API's message."""
    with pytest.raises(openai.BadRequestError) as caught:
        await async_openai_client.files.create(file=("input.txt", b"{}\n"), purpose="batch")
    assert caught.value.message.endswith("Invalid file format for Batch API. Must be .jsonl")


# -- Batches -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_classic_pipeline_runs_unmodified(emulator: Emulator, tmp_path: Path) -> None:
    """The hand-written pipeline runs with only base_url changed: 3 lines, 1 batch, 0 live."""
    client = openai.AsyncOpenAI(api_key="sk-test", base_url=emulator.openai_url)
    path = tmp_path / "batch.jsonl"
    write_reviews(path, ["great, loved it", "awful and slow", "it was {{error:400}}"])
    batch_file = await client.files.create(file=path, purpose="batch")
    batch = await client.batches.create(input_file_id=batch_file.id, endpoint=CHAT,
                                        completion_window="24h", metadata={"job": "nightly"})
    assert batch.status == "validating"
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        await asyncio.sleep(0.05)
        batch = await client.batches.retrieve(batch.id)
    assert batch.status == "completed"
    assert batch.output_file_id is not None
    assert batch.error_file_id is not None
    results = {}
    for line in (await client.files.content(batch.output_file_id)).text.splitlines():
        record = json.loads(line)
        results[record["custom_id"]] = record["response"]["body"]["choices"][0]["message"][
            "content"]
    errors = parse_jsonl((await client.files.content(batch.error_file_id)).text)
    await client.close()
    assert results == {"review-0": "positive", "review-1": "negative"}
    assert errors["review-2"]["response"]["status_code"] == 400
    assert errors["review-2"]["error"] is None
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed,
            batch.request_counts.failed) == (3, 2, 1)
    assert batch.metadata == {"job": "nightly"}
    assert batch.model == MODEL
    stats = emulator.stats()
    assert stats["batches"] == {"openai_batches": 1, "openai_batch_requests": 3}
    assert stats["requests"].get(f"POST {CHAT}", 0) == 0
    assert stats["billed"]["batch"][MODEL]["requests"] == 2
    assert stats["billed"]["live"] == {}


@pytest.mark.asyncio
async def test_batch_line_equals_live_answer(async_openai_client: openai.AsyncOpenAI) -> None:
    """A batch line's body (success or error) equals the live answer to the same request."""
    client = async_openai_client
    bodies = [chat_body("Sentiment: superb"),
              {"model": MODEL, "input": "hello", "instructions": "Be brief."},
              chat_body("{{error:429}}")]
    live_ok = json.loads((await client.chat.completions.with_raw_response.create(
        **bodies[0])).text)
    live_response = json.loads((await client.responses.with_raw_response.create(
        **bodies[1])).text)
    with pytest.raises(openai.RateLimitError) as caught:
        await client.with_options(max_retries=0).chat.completions.create(**bodies[2])
    chat = await run_batch(client, batch_lines([bodies[0], bodies[2]]))
    responses = await run_batch(client, batch_lines([bodies[1]], "/v1/responses"),
                                "/v1/responses")
    good = parse_jsonl(await text_of(client, chat.output_file_id))
    bad = parse_jsonl(await text_of(client, chat.error_file_id))
    answered = parse_jsonl(await text_of(client, responses.output_file_id))
    assert stable(good["r0"]["response"]["body"]) == stable(live_ok)
    assert stable(answered["r0"]["response"]["body"]) == stable(live_response)
    assert bad["r1"]["response"]["status_code"] == 429
    assert bad["r1"]["response"]["body"] == caught.value.response.json()
    Response.model_validate(answered["r0"]["response"]["body"])


@pytest.mark.asyncio
async def test_embeddings_batch(async_openai_client: openai.AsyncOpenAI) -> None:
    """An embeddings batch answers each line as the live endpoint does (base64 included)."""
    client = async_openai_client
    body = {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "base64"}
    batch = await run_batch(client, batch_lines([body], "/v1/embeddings"), "/v1/embeddings")
    line = parse_jsonl(await text_of(client, batch.output_file_id))["r0"]
    live = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    decoded = [decode_base64(item["embedding"]) for item in line["response"]["body"]["data"]]
    assert decoded == [item.embedding for item in live.data]
    assert batch.usage is not None
    assert batch.usage.input_tokens == 2


@pytest.mark.asyncio
async def test_batch_moves_through_states_on_the_clock(
        async_openai_client: openai.AsyncOpenAI, emulator: Emulator) -> None:
    """validating -> in_progress -> completed as the emulator's clock passes the latency."""
    client = async_openai_client
    emulator.batch_latency = 3600
    uploaded = await upload(client, batch_lines([chat_body("a"), chat_body("b")]))
    created = checked_batch((await client.batches.with_raw_response.create(
        input_file_id=uploaded.id, endpoint=CHAT, completion_window="24h")).text)
    assert created.status == "validating"
    assert created.request_counts is not None
    assert created.request_counts.total == 0
    running = await ended(client, created.id, ("in_progress",))
    assert running.request_counts is not None
    assert running.request_counts.total == 2
    assert running.output_file_id is None
    emulator.advance(3600)
    done = await ended(client, created.id)
    assert done.status == "completed"
    assert done.expires_at == done.created_at + 86_400
    assert done.in_progress_at is not None
    assert done.finalizing_at is not None
    assert done.completed_at is not None
    assert done.completed_at >= done.created_at + 3600
    assert done.error_file_id is None


@pytest.mark.asyncio
async def test_batch_list_pages_newest_first(async_openai_client: openai.AsyncOpenAI) -> None:
    """`batches.list` is newest first, paged with `after` and `has_more`."""
    client = async_openai_client
    file_id = (await upload(client, batch_lines([chat_body("x")]))).id
    ids = [(await client.batches.create(input_file_id=file_id, endpoint=CHAT,
                                        completion_window="24h")).id for _ in range(3)]
    page = json.loads((await client.batches.with_raw_response.list(limit=2)).text)
    validate_openai("ListBatchesResponse", page)
    assert [b["id"] for b in page["data"]] == ids[::-1][:2]
    assert page["has_more"] is True
    assert page["last_id"] == ids[1]
    assert [b.id async for b in client.batches.list(limit=2)] == ids[::-1]


@pytest.mark.asyncio
@pytest.mark.parametrize(("lines", "code", "line"), INVALID_FILES)
async def test_invalid_input_fails_the_batch(async_openai_client: openai.AsyncOpenAI,
                                             lines: list[bytes], code: str, line: int | None,
                                             emulator: Emulator) -> None:
    """A bad input file is accepted at create, then the batch `failed` with that error code."""
    client = async_openai_client
    uploaded = await client.files.create(file=("in.jsonl", b"\n".join(lines) + b"\n"),
                                         purpose="batch")
    created = await client.batches.create(input_file_id=uploaded.id, endpoint=CHAT,
                                          completion_window="24h")
    assert created.status == "validating"
    batch = await ended(client, created.id)
    assert batch.status == "failed"
    assert batch.failed_at is not None
    assert batch.errors is not None
    assert batch.errors.data is not None
    assert (batch.errors.data[0].code, batch.errors.data[0].line) == (code, line)
    assert batch.output_file_id is None
    assert emulator.stats()["batches"] == {}


@pytest.mark.asyncio
async def test_expiry_fault_keeps_a_share_of_results(async_openai_client: openai.AsyncOpenAI,
                                                     emulator: Emulator) -> None:
    """`expire_batches` ends it `expired`: a share in the output, the rest `batch_expired`."""
    client = async_openai_client
    emulator.faults.expire_batches = True
    emulator.faults.expire_completed_fraction = 0.5
    batch = await run_batch(client, batch_lines([chat_body(f"q{i}") for i in range(20)]))
    assert batch.status == "expired"
    assert batch.expired_at is not None
    done = parse_jsonl(await text_of(client, batch.output_file_id))
    expired = parse_jsonl(await text_of(client, batch.error_file_id))
    assert 0 < len(done) < 20
    assert len(done) + len(expired) == 20
    assert {line["error"]["code"] for line in expired.values()} == {"batch_expired"}
    assert all(line["response"] is None for line in expired.values())
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (len(done),
                                                                            len(expired))
    assert emulator.stats()["billed"]["batch"][MODEL]["requests"] == len(done)


@pytest.mark.asyncio
async def test_batch_expires_when_the_clock_passes_24h(async_openai_client: openai.AsyncOpenAI,
                                                       emulator: Emulator) -> None:
    """A batch still running when the clock passes `expires_at` expires with no output file."""
    client = async_openai_client
    emulator.batch_latency = 3 * 86_400
    uploaded = await upload(client, batch_lines([chat_body("a"), chat_body("b")]))
    created = await client.batches.create(input_file_id=uploaded.id, endpoint=CHAT,
                                          completion_window="24h")
    await ended(client, created.id, ("in_progress",))
    emulator.advance(86_400)
    batch = await ended(client, created.id)
    assert batch.status == "expired"
    assert batch.output_file_id is None
    assert batch.error_file_id is not None
    assert batch.request_counts is not None
    assert batch.request_counts.failed == 2


@pytest.mark.asyncio
async def test_cancel_race_keeps_a_share_of_results(async_openai_client: openai.AsyncOpenAI,
                                                    emulator: Emulator) -> None:
    """Cancel -> `cancelling` -> `cancelled`: the racing share done, the rest `batch_cancelled`."""
    client = async_openai_client
    emulator.batch_latency = 3600
    emulator.faults.cancel_completed_fraction = 0.5
    uploaded = await upload(client, batch_lines([chat_body(f"q{i}") for i in range(20)]))
    created = await client.batches.create(input_file_id=uploaded.id, endpoint=CHAT,
                                          completion_window="24h")
    await ended(client, created.id, ("in_progress",))
    cancelling = checked_batch((await client.batches.with_raw_response.cancel(created.id)).text)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at is not None
    batch = await ended(client, created.id)
    assert batch.status == "cancelled"
    assert batch.cancelled_at is not None
    done = parse_jsonl(await text_of(client, batch.output_file_id))
    cancelled = parse_jsonl(await text_of(client, batch.error_file_id))
    assert 0 < len(done) < 20
    assert {line["error"]["code"] for line in cancelled.values()} == {"batch_cancelled"}
    assert batch.request_counts is not None
    assert batch.request_counts.completed + batch.request_counts.failed == 20
    with pytest.raises(openai.BadRequestError):
        await client.batches.cancel(created.id)


@pytest.mark.asyncio
async def test_missing_batch_is_404(async_openai_client: openai.AsyncOpenAI) -> None:
    """Retrieving an unknown batch raises `NotFoundError`."""
    with pytest.raises(openai.NotFoundError):
        await async_openai_client.batches.retrieve("batch_missing")


@pytest.mark.asyncio
async def test_batch_create_checks_its_parameters(async_openai_client: openai.AsyncOpenAI) -> None:
    """Batch create rejects a missing input file id, too much metadata and a missing file."""
    client = async_openai_client
    with pytest.raises(openai.BadRequestError) as caught:
        await client.post("/batches", body={"endpoint": CHAT, "completion_window": "24h"},
                          cast_to=Batch)
    assert (caught.value.code, caught.value.param) == ("missing_required_parameter",
                                                       "input_file_id")
    file_id = (await upload(client, batch_lines([chat_body("x")]))).id
    with pytest.raises(openai.BadRequestError) as caught:
        await client.batches.create(input_file_id=file_id, endpoint=CHAT,
                                    completion_window="24h",
                                    metadata={f"k{i}": "v" for i in range(17)})
    assert caught.value.param == "metadata"
    with pytest.raises(openai.BadRequestError) as caught:
        await client.batches.create(input_file_id="file-missing", endpoint=CHAT,
                                    completion_window="24h")
    assert caught.value.param == "input_file_id"


# -- HTTP faults -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_429_with_retry_after_ms_is_retried(async_openai_client: openai.AsyncOpenAI,
                                                  emulator: Emulator) -> None:
    """Two 429s with `retry-after-ms` are retried by the SDK, which then succeeds."""
    fault = emulator.inject(HttpFault(f"POST {CHAT}", status=429, times=2, retry_after_ms=1))
    completion = await async_openai_client.chat.completions.create(**chat_body("hello"))
    assert completion.choices[0].message.content
    assert fault.times == 0
    stats = emulator.stats()
    assert stats["requests"][f"POST {CHAT}"] == 3
    assert stats["billed"]["live"][MODEL]["requests"] == 1


@pytest.mark.asyncio
async def test_500_is_retried_then_raised(async_openai_client: openai.AsyncOpenAI,
                                          emulator: Emulator) -> None:
    """A 500 is retried; with retries off it raises `InternalServerError`."""
    emulator.inject(HttpFault("GET /v1/batches", status=500, times=1))
    assert [b async for b in async_openai_client.batches.list()] == []
    emulator.inject(HttpFault("GET /v1/batches", status=500, times=1))
    with pytest.raises(openai.InternalServerError):
        await async_openai_client.with_options(max_retries=0).batches.list()
    assert emulator.stats()["requests"]["GET /v1/batches"] == 3


@pytest.mark.asyncio
async def test_dropped_connection_is_retried(async_openai_client: openai.AsyncOpenAI,
                                             emulator: Emulator) -> None:
    """A connection dropped without an answer is retried by the SDK."""
    emulator.inject(HttpFault("GET /v1/files", drop_connection=True, times=1))
    assert [f async for f in async_openai_client.files.list()] == []
    emulator.inject(HttpFault("GET /v1/files", drop_connection=True, times=1))
    with pytest.raises(openai.APIConnectionError):
        await async_openai_client.with_options(max_retries=0).files.list()


@pytest.mark.asyncio
async def test_truncated_download(async_openai_client: openai.AsyncOpenAI,
                                  emulator: Emulator) -> None:
    """A result download cut after N lines: `clean` ends short, `abort` breaks the connection."""
    client = async_openai_client
    batch = await run_batch(client, batch_lines([chat_body(f"q{i}") for i in range(5)]))
    emulator.faults.truncate_results_after = 2
    emulator.faults.truncate_mode = "clean"
    assert len((await text_of(client, batch.output_file_id)).splitlines()) == 2
    emulator.faults.truncate_mode = "abort"
    assert batch.output_file_id is not None
    with pytest.raises(openai.APIConnectionError):
        await client.with_options(max_retries=0).files.content(batch.output_file_id)
