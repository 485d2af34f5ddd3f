"""A diskcache `Disk` that holds text only, in the database, and touches no file outside
the journal.

- A row that is not text (a pickle above all) is refused when read, never loaded, so a
  tampered journal cannot run code (CVE-2025-69872).
- Values are written into the database, never into files of their own.
- A row naming a file (an older journal's large value, or a tampered row) is honoured
  only when the name is one diskcache makes (``ab/cd/<28 hex>.val``) and resolves to that
  very file inside the journal directory: no ``..``, no absolute path, no symbolic link
  on the way. Any other name is left alone, with a warning, whatever diskcache asks of it
  (reading it, or deleting it and its empty parent directories when the row is deleted,
  replaced, expired or culled).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from typing import Any

import diskcache
from diskcache.core import MODE_RAW, MODE_TEXT, UNKNOWN

from .._errors import JournalCorruptError

log = logging.getLogger("deferrable")
_VALUE_FILE = re.compile(r"[0-9a-f]{2}[\\/][0-9a-f]{2}[\\/][0-9a-f]{28}\.val")
"""The names diskcache gives the files of large values (`diskcache.Disk.filename`)."""


class TextOnlyDisk(diskcache.Disk):  # type: ignore[misc]
    """Keys and values are `str`; anything else is refused on the way in and out."""

    def __init__(self, directory: str, **settings: Any) -> None:
        super().__init__(directory, **settings)
        self._root = os.path.realpath(directory)

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
        """Store a text value in the database row itself."""
        if read or type(value) is not str:
            raise TypeError(f"journal values are text, not {type(value).__name__}")
        return 0, MODE_RAW, None, value

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        """A value read back: inline text, or a text file of the journal's own."""
        if mode == MODE_RAW and type(value) is str:
            return value
        if mode == MODE_TEXT and not read:
            path = self.own_file(filename, "read")
            if path is None:
                raise JournalCorruptError(
                    f"the journal holds a row naming the file {filename!r}, which is not "
                    "one of its own; it is refused unread")
            with open(path, encoding="UTF-8") as reader:
                return reader.read()
        raise JournalCorruptError(
            f"the journal holds a value that is not text (storage mode {mode}); it is "
            "refused unread, since diskcache would unpickle it")

    def filename(self, key: Any = UNKNOWN, value: Any = UNKNOWN) -> tuple[str, str]:
        """A new value file's name, refused if it would land outside the journal (a
        directory of it replaced by a link)."""
        filename, _ = super().filename(key, value)
        path = self.own_file(filename, "write")
        if path is None:
            raise JournalCorruptError(f"the journal's file {filename!r} would be written "
                                      "outside it")
        return filename, path

    def remove(self, file_path: Any) -> None:
        """Delete a value file of the journal's own and its parent directories left empty
        (never the journal directory itself); any other name is left alone."""
        path = self.own_file(file_path, "delete")
        if path is None:
            return
        with contextlib.suppress(OSError):  # another process deleted it first
            os.remove(path)
        for directory in (os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
            try:
                os.rmdir(directory)
            except OSError:  # not empty, or already gone
                break

    def own_file(self, filename: Any, action: str) -> str | None:
        """The full path of `filename` when it names a value file inside the journal
        (diskcache's form, no link on the way); else None, with a warning naming it and
        the `action` not done."""
        if isinstance(filename, str) and _VALUE_FILE.fullmatch(filename):
            expected = os.path.join(self._root, *re.split(r"[\\/]", filename))
            if os.path.realpath(expected) == expected:
                return expected
        log.warning("the journal at %s holds a row naming the file %r, which is not one of "
                    "its own: it is not %s", self._root, filename,
                    {"read": "read", "write": "written", "delete": "deleted"}.get(action, action))
        return None
