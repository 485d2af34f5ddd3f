"""What provider adapters share: the `Deferral` they hand the patches for a call a batch
can serve, the cache of their targets, the fingerprint that names credentials, and the
JSON helpers of request identity and result streams."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from ..engine import Target
from ..ledger import Tokens

T = TypeVar("T")


@dataclass(frozen=True)
class Deferral:
    """A call the batch API can serve: where it goes, its batch body, its size in bytes,
    and its units (the provider's own per-call count, see `Target.max_units`)."""

    target: Target
    params: Any
    size: int
    units: int = 1


class TargetCache(Generic[T]):
    """One target per client identity, made on first use (thread-safe)."""

    def __init__(self) -> None:
        self._targets: dict[Hashable, T] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        """The target for `key`, made with `make()` if there is none yet."""
        target = self._targets.get(key)
        if target is None:
            with self._lock:
                target = self._targets.get(key)
                if target is None:
                    target = self._targets[key] = make()
        return target

    def __iter__(self) -> Iterator[Hashable]:
        """The identities cached so far (which never hold a secret, only fingerprints)."""
        return iter(list(self._targets))


def fingerprint(*secrets: object) -> str:
    """Identifies credentials without keeping them (a truncated SHA-256)."""
    return hashlib.sha256("\0".join(str(s or "") for s in secrets).encode()).hexdigest()[:16]


def canonical_json(value: object) -> str:
    """`value` as canonical JSON (sorted keys, no spaces); values JSON has no form for
    are written as their text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def destination(provider: str, *, base_url: str, **fields: object) -> str:
    """A target's destination as stable JSON text (the base URL without any user info;
    `fields` must hold no secret)."""
    parts = urllib.parse.urlsplit(base_url)
    public = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return canonical_json({"provider": provider, "base_url": public, **fields})


class _LineStream(Protocol):
    def iter_lines(self) -> Iterator[str]: ...
    def close(self) -> None: ...


def lines_of(response: _LineStream) -> Iterator[dict[str, Any]]:
    """The JSON objects of a streamed JSONL response, which is closed when done (or when
    the iteration is abandoned)."""
    try:
        for text in response.iter_lines():
            if text.strip():
                yield json.loads(text)
    finally:
        response.close()


def spend_of(value: object, tokens_of: Callable[[Any], Tokens]) -> tuple[str, Tokens] | None:
    """The model and tokens (read by `tokens_of` from its usage) of an SDK response
    object; None for one without usage."""
    usage = getattr(value, "usage", None)
    model = getattr(value, "model", None)
    if usage is None or not isinstance(model, str):
        return None
    return model, tokens_of(usage)
