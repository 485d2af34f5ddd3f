"""Reading the ledger a test's calls wrote (the per-test journal)."""

from __future__ import annotations

import os
from typing import Any

from deferrable.engine import engine
from deferrable.journal import Journal
from deferrable.ledger import Tokens, live_ledger, price_of


def ledger_rows() -> list[dict[str, Any]]:
    """The ledger rows of the test's journal, once pending batches and live spend are written."""
    engine().finish_cleanups()
    live_ledger.flush()
    journal = Journal(os.environ["DEFERRABLE_STORE"])
    try:
        return journal.ledger()
    finally:
        journal.close()


def cost(model: str, tokens: Tokens, *, batch: bool) -> float:
    """The price table's cost of `tokens` on `model`."""
    price = price_of(model)
    assert price is not None
    value = price.cost(tokens, batch=batch)
    assert value is not None
    return value
