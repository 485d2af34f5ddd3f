"""Fixtures shared by the whole suite: a running emulator and SDK clients pointed at it."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anthropic
import openai
import pytest
import pytest_asyncio

from deferrable import configure, observe, unpatch
from deferrable._options import reset_defaults
from deferrable.emulator import Emulator
from deferrable.engine import engine
from deferrable.journal import close_journals
from deferrable.ledger import live_ledger, reset_prices

DUMMY_KEY = "test-key-not-a-secret"
FAST = {"max_wait": 0.05, "poll_interval": 0.02, "max_poll_interval": 0.1}
"""Options that keep deferral quick against an emulator whose batches end at once."""


@pytest.fixture(autouse=True)
def pristine_deferrable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts with fast defaults, a journal of its own (also for the processes
    it starts) and unpatched SDKs, and leaves them so."""
    store = tmp_path / "journal"
    monkeypatch.setenv("DEFERRABLE_STORE", str(store))
    reset_defaults()
    configure(**FAST)
    yield
    engine().finish_cleanups()  # batch-file deletions end (or fail) inside the test
    observe(False)
    unpatch()
    reset_defaults()
    reset_prices()
    live_ledger.flush()
    close_journals()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    """A fresh emulator on 127.0.0.1 with batches that end at once, kept up until the
    batch files the test made are deleted (else those deletions retry a closed port)."""
    with Emulator() as emu:
        yield emu
        engine().finish_cleanups()


@pytest.fixture
def anthropic_client(emulator: Emulator) -> Iterator[anthropic.Anthropic]:
    """The official sync Anthropic client, pointed at the emulator."""
    with anthropic.Anthropic(api_key=DUMMY_KEY, base_url=emulator.url) as client:
        yield client


@pytest_asyncio.fixture
async def async_anthropic_client(emulator: Emulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """The official async Anthropic client, pointed at the emulator."""
    async with anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=emulator.url) as client:
        yield client


@pytest.fixture
def openai_client(emulator: Emulator) -> Iterator[openai.OpenAI]:
    """The official sync OpenAI client, pointed at the emulator."""
    with openai.OpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url) as client:
        yield client


@pytest_asyncio.fixture
async def async_openai_client(emulator: Emulator) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official async OpenAI client, pointed at the emulator."""
    async with openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=emulator.openai_url) as client:
        yield client


_TEMP_ENTRY_MADE_BY: dict[str, str] = {}
"""Each entry seen in the session's temp directory, and the test it first appeared after."""


@pytest.fixture(scope="session", autouse=True)
def no_temp_files_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's temp directory is a private one (processes the tests start inherit
    TMPDIR) that must be empty at the end: anything a test leaves there fails the run,
    naming the test after which it first appeared."""
    tmp_path_factory.getbasetemp()  # pytest's own tmp_path base stays where it was
    private = Path(tempfile.mkdtemp(prefix="deferrable-tests-"))
    previous_env, previous_cached = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = str(private)
    tempfile.tempdir = None  # gettempdir() caches its answer
    try:
        yield private
    finally:
        if previous_env is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = previous_env
        tempfile.tempdir = previous_cached
        left = sorted(entry.name for entry in private.iterdir())
        shutil.rmtree(private, ignore_errors=True)
    if left:
        named = ", ".join(f"{name} (first seen after {_TEMP_ENTRY_MADE_BY.get(name, 'the last test')})"
                          for name in left)
        pytest.fail(f"the tests left these in the temp directory: {named}", pytrace=False)


@pytest.fixture(autouse=True)
def note_temp_entries(no_temp_files_left: Path, request: pytest.FixtureRequest) -> Iterator[None]:
    """Notes which test each new temp-directory entry appeared after (a leftover is named so)."""
    yield
    for entry in os.listdir(no_temp_files_left):
        _TEMP_ENTRY_MADE_BY.setdefault(entry, request.node.nodeid)
