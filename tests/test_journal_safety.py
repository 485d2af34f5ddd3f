"""The journal cannot be turned against its user: a tampered row touches no file outside
the journal (read, rewrite, delete, expire, cull or clear), and a store another user owns,
reaches through a link, or may write is refused; what deferrable makes is private."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import time
from contextlib import closing
from pathlib import Path

import anthropic
import diskcache
import pytest
from diskcache.core import MODE_TEXT

from deferrable import JournalCorruptError, JournalError
from deferrable.cli import main
from deferrable.journal import Journal
from deferrable.journal._disk import TextOnlyDisk
from tests.test_journal_sync import new_process, request_ids, run, store

FOREIGN_UID = 12345
"""A user id that is not the test's (the tests run as root, which may chown to it)."""
PRECIOUS = "the user's own file, not the journal's\n"


def tamper(key: str, filename: str, *, expire_time: float | None = None) -> None:
    """Make row `key` name `filename` as the file holding its value, with sqlite3 alone,
    as an attacker who can write the database would (the row is added when absent)."""
    with closing(sqlite3.connect(store() / "cache.db")) as database, database:
        changed = database.execute(
            "UPDATE Cache SET mode = ?, filename = ?, value = NULL, expire_time = ? "
            "WHERE key = ?", (MODE_TEXT, filename, expire_time, key)).rowcount
        if not changed:
            now = time.time()
            database.execute(
                "INSERT INTO Cache (key, raw, store_time, expire_time, access_time, mode, "
                "filename, value) VALUES (?, 1, ?, ?, ?, ?, ?, NULL)",
                (key, now, expire_time, now, MODE_TEXT, filename))


@pytest.fixture(params=["absolute", "dot-dot", "linked directory", "the database"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, Path]:
    """(the filename a tampered row names, the file it would reach): outside the journal
    by an absolute path, by ``..``, through a directory of the journal replaced by a link
    (the name itself is one diskcache makes), or the journal's own database."""
    outside = tmp_path / "outside" / "nested"
    outside.mkdir(parents=True)
    victim = outside / "precious.txt"
    victim.write_text(PRECIOUS)
    store().mkdir(mode=0o700, exist_ok=True)
    if request.param == "absolute":
        return str(victim), victim
    if request.param == "dot-dot":
        return os.path.relpath(victim, store()), victim
    if request.param == "linked directory":
        hexname = "0123456789abcdef0123456789ab"
        (outside / "cd").mkdir()
        linked = outside / "cd" / f"{hexname}.val"
        linked.write_text(PRECIOUS)
        (store() / "ab").symlink_to(outside, target_is_directory=True)
        return f"ab/cd/{hexname}.val", linked
    return "cache.db", store() / "cache.db"


def intact(path: Path) -> bool:
    """Whether the file is still there with what it held (the database: still a database)."""
    if path.name == "cache.db":
        return path.is_file() and path.stat().st_size > 0
    return path.read_text() == PRECIOUS


def test_a_rerun_reading_a_tampered_row_reads_no_file_of_the_user(
        anthropic_client: anthropic.Anthropic, target: tuple[str, Path],
        caplog: pytest.LogCaptureFixture) -> None:
    """A row naming a file outside the journal fails the rerun reading it, unread, named in a warning."""
    run(anthropic_client, ["fine"])
    new_process()
    [custom_id] = request_ids()
    filename, victim = target
    tamper(f"r:{custom_id}", filename)
    with caplog.at_level(logging.WARNING, logger="deferrable"), \
            pytest.raises(JournalCorruptError, match="not one of its own"):
        run(anthropic_client, ["fine"])
    assert intact(victim)
    assert f"naming the file {filename!r}" in caplog.text


def test_prune_expire_delete_and_rewrite_leave_a_named_file_alone(
        anthropic_client: anthropic.Anthropic, target: tuple[str, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    """Prune's expiry, delete, rewrite, cull and clear drop a tampered row, never the file it names."""
    run(anthropic_client, ["fine"])
    new_process()
    [custom_id] = request_ids()
    filename, victim = target
    tamper("x:expired", filename, expire_time=time.time() - 60)
    assert main(["prune"]) == 0
    assert capsys.readouterr().out.endswith("1 expired result\n")
    assert intact(victim)
    journal = Journal(store())
    try:
        token = journal.batches()[0].token
        tamper(f"r:{custom_id}", filename)
        journal.rescuing(token, [custom_id])  # a rewrite drops the old row's file
        assert intact(victim)
        tamper(f"r:{custom_id}", filename)
        journal.forget([custom_id])  # a delete
        assert intact(victim)
        assert request_ids() == []
    finally:
        journal.close()
    with diskcache.Cache(str(store()), disk=TextOnlyDisk) as cache:
        for sweep in (cache.expire, cache.cull, cache.clear):
            tamper("x:swept", filename, expire_time=time.time() - 60)
            sweep()
            assert intact(victim), sweep.__name__
            assert "x:swept" not in cache


def test_the_journal_writes_no_value_file() -> None:
    """A large result stays in its database row and reads back whole: no value file is made."""
    line = {"custom_id": "big-0", "result": {"type": "succeeded", "text": "x" * 100_000}}
    journal = Journal(store())
    try:
        plan = journal.plan(["big-0"], provider="anthropic", destination="{}", reuse_for=60)
        assert plan.token is not None
        journal.received(plan.token, [("big-0", line, False)], 60)
        assert journal.results(plan.token, ["big-0"], 60) == {"big-0": line}
    finally:
        journal.close()
    names = {path.name for path in store().rglob("*")}
    assert "cache.db" in names
    assert names <= {"cache.db", "cache.db-shm", "cache.db-wal"}


# -- the store itself ------------------------------------------------------------------------

def test_a_store_owned_by_another_user_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    """A store another user owns is refused naming the owner, untouched; the CLI exits 2 saying so."""
    store().mkdir(mode=0o700)
    os.chown(store(), FOREIGN_UID, FOREIGN_UID)
    with pytest.raises(JournalError, match=f"owned by another user \\(uid {FOREIGN_UID}\\)"):
        Journal(store()).batches()
    assert list(store().iterdir()) == []
    (store() / "cache.db").touch()
    assert main(["status"]) == 2
    assert f"owned by another user (uid {FOREIGN_UID})" in capsys.readouterr().err


@pytest.mark.parametrize("where", ["the store", "a parent"])
def test_a_store_reached_through_a_link_owned_by_another_user_is_refused(
        tmp_path: Path, where: str) -> None:
    """A link to the store owned by another user is refused; the same link, the user's own, works."""
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    path = link if where == "the store" else link / "journal"
    os.lchown(link, FOREIGN_UID, FOREIGN_UID)
    with pytest.raises(JournalError, match=f"symbolic link {link}, owned by another user"):
        Journal(path).batches()
    assert list(real.iterdir()) == []
    os.lchown(link, os.geteuid(), os.getegid())
    journal = Journal(path)
    try:
        assert journal.batches() == []
    finally:
        journal.close()
    assert (real / "cache.db" if where == "the store" else real / "journal" / "cache.db").is_file()


@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_a_store_others_may_write_is_refused(mode: int) -> None:
    """A store its group or others may write is refused, not silently fixed, and left as it was."""
    store().mkdir()
    store().chmod(mode)
    with pytest.raises(JournalError, match="writable by its group or by others"):
        Journal(store()).batches()
    assert stat.S_IMODE(store().stat().st_mode) == mode
    assert list(store().iterdir()) == []


def test_what_deferrable_makes_is_private(anthropic_client: anthropic.Anthropic,
                                          tmp_path: Path) -> None:
    """Whatever the umask, made directories are 0700 and files 0600; loose ones are made private."""
    deep = tmp_path / "made" / "for" / "journal"
    previous = os.umask(0o002)
    try:
        run(anthropic_client, ["fine"], store=str(deep))
        new_process()
    finally:
        os.umask(previous)
    for directory in (tmp_path / "made", tmp_path / "made" / "for", deep):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700, directory
    files = [path for path in deep.rglob("*") if path.is_file()]
    assert {path.name for path in files} >= {"cache.db", "cache.db-wal"}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    deep.chmod(0o755)
    (deep / "cache.db").chmod(0o644)
    run(anthropic_client, ["fine"], store=str(deep))
    new_process()
    assert stat.S_IMODE(deep.stat().st_mode) == 0o700
    assert stat.S_IMODE((deep / "cache.db").stat().st_mode) == 0o600
