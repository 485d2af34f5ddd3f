"""The `deferrable` command line: the foreground emulator, the demo hook, --version."""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

import openai
import pytest

import deferrable
from deferrable.cli import main
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import chat_request, wait_until

LISTENING = re.compile(
    r"^deferrable emulator listening on (http://127\.0\.0\.1:(\d+)) "
    r"\(OpenAI base_url: \1/v1\)$")


def read_line(stream: IO[str], timeout: float) -> str:
    """The next line of `stream`, or AssertionError after `timeout` seconds."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"no line within {timeout} s") from None


EMULATOR_ARGS = ["-m", "deferrable", "emulator", "--port", "0", "--batch-latency", "0"]
IGNORING_SIGINT = [
    "-c", "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
          "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"]
"""Python arguments that run the rest of the command line with SIGINT ignored, as a shell
starts a background job (an ignored signal stays ignored across exec)."""


@contextmanager
def running_emulator(*launcher: str) -> Iterator[subprocess.Popen[str]]:
    """`python [launcher] -m deferrable emulator --port 0` running; killed if still up."""
    process = subprocess.Popen([sys.executable, *launcher, *EMULATOR_ARGS],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def emulator_process() -> Iterator[subprocess.Popen[str]]:
    """`python -m deferrable emulator --port 0` running; killed if a test leaves it behind."""
    with running_emulator() as process:
        yield process


def get_json(url: str) -> Any:
    """The JSON body of GET `url`."""
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.load(answer)


def assert_serves_and_stops_on_sigint(process: subprocess.Popen[str]) -> None:
    """`process` prints its real URL, serves HTTP there, and exits 0 on Ctrl-C."""
    assert process.stdout is not None
    line = read_line(process.stdout, timeout=30).rstrip("\n")
    match = LISTENING.match(line)
    assert match, line
    url, port = match.group(1), int(match.group(2))
    assert port != 0
    stats = get_json(url + "/_emulator/stats")
    assert stats["requests"] == {}
    assert stats["batches"] == {}
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()


def test_emulator_serves_and_stops_cleanly_on_sigint(
        emulator_process: subprocess.Popen[str]) -> None:
    """The command prints its real URL, serves HTTP there, and exits 0 on Ctrl-C."""
    assert_serves_and_stops_on_sigint(emulator_process)


def test_emulator_stops_on_sigint_even_when_started_ignoring_it() -> None:
    """Ctrl-C stops the emulator cleanly even if it inherited SIGINT ignored (a background job)."""
    with running_emulator(*IGNORING_SIGINT) as process:
        assert_serves_and_stops_on_sigint(process)


def test_emulator_stops_cleanly_on_sigterm(emulator_process: subprocess.Popen[str]) -> None:
    """SIGTERM stops the foreground emulator as Ctrl-C does, with exit status 0."""
    assert emulator_process.stdout is not None
    assert LISTENING.match(read_line(emulator_process.stdout, timeout=30).rstrip("\n"))
    emulator_process.terminate()
    assert emulator_process.wait(timeout=10) == 0


def test_emulator_on_a_busy_port_fails_with_a_message(
        capsys: pytest.CaptureFixture[str]) -> None:
    """A port already in use is a one-line error and exit status 1, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["emulator", "--port", str(port)]) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_version_subprocess() -> None:
    """`python -m deferrable --version` prints the package version and exits 0."""
    result = subprocess.run([sys.executable, "-m", "deferrable", "--version"],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"deferrable {deferrable.__version__}"


def test_usage_errors_return_2(capsys: pytest.CaptureFixture[str]) -> None:
    """No command, a bad option value or an unknown quirk is a usage error (status 2)."""
    assert main([]) == 2
    assert main(["emulator", "--error-rate", "1.5"]) == 2
    assert main(["emulator", "--quirk", "no_such_quirk=1"]) == 2
    assert "no_such_quirk" in capsys.readouterr().err


def test_demo_runs_the_job_both_ways() -> None:
    """`deferrable demo` into a pipe prints every result line (same answers, half the cost, 1 batch)."""
    result = subprocess.run(
        [sys.executable, "-m", "deferrable", "demo", "--requests", "60"],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "A sample of the answers (the same both ways: yes)" in out
    assert "     60 answered in" in out
    assert re.search(r"^Deferring saved 50% of the cost: \$0\.\d+ instead of \$0\.\d+, "
                     r"with the same answers\.$", out, re.MULTILINE), out
    assert "  live          60  POST /v1/messages " in out
    assert re.search(r"^  deferred       1  POST /v1/messages/batches ", out, re.MULTILINE), out
    assert "     60 labels (negative 23, positive 22, neutral 15) from 1 batch, 0 live requests" in out
    assert "from 1 upload and 1 batch, 0 live requests; 2 files deleted after" in out
    assert "batch (deferred)    180" in out  # the report: three steps of 60 deferred calls
    assert "\r" not in out


@contextmanager
def emulator_serving(*flags: str) -> Iterator[str]:
    """`python -m deferrable emulator --port 0 [flags]` serving; its URL. Stopped (with
    SIGTERM, which must end it cleanly) when the block ends."""
    process = subprocess.Popen([sys.executable, *EMULATOR_ARGS, *flags],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = read_line(process.stdout, timeout=30).rstrip("\n")
        match = LISTENING.match(line)
        assert match, line
        yield match.group(1)
        process.terminate()
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_emulator_flex_and_background_flags_reach_the_emulator() -> None:
    """--flex-latency delays flex answers, --flex-unavailable-rate refuses its share of them
    with 429, and --background-latency sets when a background response ends."""
    with emulator_serving("--flex-latency", "0.3", "--flex-unavailable-rate", "0.5",
                          "--background-latency", "1") as url, \
            openai.OpenAI(api_key=DUMMY_KEY, base_url=url + "/v1", max_retries=0) as client:
        outcomes: list[str | None] = []  # the tier of a slow answer, or the refusal's code
        for i in range(6):
            start = time.monotonic()
            try:
                completion = client.chat.completions.create(
                    **chat_request(f"Flex question {i}"), service_tier="flex")
            except openai.RateLimitError as error:
                outcomes.append(error.code)
            else:
                slow = time.monotonic() - start >= 0.3
                outcomes.append(completion.service_tier if slow else "answered at once")
        assert set(outcomes) == {"flex", "resource_unavailable"}, outcomes
        start = time.monotonic()
        response = client.responses.create(model=chat_request("")["model"], input="Hello",
                                           background=True)
        assert response.status == "queued"
        wait_until(lambda: client.responses.retrieve(response.id).status == "completed")
        assert time.monotonic() - start >= 1.0


@pytest.mark.parametrize("flags", [
    ["--flex-latency", "-1"],
    ["--flex-latency", "nan"],
    ["--background-latency", "-0.5"],
    ["--background-latency", "soon"],
    ["--flex-unavailable-rate", "1.5"],
    ["--flex-unavailable-rate", "-0.1"],
])
def test_emulator_latency_and_flex_flags_are_checked(flags: list[str],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """A negative or non-numeric latency, or a rate outside 0..1, is a usage error naming the flag."""
    assert main(["emulator", *flags]) == 2
    assert f"argument {flags[0]}" in capsys.readouterr().err
