"""OpenAI emulator switches and limits: each ⚠ quirk both ways, lowered limits, and the
`error_rate` fault, judged through the sync SDK."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import openai
import pytest

from deferrable.emulator import Emulator, Faults, Limits, Quirks
from tests.conftest import DUMMY_KEY
from tests.test_emulator_openai import (
    CHAT,
    batch_lines,
    chat_body,
    ended,
    jsonl,
    parse_jsonl,
    run_batch,
    upload,
)


@contextmanager
def served(**settings: Any) -> Iterator[tuple[Emulator, openai.OpenAI]]:
    """An emulator built with `settings` and a sync client pointed at it."""
    with Emulator(**settings) as emu, \
            openai.OpenAI(api_key=DUMMY_KEY, base_url=emu.openai_url) as client:
        yield emu, client


def failed_codes(client: openai.OpenAI, lines: list[dict[str, Any]], url: str = CHAT) -> list[str]:
    """The `errors.data` codes of a batch of `lines`, which must end `failed`."""
    batch = run_batch(client, lines, url)
    assert batch.status == "failed"
    assert batch.errors is not None
    assert batch.errors.data is not None
    return [str(error.code) for error in batch.errors.data]


def test_upload_limits_answer_file_too_large() -> None:
    """Past `openai_batch_file_bytes` (batch) or `openai_upload_bytes` (any), upload is a 400."""
    with served(limits=Limits(openai_batch_file_bytes=100, openai_upload_bytes=1000)) as (_, c):
        with pytest.raises(openai.BadRequestError) as caught:
            c.files.create(file=("big.jsonl", b"{}\n" * 50), purpose="batch")
        assert caught.value.message.endswith("File is too large.")
        assert c.files.create(file=("small.jsonl", b"{}\n" * 30), purpose="batch").bytes == 90
        assert c.files.create(file=("notes.txt", b"x" * 900), purpose="user_data").bytes == 900
        with pytest.raises(openai.BadRequestError):
            c.files.create(file=("notes.txt", b"x" * 1001), purpose="user_data")
        assert list(c.files.list()) != []


def test_batch_file_check_by_content() -> None:
    """With `openai_batch_file_check="content"` the name is free but every line must parse."""
    with served(quirks=Quirks(openai_batch_file_check="content")) as (_, client):
        assert client.files.create(file=("input.txt", b'{"a": 1}\n'), purpose="batch").id
        with pytest.raises(openai.BadRequestError) as caught:
            client.files.create(file=("input.jsonl", b'{"a": 1}\nnot json\n'), purpose="batch")
        assert caught.value.message.endswith("Must be .jsonl")


def test_missing_input_file_fails_the_batch_when_asked() -> None:
    """With `openai_missing_input_file="fail"`, a missing or non-batch file fails the batch."""
    with served(quirks=Quirks(openai_missing_input_file="fail")) as (_, client):
        other = client.files.create(file=("notes.txt", b"hi"), purpose="user_data")
        for file_id in ("file-missing", other.id):
            created = client.batches.create(input_file_id=file_id, endpoint=CHAT,
                                            completion_window="24h")
            assert created.status == "validating"
            batch = ended(client, created.id)
            assert batch.status == "failed"
            assert batch.errors is not None
            assert batch.errors.data is not None
            assert batch.errors.data[0].param == "input_file_id"


def test_too_many_tasks_by_lines_and_by_embedding_inputs() -> None:
    """Over `openai_batch_requests` lines, or `openai_embedding_inputs` inputs, a batch fails."""
    limits = Limits(openai_batch_requests=3, openai_embedding_inputs=3)
    with served(limits=limits) as (emu, client):
        lines = batch_lines([chat_body(f"q{i}") for i in range(4)])
        assert failed_codes(client, lines) == ["too_many_tasks"]
        embed = {"model": "text-embedding-3-small", "input": ["a", "b"]}
        codes = failed_codes(client, batch_lines([embed, embed], "/v1/embeddings"),
                             "/v1/embeddings")
        assert codes == ["too_many_tasks"]
        assert emu.stats()["batches"] == {}


def test_stream_in_a_batch_line_both_ways() -> None:
    """`stream: true` in a line is a per-line 400 by default, or served with `ignore`."""
    lines = batch_lines([chat_body("a", stream=True), chat_body("b")])
    with served() as (_, client):
        batch = run_batch(client, lines)
        assert batch.request_counts is not None
        assert (batch.request_counts.completed, batch.request_counts.failed) == (1, 1)
        assert batch.error_file_id is not None
        errors = parse_jsonl(client.files.content(batch.error_file_id).text)
        assert errors["r0"]["response"]["status_code"] == 400
        assert errors["r0"]["response"]["body"]["error"]["param"] == "stream"
    with served(quirks=Quirks(openai_stream_in_batch="ignore")) as (_, client):
        batch = run_batch(client, lines)
        assert batch.request_counts is not None
        assert (batch.request_counts.completed, batch.request_counts.failed) == (2, 0)
        assert batch.error_file_id is None


def test_unrun_requests_need_not_count_as_failed() -> None:
    """With `openai_unrun_count_as_failed=False` expired lines are written but not counted."""
    quirks = Quirks(openai_unrun_count_as_failed=False)
    with served(quirks=quirks, faults=Faults(expire_batches=True)) as (_, client):
        batch = run_batch(client, batch_lines([chat_body("a"), chat_body("b")]))
        assert batch.status == "expired"
        assert batch.request_counts is not None
        assert (batch.request_counts.total, batch.request_counts.completed,
                batch.request_counts.failed) == (2, 0, 0)
        assert batch.output_file_id is None
        assert batch.error_file_id is not None
        assert len(parse_jsonl(client.files.content(batch.error_file_id).text)) == 2


def test_cancel_quirks_code_and_terminal_status() -> None:
    """The cancelled lines' code and the answer to cancelling an ended batch are switches."""
    quirks = Quirks(openai_cancelled_error_code="batch_canceled",
                    openai_cancel_terminal_status=200)
    with served(quirks=quirks, batch_latency=3600) as (_, client):
        uploaded = upload(client, batch_lines([chat_body("a"), chat_body("b")]))
        created = client.batches.create(input_file_id=uploaded.id, endpoint=CHAT,
                                        completion_window="24h")
        ended(client, created.id, ("in_progress",))
        assert client.batches.cancel(created.id).status == "cancelling"
        batch = ended(client, created.id)
        assert batch.status == "cancelled"
        assert batch.error_file_id is not None
        lines = parse_jsonl(client.files.content(batch.error_file_id).text)
        assert {line["error"]["code"] for line in lines.values()} == {"batch_canceled"}
        assert client.batches.cancel(created.id).status == "cancelled"


def test_result_file_names_and_expiry() -> None:
    """Result files take the quirk's names, `batch_output` purpose and `output_expires_after`."""
    quirks = Quirks(openai_output_filename="{batch_id}-out.jsonl",
                    openai_error_filename="{batch_id}-err.jsonl")
    with served(quirks=quirks) as (_, client):
        uploaded = upload(client, batch_lines([chat_body("a"), chat_body("{{error:500}}")]))
        created = client.batches.create(
            input_file_id=uploaded.id, endpoint=CHAT, completion_window="24h",
            output_expires_after={"anchor": "created_at", "seconds": 7200})
        batch = ended(client, created.id)
        assert batch.output_file_id is not None
        assert batch.error_file_id is not None
        output = client.files.retrieve(batch.output_file_id)
        error = client.files.retrieve(batch.error_file_id)
        assert (output.filename, error.filename) == (f"{batch.id}-out.jsonl",
                                                     f"{batch.id}-err.jsonl")
        assert (output.purpose, error.purpose) == ("batch_output", "batch_output")
        assert output.expires_at == output.created_at + 7200
        outputs = [f.id for f in client.files.list(purpose="batch_output")]
        assert sorted(outputs) == sorted([output.id, error.id])


def test_error_rate_fails_a_deterministic_share() -> None:
    """`error_rate` fails that share of batch lines with its status, and a live call at 1.0."""
    with served(faults=Faults(error_rate=0.5, error_rate_status=503, seed=7)) as (emu, client):
        batch = run_batch(client, batch_lines([chat_body(f"q{i}") for i in range(40)]))
        assert batch.request_counts is not None
        assert 5 < batch.request_counts.failed < 35
        assert batch.error_file_id is not None
        errors = parse_jsonl(client.files.content(batch.error_file_id).text)
        assert {line["response"]["status_code"] for line in errors.values()} == {503}
        assert {line["response"]["body"]["error"]["type"]
                for line in errors.values()} == {"server_error"}
        emu.faults.error_rate = 1.0
        with pytest.raises(openai.InternalServerError):
            client.with_options(max_retries=0).chat.completions.create(**chat_body("live"))
        assert emu.stats()["requests"][f"POST {CHAT}"] == 1


def test_input_file_deleted_after_create_still_runs() -> None:
    """Deleting the input file right after create does not pull it from under the batch."""
    with served(batch_latency=3600) as (emu, client):
        uploaded = client.files.create(file=("in.jsonl", jsonl(batch_lines([chat_body("a")]))),
                                       purpose="batch")
        created = client.batches.create(input_file_id=uploaded.id, endpoint=CHAT,
                                        completion_window="24h")
        client.files.delete(uploaded.id)
        ended(client, created.id, ("in_progress",))
        emu.advance(3600)
        batch = ended(client, created.id)
        assert batch.status == "completed"
        assert batch.request_counts is not None
        assert batch.request_counts.completed == 1
