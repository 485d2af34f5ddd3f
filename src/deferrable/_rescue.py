"""Running calls live when their deadline comes before their batch ends (a rescue), with
bounded concurrency: the SDK sends each as it would have live, retries included.

Async calls run on their own event loop, at most `CONCURRENCY` at a time per loop. Sync
calls made in a `@deferrable` body run in a small pool of threads while the body waits
(the driver thread goes on with the others); sync calls of a plain ``with scope():`` run
on their own thread, at most `CONCURRENCY` at a time in the process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import os
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import TypeVar

from . import _greenlets

R = TypeVar("R")
CONCURRENCY = 32
"""Rescued calls in flight at once (per event loop; in the process for sync calls)."""
RESCUED = "(rescued live at its deadline)"
"""Appended to the ledger site of a call rescued live."""

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_slots = threading.BoundedSemaphore(CONCURRENCY)
_loop_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary())
_lock = threading.Lock()


def run_sync(send: Callable[[], R]) -> R:
    """`send()`, the live attempt of a rescued sync call, within the bound."""
    if not _greenlets.in_task():
        with _slots:
            return send()
    context = contextvars.copy_context()
    return _greenlets.wait(_threads().submit(context.run, send))


async def run_async(send: Callable[[], Awaitable[R]]) -> R:
    """`await send()`, the live attempt of a rescued async call, within the bound."""
    loop = asyncio.get_running_loop()
    slots = _loop_slots.get(loop)
    if slots is None:
        slots = _loop_slots[loop] = asyncio.Semaphore(CONCURRENCY)
    async with slots:
        return await send()


def _threads() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=CONCURRENCY, thread_name_prefix="deferrable-rescue")
        return _pool


def _forget_after_fork() -> None:
    """In a forked child, whose copy of the pool has no threads."""
    global _pool, _slots, _lock
    _pool = None
    _slots = threading.BoundedSemaphore(CONCURRENCY)
    _lock = threading.Lock()
    _loop_slots.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
