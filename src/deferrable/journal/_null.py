"""No journal (``journal=False``): a `JournalLike` that records nothing."""

from __future__ import annotations

import threading
from typing import Any

from ._plan import Plan
from ._records import BatchRecord, new_token


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

    def _record_nothing(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to record."""

    submitted = cancelled_by_user = forget = rejected = failed = lose = _record_nothing
    collected = received = rescuing = kept = add_ledger = _record_nothing

    def take_over(self, token: str, owner: str) -> bool:
        """Nothing to take over."""
        return False

    def results(self, token: str, custom_ids: list[str], reuse_for: float) -> dict[str, Any]:
        """Nothing recorded."""
        return {}

    def ledger(self) -> list[dict[str, Any]]:
        """Nothing recorded."""
        return []

    def belongs(self, token: str, custom_id: str) -> bool:
        """Nothing recorded."""
        return False

    def batch(self, token: str) -> BatchRecord | None:
        """Nothing recorded."""
        return None

    def batch_ids(self) -> set[str]:
        """Nothing recorded."""
        return set()
