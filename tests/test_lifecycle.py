"""Processes that end, are interrupted or fork while calls wait: nothing is dropped in
silence, a rerun collects without paying twice, and a forked child defers on its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from typing import Any

from deferrable.emulator import Emulator
from tests.processes import ROOT, Lines

RUNNING = "is still running with 3 calls of this run waiting"


def start(mode: str, url: str, **env: str) -> subprocess.Popen[str]:
    """tests/jobs/lifecycle_job.py in MODE against `url`, with this test's journal."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.jobs.lifecycle_job", mode, url], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env})


def run(mode: str, url: str, **env: str) -> tuple[list[dict[str, Any]], str]:
    """Run the job to its end: (its events, its stderr)."""
    job = start(mode, url, **env)
    out, err = job.communicate(timeout=120)
    assert job.returncode == 0, err
    return [json.loads(line) for line in out.splitlines()], err


def test_buffered_calls_are_submitted_at_exit_and_a_rerun_collects(emulator: Emulator) -> None:
    """A script ending with calls buffered submits them, names the batch and how to collect
    or cancel it; the rerun collects the same batch's results: one batch, nothing live."""
    emulator.batch_latency = 4.0
    events, err = run("leave", emulator.url)
    assert [e["event"] for e in events] == ["made"]
    stats = emulator.stats()
    assert stats["batches"] == {"anthropic_batches": 1, "anthropic_batch_requests": 3}
    assert RUNNING in err
    assert "rerun this script to collect them (nothing is paid twice)" in err
    assert "deferrable cancel msgbatch_" in err
    events, _ = run("collect", emulator.url)
    assert events[-1] == {"event": "collected", "answers": ["positive", "negative", "neutral"]}
    stats = emulator.stats()
    assert stats["batches"] == {"anthropic_batches": 1, "anthropic_batch_requests": 3}
    assert "POST /v1/messages" not in stats["requests"]


def test_without_a_journal_the_exit_warning_says_the_calls_are_lost(emulator: Emulator) -> None:
    """With journal=False the calls are still submitted at exit, and the line says a rerun
    pays for them again."""
    emulator.batch_latency = 4.0
    _, err = run("leave", emulator.url, DEFERRABLE_JOURNAL="false")
    assert emulator.stats()["batches"] == {"anthropic_batches": 1, "anthropic_batch_requests": 3}
    assert "they are lost: with journal=False nothing records them" in err


def test_ctrl_c_while_waiting_names_the_batch(emulator: Emulator) -> None:
    """Ctrl-C while a sync call waits ends the script with the same lines: the buffered
    calls are submitted, and the batch is named."""
    emulator.batch_latency = 4.0
    job = start("interrupt", emulator.url)
    assert job.stdout is not None
    assert json.loads(Lines(job.stdout).next(timeout=60) or "{}") == {"event": "made"}
    job.send_signal(signal.SIGINT)
    _, err = job.communicate(timeout=60)
    assert job.returncode != 0
    assert "KeyboardInterrupt" in err
    assert RUNNING in err
    assert emulator.stats()["batches"]["anthropic_batch_requests"] == 3


def test_a_forked_child_defers_its_own_calls(emulator: Emulator) -> None:
    """After the engine started, forked children's sync and async calls are deferred and
    answered (they would wait forever on the parent's engine)."""
    events, _ = run("fork", emulator.url)
    assert events[-1] == {"event": "fork", "answers": [
        "positive", ["negative", "negative"], ["neutral", "neutral"]]}
    assert "POST /v1/messages" not in emulator.stats()["requests"]
