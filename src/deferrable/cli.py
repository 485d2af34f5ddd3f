"""The `deferrable` command (also `python -m deferrable`).

Each subcommand is a ``_add_<name>(subparsers)`` function that declares its arguments and
sets ``handler``, a function from the parsed arguments to an exit status; adding one
(`status`, `report`, `cancel`, ...) touches nothing else. Output cut short by its reader
(``deferrable report | head -1``) ends every subcommand quietly, here in `main`.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import threading
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

from deferrable import __version__
from deferrable._journal_cli import add_cancel, add_prune, add_report, add_status
from deferrable._observe_cli import add_observe

if TYPE_CHECKING:
    from deferrable.emulator import Faults

Handler = Callable[[argparse.Namespace], int]
T = TypeVar("T")
BROKEN_PIPE = 128 + getattr(signal, "SIGPIPE", 13)
"""The exit status when stdout's reader went away: 128 + SIGPIPE (141), what a shell
reports for a command that SIGPIPE ended."""


def main(argv: list[str] | None = None) -> int:
    """Run the command line `argv` (default: ``sys.argv[1:]``); returns the exit status.

    When the reader of stdout goes away (``deferrable status --all | head -1``), the
    command ends quietly with `BROKEN_PIPE`: no BrokenPipeError traceback, and none at
    the interpreter's final flush either (the recipe of the `signal` module's "Note on
    SIGPIPE"; SIGPIPE itself stays ignored, so a broken socket never kills the process)."""
    try:
        status = _run(argv)
        sys.stdout.flush()  # a reader gone shows here, inside the try, not at exit
    except BrokenPipeError:
        _silence_stdout()
        return BROKEN_PIPE
    return status


def _run(argv: list[str] | None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version and usage errors
        return exit_.code if isinstance(exit_.code, int) else int(exit_.code is not None)
    handler: Handler = args.handler
    return handler(args)


def _silence_stdout() -> None:
    """Point stdout's file descriptor at the null device, so that what is still buffered
    (the interpreter flushes it at exit) goes nowhere instead of failing again."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a file (replaced, or closed)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, descriptor)
    finally:
        os.close(devnull)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deferrable",
        description="Pay half price for LLM calls nobody is waiting on.")
    parser.add_argument("--version", action="version", version=f"deferrable {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", required=True,
                                     metavar="COMMAND")
    _add_demo(commands)
    _add_emulator(commands)
    add_status(commands)
    add_report(commands)
    add_cancel(commands)
    add_prune(commands)
    add_observe(commands)
    return parser


# -- deferrable demo -----------------------------------------------------------------------

def _add_demo(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = commands.add_parser(
        "demo", help="run the main job on the embedded emulator (no API key needed)",
        description="Run a realistic job through deferrable on the embedded emulator.")
    demo.add_argument("--requests", type=_positive_int, metavar="N",
                      help="number of calls to make (default: 1,000)")
    demo.add_argument("--batch-latency", type=_non_negative_float, metavar="SECONDS",
                      help="seconds the emulator takes to end each batch (default: 0.1; real "
                           "batches take minutes to hours)")
    demo.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from deferrable._demo import run_demo  # the demo pulls in the whole library

    options: dict[str, Any] = {}
    if args.requests is not None:
        options["requests"] = args.requests
    if args.batch_latency is not None:
        options["batch_latency"] = args.batch_latency
    return run_demo(**options)


# -- deferrable emulator -------------------------------------------------------------------

def _add_emulator(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    emulator = commands.add_parser(  # the emulator (aiohttp) is imported only when it runs
        "emulator", help="serve the local Anthropic + OpenAI emulator in the foreground",
        description="Serve a local emulator of Anthropic's and OpenAI's APIs, batches "
                    "included, until interrupted. Point an SDK's base_url at it, with any key.")
    emulator.add_argument("--host", default="127.0.0.1",
                          help="address to bind (default: %(default)s, this machine only)")
    emulator.add_argument("--port", type=_port, default=8765,
                          help="port to bind; 0 picks a free one (default: %(default)s)")
    emulator.add_argument("--batch-latency", type=_non_negative_float, default=0.0,
                          metavar="SECONDS",
                          help="seconds from a batch's creation to its end (default: %(default)s)")
    emulator.add_argument("--flex-latency", type=_non_negative_float, default=0.0,
                          metavar="SECONDS",
                          help='seconds a live OpenAI flex request (service_tier "flex") takes '
                               "before it is answered (default: %(default)s)")
    emulator.add_argument("--background-latency", type=_non_negative_float, default=0.0,
                          metavar="SECONDS",
                          help="seconds from an OpenAI background response's creation to its "
                               "end (default: %(default)s)")
    emulator.add_argument("--data-dir", metavar="DIR",
                          help="keep uploaded files and results here (default: a temporary "
                               "directory, removed on exit)")
    faults = emulator.add_argument_group("fault injection")
    faults.add_argument("--error-rate", type=_fraction, default=0.0, metavar="R",
                        help="share of requests that fail, chosen deterministically")
    faults.add_argument("--error-rate-status", type=int, default=500, metavar="STATUS",
                        help="HTTP status of those failures (default: %(default)s)")
    faults.add_argument("--seed", type=int, default=0, help="seed of the error choice")
    faults.add_argument("--flex-unavailable-rate", type=_fraction, default=0.0, metavar="R",
                        help='share of live flex requests refused with 429 "Resource '
                             'Unavailable", chosen deterministically')
    faults.add_argument("--expire-batches", action="store_true",
                        help="batches expire when their latency ends instead of completing")
    faults.add_argument("--expire-completed-fraction", type=_fraction, default=0.0,
                        metavar="R", help="of an expiring batch, the share that completed")
    faults.add_argument("--cancel-completed-fraction", type=_fraction, default=0.0,
                        metavar="R", help="of a canceled batch, the share that still finishes")
    faults.add_argument("--truncate-results-after", type=_positive_int, metavar="LINES",
                        help="result downloads stop after this many lines")
    faults.add_argument("--truncate-mode", choices=("abort", "clean"), default="abort",
                        help="cut the connection, or end a short well-formed stream")
    faults.add_argument("--results-line-delay", type=_non_negative_float, default=0.0,
                        metavar="SECONDS", help="wait this long before each line of a result "
                                                "download (a slow stream)")
    faults.add_argument("--hold-before", type=_hold, action="append", default=[],
                        metavar="ROUTE=SECONDS",
                        help='hold every request on ROUTE (e.g. "POST /v1/messages/batches", '
                             'or "*") this long before handling it; a client gone by then is '
                             "never served (repeatable)")
    faults.add_argument("--hold-after", type=_hold, action="append", default=[],
                        metavar="ROUTE=SECONDS",
                        help="handle every request on ROUTE, then hold the answer this long "
                             "(repeatable)")
    emulator.add_argument("--quirk", action="append", default=[], metavar="NAME=VALUE",
                          help="set a field of deferrable.emulator.Quirks, a switch for "
                               "undocumented behaviour (repeatable; a wrong NAME lists them)")
    emulator.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                          help="set a field of deferrable.emulator.Limits, e.g. "
                               "openai_batch_requests=10 (repeatable)")
    emulator.set_defaults(handler=_run_emulator)


def _run_emulator(args: argparse.Namespace) -> int:
    from deferrable.emulator import Emulator, Limits, Quirks

    try:
        quirks = _dataclass_from(Quirks, args.quirk)
        limits = _dataclass_from(Limits, args.limit)
    except ValueError as error:
        print(f"deferrable emulator: {error}", file=sys.stderr)
        return 2
    emulator = Emulator(batch_latency=args.batch_latency, flex_latency=args.flex_latency,
                        background_latency=args.background_latency, faults=_faults(args),
                        quirks=quirks, limits=limits, host=args.host, port=args.port,
                        data_dir=args.data_dir)

    def announce(url: str) -> None:
        print(f"deferrable emulator listening on {url} (OpenAI base_url: {url}/v1)", flush=True)

    try:
        with _signals_interrupt():
            emulator.serve_forever(on_ready=announce)
    except OSError as error:
        print(f"deferrable emulator: cannot listen on {args.host}:{args.port}: {error}",
              file=sys.stderr)
        return 1
    print("deferrable emulator stopped", file=sys.stderr, flush=True)
    return 0


def _faults(args: argparse.Namespace) -> Faults:
    """The emulator's `Faults` from the fault-injection flags; holds apply to every request."""
    from deferrable.emulator import Faults, Hold

    holds = [Hold(route, before=seconds, times=None) for route, seconds in args.hold_before]
    holds += [Hold(route, after=seconds, times=None) for route, seconds in args.hold_after]
    return Faults(
        error_rate=args.error_rate, error_rate_status=args.error_rate_status, seed=args.seed,
        flex_unavailable_rate=args.flex_unavailable_rate, expire_batches=args.expire_batches,
        expire_completed_fraction=args.expire_completed_fraction,
        cancel_completed_fraction=args.cancel_completed_fraction,
        truncate_results_after=args.truncate_results_after, truncate_mode=args.truncate_mode,
        results_line_delay=args.results_line_delay, holds=holds)


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """Within the block, Ctrl-C (SIGINT) and SIGTERM stop the foreground server.

    SIGINT is re-armed even if the process started with it ignored, as a shell's
    background job does; asyncio then turns it into a clean shutdown.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


# -- argument types ------------------------------------------------------------------------

def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, not {value}")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"must be zero or more, not {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {text}")
    return value


def _hold(text: str) -> tuple[str, float]:
    """``ROUTE=SECONDS`` (split at the last ``=``), ROUTE ``"METHOD /path"`` or ``"*"``."""
    route, sep, seconds = text.rpartition("=")
    route = route.strip()
    method, _, path = route.partition(" ")
    if not sep or (route != "*" and not (method.isalpha() and method.isupper()
                                         and path.startswith("/"))):
        raise argparse.ArgumentTypeError(
            f'expected ROUTE=SECONDS, ROUTE like "POST /v1/messages/batches" or "*", '
            f"not {text!r}")
    try:
        return route, _non_negative_float(seconds)
    except ValueError:
        raise argparse.ArgumentTypeError(f"SECONDS must be a number, not {seconds!r}") from None


def _field_names(cls: type[Any]) -> list[str]:
    return [field.name for field in dataclasses.fields(cls)]


def _dataclass_from(cls: type[T], assignments: list[str]) -> T:
    """An instance of the dataclass `cls` with ``NAME=VALUE`` overrides, typed by its hints."""
    hints = typing.get_type_hints(cls)
    overrides: dict[str, Any] = {}
    for assignment in assignments:
        name, sep, text = assignment.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in hints:
            raise ValueError(f"{assignment!r}: expected NAME=VALUE, NAME one of "
                             f"{', '.join(_field_names(cls))}")
        overrides[name] = _convert(name, hints[name], text.strip())
    return cls(**overrides)


def _convert(name: str, hint: Any, text: str) -> Any:
    """`text` as a value of type `hint`: bool, int, float, str, a Literal, or one of those | None."""
    options = typing.get_args(hint)
    if type(None) in options:
        if text.lower() in ("none", "null"):
            return None
        hint = next(option for option in options if option is not type(None))
        options = typing.get_args(hint)
    if typing.get_origin(hint) is typing.Literal:
        if text not in options:
            raise ValueError(f"{name} must be one of {', '.join(map(str, options))}, not {text!r}")
        return text
    if hint is bool:
        if text.lower() not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
            raise ValueError(f"{name} must be true or false, not {text!r}")
        return text.lower() in ("true", "1", "yes", "on")
    if hint in (int, float):
        try:
            return hint(text)
        except ValueError:
            raise ValueError(f"{name} must be a number, not {text!r}") from None
    return text
