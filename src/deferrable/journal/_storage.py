"""The journal's storage: a diskcache of JSON text, opened, marked and written in
transactions.

Three kinds of record, each JSON text under its own key prefix:

- ``b:<token>``, one per batch deferrable creates: its provider, destination (never a
  secret), owning process, state (``creating`` → ``submitted`` → ``collected``, or
  ``lost`` / ``failed``, a lost one found so by ``deferrable status --refresh`` with its
  reason) and, once the create call returned, the provider's batch id.
  The token also tags the batch at the provider, so that a batch whose id never reached
  the journal can be found again.
- ``r:<custom_id>``, one per request: the batch it went in (written before the batch is
  created), then its successful result line and whether it was handed to a caller.
- ``l:<key>``, the ledger: spend by hour, call site, provider, model and mode (see
  `deferrable.ledger`), written with the results it counts.

Every method blocks and runs on the engine's worker threads, never on an event loop;
each write is one transaction, so that many processes may share a journal. The store is
checked and made private before use (`secure_store`), and its rows reach no file outside
it (`TextOnlyDisk`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any

import diskcache

from .._errors import JournalCorruptError, JournalError
from .._json_text import compact_json
from ._disk import TextOnlyDisk
from ._records import BatchRecord
from ._store import secure_store

FORMAT = 1
MARKER = "deferrable:journal"
"""The key of the record that marks a store as a journal of `FORMAT`."""
BATCH = "b:"
REQUEST = "r:"
LEDGER = "l:"
LOCK_TIMEOUT = 60
"""Seconds a transaction waits for another process's to end before it fails."""


class Storage:
    """The diskcache at `directory` (made private to the user on first use), opened
    lazily, closed on demand, reopened on next use."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = Path(directory).expanduser()
        self._cache: diskcache.Cache | None = None
        self._lock = threading.Lock()
        self._writing = threading.RLock()
        """Held through each transaction: this process's threads take turns here, with
        no time limit, rather than on SQLite's lock. Under load (an event loop making
        calls while results are read) a transaction may hold that lock for a long time:
        its time limit is left for other processes."""

    def close(self) -> None:
        """Close the database connections (reopened on next use)."""
        with self._lock:
            if self._cache is not None:
                self._cache.close()
                self._cache = None

    def _open(self) -> diskcache.Cache:
        cache = self._cache
        if cache is not None:
            return cache
        with self._lock:
            if self._cache is None:
                self._cache = self._create()
            return self._cache

    def _create(self) -> diskcache.Cache:
        directory = secure_store(self.path)
        try:
            cache = diskcache.Cache(str(directory), disk=TextOnlyDisk, eviction_policy="none",
                                    timeout=LOCK_TIMEOUT, statistics=0, tag_index=0)
        except (OSError, sqlite3.Error) as error:
            raise JournalError(f"cannot open the journal at {self.path}: {error}") from error
        try:
            marker = cache.get(MARKER)
            if marker is None:
                if next(iter(cache), None) is not None:
                    raise JournalCorruptError("it holds records deferrable did not write")
                cache.add(MARKER, json.dumps({"format": FORMAT}))
            elif _json(marker, MARKER).get("format") != FORMAT:
                raise JournalCorruptError(f"its format is not {FORMAT}")
        except (JournalCorruptError, sqlite3.Error) as error:
            cache.close()
            raise JournalCorruptError(
                f"{self.path} is not a deferrable journal this version can read ({error}); "
                "point `store=` (DEFERRABLE_STORE) elsewhere or remove it") from None
        return cache

    def _transaction(self) -> _Transaction:
        return _Transaction(self._open(), self.path, self._writing)

    def _keys(self, prefix: str) -> list[str]:
        try:
            return [key for key in self._open().iterkeys() if key.startswith(prefix)]
        except sqlite3.Error as error:
            raise JournalCorruptError(f"the journal at {self.path} cannot be read: {error}") from None

    def _batch(self, cache: diskcache.Cache, token: str) -> BatchRecord | None:
        data = self._read(cache, BATCH + token)
        return None if data is None else BatchRecord.from_json(token, data)

    def _read(self, cache: diskcache.Cache, key: str) -> dict[str, Any] | None:
        try:
            text = cache.get(key)
        except JournalCorruptError as error:
            raise JournalCorruptError(f"journal record {key} at {self.path}: {error}") from None
        except sqlite3.Error as error:
            raise JournalCorruptError(f"the journal at {self.path} cannot be read: {error}") from None
        return None if text is None else _json(text, key)

    def _write(self, cache: diskcache.Cache, key: str, record: dict[str, Any],
               expire: float | None = None) -> None:
        cache.set(key, compact_json(record), expire=expire)


class _Transaction:
    """One diskcache transaction (exclusive across processes), its errors made journal
    errors."""

    def __init__(self, cache: diskcache.Cache, path: Path, turn: threading.RLock) -> None:
        self._cache = cache
        self._path = path
        self._turn = turn
        self._context: Any = None

    def __enter__(self) -> diskcache.Cache:
        self._turn.acquire()
        try:
            self._context = self._cache.transact()
            self._context.__enter__()
        except (sqlite3.Error, diskcache.Timeout) as error:
            self._turn.release()
            raise JournalError(f"the journal at {self.path_text} is unavailable: "
                               f"{_reason(error)}") from None
        except BaseException:
            self._turn.release()
            raise
        return self._cache

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self._context.__exit__(*exc_info)
        except (sqlite3.Error, diskcache.Timeout) as error:
            raise JournalError(f"writing the journal at {self.path_text} failed: "
                               f"{_reason(error)}") from None
        finally:
            self._turn.release()

    @property
    def path_text(self) -> str:
        return str(self._path)


def _reason(error: BaseException) -> str:
    """What went wrong, also when the error has no message (a diskcache `Timeout`)."""
    if isinstance(error, diskcache.Timeout):
        return f"another process held it longer than {LOCK_TIMEOUT} s"
    return str(error) or type(error).__name__


def _json(text: object, key: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise JournalCorruptError(f"journal record {key} is not a JSON object")
    return value
