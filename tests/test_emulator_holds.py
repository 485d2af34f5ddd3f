"""Timing faults for crash-resume tests: holds before or after a route's handler, slow
result streams, and their `deferrable emulator` flags."""

from __future__ import annotations

import asyncio
import time

import anthropic
import openai
import pytest

from deferrable.cli import _faults, _parser, main
from deferrable.emulator import Emulator, Hold
from tests.emulator_helpers import message_request
from tests.test_emulator_anthropic import batch_of, ended
from tests.test_emulator_openai import batch_lines, chat_body, run_batch, upload

CREATE = "POST /v1/messages/batches"


def test_before_hold_delays_then_serves(anthropic_client: anthropic.Anthropic,
                                        emulator: Emulator) -> None:
    """A `before` hold delays the answer by at least the hold, serves it, and is then spent."""
    hold = Hold("POST /v1/messages", before=0.4)
    emulator.faults.holds.append(hold)
    start = time.monotonic()
    assert anthropic_client.messages.create(**message_request("a")).content
    assert time.monotonic() - start >= 0.4
    assert hold.times == 0
    assert emulator.stats()["requests"] == {"POST /v1/messages": 1}


def test_before_hold_lost_when_the_client_leaves(anthropic_client: anthropic.Anthropic,
                                                 emulator: Emulator) -> None:
    """A client gone during a `before` hold is never served: the request counts, no batch exists."""
    emulator.faults.holds.append(Hold(CREATE, before=0.6))
    start = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        anthropic_client.with_options(max_retries=0, timeout=0.2).messages.batches.create(
            requests=batch_of(["a"]))
    time.sleep(max(0.0, start + 0.9 - time.monotonic()))  # the hold is over
    stats = emulator.stats()
    assert stats["requests"] == {CREATE: 1}
    assert "anthropic_batches" not in stats["batches"]
    assert anthropic_client.messages.batches.list().data == []


def test_after_hold_creates_while_the_client_waits(anthropic_client: anthropic.Anthropic,
                                                   emulator: Emulator) -> None:
    """An `after` hold creates the batch, then keeps the answer from a client that gives up."""
    emulator.faults.holds.append(Hold(CREATE, after=1.0))
    start = time.monotonic()
    with pytest.raises(anthropic.APITimeoutError):
        anthropic_client.with_options(max_retries=0, timeout=0.3).messages.batches.create(
            requests=batch_of(["a", "b"]))
    assert time.monotonic() - start < 1.0
    assert emulator.stats()["batches"] == {"anthropic_batches": 1, "anthropic_batch_requests": 2}
    assert len(anthropic_client.messages.batches.list().data) == 1


def test_after_hold_on_openai_batch_create(openai_client: openai.OpenAI,
                                           emulator: Emulator) -> None:
    """On OpenAI too, an `after` hold leaves a batch the client never heard of."""
    file = upload(openai_client, batch_lines([chat_body("a")]))
    emulator.faults.holds.append(Hold("POST /v1/batches", after=1.0))
    with pytest.raises(openai.APITimeoutError):
        openai_client.with_options(max_retries=0, timeout=0.3).batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")
    assert [batch.input_file_id for batch in openai_client.batches.list().data] == [file.id]


@pytest.mark.asyncio
async def test_a_held_request_does_not_stall_others(
        async_anthropic_client: anthropic.AsyncAnthropic, emulator: Emulator) -> None:
    """While one request is held, other requests are served at once."""
    emulator.faults.holds.append(Hold("POST /v1/messages", before=0.6, after=0.3))
    held = asyncio.ensure_future(async_anthropic_client.messages.create(**message_request("a")))
    await asyncio.sleep(0.1)
    start = time.monotonic()
    assert (await async_anthropic_client.messages.batches.list()).data == []
    assert time.monotonic() - start < 0.5
    assert not held.done()
    assert (await held).content


def test_hold_times_none_holds_every_request(emulator: Emulator) -> None:
    """`times=None` never runs out; the holds matching a route all apply, one use each."""
    forever, once = Hold("*", before=0.2, times=None), Hold(CREATE, after=0.2)
    emulator.faults.holds += [forever, once]
    assert emulator.state.take_holds(CREATE) == (0.2, 0.2)
    assert emulator.state.take_holds(CREATE) == (0.2, 0.0)
    assert (forever.times, once.times) == (None, 0)


def test_slow_anthropic_results_stream(anthropic_client: anthropic.Anthropic,
                                       emulator: Emulator) -> None:
    """With `results_line_delay`, reading N result lines takes at least N times the delay."""
    batch = ended(anthropic_client, anthropic_client.messages.batches.create(
        requests=batch_of([str(i) for i in range(5)])).id)
    emulator.faults.results_line_delay = 0.1
    start = time.monotonic()
    assert len(list(anthropic_client.messages.batches.results(batch.id))) == 5
    assert time.monotonic() - start >= 0.5


def test_slow_openai_file_content(openai_client: openai.OpenAI, emulator: Emulator) -> None:
    """OpenAI output files download line by line too, `results_line_delay` apart."""
    batch = run_batch(openai_client, batch_lines([chat_body(str(i)) for i in range(4)]))
    assert batch.output_file_id is not None
    emulator.faults.results_line_delay = 0.1
    start = time.monotonic()
    content = openai_client.files.content(batch.output_file_id).text
    assert time.monotonic() - start >= 0.4
    assert len(content.splitlines()) == 4


def test_slow_stream_can_be_stopped_midway(anthropic_client: anthropic.Anthropic,
                                           emulator: Emulator) -> None:
    """A slow stream hands over its first lines long before its last."""
    batch = ended(anthropic_client, anthropic_client.messages.batches.create(
        requests=batch_of([str(i) for i in range(10)])).id)
    emulator.faults.results_line_delay = 0.1
    start = time.monotonic()
    first = next(iter(anthropic_client.messages.batches.results(batch.id)))
    assert first.custom_id.startswith("r")
    assert time.monotonic() - start < 0.9


def test_cli_hold_and_slow_stream_flags() -> None:
    """The flags build unlimited holds (ROUTE split at the last '=') and the line delay."""
    args = _parser().parse_args([
        "emulator", "--hold-after", "POST /v1/messages/batches=5", "--hold-before", "*=0.5",
        "--hold-before", "GET /v1/files/{file_id}/content=1", "--results-line-delay", "0.25"])
    faults = _faults(args)
    assert faults.holds == [Hold("*", before=0.5, times=None),
                            Hold("GET /v1/files/{file_id}/content", before=1.0, times=None),
                            Hold(CREATE, after=5.0, times=None)]
    assert faults.results_line_delay == 0.25


@pytest.mark.parametrize("flags", [
    ["--hold-after", "POST /v1/messages/batches"],
    ["--hold-after", "/v1/messages/batches=5"],
    ["--hold-before", "POST /v1/batches=soon"],
    ["--hold-before", "POST /v1/batches=-1"],
    ["--results-line-delay", "-0.1"],
])
def test_cli_malformed_flags_are_usage_errors(flags: list[str],
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed hold or delay is an argparse error naming the flag, with exit status 2."""
    assert main(["emulator", *flags]) == 2
    assert f"argument {flags[0]}" in capsys.readouterr().err
