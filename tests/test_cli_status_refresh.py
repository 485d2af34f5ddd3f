"""`deferrable status --refresh` and `--watch`: each batch the journal holds open, as its
provider sees it, and the journal reconciled (a batch the provider does not know, or a
create that never made one, is marked lost so that a rerun submits its requests again),
against the emulator with the official SDKs and a job killed as a crash would."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from deferrable.emulator import Emulator
from deferrable.journal import BatchRecord, Journal
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import chat_request, wait_until
from tests.processes import ROOT, Job, Lines, wait_for
from tests.test_cli_journal import run
from tests.test_resume import batches

COUNT = 4
RETRIEVE = {"anthropic": "GET /v1/messages/batches/{message_batch_id}",
            "openai": "GET /v1/batches/{batch_id}"}
PROVIDERS = ["anthropic", "openai"]


@pytest.fixture
def store() -> Path:
    """The per-test journal directory (DEFERRABLE_STORE, set by `pristine_deferrable`)."""
    return Path(os.environ["DEFERRABLE_STORE"])


def point_at(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> None:
    """Dummy keys and `emulator`'s base URLs in the environment, as `status --refresh` reads them."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", DUMMY_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", DUMMY_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.url)
    monkeypatch.setenv("OPENAI_BASE_URL", emulator.openai_url)


def refreshed(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """The one batch row of ``deferrable status --refresh --json`` (which must exit 0)."""
    status, out, err = run(capsys, "status", "--refresh", "--json")
    assert status == 0, err
    [row] = json.loads(out)["batches"]
    assert isinstance(row, dict)
    return row


def killed_job(emulator: Emulator, store: Path, provider: str) -> BatchRecord:
    """A job SIGKILLed while its batch runs at `emulator`: the record it left (submitted,
    its owner dead)."""
    job = Job(emulator.url, store, "--count", str(COUNT), "--provider", provider)
    wait_for(lambda: any(b.batch_id for b in batches(store)))
    job.kill()
    [record] = batches(store)
    return record


def rerun(emulator: Emulator, store: Path, provider: str) -> dict[int, str]:
    """The job run again to its end; its answers."""
    return Job(emulator.url, store, "--count", str(COUNT), "--provider", provider).finish()


def dead_create(store: Path, provider: str, base_url: str) -> BatchRecord:
    """A create recorded by a process that then ended before any batch id was recorded."""
    destination = json.dumps({"provider": provider, "base_url": base_url})
    script = ("import sys; from deferrable.journal import Journal; j = Journal(sys.argv[1]); "
              "j.plan(['c-0'], provider=sys.argv[2], destination=sys.argv[3], reuse_for=1); "
              "j.close()")
    subprocess.run([sys.executable, "-c", script, str(store), provider, destination],
                   check=True, timeout=60)
    [record] = batches(store)
    return record


@pytest.mark.parametrize("provider", PROVIDERS)
def test_refresh_after_the_owner_died_shows_the_batch_then_its_results_waiting(
        emulator: Emulator, store: Path, provider: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A dead job's batch shows running, then ended with results waiting (not lost); the rerun collects it."""
    emulator.batch_latency = 60
    record = killed_job(emulator, store, provider)
    point_at(monkeypatch, emulator)
    row = refreshed(capsys)
    assert (row["batch_id"], row["state"], row["at_provider"]) == (
        record.batch_id, "submitted", "running")
    assert (row["owner_running"], row["marked_lost"]) == (False, False)
    emulator.advance(61)
    wait_until(lambda: refreshed(capsys)["at_provider"] == "ended")
    status, out, _ = run(capsys, "status", "--refresh")
    assert status == 0
    assert "ended, results waiting" in out
    assert [b.state for b in batches(store)] == ["submitted"]
    assert sorted(rerun(emulator, store, provider)) == list(range(COUNT))
    assert emulator.stats()["batches"][f"{provider}_batches"] == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_refresh_after_cancel_shows_it_cancelled(
        emulator: Emulator, store: Path, provider: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """After `deferrable cancel` the batch shows cancelled at its provider, its record open, not lost."""
    emulator.batch_latency = 60
    record = killed_job(emulator, store, provider)
    point_at(monkeypatch, emulator)
    assert record.batch_id is not None
    assert run(capsys, "cancel", record.batch_id)[0] == 0
    wait_until(lambda: refreshed(capsys)["at_provider"] == "cancelled")
    status, out, _ = run(capsys, "status", "--refresh")
    assert status == 0
    assert "cancelled, results waiting" in out
    [after] = batches(store)
    assert (after.state, after.cancelled, after.reason) == ("submitted", True, None)


@pytest.fixture
def forgetful() -> Iterator[list[Emulator]]:
    """Emulators a test starts itself (the first one stopped by the test), closed at its end."""
    started: list[Emulator] = []
    yield started
    for emulator in started:
        emulator.close()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_refresh_after_the_provider_forgot_the_batch_marks_it_lost(
        forgetful: list[Emulator], store: Path, provider: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A batch its provider forgot (not found twice, own credentials) is marked lost; a rerun resubmits it."""
    first = Emulator(batch_latency=60).start()
    forgetful.append(first)
    record = killed_job(first, store, provider)
    port = urllib.parse.urlsplit(first.url).port
    assert port is not None
    first.close()
    fresh = Emulator(port=port).start()
    forgetful.append(fresh)
    assert fresh.url == first.url
    point_at(monkeypatch, fresh)
    monkeypatch.setenv(f"{provider.upper()}_API_KEY", "another-account-not-a-secret")
    row = refreshed(capsys)  # not found for another account: not evidence it is gone
    assert (row["at_provider"], row["marked_lost"], row["state"]) == (
        "unknown", False, "submitted")
    assert "not those batch" in row["detail"]
    monkeypatch.setenv(f"{provider.upper()}_API_KEY", DUMMY_KEY)
    row = refreshed(capsys)
    assert (row["batch_id"], row["at_provider"], row["marked_lost"]) == (
        record.batch_id, "unknown", True)
    assert (row["state"], row["reason"]) == ("lost", "unknown to its provider")
    assert fresh.stats()["requests"] == {RETRIEVE[provider]: 4}
    assert sorted(rerun(fresh, store, provider)) == list(range(COUNT))
    assert fresh.stats()["batches"][f"{provider}_batches"] == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_refresh_never_asks_a_base_url_the_environment_does_not_name(
        forgetful: list[Emulator], store: Path, provider: str,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """With the environment naming another server than the journal, nothing is asked or marked; exit 1."""
    first = Emulator(batch_latency=60).start()
    forgetful.append(first)
    killed_job(first, store, provider)
    other = Emulator().start()
    forgetful.append(other)
    point_at(monkeypatch, other)
    served = first.stats()["requests"]
    status, out, err = run(capsys, "status", "--refresh")
    assert (status, err) == (1, "")
    assert "not checked" in out
    assert f"pass --base-url {first.url}" in out
    assert other.stats()["requests"] == {}
    assert first.stats()["requests"] == served
    assert [b.state for b in batches(store)] == ["submitted"]


def test_refresh_of_a_create_that_never_made_a_batch_marks_it_lost(
        emulator: Emulator, store: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A dead process's create with no batch at the provider shows "never created" and is marked lost."""
    dead_create(store, "anthropic", emulator.url)
    point_at(monkeypatch, emulator)
    status, out, _ = run(capsys, "status", "--refresh")
    assert status == 0
    assert "never created: marked lost" in out
    [record] = batches(store)
    assert (record.state, record.reason, record.batch_id) == ("lost", "never created", None)
    assert emulator.stats()["requests"] == {"GET /v1/messages/batches": 1}


def test_refresh_finds_the_tagged_batch_a_dead_create_made(
        emulator: Emulator, store: Path, openai_client: openai.OpenAI,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A dead process's create whose tagged batch exists gets its id recorded, not lost, and shows running."""
    record = dead_create(store, "openai", emulator.openai_url)
    emulator.batch_latency = 60
    line = {"custom_id": "c-0", "method": "POST", "url": "/v1/chat/completions",
            "body": chat_request("hello")}
    upload = openai_client.files.create(
        file=("input.jsonl", io.BytesIO(json.dumps(line).encode())), purpose="batch")
    batch = openai_client.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h",
        metadata={"deferrable": record.token})
    point_at(monkeypatch, emulator)
    row = refreshed(capsys)
    assert (row["batch_id"], row["state"], row["at_provider"]) == (
        batch.id, "submitted", "running")
    assert [(b.state, b.batch_id) for b in batches(store)] == [("submitted", batch.id)]


def test_watch_refreshes_until_interrupted(
        emulator: Emulator, store: Path, anthropic_client: anthropic.Anthropic) -> None:
    """`status --watch --json` refreshes again and again, a line each; Ctrl-C ends it quietly, status 0."""
    emulator.batch_latency = 60
    batch = anthropic_client.messages.batches.create(
        requests=[{"custom_id": "w-0", "params": {
            "model": "claude-haiku-4-5", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}]}}])
    journal = Journal(store)
    try:
        plan = journal.plan(["w-0"], provider="anthropic", reuse_for=60,
                            destination=json.dumps({"provider": "anthropic",
                                                    "base_url": emulator.url}))
        assert plan.token is not None
        journal.submitted(plan.token, batch.id)
    finally:
        journal.close()
    env = {**os.environ, "ANTHROPIC_API_KEY": DUMMY_KEY, "ANTHROPIC_BASE_URL": emulator.url}
    process = subprocess.Popen(
        [sys.executable, "-m", "deferrable", "status", "--watch", "0.05", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
    try:
        assert process.stdout is not None
        assert process.stderr is not None
        lines = Lines(process.stdout)
        reports = [json.loads(lines.next(timeout=30) or "null") for _ in range(3)]
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert process.stderr.read() == ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert [r["batches"][0]["at_provider"] for r in reports] == ["running"] * 3
    times = [r["refreshed_at"] for r in reports]
    assert times == sorted(times)
    assert len(set(times)) == 3
    assert emulator.stats()["requests"][RETRIEVE["anthropic"]] >= 3
