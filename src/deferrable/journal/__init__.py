"""The durable journal: what was submitted, where, and what came back."""

from ._identity import request_digest
from ._journal import Journal
from ._liveness import is_alive, process_token
from ._null import NullJournal
from ._plan import Plan
from ._protocol import JournalLike
from ._records import OPEN_STATES, BatchRecord
from ._registry import close_journals, default_store, journal_for

__all__ = [
    "OPEN_STATES", "BatchRecord", "Journal", "JournalLike", "NullJournal", "Plan",
    "close_journals", "default_store", "is_alive", "journal_for", "process_token",
    "request_digest",
]
