"""A launch's plan, decided without I/O: each call is served from the journal, attached
to the batch its request is already in, or submitted in a new batch.

The journal reads the records (`Journal.plan`, in one transaction), these functions
decide, and the journal writes what they decided.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._records import BatchRecord


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


@dataclass(frozen=True)
class Serve:
    """Answer the call with the result line the journal holds."""

    line: Any
    delivered: dict[str, Any] | None = None
    """The request's record marked delivered, to be written back (kept `reuse_for`
    seconds from then); None when it was delivered before."""


@dataclass(frozen=True)
class Attach:
    """Wait on the batch `token`, which the request is already in."""

    token: str


@dataclass(frozen=True)
class Submit:
    """Submit the request in the launch's new batch."""


Decision = Serve | Attach | Submit


def awaited_batch(record: dict[str, Any] | None) -> str | None:
    """The token of the batch whose record `decide` needs for a request with `record`;
    None when the request's record decides alone."""
    if record is None or "result" in record or record.get("rescued"):
        return None
    return str(record.get("batch"))


def decide(record: dict[str, Any] | None, batch: BatchRecord | None) -> Decision:
    """What to do with a call whose request has `record` in the journal (None: it has
    none), `batch` being the record of its `awaited_batch` (None: gone, or not needed)."""
    if record is None:
        return Submit()
    if "result" in record:
        return Serve(record["result"],
                     None if record.get("delivered") else {**record, "delivered": True})
    if record.get("rescued"):
        return Submit()  # run live by a process that ended before its answer
    if batch is None or not batch.in_flight:
        return Submit()
    return Attach(str(record.get("batch")))


def assemble(custom_ids: list[str], decisions: Mapping[str, Decision], token: str) -> Plan:
    """The plan of a launch of `custom_ids`, given each request's decision: those to
    submit go in the new batch `token`, which a later call of the same request attaches
    to."""
    plan = Plan()
    submitted: set[str] = set()
    for index, custom_id in enumerate(custom_ids):
        decision = decisions[custom_id]
        if isinstance(decision, Submit) and custom_id in submitted:
            decision = Attach(token)
        if isinstance(decision, Submit):
            submitted.add(custom_id)
            plan.submit.append(index)
        elif isinstance(decision, Serve):
            plan.served.append((index, decision.line))
        else:
            plan.attached.append((index, decision.token))
    if plan.submit:
        plan.token = token
    return plan
