"""The progress display on a terminal while batches run: one bar per batch with its
provider, id, requests done out of total (the provider's counts), elapsed time, an
estimate, and the money its results saved so far. Drawn with rich on standard error, only
when it is a terminal and the batch's `progress` option holds.

The engine calls `Board` from its thread; rich's `Progress` is thread-safe and redraws
itself from a thread of its own. The display starts with the first batch shown and stops
when the last one ends, so that a script's own output is not held behind it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Hashable
from typing import Any


def wanted(enabled: bool) -> bool:
    """Whether to draw: the option holds and standard error is a terminal."""
    try:
        return enabled and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed
        return False


class Board:
    """The bars of the batches being followed (nothing is drawn until one is shown)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._progress: Any = None
        self._tasks: dict[Hashable, Any] = {}

    def show(self, key: Hashable, provider: str, batch_id: str, total: int) -> None:
        """Add a bar for a batch of `total` requests (starting the display if needed)."""
        with self._lock:
            if key in self._tasks:
                return
            if self._progress is None:
                self._progress = _new_progress()
                self._progress.start()
            self._tasks[key] = self._progress.add_task(
                "", total=total or None, provider=provider, batch=batch_id, saved=0.0)

    def update(self, key: Hashable, *, done: int | None = None, total: int | None = None,
               saved: float | None = None) -> None:
        """Move a batch's bar: requests done, its total, money saved so far (USD)."""
        with self._lock:
            task = self._tasks.get(key)
            if task is None or self._progress is None:
                return
            fields: dict[str, Any] = {}
            if saved is not None:
                fields["saved"] = saved
            self._progress.update(task, completed=done, total=total or None, **fields)

    def end(self, key: Hashable) -> None:
        """Replace a batch's bar by a line saying how it ended; the display stops with the
        last one."""
        with self._lock:
            task = self._tasks.pop(key, None)
            if task is None or self._progress is None:
                return
            state = next(t for t in self._progress.tasks if t.id == task)
            fields = state.fields
            total = int(state.total) if state.total is not None else "?"
            self._progress.console.print(
                f"{fields['provider']} batch {fields['batch']}: {int(state.completed)}/{total} "
                f"requests done in {int(state.elapsed or 0)}s, saved ${fields['saved']:.4f}",
                highlight=False)
            self._progress.remove_task(task)
            if not self._tasks:
                self._progress.stop()
                self._progress = None


def _new_progress() -> Any:
    """A rich `Progress` on standard error with the board's columns (rich is imported
    only when something is drawn)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.fields[provider]} batch {task.fields[batch]}"), BarColumn(),
        MofNCompleteColumn(), TextColumn("requests"), TimeElapsedColumn(),
        TextColumn("left"), TimeRemainingColumn(),
        TextColumn("saved ${task.fields[saved]:.4f}"),
        console=Console(stderr=True), refresh_per_second=2, transient=False)
