"""Which process owns a journal record, and whether it still runs: a token of its pid and
start time, so that a pid reused by a later process is not mistaken for the owner."""

from __future__ import annotations

import functools
import os
import time


@functools.cache
def process_token() -> str:
    """This process's token: ``"<pid>:<start>"``."""
    return f"{os.getpid()}:{_start_time(os.getpid()) or int(time.time() * 1000)}"


os.register_at_fork(after_in_child=process_token.cache_clear)


def is_alive(token: str) -> bool:
    """Whether the process named by `token` still runs (on this machine)."""
    if token == process_token():
        return True
    pid_text, _, start = token.partition(":")
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    known = _start_time(pid)
    return known is None or str(known) == start


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), else None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19]) if len(fields) > 19 else None
