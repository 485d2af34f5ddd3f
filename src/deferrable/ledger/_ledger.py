"""The ledger: every call that went through the patched SDK, priced both ways.

A row aggregates the calls of one hour, call site, provider, model and mode (``batch``,
``flex`` or ``live``): their count, tokens by class, what was paid, and what the same calls
cost live and in a batch. Deferred calls are recorded with their results (in the same journal
transaction); live calls are collected in memory and written every few seconds and at
exit.

The ledger does not import the journal (which imports its rows' rules): the journal
package hands `live_ledger` the function that finds a store's journal (`LiveLedger.use`).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .._fork import quiet
from ._prices import price_of
from ._tokens import CLASSES, Tokens

log = logging.getLogger("deferrable")
MONEY = ("paid_usd", "live_usd", "batch_usd")
COUNTS = ("calls", "unpriced", *CLASSES, *MONEY)
"""The summed fields of a row."""
_FLUSH_EVERY = 2.0


@dataclass(frozen=True)
class Spend:
    """One call's spend: where it came from, and its tokens by class."""

    site: str
    provider: str
    model: str
    mode: str
    """``"batch"`` (deferred), ``"flex"`` (OpenAI flex processing: batch prices) or
    ``"live"``."""
    tokens: Tokens | None
    """None when the call's usage is not known (a live stream): it counts as unpriced."""


def row_of(spend: Spend, at: float | None = None) -> dict[str, Any]:
    """The ledger row of one call (its hour, identity, counts and prices)."""
    tokens = spend.tokens
    price = price_of(spend.model) if tokens is not None else None
    live = price.cost(tokens, batch=False) if price is not None and tokens is not None else None
    batch = price.cost(tokens, batch=True) if price is not None and tokens is not None else None
    row: dict[str, Any] = {
        "hour": int((time.time() if at is None else at) // 3600 * 3600), "site": spend.site,
        "provider": spend.provider, "model": spend.model, "mode": spend.mode, "calls": 1,
        "unpriced": 0 if live is not None else 1, **(tokens or Tokens()).as_dict(),
        "live_usd": live or 0.0, "batch_usd": batch or 0.0}
    row["paid_usd"] = (batch if spend.mode in ("batch", "flex") else live) or 0.0
    return row


def row_key(row: dict[str, Any]) -> str:
    """The ledger key of a row's identity (hour, site, provider, model, mode)."""
    identity = json.dumps([row["hour"], row["site"], row["provider"], row["model"], row["mode"]])
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def merged(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of one identity summed into one."""
    totals: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = row_key(row)
        total = totals.get(key)
        if total is None:
            totals[key] = dict(row)
        else:
            for name in COUNTS:
                total[name] = total.get(name, 0) + row.get(name, 0)
    return list(totals.values())


class LedgerJournal(Protocol):
    """What the live ledger needs of a journal."""

    @property
    def path(self) -> Path | None:
        """Where the journal is."""

    def add_ledger(self, rows: list[dict[str, Any]]) -> None:
        """Add spend to the journal's ledger."""


JournalFor = Callable[[str | None], LedgerJournal]
"""The journal of a store (None: the default one)."""


class LiveLedger:
    """Spend of live calls, kept in memory per journal and written in the background."""

    def __init__(self, journal_for: JournalFor | None = None) -> None:
        self._journal_for = journal_for
        self._pending: dict[Path, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._thread: threading.Thread | None = None

    def use(self, journal_for: JournalFor) -> None:
        """Find each store's journal with `journal_for` (`deferrable.journal` hands over
        its own when it is imported)."""
        self._journal_for = journal_for

    def add(self, store: str | None, spend: Spend) -> None:
        """Record a live call's spend, to be written to the journal at `store` soon."""
        journal = self._journal(store)
        assert journal.path is not None
        with self._lock:
            self._pending.setdefault(journal.path, []).append(row_of(spend))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="deferrable-ledger",
                                                daemon=True)
                self._thread.start()
                atexit.register(self.flush)

    def flush(self) -> None:
        """Write what was recorded so far (when it returns, every call recorded before it
        was called is in the journal, even if another thread was already writing)."""
        with self._writing:
            with self._lock:
                pending, self._pending = self._pending, {}
            for path, rows in pending.items():
                try:
                    with quiet():
                        self._journal(str(path)).add_ledger(merged(rows))
                except Exception:
                    log.warning("recording live calls in the ledger at %s failed", path,
                                exc_info=True)

    def _journal(self, store: str | None) -> LedgerJournal:
        if self._journal_for is None:
            raise RuntimeError("the live ledger has no journals: import deferrable.journal")
        return self._journal_for(store)

    def _run(self) -> None:
        while True:
            time.sleep(_FLUSH_EVERY)
            self.flush()

    def forget_after_fork(self) -> None:
        """In a forked child: the parent writes what it recorded; start empty."""
        self.__init__(self._journal_for)  # type: ignore[misc]


live_ledger = LiveLedger()
os.register_at_fork(after_in_child=live_ledger.forget_after_fork)
