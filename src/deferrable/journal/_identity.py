"""Request identity: a digest of what is sent (and where), numbered by occurrence within
the run, so that n identical calls are n requests while a rerun maps the k-th occurrence
to the k-th record."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter

DIGEST_CHARS = 40
"""Hex digits of SHA-256 kept: 160 bits. With ``-<occurrence>`` a custom id stays within
Anthropic's 64 characters of ``[A-Za-z0-9_-]``."""


def request_digest(destination: str, canonical_body: str) -> str:
    """The digest of one request: its destination (provider, endpoint, client identity)
    and its canonical JSON body."""
    hasher = hashlib.sha256(destination.encode())
    hasher.update(b"\0")
    hasher.update(canonical_body.encode())
    return hasher.hexdigest()[:DIGEST_CHARS]


class Occurrences:
    """Numbers each digest's occurrences in this process (thread-safe)."""

    def __init__(self) -> None:
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def custom_id(self, digest: str, *, dedupe: bool) -> str:
        """The custom id of the next occurrence of `digest` (always the first with `dedupe`)."""
        if dedupe:
            return f"{digest}-0"
        with self._lock:
            number = self._seen[digest]
            self._seen[digest] = number + 1
        return f"{digest}-{number}"
