"""`deferrable demo`: the same sentiment job run live and through the Message Batches API,
on the embedded emulator, with no API key.

Until the shim lands, the batch side is the classic hand-written pipeline (build requests,
create, poll, stream results) that `@deferrable` will make unnecessary.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import anthropic
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from anthropic.types.messages.batch_create_params import Request

from .cost import PRICES_AS_OF, Usage, cost_usd
from .emulator import Emulator

MODEL = "claude-haiku-4-5"
DEMO_KEY = "demo-key-for-the-local-emulator"
_OPENINGS = ("The room was", "Delivery was", "Support staff were", "The battery life is",
             "This blender is", "The hotel breakfast was", "Checkout felt", "The manual is")
_VERDICTS = ("great and I love it", "terrible, I want a refund", "fine, nothing special",
             "excellent, would recommend", "slow and disappointing", "okay for the price",
             "amazing, best purchase this year", "broken on arrival, awful")


@dataclass
class Run:
    """One way of doing the job: its answers, tokens, HTTP requests and wall time."""

    labels: dict[str, str]
    usage: Usage
    requests: Mapping[str, int]
    seconds: float


def reviews(count: int) -> dict[str, str]:
    """`count` deterministic product reviews keyed by a custom_id."""
    return {f"review-{i}": f"{_OPENINGS[i % len(_OPENINGS)]} "
                           f"{_VERDICTS[(i // len(_OPENINGS) + i) % len(_VERDICTS)]}. (#{i})"
            for i in range(count)}


def params(review: str) -> MessageCreateParamsNonStreaming:
    """The request each review becomes, identical both ways."""
    return {"model": MODEL, "max_tokens": 5, "system": "Answer with one word.",
            "messages": [{"role": "user", "content": f"Sentiment of this review: {review}"}]}


def run_demo(*, requests: int = 2000, batch_latency: float = 1.0, out: TextIO | None = None) -> int:
    """Run the job both ways and print what each cost; returns the process exit status."""
    stream = out or sys.stdout
    work = reviews(requests)
    say = _printer(stream)
    say(f"deferrable demo: {requests:,} sentiment calls on {MODEL}, "
        f"on the embedded emulator (batch latency {batch_latency:g} s)\n")
    with Emulator(batch_latency=batch_latency) as emu:
        say("1/2  live: one POST /v1/messages per call ...")
        live = asyncio.run(_live(emu, work))
        say(f"     done in {live.seconds:.1f} s\n")
        say("2/2  batch: build requests, create, poll, stream results ...")
        batch = _batch(emu, work, say, stream.isatty())
        say(f"     done in {batch.seconds:.1f} s\n")
    _report(say, work, live, batch)
    return 0 if live.labels == batch.labels and len(batch.labels) == requests else 1


async def _live(emu: Emulator, work: dict[str, str]) -> Run:
    before = emu.stats()["requests"]
    started = time.perf_counter()
    gate = asyncio.Semaphore(32)
    labels: dict[str, str] = {}
    usage = Usage()
    async with anthropic.AsyncAnthropic(api_key=DEMO_KEY, base_url=emu.url) as client:

        async def one(custom_id: str, review: str) -> None:
            nonlocal usage
            async with gate:
                message = await client.messages.create(**params(review))
            labels[custom_id] = _text(message)
            usage += _usage(message.usage)

        await asyncio.gather(*(one(cid, review) for cid, review in work.items()))
    return Run(labels, usage, _delta(before, emu.stats()["requests"]),
               time.perf_counter() - started)


def _batch(emu: Emulator, work: dict[str, str], say: Any, tty: bool) -> Run:
    before = emu.stats()["requests"]
    started = time.perf_counter()
    labels: dict[str, str] = {}
    usage = Usage()
    with anthropic.Anthropic(api_key=DEMO_KEY, base_url=emu.url) as client:
        requests: list[Request] = [{"custom_id": cid, "params": params(review)}
                                   for cid, review in work.items()]
        batch = client.messages.batches.create(requests=requests)
        while batch.processing_status != "ended":
            waited = time.perf_counter() - started
            if tty:
                say(f"\r     waiting: {waited:5.1f} s, {batch.request_counts.processing:,} "
                    f"requests processing", end="")
            time.sleep(0.2)
            batch = client.messages.batches.retrieve(batch.id)
        if tty:
            say("")
        for item in client.messages.batches.results(batch.id):
            if item.result.type == "succeeded":
                labels[item.custom_id] = _text(item.result.message)
                usage += _usage(item.result.message.usage)
    return Run(labels, usage, _delta(before, emu.stats()["requests"]),
               time.perf_counter() - started)


def _report(say: Any, work: dict[str, str], live: Run, batch: Run) -> None:
    say("A sample of the answers (batch):")
    for custom_id in list(work)[:5]:
        say(f"  {batch.labels.get(custom_id, '<missing>'):9} {work[custom_id]}")
    tally = Counter(batch.labels.values())
    say("  labels: " + ", ".join(f"{label} {n:,}" for label, n in tally.most_common()) + "\n")
    live_cost = cost_usd(MODEL, live.usage, batch=False)
    batch_cost = cost_usd(MODEL, batch.usage, batch=True)
    say(f"{'':8}{'HTTP requests':>15}{'input tok':>12}{'output tok':>12}{'cost USD':>11}{'wall s':>9}")
    for name, run, cost in (("live", live, live_cost), ("batch", batch, batch_cost)):
        say(f"{name:8}{sum(run.requests.values()):>15,}{run.usage.input:>12,}"
            f"{run.usage.output:>12,}{cost:>11.4f}{run.seconds:>9.1f}")
    saved = live_cost - batch_cost
    say(f"\nSame answers both ways: {'yes' if live.labels == batch.labels else 'NO'}. "
        f"Batch saved ${saved:.4f} ({saved / live_cost:.0%}) at list prices of {PRICES_AS_OF}.")
    say("HTTP requests by route:")
    for name, run in (("live", live), ("batch", batch)):
        routes = ", ".join(f"{route} x{n:,}" for route, n in sorted(run.requests.items()))
        say(f"  {name:6}{routes}")


def _printer(stream: TextIO) -> Any:
    def say(text: str = "", end: str = "\n") -> None:
        stream.write(text + end)
        stream.flush()

    return say


def _text(message: anthropic.types.Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def _usage(usage: anthropic.types.Usage) -> Usage:
    return Usage(input=usage.input_tokens, output=usage.output_tokens,
                 cache_write=usage.cache_creation_input_tokens or 0,
                 cache_read=usage.cache_read_input_tokens or 0)


def _delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {route: n - before.get(route, 0) for route, n in after.items()
            if n - before.get(route, 0)}
