"""The command line's output read by a reader that leaves early (``deferrable ... | head -1``):
each command ends quietly, without a BrokenPipeError traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deferrable.cli import BROKEN_PIPE
from deferrable.journal import Journal
from deferrable.ledger import Spend, Tokens, row_of

PIPE_BUFFER = 64 * 1024
"""Linux's default pipe capacity: output longer than this cannot all be written before
the reader has gone."""


@pytest.fixture
def store() -> Path:
    """The per-test journal directory (DEFERRABLE_STORE, set by `pristine_deferrable`)."""
    return Path(os.environ["DEFERRABLE_STORE"])


def first_line_then_close(*argv: str) -> tuple[str, int, str]:
    """Run ``python -m deferrable ARGV`` with stdout a pipe that is closed after its first
    line is read; (that line, the exit status, stderr)."""
    process = subprocess.Popen([sys.executable, "-m", "deferrable", *argv],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stderr is not None
    line = process.stdout.readline()
    process.stdout.close()
    try:
        error = process.stderr.read()
        status = process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    return line, status, error


def assert_quiet(status: int, error: str) -> None:
    """The command ended as a pipeline's writer should: no traceback, exit 0 or 141."""
    assert "Traceback" not in error, error
    assert "BrokenPipeError" not in error, error
    assert status in (0, BROKEN_PIPE), error


def test_status_all_into_a_closed_pipe(store: Path) -> None:
    """`deferrable status --all | head -1` with more batches than a pipe holds ends quietly."""
    journal = Journal(store)
    try:
        for index in range(600):
            plan = journal.plan([f"c-{index}"], provider="anthropic", destination="{}",
                                reuse_for=60)
            assert plan.token is not None
            journal.submitted(plan.token, f"msgbatch_{index:04}_" + "x" * 150)
    finally:
        journal.close()
    line, status, error = first_line_then_close("status", "--all")
    assert line.startswith("journal at ")
    assert_quiet(status, error)


def test_report_into_a_closed_pipe(store: Path) -> None:
    """`deferrable report | head -1` with more call sites than a pipe holds ends quietly."""
    rows = [row_of(Spend(f"jobs.pipeline.step_{index:04}_" + "x" * 60, "anthropic",
                         "claude-haiku-4-5", "live", Tokens(input=100, output=10)))
            for index in range(1200)]
    journal = Journal(store)
    try:
        journal.add_ledger(rows)
    finally:
        journal.close()
    line, status, error = first_line_then_close("report")
    assert line.startswith("deferrable report: journal at ")
    assert_quiet(status, error)


def test_demo_into_a_closed_pipe() -> None:
    """`deferrable demo | head -1` ends quietly (its later lines come after the reader left)."""
    line, status, error = first_line_then_close("demo", "--requests", "50",
                                                "--batch-latency", "0.2")
    assert line.startswith("deferrable demo: 50 sentiment calls")
    assert_quiet(status, error)
    assert status == BROKEN_PIPE  # it did write after the reader had gone


def test_help_into_a_closed_pipe() -> None:
    """`deferrable --help | head -1` ends quietly too: the guard covers argument parsing."""
    line, status, error = first_line_then_close("--help")
    assert line.startswith("usage: deferrable")
    assert_quiet(status, error)
