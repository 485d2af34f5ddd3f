"""Crash and rerun: the job is SIGKILLed at each point of a batch's life and run again;
the emulator (in its own process) proves every request was created and billed once, and
the rerun prints every answer."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deferrable.journal import BatchRecord, Journal

from .jobs.resume_job import ANTHROPIC_MODEL, DUMMY_KEY, OPENAI_MODEL, prompt
from .processes import EmulatorProcess, Job, wait_for

COUNT = 24
CREATE = {"anthropic": "POST /v1/messages/batches", "openai": "POST /v1/batches"}
MODEL = {"anthropic": ANTHROPIC_MODEL, "openai": OPENAI_MODEL}
RESULTS = {"anthropic": "GET /v1/messages/batches/{message_batch_id}/results",
           "openai": "GET /v1/files/{file_id}/content"}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """The job's journal directory (shared by the killed run and its rerun)."""
    return tmp_path / "job-journal"


@pytest.fixture
def emulators() -> Iterator[list[EmulatorProcess]]:
    """Emulator processes a test starts, stopped at its end."""
    started: list[EmulatorProcess] = []
    yield started
    for emulator in started:
        emulator.stop()


def start(emulators: list[EmulatorProcess], *flags: str, latency: float = 1.0) -> EmulatorProcess:
    """Start an emulator process with `flags`."""
    emulator = EmulatorProcess(*flags, batch_latency=latency)
    emulators.append(emulator)
    return emulator


def batches(store: Path) -> list[BatchRecord]:
    """The job's batches as its journal records them (read from this process)."""
    journal = Journal(store)
    try:
        return journal.batches()
    finally:
        journal.close()


def assert_paid_once(emulator: EmulatorProcess, provider: str, count: int = COUNT) -> None:
    """Every request was put in a batch once, billed once, and nothing went live."""
    stats = emulator.stats()
    assert stats["batches"].get(f"{provider}_batch_requests") == count, stats["batches"]
    assert stats["billed"]["batch"][MODEL[provider]]["requests"] == count, stats["billed"]
    assert stats["billed"]["live"] == {}


def assert_all_answered(answers: dict[int, str], count: int = COUNT) -> None:
    """The job printed the answer of every call, each quoting its own prompt."""
    assert sorted(answers) == list(range(count))
    for index, text in answers.items():
        assert prompt(index) in text, (index, text)


def rerun(emulator: EmulatorProcess, store: Path, *args: str) -> dict[int, str]:
    """Run the job again to its end; returns its answers."""
    return Job(emulator.url, store, "--count", str(COUNT), *args).finish()


def counted(emulator: EmulatorProcess, route: str) -> int:
    """Requests the emulator served on `route`."""
    count: Any = emulator.stats()["requests"].get(route, 0)
    return int(count)


def test_killed_before_its_flush_submits_everything_once(
        emulators: list[EmulatorProcess], store: Path) -> None:
    """Killed while its calls wait to be batched: nothing was sent, the rerun sends each once."""
    emulator = start(emulators)
    job = Job(emulator.url, store, "--count", str(COUNT), "--max-wait", "60")
    job.until("queued")
    job.kill()
    assert emulator.stats()["batches"] == {}
    assert_all_answered(rerun(emulator, store))
    assert_paid_once(emulator, "anthropic")


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_killed_while_its_batch_runs_reattaches(
        emulators: list[EmulatorProcess], store: Path, mode: str) -> None:
    """Killed while its batch runs: the rerun follows that batch instead of creating one."""
    emulator = start(emulators, latency=2.0)
    sync = ["--sync"] if mode == "sync" else []
    job = Job(emulator.url, store, "--count", str(COUNT), *sync)
    wait_for(lambda: any(b.batch_id for b in batches(store)))
    job.kill()
    assert_all_answered(rerun(emulator, store, *sync))
    assert_paid_once(emulator, "anthropic")
    assert emulator.stats()["batches"]["anthropic_batches"] == 1


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_batch_whose_id_never_reached_the_journal_is_found_again(
        emulators: list[EmulatorProcess], store: Path, provider: str) -> None:
    """Killed after the batch was created but before the create call answered: the rerun
    finds that batch (Anthropic: by time, size and custom ids; OpenAI: by its tag)."""
    emulator = start(emulators, "--hold-after", f"{CREATE[provider]}=30")
    job = Job(emulator.url, store, "--count", str(COUNT), "--provider", provider)
    wait_for(lambda: emulator.stats()["batches"].get(f"{provider}_batches"))
    assert [b.state for b in batches(store)] == ["creating"]
    job.kill()
    assert_all_answered(rerun(emulator, store, "--provider", provider))
    assert_paid_once(emulator, provider)
    assert [b.state for b in batches(store)] == ["collected"]


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_a_create_call_lost_on_the_way_is_made_again_once(
        emulators: list[EmulatorProcess], store: Path, provider: str) -> None:
    """Killed while its create call was on the way (never processed): the rerun looks for
    the batch, finds none, and creates it once (OpenAI: the orphaned upload is deleted)."""
    emulator = start(emulators, "--hold-before", f"{CREATE[provider]}=1")
    job = Job(emulator.url, store, "--count", str(COUNT), "--provider", provider)
    wait_for(lambda: counted(emulator, CREATE[provider]))
    job.kill()
    time.sleep(1.2)  # the hold ends; the emulator drops the orphaned request
    assert emulator.stats()["batches"] == {}
    assert_all_answered(rerun(emulator, store, "--provider", provider))
    assert_paid_once(emulator, provider)
    assert sorted(b.state for b in batches(store)) == ["collected", "lost"]
    if provider == "openai":
        assert openai_files(emulator) == []


def openai_files(emulator: EmulatorProcess) -> list[Any]:
    """The files the emulator's OpenAI side still holds."""
    request = urllib.request.Request(f"{emulator.url}/v1/files",
                                     headers={"Authorization": f"Bearer {DUMMY_KEY}"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        files: list[Any] = json.load(answer)["data"]
    return files


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_killed_while_results_stream_reads_them_again_without_paying(
        emulators: list[EmulatorProcess], store: Path, provider: str) -> None:
    """Killed while the results were streaming in: the rerun reads them again, pays nothing."""
    emulator = start(emulators, "--results-line-delay", "0.1")
    job = Job(emulator.url, store, "--count", str(COUNT), "--provider", provider)
    wait_for(lambda: counted(emulator, RESULTS[provider]))
    time.sleep(0.4)
    job.kill()
    assert job.answers() == {}
    assert_all_answered(rerun(emulator, store, "--provider", provider))
    assert_paid_once(emulator, provider)


def test_killed_after_returning_some_answers_serves_them_from_the_journal(
        emulators: list[EmulatorProcess], store: Path) -> None:
    """Killed after its first phase was answered and its second submitted: the rerun gets
    the first phase from the journal and follows the second phase's batch."""
    emulator = start(emulators, latency=1.5)
    job = Job(emulator.url, store, "--count", str(COUNT), "--phases", "2")
    job.until("queued", phase=1)
    wait_for(lambda: sum(1 for b in batches(store) if b.batch_id) == 2)
    job.kill()
    assert len(job.answers()) == COUNT // 2
    assert_all_answered(rerun(emulator, store, "--phases", "2"))
    assert_paid_once(emulator, "anthropic")
    assert emulator.stats()["batches"]["anthropic_batches"] == 2


def test_a_finished_job_run_again_pays_nothing(
        emulators: list[EmulatorProcess], store: Path) -> None:
    """A job run again after it finished is answered from the journal: no request at all."""
    emulator = start(emulators, latency=0.2)
    first = rerun(emulator, store)
    served = emulator.stats()["requests"]
    assert rerun(emulator, store) == first
    assert emulator.stats()["requests"] == served
    assert_paid_once(emulator, "anthropic")


def test_two_processes_sharing_a_journal_submit_each_request_once(
        emulators: list[EmulatorProcess], store: Path) -> None:
    """Two runs of the job at once on one journal: one batch, both get every answer."""
    emulator = start(emulators, latency=1.0)
    jobs = [Job(emulator.url, store, "--count", str(COUNT)) for _ in range(2)]
    for job in jobs:
        assert_all_answered(job.finish())
    assert_paid_once(emulator, "anthropic")
