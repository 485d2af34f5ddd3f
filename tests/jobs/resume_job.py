"""A nightly-style job for the crash-resume tests: N calls in phases under @deferrable,
printing one JSON event per line (``queued``, ``answer``, ``done``) as it goes.

Run: ``python -m tests.jobs.resume_job --base-url URL --count N [--phases K]
[--provider anthropic|openai] [--sync] [--max-wait S]``; the journal is wherever
DEFERRABLE_STORE points.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from typing import Any

import anthropic
import openai

import deferrable

DUMMY_KEY = "test-key-not-a-secret"
ANTHROPIC_MODEL = "claude-haiku-4-5"
OPENAI_MODEL = "gpt-4o-mini"


def prompt(index: int) -> str:
    """The text of call `index` (the emulator's answer quotes its opening)."""
    return f"Summarise item {index} of the crash-resume job"


def emit(event: str, **fields: Any) -> None:
    """One event on stdout, flushed at once (the test reads it while the job runs)."""
    print(json.dumps({"event": event, "at": time.time(), **fields}), flush=True)


def main() -> None:
    """Run the job as the arguments say."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--phases", type=int, default=1)
    parser.add_argument("--provider", choices=("anthropic", "openai"), default="anthropic")
    parser.add_argument("--sync", action="store_true")
    parser.add_argument("--max-wait", type=float, default=0.2)
    args = parser.parse_args()
    deferrable.configure(max_wait=args.max_wait, poll_interval=0.1, max_poll_interval=0.3)
    per_phase = args.count // args.phases
    phases = [range(p * per_phase, (p + 1) * per_phase) for p in range(args.phases)]
    if args.sync:
        run_sync(args, phases)
    else:
        asyncio.run(run_async(args, phases))
    emit("done")


async def run_async(args: argparse.Namespace, phases: list[range]) -> None:
    """Each phase: gather its calls (async clients), printing answers in order."""
    if args.provider == "anthropic":
        claude = anthropic.AsyncAnthropic(api_key=DUMMY_KEY, base_url=args.base_url)

        async def ask(index: int) -> str:
            message = await claude.messages.create(
                model=ANTHROPIC_MODEL, max_tokens=64,
                messages=[{"role": "user", "content": prompt(index)}])
            block = message.content[0]
            return block.text if block.type == "text" else ""
    else:
        gpt = openai.AsyncOpenAI(api_key=DUMMY_KEY, base_url=f"{args.base_url}/v1")

        async def ask(index: int) -> str:
            completion = await gpt.chat.completions.create(
                model=OPENAI_MODEL, max_completion_tokens=64,
                messages=[{"role": "user", "content": prompt(index)}])
            return completion.choices[0].message.content or ""

    deferred_ask = deferrable.deferrable(ask)
    for number, indices in enumerate(phases):
        tasks = [asyncio.ensure_future(deferred_ask(index)) for index in indices]
        await asyncio.sleep(0.3)  # every task has reached its call
        emit("queued", phase=number)
        for index, task in zip(indices, tasks, strict=True):
            emit("answer", index=index, text=await task)


def run_sync(args: argparse.Namespace, phases: list[range]) -> None:
    """Each phase: start its calls (sync clients, `Deferred` results), printing answers."""
    ask: Callable[[int], str]
    if args.provider == "anthropic":
        claude = anthropic.Anthropic(api_key=DUMMY_KEY, base_url=args.base_url)

        def ask(index: int) -> str:
            message = claude.messages.create(
                model=ANTHROPIC_MODEL, max_tokens=64,
                messages=[{"role": "user", "content": prompt(index)}])
            block = message.content[0]
            return block.text if block.type == "text" else ""
    else:
        gpt = openai.OpenAI(api_key=DUMMY_KEY, base_url=f"{args.base_url}/v1")

        def ask(index: int) -> str:
            completion = gpt.chat.completions.create(
                model=OPENAI_MODEL, max_completion_tokens=64,
                messages=[{"role": "user", "content": prompt(index)}])
            return completion.choices[0].message.content or ""

    deferred_ask: Any = deferrable.deferrable(ask)
    for number, indices in enumerate(phases):
        pending = [deferred_ask(index) for index in indices]
        emit("queued", phase=number)
        for index, result in zip(indices, pending, strict=True):
            emit("answer", index=index, text=result.result())


if __name__ == "__main__":
    sys.exit(main())
