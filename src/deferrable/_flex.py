"""The flex lane: a deferred OpenAI call sent live with ``service_tier="flex"`` (batch prices,
usually an answer within minutes), tried again while flex has no capacity, and given up
for a batch after `ATTEMPTS` tries or when the model offers no flex.

The sends run as rescues do (`_rescue`): off the driver thread for sync `@deferrable`
bodies, at most `_rescue.CONCURRENCY` at a time.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx2

from . import _rescue
from .engine._retry import retry_after

log = logging.getLogger("deferrable")
R = TypeVar("R")
ATTEMPTS = 4
"""Flex sends per call before it goes to a batch instead."""
_MAX_DELAY = 30.0


def send_sync(adapter: Any, request: httpx2.Request, send_as: Callable[[httpx2.Request], R],
              response_of: Callable[[R], httpx2.Response]) -> R | None:
    """What the SDK's send returned for `request` sent flex, or None when it goes to a
    batch instead (the adapter has no flex request for it, or flex stayed busy)."""
    flex = adapter.flex_request(request)
    if flex is None:
        return None

    def attempts() -> R | None:
        for attempt in range(ATTEMPTS):
            sent = send_as(flex)
            response = response_of(sent)
            if response.status_code == 400:
                response.read()
            verdict = adapter.flex_verdict(response)
            if verdict == "served":
                return sent
            response.close()
            if verdict == "unsupported" or attempt == ATTEMPTS - 1:
                break
            time.sleep(_delay(attempt, response))
        _falls_back(flex)
        return None

    return _rescue.run_sync(attempts)


async def send_async(adapter: Any, request: httpx2.Request,
                     send_as: Callable[[httpx2.Request], Awaitable[R]],
                     response_of: Callable[[R], httpx2.Response]) -> R | None:
    """`send_sync` for async code."""
    flex = adapter.flex_request(request)
    if flex is None:
        return None

    async def attempts() -> R | None:
        for attempt in range(ATTEMPTS):
            sent = await send_as(flex)
            response = response_of(sent)
            if response.status_code == 400:
                await response.aread()
            verdict = adapter.flex_verdict(response)
            if verdict == "served":
                return sent
            await response.aclose()
            if verdict == "unsupported" or attempt == ATTEMPTS - 1:
                break
            await asyncio.sleep(_delay(attempt, response))
        _falls_back(flex)
        return None

    return await _rescue.run_async(attempts)


def _delay(attempt: int, response: httpx2.Response) -> float:
    """Seconds before the next flex try: the server's delay, else a jittered doubling."""
    named = retry_after(response.headers)
    if named is not None:
        return named
    return min(_MAX_DELAY, 0.5 * 2.0 ** attempt) * random.uniform(0.8, 1.2)


def _falls_back(request: httpx2.Request) -> None:
    log.info("deferrable: flex processing could not take a call to %s (no capacity, or not "
             "offered for its model); it goes in a batch", request.url.path)
