"""What a waiting user sees: the progress display on a terminal (a pseudo-terminal here),
nothing of it on a pipe or with progress=False, and the story told at INFO with batch ids."""

from __future__ import annotations

import logging
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import anthropic
import pytest

import deferrable
from deferrable.emulator import Emulator
from deferrable.engine import _engine
from deferrable.journal import close_journals
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import message_request

SCRIPT = textwrap.dedent("""
    import anthropic, deferrable, os, sys
    claude = anthropic.Anthropic(api_key="{key}", base_url=os.environ["EMULATOR_URL"])
    ask = deferrable.deferrable(progress={progress}, poll_interval=0.2)(
        lambda text: claude.messages.create(model="claude-haiku-4-5", max_tokens=5,
                                            messages=[{{"role": "user", "content": text}}]))
    answers = [f.result(timeout=60) for f in [ask(f"Sentiment: great {{i}}") for i in range(3)]]
    print("answers:", len(answers))
""")


def run_script(tmp_path: Path, emulator: Emulator, *, progress: bool, terminal: bool) -> str:
    """Run a script making three deferred calls with its standard error on a
    pseudo-terminal (or a pipe); everything it wrote there."""
    script = tmp_path / "job.py"
    script.write_text(SCRIPT.format(key=DUMMY_KEY, progress=progress))
    env = {**os.environ, "EMULATOR_URL": emulator.url, "COLUMNS": "160"}
    if not terminal:
        done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True,
                              text=True, timeout=120, check=True)
        return done.stderr
    leader, follower = pty.openpty()
    with subprocess.Popen([sys.executable, str(script)], env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.DEVNULL, stderr=follower) as child:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert child.wait(timeout=120) == 0
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_shows_each_batch_with_its_counts_and_savings(tmp_path: Path,
                                                                 emulator: Emulator) -> None:
    """On a terminal: the provider, the batch id, requests done of total and money saved."""
    emulator.batch_latency = 1.0
    shown = run_script(tmp_path, emulator, progress=True, terminal=True)
    [batch_id] = [w for w in shown.replace("\r", " ").split() if w.startswith("msgbatch_")][:1]
    assert "anthropic batch" in shown
    assert "3/3" in shown
    assert "saved $" in shown
    assert batch_id


@pytest.mark.parametrize(("progress", "terminal"), [(False, True), (True, False)])
def test_no_display_off_a_terminal_or_when_turned_off(tmp_path: Path, emulator: Emulator,
                                                      progress: bool, terminal: bool) -> None:
    """progress=False on a terminal, or a pipe: no progress display at all."""
    emulator.batch_latency = 1.0
    shown = run_script(tmp_path, emulator, progress=progress, terminal=terminal)
    assert "msgbatch_" not in shown
    assert "saved $" not in shown


def test_the_story_is_logged_at_info_with_batch_ids(anthropic_client: anthropic.Anthropic,
                                                    caplog: pytest.LogCaptureFixture,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Submitted, progress, ended with counts, and on a rerun served from the journal."""
    monkeypatch.setattr(_engine, "PROGRESS_LOG_EVERY", 0.0)
    caplog.set_level(logging.INFO, logger="deferrable")
    ask = deferrable.deferrable(lambda text: anthropic_client.messages.create(
        **message_request(text)))
    assert all(f.result(timeout=60) for f in [ask(f"Sentiment: fine {i}") for i in range(3)])
    lines = [record.getMessage() for record in caplog.records]
    [submitted] = [line for line in lines if line.startswith("submitted batch msgbatch_")]
    batch_id = submitted.split()[2]
    assert submitted.endswith("(anthropic, 3 requests)")
    assert any(line.startswith(f"batch {batch_id} ended after") and "(3/3 requests done)" in line
               for line in lines)
    close_journals()  # a rerun
    caplog.clear()
    assert all(f.result(timeout=60) for f in [ask(f"Sentiment: fine {i}") for i in range(3)])
    assert "served 3 result(s) from the journal (anthropic): nothing sent" in caplog.messages
