"""``deferrable observe -- python job.py``: run a program as it is, in observe mode, and
show what its live calls would cost deferred.

The program is not changed and need not import deferrable: its environment turns observe
mode on (``DEFERRABLE_OBSERVE=1``), and puts the `STARTUP` directory first on
``PYTHONPATH``, whose ``sitecustomize`` imports deferrable and calls ``observe()`` in every
Python process of the program (as ``opentelemetry-instrument`` does). When the program
ends, the calls it recorded (the journal's ledger after, less the ledger before) are
printed as `deferrable report` prints them, on stderr so the program's own stdout stays
its own, and the command exits with the program's exit status.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from deferrable._journal_cli import _exists, _journal_errors_exit_2, _opened, _store
from deferrable.ledger import build_report, render_report
from deferrable.ledger._ledger import COUNTS, row_key

if TYPE_CHECKING:
    Subcommands = argparse._SubParsersAction[argparse.ArgumentParser]

STARTUP = Path(__file__).resolve().with_name("_startup")
"""The directory holding the ``sitecustomize`` that turns observe mode on at startup."""


def add_observe(commands: Subcommands) -> None:
    """Register ``deferrable observe``."""
    observe = commands.add_parser(
        "observe", help="run a program as it is, recording its live calls, then show what "
                        "deferring them would save",
        description="Run COMMAND (e.g. python job.py) unchanged with observe mode on in "
                    "each Python process it starts (that can import deferrable): its live "
                    "Anthropic and OpenAI calls are recorded in the journal's ledger with their "
                    "call sites, and nothing is deferred. When it ends, print the report of "
                    "the calls recorded meanwhile (on stderr) and exit with its exit status.",
        usage="%(prog)s [-h] [--store DIR] -- COMMAND [ARGS ...]")
    observe.add_argument("--store", metavar="DIR",
                         help="the journal's directory (default: $DEFERRABLE_STORE, else "
                              "$XDG_STATE_HOME/deferrable/journal)")
    observe.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND",
                         help="the program to run and its arguments, after --")
    observe.set_defaults(handler=_run_observe)


def observed_environment(environ: Mapping[str, str], store: Path) -> dict[str, str]:
    """`environ` for a program to run in observe mode, recording in the journal at `store`:
    ``DEFERRABLE_OBSERVE=1`` and `STARTUP` first on ``PYTHONPATH`` (once)."""
    paths = [path for path in environ.get("PYTHONPATH", "").split(os.pathsep)
             if path and path != str(STARTUP)]
    return {**environ, "DEFERRABLE_OBSERVE": "1", "DEFERRABLE_STORE": str(store),
            "PYTHONPATH": os.pathsep.join([str(STARTUP), *paths])}


def recorded_between(before: list[dict[str, Any]],
                     after: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ledger rows of the calls recorded between two reads of a ledger: each row of
    `after` less its row (same hour, site, provider, model and mode) in `before`."""
    earlier = {row_key(row): row for row in before}
    rows = []
    for row in after:
        old = earlier.get(row_key(row))
        if old is None:
            rows.append(row)
        elif row.get("calls", 0) > old.get("calls", 0):
            rows.append({**row, **{name: row.get(name, 0) - old.get(name, 0) for name in COUNTS}})
    return rows


@_journal_errors_exit_2
def _run_observe(args: argparse.Namespace) -> int:
    command: list[str] = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        print("deferrable observe: no command to run; e.g. deferrable observe -- python job.py",
              file=sys.stderr)
        return 2
    store = _store(args)
    before = _ledger(store)
    try:
        process = subprocess.Popen(command, env=observed_environment(os.environ, store))  # noqa: S603 - the user's own command
    except OSError as error:
        print(f"deferrable observe: cannot run {command[0]}: {error.strerror or error}",
              file=sys.stderr)
        return 127 if isinstance(error, FileNotFoundError) else 126
    with _signals_to(process):
        status = process.wait()
    report = build_report(recorded_between(before, _ledger(store)))
    sys.stdout.flush()  # the program's output, then the report
    print(render_report(report, f"deferrable observe: the calls of {shlex.join(command)} "
                                f"(journal at {store})"), file=sys.stderr)
    return 128 - status if status < 0 else status  # killed by signal N: 128 + N, as a shell


def _ledger(store: Path) -> list[dict[str, Any]]:
    if not _exists(store):
        return []
    with _opened(store) as journal:
        return journal.ledger()


@contextmanager
def _signals_to(process: subprocess.Popen[bytes]) -> Iterator[None]:
    """While the program runs: Ctrl-C reaches it from the terminal (its process group is
    ours), so here it is ignored, and the report still comes when the program ends;
    SIGTERM is passed on to it."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def forward(signum: int, frame: FrameType | None) -> None:
        process.send_signal(signum)

    previous_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    previous_term = signal.signal(signal.SIGTERM, forward)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
