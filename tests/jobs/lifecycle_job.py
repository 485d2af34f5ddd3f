"""Small scripts for the process lifecycle tests: a script that ends (or is interrupted)
while its calls wait, and one that forks after the engine started.

Run: ``python -m tests.jobs.lifecycle_job MODE BASE_URL`` with MODE ``leave`` (make three
calls and end without waiting), ``collect`` (the same calls, waiting for them),
``interrupt`` (the same calls, waiting until SIGINT) or ``fork``; the journal is wherever
DEFERRABLE_STORE points. Prints one JSON line per event.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import sys
from typing import Any

import anthropic

import deferrable

DUMMY_KEY = "test-key-not-a-secret"
REVIEWS = ["great", "awful", "fine"]


def emit(event: str, **fields: Any) -> None:
    """One event on stdout, as one write: forked children share the pipe, and two
    `print`s could interleave their text and newlines."""
    sys.stdout.flush()
    os.write(sys.stdout.fileno(), (json.dumps({"event": event, **fields}) + "\n").encode())


def ask(url: str, review: str) -> str:
    """The sentiment of `review`, through a client of its own."""
    with anthropic.Anthropic(api_key=DUMMY_KEY, base_url=url) as client:
        block = client.messages.create(
            model="claude-haiku-4-5", max_tokens=16,
            messages=[{"role": "user", "content": f"Sentiment: {review}"}]).content[0]
    assert block.type == "text"
    emit("answered", review=review)
    return block.text


async def ask_async(url: str, review: str) -> str:
    """`ask` through the async client."""
    async with anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=url) as client:
        message = await client.messages.create(
            model="claude-haiku-4-5", max_tokens=16,
            messages=[{"role": "user", "content": f"Sentiment: {review}"}])
    block = message.content[0]
    assert block.type == "text"
    return block.text


def in_child(url: str, review: str) -> list[str]:
    """In a forked child: one sync and one async deferred call."""
    sync = deferrable.deferrable(ask)(url, review).result(timeout=60)
    async_ = asyncio.run(deferrable.deferrable(ask_async)(url, review))
    return [sync, async_]


def main() -> None:
    """Run MODE against BASE_URL."""
    mode, url = sys.argv[1], sys.argv[2]
    deferrable.configure(max_wait=3600 if mode != "fork" else 0.05, poll_interval=0.05,
                         max_poll_interval=0.2)
    if mode == "fork":
        first = deferrable.deferrable(ask)(url, "great").result(timeout=60)
        with multiprocessing.get_context("fork").Pool(2) as pool:
            children = pool.starmap_async(in_child, [(url, "awful"), (url, "fine")]).get(60)
        emit("fork", answers=[first, *children])
        return
    futures = [deferrable.deferrable(ask)(url, review) for review in REVIEWS]
    emit("made")
    if mode == "collect":
        deferrable.flush()
        emit("collected", answers=[future.result(timeout=60) for future in futures])
    elif mode == "interrupt":
        futures[0].result()  # until SIGINT


if __name__ == "__main__":
    main()
