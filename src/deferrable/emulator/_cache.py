"""Prompt caching: the first request with a cacheable prefix writes it, repeats read it."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class CacheUse:
    """Tokens of one request written to and read from the prompt cache."""

    write: int = 0
    read: int = 0
    ttl: str = "5m"


NO_CACHE = CacheUse()


class PromptCache:
    """Cached prefixes by key, each alive until its TTL passes without a read."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._expiry: dict[str, float] = {}

    def use(self, key: str, tokens: int, ttl_seconds: float, now: float, ttl: str) -> CacheUse:
        """Read the prefix `key` if cached (refreshing it), else write it."""
        with self._lock:
            alive = self._expiry.get(key, 0.0) > now
            self._expiry[key] = now + ttl_seconds
        return CacheUse(read=tokens, ttl=ttl) if alive else CacheUse(write=tokens, ttl=ttl)

    def clear(self) -> None:
        """Forget every cached prefix."""
        with self._lock:
            self._expiry.clear()
