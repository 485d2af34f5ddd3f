"""The journal's directory, made and checked as ssh checks ``~/.ssh``: a directory another
user owns, or may write, or reaches through a symbolic link another user owns, is refused
(whoever controls it could plant rows for this user's journal, or swap it underneath).
Directories deferrable makes are 0700 and its files 0600."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .._errors import JournalError

DATABASE = "cache.db"
"""The file diskcache keeps its rows in."""
MAX_LINKS = 40
"""Symbolic links followed while resolving the store's path (the kernel's own limit)."""


def secure_store(path: Path) -> Path:
    """The store at `path`, made (0700, with any missing parent) if absent and checked:
    every symbolic link on the way is owned by this user or root, and the directory is
    this user's own and not writable by anyone else. A directory only readable by others
    is made private; its database file too. Returns the resolved directory."""
    path = path.absolute()
    directory = _resolve(path)
    _make(directory)
    directory = _resolve(path)  # a link may have appeared while the directory was made
    _check_directory(path, directory)
    _private_database(directory / DATABASE)
    return directory


def _resolve(path: Path) -> Path:
    """`path` with every symbolic link replaced by its target, each link checked to be
    this user's or root's (a path whose end does not exist yet ends unresolved)."""
    pending = list(reversed(path.parts[1:]))
    current = Path(path.anchor)
    links = 0
    while pending:
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            current = current.parent
            continue
        candidate = current / part
        try:
            info = candidate.lstat()
        except FileNotFoundError:
            return current.joinpath(part, *reversed(pending))
        except OSError as error:
            raise JournalError(f"cannot use {path} as the journal: {error}") from None
        if not stat.S_ISLNK(info.st_mode):
            current = candidate
            continue
        if info.st_uid not in (0, os.geteuid()):
            raise JournalError(
                f"cannot use {path} as the journal: it is reached through the symbolic link "
                f"{candidate}, owned by another user (uid {info.st_uid}), who could point it "
                "elsewhere")
        links += 1
        if links > MAX_LINKS:
            raise JournalError(f"cannot use {path} as the journal: too many symbolic links")
        target = Path(os.readlink(candidate))
        if target.is_absolute():
            current = Path(target.anchor)
            pending.extend(reversed(target.parts[1:]))
        else:
            pending.extend(reversed(target.parts))
    return current


def _make(directory: Path) -> None:
    """Make `directory` and its missing parents, each 0700."""
    missing: list[Path] = []
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        try:
            os.mkdir(candidate, 0o700)
        except FileExistsError:
            pass
        except OSError as error:
            raise JournalError(f"cannot make the journal's directory {candidate}: {error}") from None


def _check_directory(path: Path, directory: Path) -> None:
    try:
        info = directory.lstat()
    except OSError as error:
        raise JournalError(f"cannot use {path} as the journal: {error}") from None
    where = path if directory == path else f"{path} (that is, {directory})"
    if not stat.S_ISDIR(info.st_mode):
        raise JournalError(f"cannot use {where} as the journal: it is not a directory")
    if info.st_uid != os.geteuid():
        raise JournalError(
            f"cannot use {where} as the journal: it is owned by another user (uid "
            f"{info.st_uid}); a journal must be your own")
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        raise JournalError(
            f"cannot use {where} as the journal: it is writable by its group or by others "
            f"(mode {mode:04o}), who could plant rows in it; make it private "
            f"(chmod 700 {directory}) or choose another store")
    if mode & 0o077:
        try:
            os.chmod(directory, 0o700)
        except OSError as error:
            raise JournalError(f"cannot make the journal {where} private: {error}") from None


def _private_database(database: Path) -> None:
    """Make the database file 0600 before SQLite opens it (its ``-wal`` and ``-shm`` files
    take the database's mode): created empty when absent, which SQLite takes as new. Those
    two, when an earlier run left them, are made private too."""
    _private_file(database, create=True)
    for suffix in ("-wal", "-shm"):
        _private_file(database.with_name(database.name + suffix), create=False)


def _private_file(path: Path, *, create: bool) -> None:
    """Check that `path` is a plain file of this user's (not a link) and make it 0600;
    created empty with `create`, else skipped when absent."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | (os.O_CREAT if create else 0)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileNotFoundError:
        if create:
            raise JournalError(f"cannot make the journal's database {path}") from None
        return
    except OSError as error:
        reason = "it is a symbolic link" if error.errno == errno.ELOOP else str(error)
        raise JournalError(f"cannot use the journal's file {path}: {reason}") from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise JournalError(f"cannot use the journal's file {path}: it is not a plain file")
        if info.st_uid != os.geteuid():
            raise JournalError(f"cannot use the journal's file {path}: it is owned by "
                               f"another user (uid {info.st_uid})")
        if stat.S_IMODE(info.st_mode) & 0o077:
            os.fchmod(descriptor, 0o600)
    except OSError as error:
        raise JournalError(f"cannot make the journal's file {path} private: {error}") from None
    finally:
        os.close(descriptor)
