"""The engine's blocking steps, run in its worker threads: planning a launch against the
journal, and reading result lines into the journal and then to the waiting calls."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from typing import Any

from .._errors import BatchCanceledError, JournalError
from ..journal import JournalLike, Plan, request_digest
from ..ledger import Spend, merged, row_of
from ._follow import Follow
from ._lifecycle import resubmits
from ._settle import Settler
from ._target import Call, Target

log = logging.getLogger("deferrable")
SETTLE_CHUNK = 512
"""Result lines recorded in one journal transaction, then handed to their callers."""
UNCLAIMED = "(results no caller of this run asked for)"
CANCELLED = "(cancelled after submission: paid, unused)"
"""Appended to the ledger site of a result whose callers had all cancelled."""


def plan_launch(journal: JournalLike, target: Target, calls: list[Call]) -> Plan:
    """Give each call its identity, let the journal decide what to submit, and answer the
    calls whose results the journal already holds."""
    options = calls[0].options
    for call in calls:
        if call.custom_id is None:
            digest = (request_digest(target.destination, target.canonical(call.body))
                      if journal.durable else "")
            call.custom_id = journal.custom_id(digest, dedupe=options.dedupe)
    plan = journal.plan([call.custom_id or "" for call in calls], provider=target.provider,
                        destination=target.destination, reuse_for=options.reuse_for)
    if plan.served:
        log.info("served %d result(s) from the journal (%s): nothing sent", len(plan.served),
                 target.provider)
    serve(target, ((calls[index], line) for index, line in plan.served))
    return plan


def serve(target: Target, answered: Iterable[tuple[Call, Any]]) -> None:
    """Settle calls with result lines (taken from the journal)."""
    settler = Settler()
    for count, (call, line) in enumerate(answered, 1):
        value, error = target.outcome(line)
        settler.settle(call.future, value, error)
        if count % SETTLE_CHUNK == 0:
            settler.dispatch()
    settler.dispatch()


def resolve_from(follow: Follow, batch_id: str, again: list[Call]) -> None:
    """Read the batch's result lines: each chunk is recorded in the journal first, then
    its calls are settled, so that no caller sees a result a rerun would pay for again.
    Calls whose result is transient and may be sent again (or, once a deadline cancelled
    the batch, rescued) are put in `again` instead."""
    target, journal = follow.target, follow.journal
    reuse_for = follow.options.reuse_for
    limit = follow.options.max_retries
    if limit is None:
        limit = target.retries
    lines = iter(target.results(batch_id))
    while True:
        chunk: list[tuple[str, Any]] = []
        broken: Exception | None = None
        try:  # the lines that came before a break are kept
            chunk.extend(itertools.islice(lines, SETTLE_CHUNK))
        except Exception as failure:
            broken = failure
        if not chunk:
            if broken is not None:
                raise broken
            return
        records: list[tuple[str, Any, bool]] = []
        settlements: list[tuple[list[Call], Any, BaseException | None]] = []
        spending: list[tuple[str, dict[str, Any]]] = []
        for custom_id, line in chunk:
            if custom_id in follow.read:
                continue  # read by an earlier pass over a short stream
            follow.read.add(custom_id)
            taken = follow.take(custom_id)
            calls = [call for call in taken if not call.future.done()]
            succeeded = target.succeeded(line)
            if calls:
                value, error = target.outcome(line, follow.trace)
                transient = not succeeded and _transient(follow, line, error)
                if transient and follow.rescuing:  # stopped by the deadline's cancel
                    again.extend(calls)
                    calls = []
                for call in [c for c in calls if resubmits(transient, c.resubmitted, limit)]:
                    call.resubmitted += 1
                    again.append(call)
                    calls.remove(call)
                if calls:
                    settlements.append((calls, value, error))
            # A result only cancelled calls waited for is not handed out: a rerun may use it.
            records.append((custom_id, line if succeeded else None, bool(calls)))
            spent = target.spent(line) if succeeded else None
            if spent is not None:
                site = (calls[0].site if calls else
                        f"{taken[0].site} {CANCELLED}" if taken else UNCLAIMED)
                row = row_of(Spend(site, target.provider, spent[0], "batch", spent[1]))
                follow.saved_usd += row["live_usd"] - row["batch_usd"]
                spending.append((custom_id, row))
        try:
            if follow.expected is None:  # a batch of an earlier run: lines it read count once
                journal.received(follow.token, records, reuse_for, ledger_once=spending)
            else:
                journal.received(follow.token, records, reuse_for,
                                 merged(row for _, row in spending))
        except JournalError:
            log.exception("recording results of batch %s in the journal failed; they are "
                          "delivered, but a rerun will not find them", batch_id)
        settler = Settler()
        for calls, value, error in settlements:
            for call in calls:
                settler.settle(call.future, value, error)
        settler.dispatch()
        if broken is not None:
            raise broken


def _transient(follow: Follow, line: Any, error: BaseException | None) -> bool:
    """Whether a failed line may pass if sent again (a request a user cancelled on purpose
    does not go again)."""
    if follow.cancelled_by_user and isinstance(error, BatchCanceledError):
        return False
    return follow.target.transient(line)


def belongs(target: Target, batch_id: str, journal: JournalLike, token: str) -> bool:
    """Whether the ended batch `batch_id` holds a request recorded under `token` (its
    first result line tells)."""
    lines = iter(target.results(batch_id))
    try:
        first = next(lines, None)
    finally:
        close = getattr(lines, "close", None)
        if close is not None:
            close()
    return first is not None and journal.belongs(token, first[0])
