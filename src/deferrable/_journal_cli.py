"""The journal's subcommands: ``deferrable status``, ``cancel``, ``prune`` and ``report``.

Each reads the journal at ``--store``, else ``$DEFERRABLE_STORE``, else the per-user
default, and never creates one: a missing journal is reported, not made. A journal that
cannot be read exits 2 with its reason.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deferrable._errors import JournalError
from deferrable.journal import OPEN_STATES, BatchRecord, Journal, default_store, is_alive
from deferrable.journal._remote import (
    ENDED_STATES,
    UntrustedBaseURLError,
    destination_of,
    look_up,
    trusted_base_url,
)
from deferrable.ledger import build_report, parse_since, render_report

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

Handler = Callable[[argparse.Namespace], int]
DATABASE = "cache.db"
"""The file diskcache keeps a journal in: its absence means there is no journal."""
PREFIXES = {"msgbatch_": "anthropic", "batch_": "openai"}
"""Batch id prefixes, for an id the journal does not know."""


def add_status(commands: Subcommands) -> None:
    """Register ``deferrable status``."""
    status = commands.add_parser(
        "status", help="list the batches in flight and the results not yet collected",
        description="List the journal's batches in flight (per provider) and count the "
                    "requests still pending and the results waiting to be collected.")
    _add_store(status)
    status.add_argument("--all", action="store_true", help="also list the batches that ended")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.add_argument(
        "--refresh", action="store_true",
        help="ask the providers about each batch in flight (credentials and base URLs from "
             "the environment) and record in the journal those they do not know, and "
             "creates that never made a batch, as lost: a rerun submits their requests")
    status.add_argument("--watch", type=_seconds, metavar="SECONDS",
                        help="refresh every SECONDS until interrupted (implies --refresh)")
    status.set_defaults(handler=_run_status)


def add_report(commands: Subcommands) -> None:
    """Register ``deferrable report``."""
    report = commands.add_parser(
        "report", help="what the recorded calls cost, live vs batch, by call site and model",
        description="What the calls recorded in the journal's ledger paid, what the same "
                    "calls cost live, and what deferring saved, by call site and model; then "
                    "the live call sites that would save the most if deferred.")
    _add_store(report)
    report.add_argument("--since", metavar="WHEN",
                        help="only calls since WHEN: 30m, 24h, 7d or a date (2026-11-20)")
    report.add_argument("--site", help="only call sites containing this text")
    report.add_argument("--model", help="only models starting with this text")
    report.add_argument("--json", action="store_true", help="print one JSON object")
    report.set_defaults(handler=_run_report)


def add_cancel(commands: Subcommands) -> None:
    """Register ``deferrable cancel``."""
    cancel = commands.add_parser(
        "cancel", help="cancel a batch at its provider",
        description="Cancel a batch with the official SDK (credentials from the environment, "
                    "as the SDK reads them). The process following it raises "
                    "BatchCanceledError for the calls that did not run, and the journal "
                    "forgets them, so a rerun submits them again. Credentials go only to "
                    "--base-url, the SDK's *_BASE_URL variable or its default: a base URL "
                    "the journal names is used only when it is one of those.")
    cancel.add_argument("batch_id", metavar="BATCH_ID",
                        help="the provider's batch id (msgbatch_... or batch_...)")
    cancel.add_argument("--base-url", metavar="URL",
                        help="send the cancel (and your credentials) to this base URL, "
                             "whatever the journal says")
    _add_store(cancel)
    cancel.set_defaults(handler=_run_cancel)


def add_prune(commands: Subcommands) -> None:
    """Register ``deferrable prune``."""
    prune = commands.add_parser(
        "prune", help="delete old batches and results from the journal",
        description="Delete batches that ended more than DAYS ago with their requests, "
                    "and results past their reuse period. A batch that may still run at "
                    "its provider (being created, or submitted and not collected) is kept "
                    "unless --force.")
    _add_store(prune)
    prune.add_argument("--older-than", type=_days, default=30.0, metavar="DAYS",
                       help="age of the ended batches to delete (default: %(default)s)")
    prune.add_argument("--force", action="store_true",
                       help="also delete batches that may still run at their provider (a "
                            "rerun then submits their requests again: paying twice)")
    prune.set_defaults(handler=_run_prune)


def _add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="DIR",
                        help="the journal's directory (default: $DEFERRABLE_STORE, else "
                             "$XDG_STATE_HOME/deferrable/journal)")


def _days(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be zero or more, not {text}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be more than zero, not {text}")
    return value


# -- the journal ---------------------------------------------------------------------------

def _store(args: argparse.Namespace) -> Path:
    """The journal's directory: ``--store``, else ``$DEFERRABLE_STORE``, else the default."""
    chosen = args.store or os.environ.get("DEFERRABLE_STORE")
    return (Path(chosen).expanduser() if chosen else default_store()).absolute()


def _exists(store: Path) -> bool:
    """Whether `store` holds a journal (or may: an unreadable one is left to report why)."""
    try:
        return (store / DATABASE).is_file()
    except OSError:
        return True


@contextmanager
def _opened(store: Path) -> Iterator[Journal]:
    journal = Journal(store)
    try:
        yield journal
    finally:
        journal.close()


def _journal_errors_exit_2(run: Handler) -> Handler:
    """`run`, with a journal it cannot use reported on stderr (exit status 2)."""

    @functools.wraps(run)
    def guarded(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except JournalError as error:
            print(f"deferrable: {error}", file=sys.stderr)
            return 2

    return guarded


# -- deferrable status ---------------------------------------------------------------------

@dataclass
class _Tally:
    """What the request records say, by batch token."""

    received: Counter[str] = field(default_factory=Counter)
    delivered: Counter[str] = field(default_factory=Counter)
    unanswered: Counter[str] = field(default_factory=Counter)
    waiting: int = 0
    """Results received but not handed to a caller yet (any batch)."""


def _tally(journal: Journal) -> _Tally:
    tally = _Tally()
    for _, record in journal.requests():
        token = str(record.get("batch"))
        if "result" not in record:
            tally.unanswered[token] += 1
        elif record.get("delivered"):
            tally.received[token] += 1
            tally.delivered[token] += 1
        else:
            tally.received[token] += 1
            tally.waiting += 1
    return tally


def _status(store: Path, *, everything: bool, refresh: bool = False) -> dict[str, Any]:
    """The status report of the journal at `store`, as ``status --json`` prints it; with
    `refresh`, each batch in flight as its provider sees it, the journal reconciled."""
    with _opened(store) as journal:
        remotes = ({b.token: look_up(journal, b) for b in journal.batches()
                    if b.state in OPEN_STATES} if refresh else {})
        batches = journal.batches()
        tally = _tally(journal)
    pending = sum(tally.unanswered[b.token] for b in batches if b.state in OPEN_STATES)
    shown = [b for b in batches if everything or b.state in OPEN_STATES or b.token in remotes]
    report: dict[str, Any] = {
        "store": str(store), "batches": [_row(b, tally) for b in shown],
        "requests_pending": pending, "results_waiting": tally.waiting}
    if refresh:
        report["refreshed_at"] = time.time()
        for batch, row in zip(shown, report["batches"], strict=True):
            remote = remotes.get(batch.token)
            row.update({"at_provider": None if remote is None else remote.state,
                        "detail": None if remote is None else remote.detail,
                        "marked_lost": remote is not None and remote.lost})
    return report


def _row(batch: BatchRecord, tally: _Tally) -> dict[str, Any]:
    return {"provider": batch.provider, "batch_id": batch.batch_id, "token": batch.token,
            "state": batch.state, "requests": batch.requests,
            "received": tally.received[batch.token], "delivered": tally.delivered[batch.token],
            "owner_pid": _pid(batch.owner), "owner_running": is_alive(batch.owner),
            "created_at": batch.created_at, "ended_at": batch.ended_at, "reason": batch.reason}


def _pid(owner: str) -> int | None:
    """The pid of an owner token ``"<pid>:<start>"``."""
    try:
        return int(owner.partition(":")[0])
    except ValueError:
        return None


@_journal_errors_exit_2
def _run_status(args: argparse.Namespace) -> int:
    store = _store(args)
    if args.watch is None:
        return _print_status(store, args, refresh=args.refresh)
    try:
        while True:
            _print_status(store, args, refresh=True, compact=True)
            time.sleep(args.watch)
    except KeyboardInterrupt:  # the way to stop watching: quietly, successfully
        return 0


def _print_status(store: Path, args: argparse.Namespace, *, refresh: bool,
                  compact: bool = False) -> int:
    """Print the status report once (a JSON line each time when `compact`, for
    ``--watch --json``); 1 when some batch could not be checked at its provider."""
    if not _exists(store):
        if args.json:
            print(json.dumps({"store": str(store), "batches": [], "requests_pending": 0,
                              "results_waiting": 0}, indent=None if compact else 2))
        print(f"no journal at {store}", file=sys.stderr if args.json else sys.stdout)
        sys.stdout.flush()
        return 0
    report = _status(store, everything=args.all, refresh=refresh)
    if args.json:
        print(json.dumps(report, indent=None if compact else 2))
    else:
        if compact:
            print()
        print("\n".join(_render(report, everything=args.all)))
    sys.stdout.flush()
    unchecked = [row for row in report["batches"] if row.get("at_provider") == "not checked"]
    return 1 if unchecked else 0


_COLUMNS = ("BATCH", "STATE", "REQUESTS", "RECEIVED", "DELIVERED", "OWNER", "AGE")
_REFRESHED_COLUMNS = ("BATCH", "STATE", "AT PROVIDER", "REQUESTS", "RECEIVED", "DELIVERED",
                      "OWNER", "AGE")
_NUMERIC = frozenset({"REQUESTS", "RECEIVED", "DELIVERED", "AGE"})


def _render(report: dict[str, Any], *, everything: bool) -> Iterator[str]:
    """The report as text: a table per provider, then the totals (and, refreshed, why
    some batch could not be checked)."""
    refreshed = "refreshed_at" in report
    when = time.strftime(" (refreshed %H:%M:%S)", time.localtime(report["refreshed_at"])) \
        if refreshed else ""
    yield f"journal at {report['store']}{when}"
    rows: list[dict[str, Any]] = report["batches"]
    if not rows:
        yield "no batches recorded" if everything else "no batches in flight"
    columns = _REFRESHED_COLUMNS if refreshed else _COLUMNS
    for provider in sorted({row["provider"] for row in rows}):
        yield provider
        cells = [_cells(row, refreshed) for row in rows if row["provider"] == provider]
        yield from _table(columns, [list(columns), *cells])
    yield f"requests pending: {report['requests_pending']}"
    yield f"results waiting to be collected: {report['results_waiting']}"
    for row in rows:
        if row.get("detail"):
            yield f"{row['batch_id'] or row['token']}: {row['at_provider']}: {row['detail']}"


def _cells(row: dict[str, Any], refreshed: bool) -> list[str]:
    owner = "running" if row["owner_running"] else "gone"
    cells = [row["batch_id"] or "(being created)", row["state"], str(row["requests"]),
             str(row["received"]), str(row["delivered"]), f"pid {row['owner_pid']}, {owner}",
             _age(time.time() - row["created_at"])]
    if refreshed:
        cells.insert(2, _at_provider(row))
    return cells


def _at_provider(row: dict[str, Any]) -> str:
    """What the provider said of the batch, and what that means for its results."""
    state: str | None = row.get("at_provider")
    if state is None:
        return "-"
    if row.get("marked_lost"):
        return f"{state}: marked lost"
    if state in ENDED_STATES and row["state"] == "submitted":
        return f"{state}, results waiting"
    return state


def _table(columns: tuple[str, ...], lines: list[list[str]]) -> Iterator[str]:
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    for line in lines:
        cells = (cell.rjust(width) if name in _NUMERIC else cell.ljust(width)
                 for name, cell, width in zip(columns, line, widths, strict=True))
        yield "  " + "  ".join(cells).rstrip()


def _age(seconds: float) -> str:
    """`seconds` in its largest whole unit: ``"42s"``, ``"3m"``, ``"5h"``, ``"2d"``."""
    seconds = max(0.0, seconds)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


# -- deferrable report ---------------------------------------------------------------------

@_journal_errors_exit_2
def _run_report(args: argparse.Namespace) -> int:
    store = _store(args)
    try:
        since = None if args.since is None else parse_since(args.since, time.time())
    except ValueError as error:
        print(f"deferrable: --since: {error}", file=sys.stderr)
        return 2
    rows: list[dict[str, Any]] = []
    if _exists(store):
        with _opened(store) as journal:
            rows = journal.ledger()
    report = build_report(rows, since=since, site=args.site, model=args.model)
    if args.json:
        print(json.dumps({"store": str(store), **report}, indent=2))
    else:
        print(render_report(report, f"deferrable report: journal at {store}"))
    return 0


# -- deferrable cancel ---------------------------------------------------------------------

class _CancelError(Exception):
    """The provider (or its SDK) refused to cancel the batch."""


def _run_cancel(args: argparse.Namespace) -> int:
    batch_id: str = args.batch_id
    try:
        record = _recorded(_store(args), batch_id)
    except JournalError as error:
        print(f"deferrable: {error}; going by the batch id alone", file=sys.stderr)
        record = None
    destination = destination_of(record) if record is not None else _guessed(batch_id)
    provider = destination.get("provider")
    if provider not in ("anthropic", "openai"):
        print(f"deferrable: cannot tell the provider of batch {batch_id!r}: expected an "
              "Anthropic id (msgbatch_...) or an OpenAI one (batch_...)", file=sys.stderr)
        return 2
    try:  # before anything is recorded or sent: credentials go only where the user said
        destination["base_url"] = trusted_base_url(provider, destination.get("base_url"),
                                                   args.base_url)
    except UntrustedBaseURLError as error:
        print(f"deferrable: not cancelling {batch_id}: {error}", file=sys.stderr)
        return 2
    if record is not None:  # first, so that the process following it never sends them again
        try:
            with _opened(_store(args)) as journal:
                journal.cancelled_by_user(record.token)
        except JournalError as error:
            print(f"deferrable: recording the cancel in the journal failed: {error}",
                  file=sys.stderr)
    try:
        cancel = _cancel_anthropic if provider == "anthropic" else _cancel_openai
        state = cancel(batch_id, destination)
    except _CancelError as error:
        print(f"deferrable: could not cancel {batch_id}: {error}", file=sys.stderr)
        return 1
    print(f"{batch_id} ({provider}): {state}")
    if record is not None and record.state in OPEN_STATES:
        print(f"its calls that did not run raise BatchCanceledError in pid {_pid(record.owner)}; "
              "a rerun submits them again")
    return 0


def _recorded(store: Path, batch_id: str) -> BatchRecord | None:
    """The journal's record of the provider batch `batch_id`, if any."""
    if not _exists(store):
        return None
    with _opened(store) as journal:
        return next((b for b in journal.batches() if b.batch_id == batch_id), None)


def _guessed(batch_id: str) -> dict[str, Any]:
    """The provider of an id the journal does not know, by its prefix (the base URL is
    ``--base-url``, else the SDK's own choice)."""
    provider = next((p for prefix, p in PREFIXES.items() if batch_id.startswith(prefix)), None)
    return {"provider": provider}


def _cancel_anthropic(batch_id: str, destination: dict[str, Any]) -> str:
    """Cancel a Message Batch (at the destination's base URL, already trusted); returns
    its processing status."""
    import anthropic

    try:
        with anthropic.Anthropic(base_url=destination.get("base_url")) as client:
            if client.api_key is None and client.auth_token is None and client.credentials is None:
                raise _CancelError("no Anthropic credentials; set ANTHROPIC_API_KEY")
            workspace = destination.get("workspace") or anthropic.omit
            if destination.get("beta"):
                betas = [str(beta) for beta in destination.get("betas") or ()]
                batch = client.beta.messages.batches.cancel(
                    batch_id, betas=betas if betas else anthropic.omit, workspace_id=workspace)
                return str(batch.processing_status)
            return str(client.messages.batches.cancel(batch_id, workspace_id=workspace)
                       .processing_status)
    except anthropic.AnthropicError as error:
        raise _CancelError(_message(error)) from None


def _cancel_openai(batch_id: str, destination: dict[str, Any]) -> str:
    """Cancel an OpenAI batch (in the organization and project it went to, at the
    destination's base URL, already trusted); returns its status."""
    import openai

    try:
        with openai.OpenAI(base_url=destination.get("base_url"),
                           organization=destination.get("organization"),
                           project=destination.get("project")) as client:
            return str(client.batches.cancel(batch_id).status)
    except openai.OpenAIError as error:
        raise _CancelError(_message(error)) from None


def _message(error: Exception) -> str:
    """An SDK error's own message (an API error's without its status prefix)."""
    return str(getattr(error, "message", None) or error)


# -- deferrable prune ----------------------------------------------------------------------

@_journal_errors_exit_2
def _run_prune(args: argparse.Namespace) -> int:
    store = _store(args)
    if not _exists(store):
        print(f"no journal at {store}")
        return 0
    with _opened(store) as journal:
        gone = journal.prune(args.older_than * 86_400, force=args.force)
    print(f"pruned {_count(gone['batches'], 'batch', 'batches')}, "
          f"{_count(gone['requests'], 'request', 'requests')}, "
          f"{_count(gone['expired'], 'expired result', 'expired results')}")
    if gone["kept"]:
        kept = gone["kept"]
        them = "it" if kept == 1 else "them"
        print(f"kept {_count(kept, 'batch', 'batches')} that may still run at the provider: "
              f"a rerun follows {them} (`deferrable status --refresh` asks the provider); "
              f"--force deletes {them} anyway, which may lead to paying twice")
    if gone["in_flight"]:
        forced = gone["in_flight"]
        print(f"deferrable: warning: --force deleted {_count(forced, 'batch', 'batches')} "
              "that may still run at the provider: a rerun submits "
              f"{'its' if forced == 1 else 'their'} requests again, which may lead to paying "
              "twice for them", file=sys.stderr)
    return 0


def _count(number: int, one: str, many: str) -> str:
    return f"{number} {one if number == 1 else many}"
