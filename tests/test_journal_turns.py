"""Journal transactions: this process's threads take turns without a time limit (a long
transaction under load does not fail another thread's), while a transaction another
process holds too long fails with an error that says so."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from deferrable import JournalError
from deferrable.journal import Journal, _storage

LONG = 0.6
"""Seconds the first transaction is held: several times SQLite's time limit here."""


@pytest.fixture
def short_lock_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """SQLite's lock time limit cut to 0.1 s for journals opened in the test."""
    monkeypatch.setattr(_storage, "LOCK_TIMEOUT", 0.1)


def hold_transaction(journal: Journal, entered: threading.Event, release: threading.Event) -> None:
    """Hold a write transaction of `journal` until `release` is set."""
    with journal._transaction() as cache:
        cache.set("r:held", '{"batch":"t"}')
        entered.set()
        release.wait(LONG * 4)


@pytest.mark.usefixtures("short_lock_timeout")
def test_threads_of_one_process_wait_their_turn(tmp_path: Path) -> None:
    """A write from a second thread waits for a long transaction of the first, past
    SQLite's time limit, and then succeeds."""
    journal = Journal(tmp_path / "journal")
    entered, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_transaction, args=(journal, entered, release))
    holder.start()
    assert entered.wait(10)
    threading.Timer(LONG, release.set).start()
    journal.forget(["other"])  # a transaction: waits about LONG seconds, then goes on
    holder.join(10)
    assert dict(journal.requests()) == {"held": {"batch": "t"}}


@pytest.mark.usefixtures("short_lock_timeout")
def test_another_process_holding_the_journal_too_long_is_named(tmp_path: Path) -> None:
    """A transaction kept past the time limit by another connection (as another process
    would) fails the waiting one with a JournalError naming the cause."""
    other = Journal(tmp_path / "journal")  # its own lock and connection, like another process
    mine = Journal(tmp_path / "journal")
    assert mine.batches() == []  # opened now: opening waits for the database, untimed
    entered, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=hold_transaction, args=(other, entered, release))
    holder.start()
    try:
        assert entered.wait(10)
        with pytest.raises(JournalError, match=r"another process held it longer than 0\.1 s"):
            mine.forget(["other"])
    finally:
        release.set()
        holder.join(10)
    mine.forget(["held"])  # the turn was given back: the journal is usable again
    assert dict(mine.requests()) == {}
