"""The process's journals, one per store, handed to the engine and to the live ledger."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from ..ledger import live_ledger
from ._journal import Journal
from ._null import NullJournal
from ._protocol import JournalLike

_journals: dict[Path, Journal] = {}
_journals_lock = threading.Lock()
_NULL = NullJournal()


def close_journals() -> None:
    """Close every journal this process opened (they reopen on next use)."""
    with _journals_lock:
        for journal in _journals.values():
            journal.close()
        _journals.clear()


_inherited: list[Journal] = []
"""A forked child's copies of its parent's journals: kept open and unused (closing a
database connection copied across a fork could disturb the parent's)."""


def _forget_after_fork() -> None:
    global _journals_lock, _NULL
    _inherited.extend(_journals.values())
    _journals.clear()
    _journals_lock = threading.Lock()
    _NULL = NullJournal()


os.register_at_fork(after_in_child=_forget_after_fork)


def default_store() -> Path:
    """The per-user journal location: ``$XDG_STATE_HOME/deferrable/journal``, by default
    ``~/.local/state/deferrable/journal``."""
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "deferrable" / "journal"


def journal_for(store: str | None, *, enabled: bool = True) -> JournalLike:
    """The process's journal at `store` (the default location when None)."""
    if not enabled:
        return _NULL
    path = (Path(store).expanduser() if store else default_store()).absolute()
    journal = _journals.get(path)
    if journal is None:
        with _journals_lock:
            journal = _journals.setdefault(path, Journal(path))
    return journal


live_ledger.use(journal_for)
