"""What happens to a batch and its requests, as the journal records it: the batch's
state changes, its requests' results, and the records read back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import diskcache

from ._ledger_rows import LedgerRows
from ._liveness import process_token
from ._records import BatchRecord
from ._storage import BATCH, REQUEST


class Changes(LedgerRows):
    """The records of batches and requests, changed one transaction each (results with the
    ledger rows of their spend)."""

    # -- a batch's state -------------------------------------------------------------

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
                cache.delete(REQUEST + custom_id)

    def rejected(self, token: str, custom_id: str) -> None:
        """The provider refused the batch because of request `custom_id`: it leaves the
        batch, which goes again without it."""
        with self._transaction() as cache:
            cache.delete(REQUEST + custom_id)
            record = self._batch(cache, token)
            if record is not None:
                self._write(cache, BATCH + token,
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
            self._write(cache, BATCH + token,
                        {**record.to_json(), "state": "submitted", "batch_id": batch_id})
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
            self._write(cache, BATCH + token, {**record.to_json(), "owner": process_token()})
            return True

    def _update(self, token: str, **changes: Any) -> None:
        with self._transaction() as cache:
            record = self._batch(cache, token)
            if record is not None:
                self._write(cache, BATCH + token, {**record.to_json(), **changes})

    def _lose_if(self, token: str, reason: str, still: Callable[[BatchRecord], bool]) -> bool:
        with self._transaction() as cache:
            record = self._batch(cache, token)
            if record is None or not still(record):
                return False
            self._write(cache, BATCH + token, {**record.to_json(), "state": "lost",
                                               "ended_at": time.time(), "reason": reason})
            return True

    # -- its requests' results -------------------------------------------------------

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
                key = REQUEST + custom_id
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
                self._write(cache, REQUEST + custom_id, {"batch": token, "rescued": True})

    def kept(self, token: str, answers: list[tuple[str, Any]], reuse_for: float) -> None:
        """The live answers of rescued requests of batch `token`, as (custom_id, result
        line), delivered: a rerun is served them."""
        now = time.time()
        with self._transaction() as cache:
            for custom_id, line in answers:
                self._write(cache, REQUEST + custom_id,
                            {"batch": token, "result": line, "received_at": now,
                             "delivered": True, "rescued": True}, expire=reuse_for)

    def results(self, token: str, custom_ids: list[str], reuse_for: float) -> dict[str, Any]:
        """The result lines already received for these requests of batch `token`, marked
        delivered."""
        found: dict[str, Any] = {}
        with self._transaction() as cache:
            for custom_id in custom_ids:
                record = self._read(cache, REQUEST + custom_id)
                if record is None or record.get("batch") != token or "result" not in record:
                    continue
                found[custom_id] = record["result"]
                if not record.get("delivered"):
                    self._write(cache, REQUEST + custom_id, {**record, "delivered": True},
                                expire=reuse_for)
        return found

    def _has_result(self, cache: diskcache.Cache, custom_id: str, token: str) -> bool:
        record = self._read(cache, REQUEST + custom_id)
        return record is not None and record.get("batch") == token and "result" in record

    # -- read back -------------------------------------------------------------------

    def belongs(self, token: str, custom_id: str) -> bool:
        """Whether request `custom_id` was recorded as going in batch `token`."""
        record = self._read(self._open(), REQUEST + custom_id)
        return record is not None and record.get("batch") == token

    def batch(self, token: str) -> BatchRecord | None:
        """The record of batch `token`."""
        return self._batch(self._open(), token)

    def batches(self) -> list[BatchRecord]:
        """Every batch recorded, oldest first."""
        cache = self._open()
        found = [self._batch(cache, key[len(BATCH):]) for key in self._keys(BATCH)]
        return sorted((b for b in found if b is not None), key=lambda b: b.created_at)

    def batch_ids(self) -> set[str]:
        """The provider ids of every batch recorded (a lost create's candidates that are
        one of these are not its batch)."""
        return {b.batch_id for b in self.batches() if b.batch_id is not None}

    def requests(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every request record, as (custom_id, record)."""
        cache = self._open()
        for key in self._keys(REQUEST):
            record = self._read(cache, key)
            if record is not None:
                yield key[len(REQUEST):], record
