"""Options users tune: process-wide defaults (`configure()`, `DEFERRABLE_*` variables)
overridden per scope (`@deferrable(max_wait=...)`, `scope(...)`)."""

from __future__ import annotations

import dataclasses
import datetime
import functools
import math
import os
import reprlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple


@dataclass(frozen=True)
class Options:
    """How calls are batched and followed. Immutable; `replace()` derives a variant."""

    max_batch_size: int = 10_000
    """Requests per batch; the provider's own limit caps it."""
    max_batch_bytes: int = 128 * 1024 * 1024
    """Bytes of request bodies per batch; the provider's own limit caps it."""
    max_wait: float = 1.0
    """Seconds the first buffered request of a group may wait before its batch is submitted."""
    poll_interval: float = 1.0
    """Seconds before the first poll of a batch; later polls back off (x1.5, jittered)."""
    max_poll_interval: float = 60.0
    """The ceiling of the poll backoff."""
    deadline: float | datetime.datetime | None = None
    """How long a call may wait for its batch: a number of seconds from when the call is made,
    or an aware `datetime.datetime` (an absolute deadline, the same for every call; a naive
    one is refused). None waits as long as the provider does (24 h). `deadline_at()` turns
    either into an epoch time."""
    rescue_margin: float = 120.0
    """Seconds before a call's deadline at which its unfinished batch is cancelled and the
    requests still without a result are rescued as `on_deadline` says."""
    on_deadline: Literal["live", "raise"] = "live"
    """What a call whose deadline comes before its batch ends gets: ``"live"`` makes it live,
    at full price; ``"raise"`` raises `DeadlineExceededError`, with no live call."""
    max_retries: int | None = None
    """How many times a request whose batch result was transient (its batch expired or was
    cancelled by someone else; a 429, 500 or 529, ``overloaded_error`` or ``api_error``) is
    resubmitted in a later batch before that result is raised. None is the client's own
    ``max_retries`` (2 by default in the SDKs)."""
    lane: Literal["batch", "flex", "auto"] = "batch"
    """Where deferred calls go: ``"batch"`` (the providers' batch APIs), ``"flex"``
    (OpenAI's flex processing, ``service_tier="flex"``: batch prices, usually minutes; a
    batch when flex stays busy or the model has none) or ``"auto"`` (flex for small groups
    and near deadlines of models known to offer it, else a batch)."""
    store: str | None = None
    """The journal's directory; None is the per-user default
    (``$XDG_STATE_HOME/deferrable/journal``, else ``~/.local/state/deferrable/journal``).
    An `os.PathLike` is accepted too, and kept as given."""
    journal: bool = True
    """Record every deferred request, its batch and its result, so that a rerun after a
    crash pays for nothing twice; False keeps nothing on disk."""
    reuse_for: float = 86_400.0
    """Seconds a result, once handed to a caller, is served again to the same request in a
    later run (a rerun after a crash). Results never handed out are served until pruned."""
    dedupe: bool = False
    """Serve identical requests (same body, same destination) with one batch request;
    by default the n-th identical call is a request of its own."""
    delete_files: bool = True
    """Delete the files a batch leaves at the provider (OpenAI's input, output and error
    files) once its results are read; False keeps them for inspection."""
    defer_streams: bool = True
    """Defer streaming calls too (``stream=True``, ``messages.stream()``, ...): the request
    goes into the batch without streaming, and its result is replayed as the provider's own
    event stream. False sends them live."""
    strict: bool = False
    """Raise `LiveCallError` for a call inside the scope that would go live (a parameter the
    batch API refuses, a client of another cloud), instead of making it at full price."""
    progress: bool = True
    """Show each running batch's progress on standard error while calls wait (only when
    it is a terminal)."""
    freeze_gc: bool = True
    """While scopes are open, keep the objects of waiting calls out of the cyclic garbage
    collector's full collections (`gc.freeze()` every few hundred calls, undone when the
    last scope closes): with thousands of calls waiting those scans cost more than
    everything else. False leaves the collector alone."""

    def __post_init__(self) -> None:
        """Refuse a value of the wrong type (TypeError) or out of range (ValueError)."""
        for name, rule in _RULES.items():
            rule.check(name, getattr(self, name))

    def replace(self, **changes: Any) -> Options:
        """A copy with `changes`; unknown names are a TypeError naming them, bad values a
        TypeError or ValueError naming the option.

        Results are cached: scopes resolve their options on every call they wrap.
        """
        if not changes:
            return self
        # The key holds each value's type: 1 == 1.0 == True, but only 1 is a valid count;
        # and a datetime's zone: the same instant in another zone is equal, but kept as given.
        key = tuple((name, type(value), value, _zone(value))
                    for name, value in sorted(changes.items()))
        try:
            hash(key)
        except TypeError:
            return _replace(self, changes)  # no valid value is unhashable: this raises
        return _replaced(self, key)


_NAMES = frozenset(f.name for f in dataclasses.fields(Options))


def _replace(options: Options, changes: dict[str, Any]) -> Options:
    unknown = set(changes) - _NAMES
    if unknown:
        raise TypeError(f"unknown deferrable option(s): {', '.join(sorted(unknown))}")
    return dataclasses.replace(options, **changes)


def _zone(value: object) -> object:
    """A datetime's tzinfo and fold (what equality ignores), for `replace()`'s cache key."""
    if isinstance(value, datetime.datetime):
        return value.tzinfo, value.fold
    return None


@functools.lru_cache(maxsize=512)
def _replaced(options: Options, changes: tuple[tuple[str, type, Any, object], ...]) -> Options:
    return _replace(options, {name: value for name, _, value, _ in changes})


def deadline_at(deadline: float | datetime.datetime | None, made_at: float) -> float | None:
    """The epoch time (seconds, as `time.time()`) at which a call made at epoch `made_at`
    reaches `deadline` (an `Options.deadline`); None for no deadline.

    Seconds count from `made_at`; an aware datetime is the same instant for every call.
    A naive datetime is a ValueError (its instant depends on the local zone).
    """
    if deadline is None:
        return None
    if isinstance(deadline, datetime.datetime):
        if deadline.utcoffset() is None:
            raise ValueError(_naive("deadline", deadline))
        return deadline.timestamp()
    try:
        return made_at + deadline
    except OverflowError:  # an int of seconds too large for a float: never
        return math.inf


def _shown(value: object) -> str:
    """``str ('0.05')``: a bad value's type and (shortened) repr, for error messages."""
    return f"{type(value).__name__} ({reprlib.repr(value)})"


def _count(name: str, value: object) -> None:
    """An int (not a bool) of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {_shown(value)}")
    if value < 1:
        raise ValueError(f"{name} must be at least 1, not {reprlib.repr(value)}")


def _seconds(*, positive: bool, finite: bool = True) -> Callable[[str, object], None]:
    """A check for an int or float (not a bool, not NaN): > 0 if `positive`, else >= 0;
    infinity refused if `finite`."""
    bound = "greater than 0" if positive else "at least 0"

    def check(name: str, value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(f"{name} must be a number of seconds, not {_shown(value)}")
        if value != value:  # NaN (math.isnan would overflow on a huge int)
            raise ValueError(f"{name} must be a number of seconds, not nan")
        if value < 0 or (positive and value == 0):
            raise ValueError(f"{name} must be {bound}, not {reprlib.repr(value)}")
        if finite and value == math.inf:
            raise ValueError(f"{name} must be finite, not inf")

    return check


_positive_seconds = _seconds(positive=True)


def _naive(name: str, value: datetime.datetime) -> str:
    """The message refusing a naive datetime."""
    return f"{name} must be an aware datetime (with tzinfo), not a naive one: {value.isoformat()}"


def _deadline(name: str, value: object) -> None:
    """None, a finite number of seconds > 0, or an aware datetime (any instant: whether it
    has passed is the engine's to judge, when a call is made)."""
    if value is None:
        return
    if isinstance(value, datetime.datetime):
        if value.utcoffset() is None:
            raise ValueError(_naive(name, value))
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be None, a number of seconds or an aware datetime, "
                        f"not {_shown(value)}")
    _positive_seconds(name, value)


def _seconds_or_timestamp(raw: str) -> float | datetime.datetime:
    """A number of seconds, else an ISO 8601 timestamp (``2026-12-03T06:00:00+00:00``; a
    final ``Z`` too, which `datetime.fromisoformat` refuses before 3.11); a ValueError when
    neither. A timestamp without an offset parses (naive), for the check to refuse."""
    text = raw.strip()
    try:
        return float(text)
    except ValueError:
        pass
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    return datetime.datetime.fromisoformat(text)


def _retries(name: str, value: object) -> None:
    """None, or an int (not a bool) of at least 0."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be None or an int, not {_shown(value)}")
    if value < 0:
        raise ValueError(f"{name} must be at least 0, not {reprlib.repr(value)}")


def _store(name: str, value: object) -> None:
    """None, or a non-empty str or `os.PathLike` naming a str path (kept as given)."""
    if value is None:
        return
    if not isinstance(value, (str, os.PathLike)) or not isinstance(os.fspath(value), str):
        raise TypeError(f"{name} must be None, a str or an os.PathLike, not {_shown(value)}")
    if os.fspath(value) == "":
        raise ValueError(f"{name} must be a non-empty path, not {value!r}")
    try:
        hash(value)  # Options are hashed (scopes' caches, the engine's groups)
    except TypeError:
        raise TypeError(f"{name} must be a hashable path, not {_shown(value)}") from None


_WORDS = {"1": True, "true": True, "yes": True, "on": True,
          "0": False, "false": False, "no": False, "off": False}


def _boolean(raw: str) -> bool:
    """`1/true/yes/on` or `0/false/no/off`, any case; anything else is a ValueError."""
    meant = _WORDS.get(raw.strip().lower())
    if meant is None:
        raise ValueError(raw)
    return meant


def _flag(name: str, value: object) -> None:
    """True or False only: not 0/1, not a string."""
    if isinstance(value, bool):
        return
    meant = _WORDS.get(value.strip().lower()) if isinstance(value, str) else None
    hint = "" if meant is None else f"; write {meant}, without quotes"
    raise TypeError(f"{name} must be True or False, not {_shown(value)}{hint}")


class _Rule(NamedTuple):
    check: Callable[[str, object], None]
    """Raises TypeError / ValueError naming the option for a bad value."""
    parse: Callable[[str], object]
    """Reads a `DEFERRABLE_*` variable's text; a ValueError when malformed."""
    expected: str
    """What `parse` expects, for its error message."""


_COUNT = _Rule(_count, int, "an int")
_FLAG = _Rule(_flag, _boolean, "one of 1/true/yes/on or 0/false/no/off")


def _choice(*allowed: str) -> _Rule:
    """The rule of a str option taking one of `allowed` (its Literal type's values); the
    environment's text is read stripped, in any case."""
    *first, last = (repr(word) for word in allowed)
    expected = f"{', '.join(first)} or {last}"

    def check(name: str, value: object) -> None:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be {expected}, not {_shown(value)}")
        if value not in allowed:
            raise ValueError(f"{name} must be {expected}, not {reprlib.repr(value)}")

    def parse(raw: str) -> str:
        word = raw.strip().lower()
        if word not in allowed:
            raise ValueError(raw)
        return word

    return _Rule(check, parse, expected)


_RULES: dict[str, _Rule] = {
    "max_batch_size": _COUNT,
    "max_batch_bytes": _COUNT,
    "max_wait": _Rule(_seconds(positive=False), float, "a number of seconds"),
    "poll_interval": _Rule(_positive_seconds, float, "a number of seconds"),
    "max_poll_interval": _Rule(_positive_seconds, float, "a number of seconds"),
    "deadline": _Rule(_deadline, _seconds_or_timestamp,
                      "a number of seconds or an ISO 8601 timestamp with an offset "
                      "(2026-12-03T06:00:00+00:00)"),
    "rescue_margin": _Rule(_seconds(positive=False), float, "a number of seconds"),
    "on_deadline": _choice("live", "raise"),
    "max_retries": _Rule(_retries, int, "an int"),
    "lane": _choice("batch", "flex", "auto"),
    "store": _Rule(_store, str, "a path"),
    "journal": _FLAG,
    "reuse_for": _Rule(_seconds(positive=False, finite=False), float, "a number of seconds"),
    "dedupe": _FLAG,
    "delete_files": _FLAG,
    "defer_streams": _FLAG,
    "strict": _FLAG,
    "progress": _FLAG,
    "freeze_gc": _FLAG,
}
"""How each option is checked (in `Options.__post_init__`) and read from the environment."""

if set(_RULES) != _NAMES:  # a new option needs a rule
    raise RuntimeError(f"options without a rule: {sorted(_NAMES ^ set(_RULES))}")


_lock = threading.Lock()
_defaults: Options | None = None


def defaults() -> Options:
    """The process-wide defaults: built-in values, then `DEFERRABLE_*`, then `configure()`."""
    global _defaults
    if _defaults is None:
        with _lock:
            if _defaults is None:
                _defaults = Options().replace(**_from_environment(os.environ))
    return _defaults


def configure(**options: Any) -> Options:
    """Change the process-wide defaults (e.g. ``configure(max_wait=5)``); returns them."""
    global _defaults
    current = defaults()
    with _lock:
        _defaults = current.replace(**options)
        return _defaults


def reset_defaults() -> None:
    """Forget `configure()` calls and re-read the environment on next use (for tests)."""
    global _defaults
    with _lock:
        _defaults = None


def _from_environment(environ: Any) -> dict[str, Any]:
    """The options set by `DEFERRABLE_*` variables (unset or empty ones are skipped);
    a malformed or out-of-range value is a ValueError naming the variable, e.g.
    ``DEFERRABLE_MAX_WAIT=-1: max_wait must be at least 0, not -1.0``."""
    values: dict[str, Any] = {}
    for name, rule in _RULES.items():
        variable = f"DEFERRABLE_{name.upper()}"
        raw = environ.get(variable)
        if raw is None or raw == "":
            continue
        try:
            value = rule.parse(raw)
        except ValueError:
            raise ValueError(f"{variable}={raw}: {name} must be {rule.expected}, "
                             f"not {raw!r}") from None
        try:
            rule.check(name, value)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{variable}={raw}: {error}") from None
        values[name] = value
    return values
