"""`deferrable status`, `cancel` and `prune`: the journal seen and steered from the command
line, against the emulator with the official SDKs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anthropic
import diskcache
import openai
import pytest
from anthropic.types import Message

import deferrable
from deferrable import BatchCanceledError
from deferrable.cli import main
from deferrable.emulator import Emulator
from deferrable.journal import Journal
from tests.conftest import DUMMY_KEY
from tests.emulator_helpers import chat_request, message_request, until, wait_until

DESTINATION = json.dumps({"provider": "anthropic", "base_url": "http://127.0.0.1:9"})
SUCCEEDED = {"custom_id": "a-0", "result": {"type": "succeeded"}}


@pytest.fixture
def store() -> Path:
    """The per-test journal directory (DEFERRABLE_STORE, set by `pristine_deferrable`)."""
    return Path(os.environ["DEFERRABLE_STORE"])


@pytest.fixture
def credentials(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy keys in the environment, and the emulator's base URLs: the commands send
    credentials to a base URL the journal names only when the environment names it too."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", DUMMY_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", DUMMY_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.url)
    monkeypatch.setenv("OPENAI_BASE_URL", emulator.openai_url)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``deferrable ARGV``."""
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def status_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    """The object ``deferrable status --json ARGV`` prints."""
    status, out, err = run(capsys, "status", "--json", *argv)
    assert status == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


def states(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """The state of every batch the journal records, oldest first."""
    return [batch["state"] for batch in status_json(capsys, "--all")["batches"]]


def write_batch(store: Path, custom_ids: list[str], batch_id: str) -> str:
    """Record a submitted Anthropic batch of `custom_ids` through the Journal API; its token."""
    journal = Journal(store)
    try:
        plan = journal.plan(custom_ids, provider="anthropic", destination=DESTINATION,
                            reuse_for=3600)
        assert plan.token is not None
        journal.submitted(plan.token, batch_id)
        return plan.token
    finally:
        journal.close()


# -- status ----------------------------------------------------------------------------------

def test_status_without_a_journal_says_so_and_creates_nothing(
        store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No journal: one line naming the path, exit 0, and the directory still absent."""
    status, out, err = run(capsys, "status")
    assert (status, out, err) == (0, f"no journal at {store}\n", "")
    report = status_json(capsys)
    assert report == {"store": str(store), "batches": [], "requests_pending": 0,
                      "results_waiting": 0}
    assert not store.exists()


def test_status_counts_pending_requests_and_waiting_results(
        store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A batch with one result received and not handed out: 1 pending, 1 waiting, both shown."""
    token = write_batch(store, ["a-0", "b-0"], "msgbatch_x")
    journal = Journal(store)
    journal.received(token, [("a-0", SUCCEEDED, False)], 3600)
    journal.close()
    report = status_json(capsys)
    [batch] = report["batches"]
    assert batch["token"] == token
    assert (batch["provider"], batch["batch_id"], batch["state"]) == (
        "anthropic", "msgbatch_x", "submitted")
    assert (batch["requests"], batch["received"], batch["delivered"]) == (2, 1, 0)
    assert (batch["owner_pid"], batch["owner_running"]) == (os.getpid(), True)
    assert (report["requests_pending"], report["results_waiting"]) == (1, 1)
    status, out, _ = run(capsys, "status")
    assert status == 0
    lines = out.splitlines()
    assert lines[1] == "anthropic"
    assert lines[3].split() == ["msgbatch_x", "submitted", "2", "1", "0", "pid",
                                f"{os.getpid()},", "running", "0s"]
    assert lines[-2:] == ["requests pending: 1", "results waiting to be collected: 1"]


def test_status_of_a_store_given_by_flag_names_a_gone_owner(
        tmp_path: Path, store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--store reads that journal, not DEFERRABLE_STORE's; a batch planned by an ended process
    shows "(being created)" and its owner gone."""
    other = tmp_path / "elsewhere"
    script = ("import sys; from deferrable.journal import Journal; j = Journal(sys.argv[1]); "
              "j.plan(['c-0'], provider='openai', destination='{}', reuse_for=1); j.close()")
    subprocess.run([sys.executable, "-c", script, str(other)], check=True, timeout=60)
    report = status_json(capsys, "--store", str(other))
    assert report["store"] == str(other)
    [batch] = report["batches"]
    assert (batch["provider"], batch["state"], batch["batch_id"]) == ("openai", "creating", None)
    assert batch["owner_running"] is False
    assert batch["owner_pid"] != os.getpid()
    status, out, _ = run(capsys, "status", "--store", str(other))
    assert status == 0
    assert "(being created)" in out
    assert f"pid {batch['owner_pid']}, gone" in out
    assert not store.exists()


def test_status_of_a_foreign_journal_exits_2_without_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A diskcache holding a pickle is refused: a one-line message on stderr, exit 2."""
    foreign = tmp_path / "foreign"
    with diskcache.Cache(str(foreign)) as cache:
        cache.set("x", {"a": 1})
    for command in ("status", "prune"):
        status, out, err = run(capsys, command, "--store", str(foreign))
        assert (status, out) == (2, "")
        assert err.startswith("deferrable: ")
        assert "not a deferrable journal" in err
        assert "Traceback" not in err


# -- cancel ----------------------------------------------------------------------------------

async def anthropic_call(emulator: Emulator) -> Any:
    """One deferred Messages call through the async Anthropic client."""
    async with anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emulator.url) as client:
        return await client.messages.create(**message_request("hello"))


async def openai_call(emulator: Emulator) -> Any:
    """One deferred Chat Completions call through the async OpenAI client."""
    async with openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url) as client:
        return await client.chat.completions.create(**chat_request("hello"))


async def batch_in_flight(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """``status --json`` once a batch has its provider id."""
    deadline = time.monotonic() + 30
    while True:
        report = status_json(capsys)
        if report["batches"] and report["batches"][0]["batch_id"]:
            return report
        assert time.monotonic() < deadline, "no batch submitted in time"
        await asyncio.sleep(0.02)


@pytest.mark.usefixtures("credentials")
@pytest.mark.parametrize(("provider", "call", "canceling"), [
    ("anthropic", anthropic_call, "canceling"),
    ("openai", openai_call, "cancelling"),
])
@pytest.mark.asyncio
async def test_status_then_cancel_of_a_batch_in_flight(
        emulator: Emulator, capsys: pytest.CaptureFixture[str], provider: str,
        call: Callable[[Emulator], Awaitable[Any]], canceling: str) -> None:
    """A submitted batch shows in status; `cancel` reaches the journal's base URL, its call
    raises BatchCanceledError, and a rerun submits the request again."""
    emulator.batch_latency = 60
    async with deferrable.scope():
        pending = asyncio.ensure_future(call(emulator))
        report = await batch_in_flight(capsys)
        [batch] = report["batches"]
        assert (batch["provider"], batch["state"]) == (provider, "submitted")
        assert (batch["requests"], batch["received"], batch["delivered"]) == (1, 0, 0)
        assert (batch["owner_pid"], batch["owner_running"]) == (os.getpid(), True)
        assert (report["requests_pending"], report["results_waiting"]) == (1, 0)
        status, out, _ = run(capsys, "status")
        assert status == 0
        assert f"  {batch['batch_id']}  submitted" in out
        assert out.splitlines()[-2] == "requests pending: 1"
        status, out, err = run(capsys, "cancel", batch["batch_id"])
        assert (status, err) == (0, "")
        assert out.splitlines()[0] == f"{batch['batch_id']} ({provider}): {canceling}"
        with pytest.raises(BatchCanceledError):
            await pending

    async def collected() -> bool:
        return states(capsys) == ["collected"]

    await until(collected)
    assert status_json(capsys)["requests_pending"] == 0
    emulator.batch_latency = 0
    async with deferrable.scope():
        assert await call(emulator) is not None
    assert len(states(capsys)) == 2


@pytest.mark.usefixtures("credentials")
def test_cancel_of_a_batch_the_journal_does_not_know_goes_by_its_prefix(
        emulator: Emulator, anthropic_client: anthropic.Anthropic,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A msgbatch_ id absent from the journal is canceled at the SDK's default base URL."""
    emulator.batch_latency = 60
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.url)
    batch = anthropic_client.messages.batches.create(
        requests=[{"custom_id": "one", "params": {
            "model": "claude-haiku-4-5", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}]}}])
    status, out, err = run(capsys, "cancel", batch.id)
    assert (status, out, err) == (0, f"{batch.id} (anthropic): canceling\n", "")
    assert anthropic_client.messages.batches.retrieve(batch.id).processing_status != "in_progress"


@pytest.mark.usefixtures("credentials")
def test_cancel_refused_by_the_provider_exits_1(
        emulator: Emulator, anthropic_client: anthropic.Anthropic,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Canceling a batch that already ended reports the provider's refusal, exit 1."""

    @deferrable.deferrable
    def ask() -> Message:
        message: Message = anthropic_client.messages.create(**message_request("hello"))
        return message

    assert ask().result(timeout=30) is not None
    [batch] = status_json(capsys, "--all")["batches"]
    status, out, err = run(capsys, "cancel", batch["batch_id"])
    assert (status, out) == (1, "")
    assert err.startswith(f"deferrable: could not cancel {batch['batch_id']}: ")
    assert "ended" in err


@pytest.mark.usefixtures("credentials")
def test_cancel_reaches_a_batch_in_its_workspace(
        emulator: Emulator, anthropic_client: anthropic.Anthropic,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A batch made for a workspace is found in it (the provider says it ended, not 404)."""

    @deferrable.deferrable
    def ask() -> Message:
        message: Message = anthropic_client.messages.create(**message_request("hello"),
                                                            workspace_id="wrkspc_cli")
        return message

    assert ask().result(timeout=30) is not None
    [batch] = status_json(capsys, "--all")["batches"]
    status, _, err = run(capsys, "cancel", batch["batch_id"])
    assert status == 1
    assert "ended" in err


def write_batch_to(store: Path, provider: str, base_url: str, batch_id: str) -> str:
    """Record a submitted batch of `provider` at `base_url` through the Journal API; its token."""
    journal = Journal(store)
    try:
        plan = journal.plan([f"{batch_id}-0"], provider=provider, reuse_for=3600,
                            destination=json.dumps({"provider": provider, "base_url": base_url}))
        assert plan.token is not None
        journal.submitted(plan.token, batch_id)
        return plan.token
    finally:
        journal.close()


@pytest.mark.usefixtures("credentials")
@pytest.mark.parametrize(("provider", "batch_id", "variable"), [
    ("anthropic", "msgbatch_x", "ANTHROPIC_BASE_URL"),
    ("openai", "batch_x", "OPENAI_BASE_URL"),
])
def test_cancel_never_sends_credentials_to_a_base_url_only_the_journal_names(
        store: Path, capsys: pytest.CaptureFixture[str], provider: str, batch_id: str,
        variable: str) -> None:
    """A journal naming another server: cancel refuses (exit 2), sends it nothing, records no cancel."""
    with Emulator() as attacker:
        base_url = attacker.url if provider == "anthropic" else attacker.openai_url
        token = write_batch_to(store, provider, base_url, batch_id)
        status, out, err = run(capsys, "cancel", batch_id)
        assert (status, out) == (2, "")
        assert err.startswith(f"deferrable: not cancelling {batch_id}: ")
        assert f"pass --base-url {base_url} or set {variable}" in err
        assert attacker.stats()["requests"] == {}
    journal = Journal(store)
    try:
        record = journal.batch(token)
        assert record is not None
        assert not record.cancelled
    finally:
        journal.close()


def test_cancel_refuses_the_default_host_over_plain_http(
        store: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The SDK's default host is trusted only as the SDK reaches it (https, port 443)."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", DUMMY_KEY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    write_batch_to(store, "anthropic", "http://api.anthropic.com", "msgbatch_y")
    status, _, err = run(capsys, "cancel", "msgbatch_y")
    assert status == 2
    assert "pass --base-url http://api.anthropic.com or set ANTHROPIC_BASE_URL" in err


@pytest.mark.usefixtures("credentials")
def test_cancel_with_base_url_goes_where_the_user_says(
        emulator: Emulator, anthropic_client: anthropic.Anthropic, store: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--base-url wins over the journal's base URL: the cancel reaches it, the journal's server nothing."""
    emulator.batch_latency = 60
    batch = anthropic_client.messages.batches.create(
        requests=[{"custom_id": "one", "params": {
            "model": "claude-haiku-4-5", "max_tokens": 64,
            "messages": [{"role": "user", "content": "hi"}]}}])
    monkeypatch.delenv("ANTHROPIC_BASE_URL")
    with Emulator() as elsewhere:
        write_batch_to(store, "anthropic", elsewhere.url, batch.id)
        status, out, err = run(capsys, "cancel", batch.id, "--base-url", emulator.url)
        assert (status, err) == (0, "")
        assert out.splitlines()[0] == f"{batch.id} (anthropic): canceling"
        assert elsewhere.stats()["requests"] == {}
    assert anthropic_client.messages.batches.retrieve(batch.id).processing_status != "in_progress"


def test_cancel_without_credentials_exits_1_naming_the_variable(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """No OpenAI key in the environment: the SDK's own complaint, exit 1."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
    status, out, err = run(capsys, "cancel", "batch_abc")
    assert (status, out) == (1, "")
    assert err.startswith("deferrable: could not cancel batch_abc: ")
    assert "OPENAI_API_KEY" in err


def test_cancel_of_an_unknown_prefix_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """An id that is neither msgbatch_ nor batch_ (and not in the journal) is a usage error."""
    status, out, err = run(capsys, "cancel", "job_123")
    assert (status, out) == (2, "")
    assert "cannot tell the provider of batch 'job_123'" in err


# -- prune -----------------------------------------------------------------------------------

def test_prune_removes_ended_batches_and_the_journal_keeps_working(
        emulator: Emulator, anthropic_client: anthropic.Anthropic, store: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """The default keeps a fresh batch; --older-than 0 removes it; later calls still work."""

    @deferrable.deferrable
    def ask() -> Message:
        message: Message = anthropic_client.messages.create(**message_request("hello"))
        return message

    assert ask().result(timeout=30) is not None
    wait_until(lambda: states(capsys) == ["collected"])
    assert run(capsys, "prune") == (0, "pruned 0 batches, 0 requests, 0 expired results\n", "")
    assert run(capsys, "prune", "--older-than", "0") == (
        0, "pruned 1 batch, 1 request, 0 expired results\n", "")
    assert status_json(capsys, "--all")["batches"] == []
    assert ask().result(timeout=30) is not None
    wait_until(lambda: states(capsys) == ["collected"])
    assert emulator.stats()["requests"]["POST /v1/messages/batches"] == 2
    assert store.is_dir()


def test_prune_without_a_journal_says_so(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """No journal: prune says so, exits 0 and creates nothing; a negative age is refused."""
    assert run(capsys, "prune") == (0, f"no journal at {store}\n", "")
    assert not store.exists()
    status, _, err = run(capsys, "prune", "--older-than", "-1")
    assert status == 2
    assert "must be zero or more" in err
