"""The durable journal: what was submitted, where, and what came back."""

from ._identity import request_digest
from ._journal import (
    OPEN_STATES,
    BatchRecord,
    Journal,
    NullJournal,
    Plan,
    close_journals,
    default_store,
    journal_for,
)
from ._liveness import is_alive, process_token

__all__ = [
    "OPEN_STATES", "BatchRecord", "Journal", "NullJournal", "Plan", "close_journals",
    "default_store", "is_alive", "journal_for", "process_token", "request_digest",
]
