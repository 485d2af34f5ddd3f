"""The emulator speaks OpenAI's Chat Completions, Responses, Embeddings, Files and Batch APIs
as the service does, judged by the official sync SDK over real HTTP and by OpenAI's published
schemas (the async twin is test_emulator_openai_async)."""

from __future__ import annotations

import base64
import json
import math
import struct
import time
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.types import Batch, CreateEmbeddingResponse, FileDeleted, FileObject
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from deferrable.emulator import Emulator, HttpFault
from tests.emulator_helpers import wait_until
from tests.schemas import validate_openai

MODEL = "gpt-6.2-sol"
CHAT = "/v1/chat/completions"
ENDED = ("completed", "failed", "expired", "cancelled")
LONG_SYSTEM = "You are a careful reviewer of product feedback. " * 120  # > 1024 tokens
LONG_WORDS = " ".join(["extraordinarily"] * 12)
VOLATILE = frozenset({"id", "created", "created_at", "completed_at"})

_LINE = '{{"custom_id":"{id}","method":"POST","url":"{url}","body":{{"model":"{model}"}}}}'
INVALID_FILES = [
    pytest.param([b"{not json"], "invalid_json_line", 1, id="invalid_json_line"),
    pytest.param([_LINE.format(id="a", url=CHAT, model=MODEL).encode()] * 2,
                 "duplicate_custom_id", 2, id="duplicate_custom_id"),
    pytest.param([_LINE.format(id="a", url="/v1/embeddings", model=MODEL).encode()],
                 "url_mismatch", 1, id="url_mismatch"),
    pytest.param([_LINE.format(id="a", url=CHAT, model=MODEL).encode(),
                  _LINE.format(id="b", url=CHAT, model="gpt-6.2-luna").encode()],
                 "model_mismatch", 2, id="model_mismatch"),
    pytest.param([b"", b"  "], "empty_file", None, id="empty_file"),
]
"""Batch input files that fail validation: (lines, errors.data[0].code, its line)."""

# -- helpers shared with the async twin --------------------------------------------------


def chat_body(text: str, **params: Any) -> dict[str, Any]:
    """A small Chat Completions request body."""
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], **params}


def batch_lines(bodies: list[dict[str, Any]], url: str = CHAT) -> list[dict[str, Any]]:
    """Batch input lines for `bodies`, with custom_ids r0, r1, ..."""
    return [{"custom_id": f"r{i}", "method": "POST", "url": url, "body": body}
            for i, body in enumerate(bodies)]


def jsonl(lines: list[dict[str, Any]]) -> bytes:
    """`lines` as a JSONL file's bytes."""
    return "".join(json.dumps(line) + "\n" for line in lines).encode()


def parse_jsonl(text: str) -> dict[str, dict[str, Any]]:
    """The lines of a result file by custom_id, each checked against `BatchRequestOutput`."""
    lines = [json.loads(raw) for raw in text.splitlines() if raw.strip()]
    for line in lines:
        validate_openai("BatchRequestOutput", line)
    return {line["custom_id"]: line for line in lines}


def stable(body: Any) -> Any:
    """`body` without ids and timestamps, which differ between two answers to one request."""
    if isinstance(body, dict):
        return {key: stable(value) for key, value in body.items() if key not in VOLATILE}
    if isinstance(body, list):
        return [stable(item) for item in body]
    return body


def checked_batch(raw_text: str) -> Batch:
    """A `Batch` JSON checked against OpenAI's schema and parsed by the SDK."""
    data = json.loads(raw_text)
    validate_openai("Batch", data)
    return Batch.model_validate(data)


def decode_base64(value: str) -> list[float]:
    """A base64 little-endian float32 embedding, decoded."""
    raw = base64.b64decode(value)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def ended(client: openai.OpenAI, batch_id: str, until: tuple[str, ...] = ENDED) -> Batch:
    """Poll (checking every answer against the schema) until the batch reaches `until`."""
    seen: list[Batch] = []

    def reached() -> bool:
        seen.append(checked_batch(client.batches.with_raw_response.retrieve(batch_id).text))
        return seen[-1].status in until

    wait_until(reached)
    return seen[-1]


def upload(client: openai.OpenAI, lines: list[dict[str, Any]]) -> FileObject:
    """Upload batch input lines (each checked against `BatchRequestInput`)."""
    for line in lines:
        validate_openai("BatchRequestInput", line)
    return client.files.create(file=("input.jsonl", jsonl(lines)), purpose="batch")


def run_batch(client: openai.OpenAI, lines: list[dict[str, Any]], url: str = CHAT) -> Batch:
    """Upload `lines`, create a batch on `url` and wait for its end."""
    batch = client.batches.create(input_file_id=upload(client, lines).id, endpoint=url,
                                  completion_window="24h")
    return ended(client, batch.id)


# -- Chat Completions --------------------------------------------------------------------


def test_chat_completion_fits_sdk_type_and_schema(openai_client: openai.OpenAI,
                                                   emulator: Emulator) -> None:
    """A live chat answer fits `ChatCompletion` and the published schema, and is billed live."""
    raw = openai_client.chat.completions.with_raw_response.create(
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


def test_chat_truncates_at_max_completion_tokens(openai_client: openai.OpenAI) -> None:
    """`max_completion_tokens` caps the output and the finish reason says `length`."""
    completion = openai_client.chat.completions.create(
        **chat_body(LONG_WORDS, max_completion_tokens=5))
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens <= 5


def test_prompt_cache_writes_then_reads(openai_client: openai.OpenAI,
                                        emulator: Emulator) -> None:
    """A long prefix is cached once, then read: counted in prompt_tokens, billed as reads."""
    usages = []
    for question in ("first question", "second question"):
        completion = openai_client.chat.completions.create(
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


def test_unknown_model_is_404_model_not_found(openai_client: openai.OpenAI) -> None:
    """An unknown model raises `NotFoundError` with code `model_not_found` in the error schema."""
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.chat.completions.create(**{**chat_body("hi"), "model": "llama-3"})
    validate_openai("ErrorResponse", caught.value.response.json())
    assert caught.value.code == "model_not_found"
    assert caught.value.param == "model"


def test_missing_parameter_is_400_with_param(openai_client: openai.OpenAI) -> None:
    """A body without `messages` is a 400 `missing_required_parameter` naming the parameter."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.post("/chat/completions", body={"model": MODEL}, cast_to=ChatCompletion)
    validate_openai("ErrorResponse", caught.value.response.json())
    assert caught.value.code == "missing_required_parameter"
    assert caught.value.param == "messages"


def test_unknown_parameter_is_rejected(openai_client: openai.OpenAI) -> None:
    """A parameter the endpoint does not know is a 400 naming it."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.chat.completions.create(**chat_body("hi"), extra_body={"temprature": 1})
    assert caught.value.param == "temprature"


def test_error_marker_fails_live_on_every_attempt(openai_client: openai.OpenAI,
                                                  emulator: Emulator) -> None:
    """An `{{error:429}}` marker fails every attempt; the SDK retries twice, then raises."""
    with pytest.raises(openai.RateLimitError):
        openai_client.chat.completions.create(**chat_body("please {{error:429}}"))
    stats = emulator.stats()
    assert stats["requests"][f"POST {CHAT}"] == 3
    assert stats["billed"]["live"] == {}


# -- Responses ---------------------------------------------------------------------------


def test_response_fits_sdk_type_and_schema(openai_client: openai.OpenAI) -> None:
    """A live Responses answer fits `Response` and the schema; instructions act as system."""
    raw = openai_client.responses.with_raw_response.create(
        model=MODEL, instructions="Answer with the sentiment.", input="I hated it, awful")
    data = json.loads(raw.text)
    validate_openai("Response", data)
    response = Response.model_validate(data)
    assert response.status == "completed"
    assert response.output_text == "negative"
    assert response.usage is not None
    assert response.usage.total_tokens == (response.usage.input_tokens
                                           + response.usage.output_tokens)


def test_response_incomplete_at_max_output_tokens(openai_client: openai.OpenAI) -> None:
    """`max_output_tokens` caps the output and leaves the response `incomplete`."""
    response = openai_client.responses.create(
        model=MODEL, input=[{"role": "user", "content": [{"type": "input_text",
                                                          "text": LONG_WORDS}]}],
        max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None
    assert response.usage.output_tokens <= 16


# -- Embeddings --------------------------------------------------------------------------


def test_embeddings_base64_and_float_agree(openai_client: openai.OpenAI) -> None:
    """The SDK's default base64 answer decodes to exactly the float answer: unit vectors."""
    texts = ["the cat sat", "on the mat"]
    default = openai_client.embeddings.create(model="text-embedding-3-small", input=texts)
    raw = openai_client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=texts, encoding_format="float")
    data = json.loads(raw.text)
    validate_openai("CreateEmbeddingResponse", data)
    floats = CreateEmbeddingResponse.model_validate(data)
    assert [d.embedding for d in default.data] == [d.embedding for d in floats.data]
    assert len(floats.data[0].embedding) == 1536
    assert math.isclose(math.fsum(v * v for v in floats.data[0].embedding), 1.0, rel_tol=1e-5)
    assert floats.data[0].embedding != floats.data[1].embedding


def test_embeddings_dimensions_and_token_inputs(openai_client: openai.OpenAI) -> None:
    """`dimensions` shortens the vector; token arrays embed; explicit base64 is LE float32."""
    large = openai_client.embeddings.create(model="text-embedding-3-large", input="x",
                                            encoding_format="float")
    assert len(large.data[0].embedding) == 3072
    short = openai_client.embeddings.create(model="text-embedding-3-large", input="x",
                                            dimensions=256, encoding_format="float")
    assert len(short.data[0].embedding) == 256
    tokens = openai_client.embeddings.create(model="text-embedding-ada-002",
                                             input=[[1, 2, 3], [4, 5]])
    assert [d.index for d in tokens.data] == [0, 1]
    assert tokens.usage.prompt_tokens == 5
    raw = openai_client.embeddings.with_raw_response.create(
        model="text-embedding-3-small", input=[7, 8, 9], encoding_format="base64")
    encoded = json.loads(raw.text)["data"][0]["embedding"]
    plain = openai_client.embeddings.create(model="text-embedding-3-small", input=[7, 8, 9],
                                            encoding_format="float")
    assert decode_base64(encoded) == plain.data[0].embedding


# -- Files -------------------------------------------------------------------------------


def test_file_upload_retrieve_list_content_delete(openai_client: openai.OpenAI,
                                                  tmp_path: Path) -> None:
    """Files round-trip: upload, retrieve, list (filtered, ordered, paged), download, delete."""
    path = tmp_path / "requests.jsonl"
    path.write_bytes(jsonl(batch_lines([chat_body("one")])))
    with path.open("rb") as handle:
        raw = openai_client.files.with_raw_response.create(file=handle, purpose="batch")
    validate_openai("OpenAIFile", json.loads(raw.text))
    first = FileObject.model_validate(json.loads(raw.text))
    assert (first.filename, first.purpose, first.status) == ("requests.jsonl", "batch",
                                                             "processed")
    assert first.bytes == path.stat().st_size
    assert first.expires_at == first.created_at + 30 * 86_400
    second = openai_client.files.create(file=("b.jsonl", b"{}\n"), purpose="batch",
                                        expires_after={"anchor": "created_at", "seconds": 3600})
    assert second.expires_at == second.created_at + 3600
    other = openai_client.files.create(file=("notes.txt", b"hello"), purpose="user_data")
    assert other.expires_at is None
    assert openai_client.files.retrieve(first.id) == first
    listing = json.loads(openai_client.files.with_raw_response.list().text)
    validate_openai("ListFilesResponse", listing)
    assert [f["id"] for f in listing["data"]] == [other.id, second.id, first.id]
    paged = [f.id for f in openai_client.files.list(purpose="batch", order="asc", limit=1)]
    assert paged == [first.id, second.id]
    assert openai_client.files.content(first.id).content == path.read_bytes()
    deleted = openai_client.files.with_raw_response.delete(first.id)
    validate_openai("DeleteFileResponse", json.loads(deleted.text))
    assert FileDeleted.model_validate(json.loads(deleted.text)).deleted
    with pytest.raises(openai.NotFoundError) as caught:
        openai_client.files.retrieve(first.id)
    assert caught.value.code is None


def test_batch_upload_needs_a_jsonl_name(openai_client: openai.OpenAI) -> None:
    """A batch upload not named `.jsonl` is a 400 with the API's message."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.files.create(file=("input.txt", b"{}\n"), purpose="batch")
    assert caught.value.message.endswith("Invalid file format for Batch API. Must be .jsonl")


# -- Batches -----------------------------------------------------------------------------


def test_classic_pipeline_runs_unmodified(emulator: Emulator, tmp_path: Path) -> None:
    """The hand-written pipeline runs with only base_url changed: 3 lines, 1 batch, 0 live."""
    client = openai.OpenAI(api_key="sk-test", base_url=emulator.openai_url)
    path = tmp_path / "batch.jsonl"
    with path.open("w") as out:
        for i, review in enumerate(["great, loved it", "awful and slow", "it was {{error:400}}"]):
            request = {"custom_id": f"review-{i}", "method": "POST", "url": CHAT,
                       "body": {"model": MODEL, "max_completion_tokens": 20,
                                "messages": [{"role": "system", "content": "Sentiment?"},
                                             {"role": "user", "content": review}]}}
            out.write(json.dumps(request) + "\n")
    with open(path, "rb") as handle:
        batch_file = client.files.create(file=handle, purpose="batch")
    batch = client.batches.create(input_file_id=batch_file.id, endpoint=CHAT,
                                  completion_window="24h", metadata={"job": "nightly"})
    assert batch.status == "validating"
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        time.sleep(0.05)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed"
    assert batch.output_file_id is not None
    assert batch.error_file_id is not None
    results = {}
    for line in client.files.content(batch.output_file_id).text.splitlines():
        record = json.loads(line)
        results[record["custom_id"]] = record["response"]["body"]["choices"][0]["message"][
            "content"]
    errors = parse_jsonl(client.files.content(batch.error_file_id).text)
    client.close()
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


def test_batch_line_equals_live_answer(openai_client: openai.OpenAI) -> None:
    """A batch line's body (success or error) equals the live answer to the same request."""
    bodies = [chat_body("Sentiment: superb"),
              {"model": MODEL, "input": "hello", "instructions": "Be brief."},
              chat_body("{{error:429}}")]
    live_ok = json.loads(openai_client.chat.completions.with_raw_response.create(
        **bodies[0]).text)
    live_response = json.loads(openai_client.responses.with_raw_response.create(
        **bodies[1]).text)
    with pytest.raises(openai.RateLimitError) as caught:
        openai_client.with_options(max_retries=0).chat.completions.create(**bodies[2])
    chat = run_batch(openai_client, batch_lines([bodies[0], bodies[2]]))
    responses = run_batch(openai_client, batch_lines([bodies[1]], "/v1/responses"),
                          "/v1/responses")
    assert chat.output_file_id is not None
    assert chat.error_file_id is not None
    assert responses.output_file_id is not None
    good = parse_jsonl(openai_client.files.content(chat.output_file_id).text)
    bad = parse_jsonl(openai_client.files.content(chat.error_file_id).text)
    answered = parse_jsonl(openai_client.files.content(responses.output_file_id).text)
    assert stable(good["r0"]["response"]["body"]) == stable(live_ok)
    assert stable(answered["r0"]["response"]["body"]) == stable(live_response)
    assert bad["r1"]["response"]["status_code"] == 429
    assert bad["r1"]["response"]["body"] == caught.value.response.json()
    Response.model_validate(answered["r0"]["response"]["body"])


def test_embeddings_batch(openai_client: openai.OpenAI) -> None:
    """An embeddings batch answers each line as the live endpoint does (base64 included)."""
    body = {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "base64"}
    batch = run_batch(openai_client, batch_lines([body], "/v1/embeddings"), "/v1/embeddings")
    assert batch.output_file_id is not None
    line = parse_jsonl(openai_client.files.content(batch.output_file_id).text)["r0"]
    live = openai_client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    decoded = [decode_base64(item["embedding"]) for item in line["response"]["body"]["data"]]
    assert decoded == [item.embedding for item in live.data]
    assert batch.usage is not None
    assert batch.usage.input_tokens == 2


def test_batch_moves_through_states_on_the_clock(openai_client: openai.OpenAI,
                                                 emulator: Emulator) -> None:
    """validating -> in_progress -> completed as the emulator's clock passes the latency."""
    emulator.batch_latency = 3600
    created = checked_batch(openai_client.batches.with_raw_response.create(
        input_file_id=upload(openai_client, batch_lines([chat_body("a"), chat_body("b")])).id,
        endpoint=CHAT, completion_window="24h").text)
    assert created.status == "validating"
    assert created.request_counts is not None
    assert created.request_counts.total == 0
    running = ended(openai_client, created.id, ("in_progress",))
    assert running.request_counts is not None
    assert running.request_counts.total == 2
    assert running.output_file_id is None
    emulator.advance(3600)
    done = ended(openai_client, created.id)
    assert done.status == "completed"
    assert done.expires_at == done.created_at + 86_400
    assert done.in_progress_at is not None
    assert done.finalizing_at is not None
    assert done.completed_at is not None
    assert done.completed_at >= done.created_at + 3600
    assert done.error_file_id is None


def test_batch_list_pages_newest_first(openai_client: openai.OpenAI) -> None:
    """`batches.list` is newest first, paged with `after` and `has_more`."""
    file_id = upload(openai_client, batch_lines([chat_body("x")])).id
    ids = [openai_client.batches.create(input_file_id=file_id, endpoint=CHAT,
                                        completion_window="24h").id for _ in range(3)]
    page = json.loads(openai_client.batches.with_raw_response.list(limit=2).text)
    validate_openai("ListBatchesResponse", page)
    assert [b["id"] for b in page["data"]] == ids[::-1][:2]
    assert page["has_more"] is True
    assert page["last_id"] == ids[1]
    assert [b.id for b in openai_client.batches.list(limit=2)] == ids[::-1]


@pytest.mark.parametrize(("lines", "code", "line"), INVALID_FILES)
def test_invalid_input_fails_the_batch(openai_client: openai.OpenAI, lines: list[bytes],
                                       code: str, line: int | None,
                                       emulator: Emulator) -> None:
    """A bad input file is accepted at create, then the batch `failed` with that error code."""
    uploaded = openai_client.files.create(file=("in.jsonl", b"\n".join(lines) + b"\n"),
                                          purpose="batch")
    created = openai_client.batches.create(input_file_id=uploaded.id, endpoint=CHAT,
                                           completion_window="24h")
    assert created.status == "validating"
    batch = ended(openai_client, created.id)
    assert batch.status == "failed"
    assert batch.failed_at is not None
    assert batch.errors is not None
    assert batch.errors.data is not None
    assert (batch.errors.data[0].code, batch.errors.data[0].line) == (code, line)
    assert batch.output_file_id is None
    assert emulator.stats()["batches"] == {}


def test_expiry_fault_keeps_a_share_of_results(openai_client: openai.OpenAI,
                                               emulator: Emulator) -> None:
    """`expire_batches` ends it `expired`: a share in the output, the rest `batch_expired`."""
    emulator.faults.expire_batches = True
    emulator.faults.expire_completed_fraction = 0.5
    batch = run_batch(openai_client, batch_lines([chat_body(f"q{i}") for i in range(20)]))
    assert batch.status == "expired"
    assert batch.expired_at is not None
    assert batch.output_file_id is not None
    assert batch.error_file_id is not None
    done = parse_jsonl(openai_client.files.content(batch.output_file_id).text)
    expired = parse_jsonl(openai_client.files.content(batch.error_file_id).text)
    assert 0 < len(done) < 20
    assert len(done) + len(expired) == 20
    assert {line["error"]["code"] for line in expired.values()} == {"batch_expired"}
    assert all(line["response"] is None for line in expired.values())
    assert batch.request_counts is not None
    assert (batch.request_counts.completed, batch.request_counts.failed) == (len(done),
                                                                            len(expired))
    assert emulator.stats()["billed"]["batch"][MODEL]["requests"] == len(done)


def test_batch_expires_when_the_clock_passes_24h(openai_client: openai.OpenAI,
                                                 emulator: Emulator) -> None:
    """A batch still running when the clock passes `expires_at` expires with no output file."""
    emulator.batch_latency = 3 * 86_400
    created = openai_client.batches.create(
        input_file_id=upload(openai_client, batch_lines([chat_body("a"), chat_body("b")])).id,
        endpoint=CHAT, completion_window="24h")
    ended(openai_client, created.id, ("in_progress",))
    emulator.advance(86_400)
    batch = ended(openai_client, created.id)
    assert batch.status == "expired"
    assert batch.output_file_id is None
    assert batch.error_file_id is not None
    assert batch.request_counts is not None
    assert batch.request_counts.failed == 2


def test_cancel_race_keeps_a_share_of_results(openai_client: openai.OpenAI,
                                              emulator: Emulator) -> None:
    """Cancel -> `cancelling` -> `cancelled`: the racing share done, the rest `batch_cancelled`."""
    emulator.batch_latency = 3600
    emulator.faults.cancel_completed_fraction = 0.5
    created = openai_client.batches.create(
        input_file_id=upload(openai_client, batch_lines([chat_body(f"q{i}")
                                                         for i in range(20)])).id,
        endpoint=CHAT, completion_window="24h")
    ended(openai_client, created.id, ("in_progress",))
    cancelling = checked_batch(openai_client.batches.with_raw_response.cancel(created.id).text)
    assert cancelling.status == "cancelling"
    assert cancelling.cancelling_at is not None
    batch = ended(openai_client, created.id)
    assert batch.status == "cancelled"
    assert batch.cancelled_at is not None
    assert batch.output_file_id is not None
    assert batch.error_file_id is not None
    done = parse_jsonl(openai_client.files.content(batch.output_file_id).text)
    cancelled = parse_jsonl(openai_client.files.content(batch.error_file_id).text)
    assert 0 < len(done) < 20
    assert {line["error"]["code"] for line in cancelled.values()} == {"batch_cancelled"}
    assert batch.request_counts is not None
    assert batch.request_counts.completed + batch.request_counts.failed == 20
    with pytest.raises(openai.BadRequestError):
        openai_client.batches.cancel(created.id)


def test_missing_batch_is_404(openai_client: openai.OpenAI) -> None:
    """Retrieving an unknown batch raises `NotFoundError`."""
    with pytest.raises(openai.NotFoundError):
        openai_client.batches.retrieve("batch_missing")


def test_batch_create_checks_its_parameters(openai_client: openai.OpenAI) -> None:
    """Batch create rejects a missing input file id, too much metadata and a missing file."""
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.post("/batches", body={"endpoint": CHAT, "completion_window": "24h"},
                           cast_to=Batch)
    assert (caught.value.code, caught.value.param) == ("missing_required_parameter",
                                                       "input_file_id")
    file_id = upload(openai_client, batch_lines([chat_body("x")])).id
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.batches.create(input_file_id=file_id, endpoint=CHAT,
                                     completion_window="24h",
                                     metadata={f"k{i}": "v" for i in range(17)})
    assert caught.value.param == "metadata"
    with pytest.raises(openai.BadRequestError) as caught:
        openai_client.batches.create(input_file_id="file-missing", endpoint=CHAT,
                                     completion_window="24h")
    assert caught.value.param == "input_file_id"


# -- HTTP faults -------------------------------------------------------------------------


def test_429_with_retry_after_ms_is_retried(openai_client: openai.OpenAI,
                                            emulator: Emulator) -> None:
    """Two 429s with `retry-after-ms` are retried by the SDK, which then succeeds."""
    fault = emulator.inject(HttpFault(f"POST {CHAT}", status=429, times=2, retry_after_ms=1))
    completion = openai_client.chat.completions.create(**chat_body("hello"))
    assert completion.choices[0].message.content
    assert fault.times == 0
    stats = emulator.stats()
    assert stats["requests"][f"POST {CHAT}"] == 3
    assert stats["billed"]["live"][MODEL]["requests"] == 1


def test_500_is_retried_then_raised(openai_client: openai.OpenAI, emulator: Emulator) -> None:
    """A 500 is retried; with retries off it raises `InternalServerError`."""
    emulator.inject(HttpFault("GET /v1/batches", status=500, times=1))
    assert list(openai_client.batches.list()) == []
    emulator.inject(HttpFault("GET /v1/batches", status=500, times=1))
    with pytest.raises(openai.InternalServerError):
        openai_client.with_options(max_retries=0).batches.list()
    assert emulator.stats()["requests"]["GET /v1/batches"] == 3


def test_dropped_connection_is_retried(openai_client: openai.OpenAI,
                                       emulator: Emulator) -> None:
    """A connection dropped without an answer is retried by the SDK."""
    emulator.inject(HttpFault("GET /v1/files", drop_connection=True, times=1))
    assert list(openai_client.files.list()) == []
    emulator.inject(HttpFault("GET /v1/files", drop_connection=True, times=1))
    with pytest.raises(openai.APIConnectionError):
        openai_client.with_options(max_retries=0).files.list()


def test_truncated_download(openai_client: openai.OpenAI, emulator: Emulator) -> None:
    """A result download cut after N lines: `clean` ends short, `abort` breaks the connection."""
    batch = run_batch(openai_client, batch_lines([chat_body(f"q{i}") for i in range(5)]))
    assert batch.output_file_id is not None
    emulator.faults.truncate_results_after = 2
    emulator.faults.truncate_mode = "clean"
    assert len(openai_client.files.content(batch.output_file_id).text.splitlines()) == 2
    emulator.faults.truncate_mode = "abort"
    with pytest.raises(openai.APIConnectionError):
        openai_client.with_options(max_retries=0).files.content(batch.output_file_id)
