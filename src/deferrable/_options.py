"""Options users tune: process-wide defaults (`configure()`, `DEFERRABLE_*` variables)
overridden per scope (`@deferrable(max_wait=...)`, `scope(...)`)."""

from __future__ import annotations

import dataclasses
import functools
import os
import threading
from dataclasses import dataclass
from typing import Any


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
    deadline: float | None = None
    """Seconds a call may wait for its batch; None waits as long as the provider does (24 h)."""
    store: str | None = None
    """The journal's directory; None is the per-user default
    (``$XDG_STATE_HOME/deferrable/journal``, else ``~/.local/state/deferrable/journal``)."""
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

    def replace(self, **changes: Any) -> Options:
        """A copy with `changes`; unknown names are a TypeError naming them.

        Results are cached: scopes resolve their options on every call they wrap.
        """
        if not changes:
            return self
        try:
            return _replaced(self, tuple(sorted(changes.items())))
        except TypeError as error:
            if "unhashable" not in str(error):
                raise
            return _replace(self, changes)


_NAMES = frozenset(f.name for f in dataclasses.fields(Options))


def _replace(options: Options, changes: dict[str, Any]) -> Options:
    unknown = set(changes) - _NAMES
    if unknown:
        raise TypeError(f"unknown deferrable option(s): {', '.join(sorted(unknown))}")
    return dataclasses.replace(options, **changes)


@functools.lru_cache(maxsize=512)
def _replaced(options: Options, changes: tuple[tuple[str, Any], ...]) -> Options:
    return _replace(options, dict(changes))


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
    values: dict[str, Any] = {}
    for field in dataclasses.fields(Options):
        raw = environ.get(f"DEFERRABLE_{field.name.upper()}")
        if raw is None or raw == "":
            continue
        kind = str(field.type)
        try:
            if kind == "bool":
                values[field.name] = _boolean(raw)
            elif "int" in kind and "float" not in kind:
                values[field.name] = int(raw)
            elif "float" in kind:
                values[field.name] = float(raw)
            else:
                values[field.name] = raw
        except ValueError:
            raise ValueError(f"DEFERRABLE_{field.name.upper()}={raw!r} is not a valid "
                             f"{kind}") from None
    return values


def _boolean(raw: str) -> bool:
    """`1/true/yes/on` or `0/false/no/off`, any case; anything else is a ValueError."""
    word = raw.strip().lower()
    if word in ("1", "true", "yes", "on"):
        return True
    if word in ("0", "false", "no", "off"):
        return False
    raise ValueError(raw)
