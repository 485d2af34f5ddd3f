"""The journal: a diskcache of JSON records that lets a rerun pay for nothing twice.

Two kinds of record, both JSON text:

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
each writes in one transaction, so that many processes may share a journal. The store is
checked and made private before use (`secure_store`), and its rows reach no file outside
it (`TextOnlyDisk`).
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import diskcache

from .._errors import JournalCorruptError, JournalError
from ..ledger._ledger import merged, row_key
from ._disk import TextOnlyDisk
from ._identity import Occurrences
from ._liveness import process_token
from ._store import secure_store

FORMAT = 1
_MARKER = "deferrable:journal"
_BATCH = "b:"
_REQUEST = "r:"
_LEDGER = "l:"
OPEN_STATES = frozenset({"creating", "submitted"})
"""Batch states whose requests a rerun attaches to instead of submitting again."""


@dataclass(frozen=True)
class BatchRecord:
    """What the journal knows of one batch."""

    token: str
    provider: str
    destination: str
    state: str
    owner: str
    created_at: float
    batch_id: str | None
    requests: int
    ended_at: float | None = None
    cancelled: bool = False
    """Whether a user cancelled the batch (`deferrable cancel`): its cancelled requests
    raise rather than go again."""
    reason: str | None = None
    """Why the batch is ``lost`` when `deferrable status --refresh` found it so (it was
    never created, or its provider does not know it)."""

    def to_json(self) -> dict[str, Any]:
        """The record as stored."""
        return {"provider": self.provider, "destination": self.destination,
                "state": self.state, "owner": self.owner, "created_at": self.created_at,
                "batch_id": self.batch_id, "requests": self.requests, "ended_at": self.ended_at,
                "cancelled": self.cancelled, "reason": self.reason}

    @property
    def in_flight(self) -> bool:
        """Whether the batch may still run at its provider, its results uncollected: being
        created (by a live process, or by one that died after its create call may have
        reached the provider) or submitted. Its record is what keeps a rerun from
        submitting its requests again."""
        return self.state in OPEN_STATES

    @classmethod
    def from_json(cls, token: str, data: dict[str, Any]) -> BatchRecord:
        """The record read back; a field of the wrong kind is a corrupt journal."""
        try:
            record = cls(token, str(data["provider"]), str(data["destination"]),
                         str(data["state"]), str(data["owner"]), float(data["created_at"]),
                         None if data.get("batch_id") is None else str(data["batch_id"]),
                         int(data["requests"]),
                         None if data.get("ended_at") is None else float(data["ended_at"]),
                         bool(data.get("cancelled", False)),
                         None if data.get("reason") is None else str(data["reason"]))
        except (KeyError, TypeError, ValueError) as error:
            raise JournalCorruptError(f"journal record b:{token} is malformed: {error!r}") from None
        return record


@dataclass
class Plan:
    """What to do with the calls of one launch: by their index in it."""

    token: str | None = None
    """The new batch's token, when some calls are to be submitted."""
    submit: list[int] = field(default_factory=list)
    served: list[tuple[int, Any]] = field(default_factory=list)
    """Calls answered from the journal: (index, result line)."""
    attached: list[tuple[int, str]] = field(default_factory=list)
    """Calls whose request is already in a batch: (index, batch token)."""


class Journal:
    """A durable journal at `directory` (made private to the user on first use)."""

    durable = True

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.path = Path(directory).expanduser()
        self._cache: diskcache.Cache | None = None
        self._lock = threading.Lock()
        self._occurrences = Occurrences()

    # -- identity --------------------------------------------------------------------

    def custom_id(self, digest: str, *, dedupe: bool) -> str:
        """The custom id of the next call whose request has `digest`."""
        return self._occurrences.custom_id(digest, dedupe=dedupe)

    # -- a launch --------------------------------------------------------------------

    def plan(self, custom_ids: list[str], *, provider: str, destination: str,
             reuse_for: float) -> Plan:
        """Decide each call of a launch (served, attached, or submitted) and record the
        intent of those to submit, in one transaction."""
        plan = Plan()
        token = new_token()
        decided: dict[str, tuple[str, Any]] = {}
        batches: dict[str, BatchRecord | None] = {}
        now = time.time()
        with self._transaction() as cache:
            for index, custom_id in enumerate(custom_ids):
                decision = decided.get(custom_id)
                if decision is None:
                    decision = decided[custom_id] = self._decide(cache, custom_id, batches,
                                                                 reuse_for)
                    if decision[0] == "submit":
                        plan.submit.append(index)
                        continue
                elif decision[0] == "submit":
                    decision = ("attach", token)
                if decision[0] == "served":
                    plan.served.append((index, decision[1]))
                else:
                    plan.attached.append((index, decision[1]))
            if plan.submit:
                plan.token = token
                record = BatchRecord(token, provider, destination, "creating", process_token(),
                                     now, None, len(plan.submit))
                self._write(cache, _BATCH + token, record.to_json())
                intent = json.dumps({"batch": token, "at": now})
                for index in plan.submit:
                    cache.set(_REQUEST + custom_ids[index], intent)
        return plan

    def _decide(self, cache: diskcache.Cache, custom_id: str,
                batches: dict[str, BatchRecord | None], reuse_for: float) -> tuple[str, Any]:
        record = self._read(cache, _REQUEST + custom_id)
        if record is None:
            return ("submit", None)
        if "result" not in record and record.get("rescued"):
            return ("submit", None)  # run live by a process that ended before its answer
        if "result" in record:
            if not record.get("delivered"):
                self._write(cache, _REQUEST + custom_id, {**record, "delivered": True},
                            expire=reuse_for)
            return ("served", record["result"])
        token = str(record.get("batch"))
        if token not in batches:
            batches[token] = self._batch(cache, token)
        batch = batches[token]
        if batch is None or batch.state not in OPEN_STATES:
            return ("submit", None)
        return ("attach", token)

    def submitted(self, token: str, batch_id: str) -> None:
        """Record the batch id the create call returned (or a recovery found)."""
        self._update(token, state="submitted", batch_id=batch_id)

    def cancelled_by_user(self, token: str) -> None:
        """Record that a user cancelled the batch (its cancelled requests are not sent
        again by the process following it)."""
        self._update(token, cancelled=True)

    def forget(self, custom_ids: list[str]) -> None:
        """Drop requests that were never submitted (one the provider refused alone)."""
        with self._transaction() as cache:
            for custom_id in custom_ids:
                cache.delete(_REQUEST + custom_id)

    def rejected(self, token: str, custom_id: str) -> None:
        """The provider refused the batch because of request `custom_id`: it leaves the
        batch, which goes again without it."""
        with self._transaction() as cache:
            cache.delete(_REQUEST + custom_id)
            record = self._batch(cache, token)
            if record is not None:
                self._write(cache, _BATCH + token,
                            {**record.to_json(), "requests": max(0, record.requests - 1)})

    def failed(self, token: str) -> None:
        """The create call was refused: the batch does not exist, and its requests are
        free to be submitted by a later run."""
        self._update(token, state="failed", ended_at=time.time())

    def lose(self, token: str) -> None:
        """No batch was found for a create call whose answer was lost: a rerun submits
        its requests again."""
        self._update(token, state="lost", ended_at=time.time())

    def never_created(self, token: str, owner: str) -> bool:
        """No batch exists for a create whose process (`owner`) died before it recorded a
        batch id (`deferrable status --refresh` looked): the batch is lost, and a rerun
        submits its requests again. False when the record moved on meanwhile (a rerun
        took it over)."""
        return self._lose_if(token, "never created", lambda record: (
            record.state == "creating" and record.owner == owner and record.batch_id is None))

    def unknown_to_provider(self, token: str, batch_id: str) -> bool:
        """The provider answered "not found" for batch `batch_id`, twice: the batch is
        lost, and a rerun submits its requests again instead of failing on it. False when
        the record moved on meanwhile."""
        return self._lose_if(token, "unknown to its provider", lambda record: (
            record.state == "submitted" and record.batch_id == batch_id))

    def adopted(self, token: str, owner: str, batch_id: str) -> bool:
        """The provider holds batch `batch_id`, tagged with `token`, made by a create whose
        process (`owner`) died before it recorded the id: record it, as a rerun would.
        False when the record moved on meanwhile."""
        with self._transaction() as cache:
            record = self._batch(cache, token)
            if (record is None or record.state != "creating" or record.owner != owner
                    or record.batch_id is not None):
                return False
            self._write(cache, _BATCH + token,
                        {**record.to_json(), "state": "submitted", "batch_id": batch_id})
            return True

    def _lose_if(self, token: str, reason: str, still: Callable[[BatchRecord], bool]) -> bool:
        with self._transaction() as cache:
            record = self._batch(cache, token)
            if record is None or not still(record):
                return False
            self._write(cache, _BATCH + token, {**record.to_json(), "state": "lost",
                                                "ended_at": time.time(), "reason": reason})
            return True

    def collected(self, token: str) -> None:
        """Every result line of the batch was read."""
        self._update(token, state="collected", ended_at=time.time())

    def take_over(self, token: str, owner: str) -> bool:
        """Make this process the owner of a batch still being created by `owner` (a
        process that died); False when another process took it first."""
        with self._transaction() as cache:
            record = self._batch(cache, token)
            if record is None or record.owner != owner or record.state != "creating":
                return False
            self._write(cache, _BATCH + token, {**record.to_json(), "owner": process_token()})
            return True

    # -- results ---------------------------------------------------------------------

    def received(self, token: str, lines: list[tuple[str, Any, bool]], reuse_for: float,
                 ledger: list[dict[str, Any]] | None = None, *,
                 ledger_once: list[tuple[str, dict[str, Any]]] | None = None) -> None:
        """Record result lines of batch `token`: (custom_id, line or None when the
        request failed and was not paid, whether a caller is handed it now), with the
        `ledger` rows of their spend; a `ledger_once` row (custom_id, row) counts only if
        that line was not recorded before (a stream read again by a rerun). A delivered
        result is kept `reuse_for` seconds; an undelivered one until it is collected."""
        now = time.time()
        with self._transaction() as cache:
            if ledger_once:
                ledger = [*(ledger or []), *(row for custom_id, row in ledger_once
                                             if not self._has_result(cache, custom_id, token))]
            if ledger:
                self._add_ledger(cache, ledger)
            for custom_id, line, delivered in lines:
                key = _REQUEST + custom_id
                if not (delivered and line is not None):
                    # A line nobody here waits for: keep what another process recorded.
                    record = self._read(cache, key)
                    if record is None or record.get("batch") != token or record.get("rescued"):
                        continue
                    if line is None:
                        if "result" not in record:
                            cache.delete(key)
                        continue
                    delivered = bool(record.get("delivered"))
                self._write(cache, key, {"batch": token, "result": line, "received_at": now,
                                         "delivered": delivered},
                            expire=reuse_for if delivered else None)

    def rescuing(self, token: str, custom_ids: list[str]) -> None:
        """Requests of batch `token` are about to run live (their deadline came): a rerun
        neither waits on the batch for them nor takes a line it delivers late."""
        with self._transaction() as cache:
            for custom_id in custom_ids:
                self._write(cache, _REQUEST + custom_id, {"batch": token, "rescued": True})

    def kept(self, token: str, answers: list[tuple[str, Any]], reuse_for: float) -> None:
        """The live answers of rescued requests of batch `token`, as (custom_id, result
        line), delivered: a rerun is served them."""
        now = time.time()
        with self._transaction() as cache:
            for custom_id, line in answers:
                self._write(cache, _REQUEST + custom_id,
                            {"batch": token, "result": line, "received_at": now,
                             "delivered": True, "rescued": True}, expire=reuse_for)

    def _has_result(self, cache: diskcache.Cache, custom_id: str, token: str) -> bool:
        record = self._read(cache, _REQUEST + custom_id)
        return record is not None and record.get("batch") == token and "result" in record

    def results(self, token: str, custom_ids: list[str], reuse_for: float) -> dict[str, Any]:
        """The result lines already received for these requests of batch `token`, marked
        delivered."""
        found: dict[str, Any] = {}
        with self._transaction() as cache:
            for custom_id in custom_ids:
                record = self._read(cache, _REQUEST + custom_id)
                if record is None or record.get("batch") != token or "result" not in record:
                    continue
                found[custom_id] = record["result"]
                if not record.get("delivered"):
                    self._write(cache, _REQUEST + custom_id, {**record, "delivered": True},
                                expire=reuse_for)
        return found

    def add_ledger(self, rows: list[dict[str, Any]]) -> None:
        """Add spend to the ledger (rows of one identity are summed)."""
        with self._transaction() as cache:
            self._add_ledger(cache, rows)

    def _add_ledger(self, cache: diskcache.Cache, rows: list[dict[str, Any]]) -> None:
        for row in merged(rows):
            key = _LEDGER + row_key(row)
            earlier = self._read(cache, key)
            self._write(cache, key, merged([earlier, row])[0] if earlier is not None else row)

    def ledger(self) -> list[dict[str, Any]]:
        """Every ledger row."""
        cache = self._open()
        rows = (self._read(cache, key) for key in self._keys(_LEDGER))
        return [row for row in rows if row is not None]

    def belongs(self, token: str, custom_id: str) -> bool:
        """Whether request `custom_id` was recorded as going in batch `token`."""
        record = self._read(self._open(), _REQUEST + custom_id)
        return record is not None and record.get("batch") == token

    # -- inspection ------------------------------------------------------------------

    def batch(self, token: str) -> BatchRecord | None:
        """The record of batch `token`."""
        return self._batch(self._open(), token)

    def batches(self) -> list[BatchRecord]:
        """Every batch recorded, oldest first."""
        cache = self._open()
        found = [self._batch(cache, key[len(_BATCH):]) for key in self._keys(_BATCH)]
        return sorted((b for b in found if b is not None), key=lambda b: b.created_at)

    def batch_ids(self) -> set[str]:
        """The provider ids of every batch recorded (a lost create's candidates that are
        one of these are not its batch)."""
        return {b.batch_id for b in self.batches() if b.batch_id is not None}

    def requests(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every request record, as (custom_id, record)."""
        cache = self._open()
        for key in self._keys(_REQUEST):
            record = self._read(cache, key)
            if record is not None:
                yield key[len(_REQUEST):], record

    def prune(self, older_than: float, *, force: bool = False) -> dict[str, int]:
        """Delete batches that ended (or, never ended, began) more than `older_than`
        seconds ago with their requests, results delivered past their reuse period, and
        requests of batches that are gone. A batch in flight (`BatchRecord.in_flight`) is
        kept, however old, unless `force`: without its record a rerun submits its
        requests again, paying twice for those the provider ran. Returns how many went of
        each kind (``batches``, ``requests``, ``expired`` results), how many of those
        batches were in flight (``in_flight``), and how many in flight were ``kept``."""
        expired = int(self._open().expire())
        horizon = time.time() - older_than
        with self._transaction() as cache:
            old = [b for b in self.batches() if (b.ended_at or b.created_at) < horizon]
            gone = [b for b in old if force or not b.in_flight]
            for batch in gone:
                cache.delete(_BATCH + batch.token)
        batches = {b.token: b for b in self.batches()}
        requests = [custom_id for custom_id, record in self.requests()
                    if _prunable(record, batches, horizon)]
        self.forget(requests)
        return {"batches": len(gone), "requests": len(requests), "expired": expired,
                "in_flight": sum(1 for b in gone if b.in_flight),
                "kept": len(old) - len(gone)}

    def close(self) -> None:
        """Close the database connections (reopened on next use)."""
        with self._lock:
            if self._cache is not None:
                self._cache.close()
                self._cache = None

    # -- storage ---------------------------------------------------------------------

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
                                    timeout=60, statistics=0, tag_index=0)
        except (OSError, sqlite3.Error) as error:
            raise JournalError(f"cannot open the journal at {self.path}: {error}") from error
        try:
            marker = cache.get(_MARKER)
            if marker is None:
                if next(iter(cache), None) is not None:
                    raise JournalCorruptError("it holds records deferrable did not write")
                cache.add(_MARKER, json.dumps({"format": FORMAT}))
            elif _json(marker, _MARKER).get("format") != FORMAT:
                raise JournalCorruptError(f"its format is not {FORMAT}")
        except (JournalCorruptError, sqlite3.Error) as error:
            cache.close()
            raise JournalCorruptError(
                f"{self.path} is not a deferrable journal this version can read ({error}); "
                "point `store=` (DEFERRABLE_STORE) elsewhere or remove it") from None
        return cache

    def _transaction(self) -> _Transaction:
        return _Transaction(self._open(), self.path)

    def _keys(self, prefix: str) -> list[str]:
        try:
            return [key for key in self._open().iterkeys() if key.startswith(prefix)]
        except sqlite3.Error as error:
            raise JournalCorruptError(f"the journal at {self.path} cannot be read: {error}") from None

    def _batch(self, cache: diskcache.Cache, token: str) -> BatchRecord | None:
        data = self._read(cache, _BATCH + token)
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
        cache.set(key, json.dumps(record, separators=(",", ":")), expire=expire)

    def _update(self, token: str, **changes: Any) -> None:
        with self._transaction() as cache:
            record = self._batch(cache, token)
            if record is not None:
                self._write(cache, _BATCH + token, {**record.to_json(), **changes})


class _Transaction:
    """One diskcache transaction (exclusive across processes), its errors made journal
    errors."""

    def __init__(self, cache: diskcache.Cache, path: Path) -> None:
        self._cache = cache
        self._path = path
        self._context: Any = None

    def __enter__(self) -> diskcache.Cache:
        self._context = self._cache.transact()
        try:
            self._context.__enter__()
        except (sqlite3.Error, diskcache.Timeout) as error:
            raise JournalError(f"the journal at {self.path_text} is unavailable: {error}") from None
        return self._cache

    def __exit__(self, *exc_info: Any) -> None:
        try:
            self._context.__exit__(*exc_info)
        except (sqlite3.Error, diskcache.Timeout) as error:
            raise JournalError(f"writing the journal at {self.path_text} failed: {error}") from None

    @property
    def path_text(self) -> str:
        return str(self._path)


def _prunable(record: dict[str, Any], batches: dict[str, BatchRecord], horizon: float) -> bool:
    """Whether prune deletes a request record: its batch is gone, or its result came
    before `horizon` and was handed out (or its batch ended)."""
    batch = batches.get(str(record.get("batch")))
    if batch is None:
        return True
    return ("result" in record and float(record.get("received_at", 0)) < horizon
            and (bool(record.get("delivered")) or not batch.in_flight))


def _json(text: object, key: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        raise JournalCorruptError(f"journal record {key} is not a JSON object")
    return value


def new_token() -> str:
    """A fresh batch token (also the batch's tag at the provider)."""
    return secrets.token_hex(12)


class NullJournal:
    """No journal (``journal=False``): every call is submitted, nothing is recorded."""

    durable = False
    path = None

    def __init__(self) -> None:
        self._sequence = 0
        self._lock = threading.Lock()

    def custom_id(self, digest: str, *, dedupe: bool) -> str:
        """A process-unique id (`digest` is not computed for this journal)."""
        with self._lock:
            self._sequence += 1
            return f"call-{self._sequence}"

    def plan(self, custom_ids: list[str], *, provider: str, destination: str,
             reuse_for: float) -> Plan:
        """Submit everything."""
        return Plan(token=new_token(), submit=list(range(len(custom_ids))))

    def submitted(self, token: str, batch_id: str) -> None: ...
    def cancelled_by_user(self, token: str) -> None: ...
    def forget(self, custom_ids: list[str]) -> None: ...
    def rejected(self, token: str, custom_id: str) -> None: ...
    def rescuing(self, token: str, custom_ids: list[str]) -> None: ...
    def kept(self, token: str, answers: list[tuple[str, Any]], reuse_for: float) -> None: ...
    def failed(self, token: str) -> None: ...
    def lose(self, token: str) -> None: ...
    def collected(self, token: str) -> None: ...

    def take_over(self, token: str, owner: str) -> bool:
        """Nothing to take over."""
        return False

    def received(self, token: str, lines: list[tuple[str, Any, bool]], reuse_for: float,
                 ledger: list[dict[str, Any]] | None = None, *,
                 ledger_once: list[tuple[str, dict[str, Any]]] | None = None) -> None:
        """Nothing to record."""

    def add_ledger(self, rows: list[dict[str, Any]]) -> None:
        """Nothing to record."""

    def ledger(self) -> list[dict[str, Any]]:
        """Nothing recorded."""
        return []

    def results(self, token: str, custom_ids: list[str], reuse_for: float) -> dict[str, Any]:
        """Nothing recorded."""
        return {}

    def belongs(self, token: str, custom_id: str) -> bool:
        """Nothing recorded."""
        return False

    def batch(self, token: str) -> BatchRecord | None:
        """Nothing recorded."""
        return None

    def batch_ids(self) -> set[str]:
        """Nothing recorded."""
        return set()


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


def journal_for(store: str | None, *, enabled: bool = True) -> Journal | NullJournal:
    """The process's journal at `store` (the default location when None)."""
    if not enabled:
        return _NULL
    path = (Path(store).expanduser() if store else default_store()).absolute()
    journal = _journals.get(path)
    if journal is None:
        with _journals_lock:
            journal = _journals.setdefault(path, Journal(path))
    return journal
