"""Small helpers for emulator tests: raw HTTP calls and waiting on batches."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any

ANTHROPIC_HEADERS = {"authorization": "Bearer test-key", "anthropic-version": "2026-10-21",
                     "content-type": "application/json"}


def raw_request(url: str, body: object | None = None, headers: dict[str, str] | None = None,
                method: str = "POST") -> tuple[int, dict[str, str], Any]:
    """(status, headers, parsed JSON body) of one HTTP request, errors included."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read() or b"null")


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll `condition` every 20 ms until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


async def until(condition: Callable[[], Awaitable[bool]], timeout: float = 30.0) -> None:
    """The async twin of `wait_until`."""
    deadline = time.monotonic() + timeout
    while not await condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


def message_request(text: str, **params: Any) -> dict[str, Any]:
    """Params of a small Messages request."""
    return {"model": "claude-haiku-4-5", "max_tokens": 64,
            "messages": [{"role": "user", "content": text}], **params}


def chat_request(text: str, **params: Any) -> dict[str, Any]:
    """Params of a small OpenAI Chat Completions request."""
    return {"model": "gpt-6.2-sol", "messages": [{"role": "user", "content": text}], **params}
