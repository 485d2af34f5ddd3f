"""Accounting: every request served, by route, and the tokens billed live, in batches and
with flex processing."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any, Literal

Mode = Literal["live", "batch", "flex"]
MODES: tuple[Mode, ...] = ("live", "batch", "flex")
TOKEN_CLASSES = ("input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens")


class Stats:
    """Thread-safe counters behind `Emulator.stats()` and ``GET /_emulator/stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._billed: dict[str, dict[str, Counter[str]]] = {mode: {} for mode in MODES}
        self._batches: Counter[str] = Counter()

    def count_request(self, route: str) -> None:
        """Count one HTTP request served on `route` (``"METHOD /path-template"``)."""
        with self._lock:
            self._requests[route] += 1

    def count_batch(self, provider: str, requests: int) -> None:
        """Count one batch accepted for processing, of `requests` requests."""
        with self._lock:
            self._batches[f"{provider}_batches"] += 1
            self._batches[f"{provider}_batch_requests"] += requests

    def bill(self, mode: Mode, model: str, *, input_tokens: int, output_tokens: int,
             cache_write_tokens: int = 0, cache_read_tokens: int = 0) -> None:
        """Record the tokens of one billed (successful) request."""
        with self._lock:
            tally = self._billed[mode].setdefault(model, Counter())
            tally["requests"] += 1
            tally["input_tokens"] += input_tokens
            tally["output_tokens"] += output_tokens
            tally["cache_write_tokens"] += cache_write_tokens
            tally["cache_read_tokens"] += cache_read_tokens

    def snapshot(self) -> dict[str, Any]:
        """A JSON-ready copy: ``requests`` by route, ``billed`` by mode (``live``, ``batch``,
        ``flex``) and model, ``billed_total`` by mode, ``batches``."""
        with self._lock:
            billed = {mode: {model: dict(tally) for model, tally in models.items()}
                      for mode, models in self._billed.items()}
            totals = {mode: _total(models) for mode, models in self._billed.items()}
            return {"requests": dict(self._requests), "billed": billed,
                    "billed_total": totals, "batches": dict(self._batches)}

    def reset(self) -> None:
        """Forget everything counted so far."""
        with self._lock:
            self._requests.clear()
            self._billed = {mode: {} for mode in MODES}
            self._batches.clear()


def _total(models: dict[str, Counter[str]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for tally in models.values():
        total.update(tally)
    return {key: total.get(key, 0) for key in ("requests", *TOKEN_CLASSES)}
