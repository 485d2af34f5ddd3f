"""What happens to deferred calls when the interpreter exits (a script's end, Ctrl-C).

Calls still buffered are submitted and journalled, never silently dropped; then one line
per batch that still holds calls of this run says how to collect it (a rerun, which pays
for nothing twice) or cancel it, or that its calls are lost without a journal.
"""

from __future__ import annotations

import concurrent.futures.thread
import logging
import threading

from . import _greenlets
from .engine import engine

log = logging.getLogger("deferrable")
GRACE = 10.0
"""Seconds exit waits for the driver, for batches being created and for results being
delivered."""


def close_out() -> None:
    """Submit what is buffered and say what is left behind (run at interpreter exit)."""
    _greenlets.settle_starts(GRACE)
    for line in engine().close_out(GRACE):
        log.warning(line)


# Run at exit while the engine's threads still run, and before `concurrent.futures` stops
# its executors: these hooks run in reverse order, and importing `concurrent.futures.thread`
# (above) has registered its hook already.
assert concurrent.futures.thread  # imported for that registration
threading._register_atexit(close_out)  # type: ignore[attr-defined]
