"""The ledger's rows in the journal (``l:<key>``): spend summed by identity (hour, call
site, provider, model and mode; see `deferrable.ledger`)."""

from __future__ import annotations

from typing import Any

import diskcache

from ..ledger._ledger import merged, row_key
from ._storage import LEDGER, Storage


class LedgerRows(Storage):
    """Adds spend to the ledger, alone or in the transaction of the results it counts."""

    def add_ledger(self, rows: list[dict[str, Any]]) -> None:
        """Add spend to the ledger (rows of one identity are summed)."""
        with self._transaction() as cache:
            self._add_ledger(cache, rows)

    def ledger(self) -> list[dict[str, Any]]:
        """Every ledger row."""
        cache = self._open()
        rows = (self._read(cache, key) for key in self._keys(LEDGER))
        return [row for row in rows if row is not None]

    def _add_ledger(self, cache: diskcache.Cache, rows: list[dict[str, Any]]) -> None:
        for row in merged(rows):
            key = LEDGER + row_key(row)
            earlier = self._read(cache, key)
            self._write(cache, key, merged([earlier, row])[0] if earlier is not None else row)
