"""A diskcache `Disk` that holds text only: a row that is not text (a pickle above all)
is refused when read, never loaded, so a tampered journal cannot run code
(CVE-2025-69872)."""

from __future__ import annotations

import os.path
from typing import Any

import diskcache
from diskcache.core import MODE_RAW, MODE_TEXT, UNKNOWN

from .._errors import JournalCorruptError


class TextOnlyDisk(diskcache.Disk):  # type: ignore[misc]
    """Keys and values are `str`; anything else is refused on the way in and out."""

    def put(self, key: Any) -> tuple[Any, bool]:
        """Store a text key as it is."""
        if type(key) is not str:
            raise TypeError(f"journal keys are text, not {type(key).__name__}")
        return super().put(key)  # type: ignore[no-any-return]

    def get(self, key: Any, raw: bool) -> Any:
        """A key read back; a pickled key (``raw`` false) is refused."""
        if not raw or type(key) is not str:
            raise JournalCorruptError("the journal holds a key that is not text")
        return key

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> tuple[int, int, Any, Any]:
        """Store a text value (inline, or in a file when large)."""
        if read or type(value) is not str:
            raise TypeError(f"journal values are text, not {type(value).__name__}")
        return super().store(value, read, key)  # type: ignore[no-any-return]

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        """A value read back: inline text, or a text file inside the journal directory."""
        if mode == MODE_RAW and type(value) is str:
            return value
        if mode == MODE_TEXT and filename is not None and not read and _inside(filename):
            return super().fetch(mode, filename, value, read)
        raise JournalCorruptError(
            f"the journal holds a value that is not text (storage mode {mode}); it is "
            "refused unread, since diskcache would unpickle it")


def _inside(filename: str) -> bool:
    """Whether `filename` names a file under the journal directory (no escape)."""
    return not os.path.isabs(filename) and ".." not in filename.replace("\\", "/").split("/")
