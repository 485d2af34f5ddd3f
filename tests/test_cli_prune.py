"""`deferrable prune` never deletes a batch that may still run at its provider (its record
is what keeps a rerun from paying twice) unless `--force`, which warns; against the
emulator with the official SDKs."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from anthropic.types import Message

import deferrable
from deferrable.emulator import Emulator
from deferrable.journal import Journal
from tests.conftest import DUMMY_KEY
from tests.test_cli_journal import anthropic_call, batch_in_flight, run, states, status_json

KEPT = ("kept 1 batch that may still run at the provider: a rerun follows it (`deferrable "
        "status --refresh` asks the provider); --force deletes it anyway, which may lead to "
        "paying twice\n")


@pytest.fixture
def store() -> Path:
    """The per-test journal directory (DEFERRABLE_STORE, set by `pristine_deferrable`)."""
    return Path(os.environ["DEFERRABLE_STORE"])


@pytest.mark.asyncio
async def test_a_batch_in_flight_survives_prune_unless_forced(
        emulator: Emulator, capsys: pytest.CaptureFixture[str]) -> None:
    """`prune --older-than 0` keeps an uncollected batch; `--force` deletes it, warning of paying twice."""
    emulator.batch_latency = 60
    async with deferrable.scope():
        pending = asyncio.ensure_future(anthropic_call(emulator))
        [batch] = (await batch_in_flight(capsys))["batches"]
        assert run(capsys, "prune", "--older-than", "0") == (
            0, "pruned 0 batches, 0 requests, 0 expired results\n" + KEPT, "")
        [kept] = status_json(capsys)["batches"]
        assert (kept["batch_id"], kept["state"]) == (batch["batch_id"], "submitted")
        status, out, err = run(capsys, "prune", "--older-than", "0", "--force")
        assert (status, out) == (0, "pruned 1 batch, 1 request, 0 expired results\n")
        assert err == ("deferrable: warning: --force deleted 1 batch that may still run at "
                       "the provider: a rerun submits its requests again, which may lead to "
                       "paying twice for them\n")
        assert status_json(capsys, "--all")["batches"] == []
        emulator.advance(61)  # the batch ends; its follower collects it all the same
        assert isinstance(await pending, Message)


def test_a_dead_create_is_kept_until_status_refresh_finds_it_never_made_a_batch(
        emulator: Emulator, store: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Prune keeps a dead process's create until `status --refresh` finds no batch and marks it lost."""
    destination = json.dumps({"provider": "anthropic", "base_url": emulator.url})
    script = ("import sys; from deferrable.journal import Journal; j = Journal(sys.argv[1]); "
              "j.plan(['c-0'], provider='anthropic', destination=sys.argv[2], reuse_for=1); "
              "j.close()")
    subprocess.run([sys.executable, "-c", script, str(store), destination], check=True,
                   timeout=60)
    assert run(capsys, "prune", "--older-than", "0") == (
        0, "pruned 0 batches, 0 requests, 0 expired results\n" + KEPT, "")
    monkeypatch.setenv("ANTHROPIC_API_KEY", DUMMY_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", emulator.url)
    assert run(capsys, "status", "--refresh")[0] == 0
    assert states(capsys) == ["lost"]
    assert run(capsys, "prune", "--older-than", "0") == (
        0, "pruned 1 batch, 1 request, 0 expired results\n", "")
    journal = Journal(store)
    try:
        assert journal.batches() == []
    finally:
        journal.close()
