"""The journal: a diskcache of JSON records that lets a rerun pay for nothing twice.

`Journal` is its storage (`Storage`), the ledger's rows (`LedgerRows`) and the changes to
batches and requests (`Changes`), plus the two operations over many records: planning a
launch (decided by `decide`, without I/O) and pruning.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import diskcache

from ._changes import Changes
from ._identity import Occurrences
from ._liveness import process_token
from ._plan import Decision, Plan, Serve, assemble, awaited_batch, decide
from ._records import BatchRecord, new_token
from ._storage import BATCH, REQUEST


class Journal(Changes):
    """A durable journal at `directory` (made private to the user on first use)."""

    durable = True

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        super().__init__(directory)
        self._occurrences = Occurrences()

    def custom_id(self, digest: str, *, dedupe: bool) -> str:
        """The custom id of the next call whose request has `digest`."""
        return self._occurrences.custom_id(digest, dedupe=dedupe)

    def plan(self, custom_ids: list[str], *, provider: str, destination: str,
             reuse_for: float) -> Plan:
        """Decide each call of a launch (served, attached, or submitted) and record the
        intent of those to submit, in one transaction."""
        token = new_token()
        batches: dict[str, BatchRecord | None] = {}
        now = time.time()
        with self._transaction() as cache:
            decisions = {custom_id: self._decide(cache, custom_id, batches, reuse_for)
                         for custom_id in dict.fromkeys(custom_ids)}
            plan = assemble(custom_ids, decisions, token)
            if plan.token is not None:
                record = BatchRecord(token, provider, destination, "creating", process_token(),
                                     now, None, len(plan.submit))
                self._write(cache, BATCH + token, record.to_json())
                intent = json.dumps({"batch": token, "at": now})
                for index in plan.submit:
                    cache.set(REQUEST + custom_ids[index], intent)
        return plan

    def _decide(self, cache: diskcache.Cache, custom_id: str,
                batches: dict[str, BatchRecord | None], reuse_for: float) -> Decision:
        """`decide` for one request: its record and its batch's (read once a launch) are
        read, and a result it serves is marked delivered."""
        record = self._read(cache, REQUEST + custom_id)
        token = awaited_batch(record)
        if token is not None and token not in batches:
            batches[token] = self._batch(cache, token)
        decision = decide(record, None if token is None else batches[token])
        if isinstance(decision, Serve) and decision.delivered is not None:
            self._write(cache, REQUEST + custom_id, decision.delivered, expire=reuse_for)
        return decision

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
                cache.delete(BATCH + batch.token)
        batches = {b.token: b for b in self.batches()}
        requests = [custom_id for custom_id, record in self.requests()
                    if _prunable(record, batches, horizon)]
        self.forget(requests)
        return {"batches": len(gone), "requests": len(requests), "expired": expired,
                "in_flight": sum(1 for b in gone if b.in_flight),
                "kept": len(old) - len(gone)}


def _prunable(record: dict[str, Any], batches: dict[str, BatchRecord], horizon: float) -> bool:
    """Whether prune deletes a request record: its batch is gone, or its result came
    before `horizon` and was handed out (or its batch ended)."""
    batch = batches.get(str(record.get("batch")))
    if batch is None:
        return True
    return ("result" in record and float(record.get("received_at", 0)) < horizon
            and (bool(record.get("delivered")) or not batch.in_flight))
