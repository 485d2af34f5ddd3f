"""A batch's record as the journal keeps it, and the batch states a rerun attaches to."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from .._errors import JournalCorruptError

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


def new_token() -> str:
    """A fresh batch token (also the batch's tag at the provider)."""
    return secrets.token_hex(12)
