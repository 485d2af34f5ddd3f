"""`deferrable demo`: one sentiment job run live, then deferred with `@deferrable`, on the
embedded emulator, with no API key. It prints what each way cost and the HTTP requests
it took, then shows the same decorator on sync code and on OpenAI.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TextIO

import anthropic
import openai

from ._decorator import deferrable
from ._options import configure
from ._patching import observe
from .emulator import Emulator
from .engine import engine
from .journal import close_journals, journal_for
from .ledger import AS_OF, Tokens, anthropic_tokens, build_report, live_ledger, price_of, render_report

MODEL = "claude-haiku-4-5"
OPENAI_MODEL = "gpt-6.2-sol"
DEMO_KEY = "demo-key-for-the-local-emulator"
_OPENINGS = ("The room was", "Delivery was", "Support staff were", "The battery life is",
             "This blender is", "The hotel breakfast was", "Checkout felt", "The manual is")
_VERDICTS = ("great and I love it", "terrible, I want a refund", "fine, nothing special",
             "excellent, would recommend", "slow and disappointing", "okay for the price",
             "amazing, best purchase this year", "broken on arrival, awful")
Say = Callable[..., None]


@dataclass
class Run:
    """One way of doing the job: its answers, tokens, HTTP requests and wall time."""

    labels: list[str]
    usage: Tokens
    requests: Mapping[str, int]
    seconds: float


def reviews(count: int) -> list[str]:
    """`count` deterministic product reviews."""
    return [f"{_OPENINGS[i % len(_OPENINGS)]} "
            f"{_VERDICTS[(i // len(_OPENINGS) + i) % len(_VERDICTS)]}. (#{i})"
            for i in range(count)]


def run_demo(*, requests: int = 2000, batch_latency: float = 1.0, out: TextIO | None = None) -> int:
    """Run the job both ways and print what each cost; returns the process exit status."""
    say = _printer(out)
    work = reviews(requests)
    say(f"deferrable demo: {requests:,} sentiment calls on {MODEL}, on the embedded emulator "
        f"(batch latency {batch_latency:g} s)\n")
    # The demo's journal is its own, gone at the end: a user's journal keeps real work.
    with tempfile.TemporaryDirectory(prefix="deferrable-demo-") as store, \
            Emulator(batch_latency=batch_latency) as emu:
        configure(store=store)
        observe()  # the live phase is recorded too, as the report's candidates
        client = anthropic.AsyncAnthropic(api_key=DEMO_KEY, base_url=emu.url)

        async def sentiment(review: str) -> anthropic.types.Message:
            return await client.messages.create(
                model=MODEL, max_tokens=5, system="Answer with one word.",
                messages=[{"role": "user", "content": f"Sentiment of this review: {review}"}])

        say("1/4  live: the plain async function, one POST /v1/messages per call")
        live = asyncio.run(_measure(emu, sentiment, work, say, bounded=True))
        say("2/4  deferred: the same function under @deferrable")
        deferred = asyncio.run(_measure(emu, deferrable(max_wait=0.5)(sentiment), work, say))
        _report(say, work, live, deferred)
        say("\n3/4  sync code: @deferrable on a plain def returns Deferred futures at once")
        sync_ok = _sync_example(emu, work[:200], say)
        say("\n4/4  OpenAI: the same decorator on chat.completions (Files + Batches)")
        openai_ok = asyncio.run(_openai_example(emu, work[:200], say))
        engine().finish_cleanups()
        live_ledger.flush()
        rows = journal_for(store).ledger()
        close_journals()
        say("\nWhat the demo just did, as `deferrable report` shows it. The live calls are\n"
            "recorded because the demo runs under deferrable.observe(); they come from the\n"
            "same function as the deferred ones of step 2, so that call site shows in both\n"
            "modes and is not a candidate (it is deferred already):\n")
        say(render_report(build_report(rows), "deferrable report"))
    same = live.labels == deferred.labels and len(deferred.labels) == requests
    return 0 if same and sync_ok and openai_ok else 1


async def _measure(emu: Emulator, sentiment: Callable[[str], Awaitable[anthropic.types.Message]],
                   work: list[str], say: Say, bounded: bool = False) -> Run:
    """Run `sentiment` over `work` concurrently, showing progress, and measure it."""
    before = emu.stats()["requests"]
    started = time.perf_counter()
    gate = asyncio.Semaphore(64 if bounded else len(work))

    async def one(review: str) -> anthropic.types.Message:
        async with gate:
            return await sentiment(review)

    tasks = [asyncio.ensure_future(one(review)) for review in work]
    while not all(task.done() for task in tasks):
        await asyncio.wait(tasks, timeout=0.25)
        done = sum(task.done() for task in tasks)
        say(f"\r     {done:>6,} / {len(tasks):,} answered, {time.perf_counter() - started:5.1f} s",
            end="")
    say("\r", end="")
    say(f"     all {len(tasks):,} answered in {time.perf_counter() - started:.1f} s".ljust(48))
    messages = [task.result() for task in tasks]
    usage = sum((anthropic_tokens(m.usage) for m in messages), Tokens())
    return Run([_text(m) for m in messages], usage, _delta(before, emu.stats()["requests"]),
               time.perf_counter() - started)


def _sync_example(emu: Emulator, work: list[str], say: Say) -> bool:
    before = emu.stats()["requests"]
    with anthropic.Anthropic(api_key=DEMO_KEY, base_url=emu.url) as client:

        @deferrable(max_wait=0.2)
        def label(review: str) -> str:
            message = client.messages.create(
                model=MODEL, max_tokens=5, system="Answer with one word.",
                messages=[{"role": "user", "content": f"Sentiment of this review: {review}"}])
            return _text(message)

        futures = [label(review) for review in work]
        pending = sum(not f.done() for f in futures)
        say(f"     {len(futures)} futures returned, {pending} pending; .result() waits for the batch")
        labels = [future.result() for future in futures]
    requests = _delta(before, emu.stats()["requests"])
    say(f"     {len(labels)} labels ({', '.join(f'{k} {v}' for k, v in Counter(labels).most_common())}) "
        f"in {requests.get('POST /v1/messages/batches', 0)} batch, "
        f"{requests.get('POST /v1/messages', 0)} live requests")
    return len(labels) == len(work) and "POST /v1/messages" not in requests


async def _openai_example(emu: Emulator, work: list[str], say: Say) -> bool:
    before = emu.stats()["requests"]
    client = openai.AsyncOpenAI(api_key=DEMO_KEY, base_url=emu.openai_url)

    @deferrable(max_wait=0.2)
    async def label(review: str) -> str:
        completion = await client.chat.completions.create(
            model=OPENAI_MODEL, max_completion_tokens=5,
            messages=[{"role": "system", "content": "Answer with one word."},
                      {"role": "user", "content": f"Sentiment of this review: {review}"}])
        return completion.choices[0].message.content or ""

    labels = await asyncio.gather(*(label(review) for review in work))
    await client.close()
    await asyncio.to_thread(engine().finish_cleanups)  # the batch's files are deleted
    requests = _delta(before, emu.stats()["requests"])
    say(f"     {len(labels)} labels ({', '.join(f'{k} {v}' for k, v in Counter(labels).most_common())}) "
        f"from {requests.get('POST /v1/files', 0)} upload and "
        f"{requests.get('POST /v1/batches', 0)} batch, "
        f"{requests.get('POST /v1/chat/completions', 0)} live requests; "
        f"{requests.get('DELETE /v1/files/{file_id}', 0)} files deleted after")
    return len(labels) == len(work) and "POST /v1/chat/completions" not in requests


def _report(say: Say, work: list[str], live: Run, deferred: Run) -> None:
    say("\nA sample of the answers (deferred):")
    for review, label in list(zip(work, deferred.labels, strict=True))[:5]:
        say(f"  {label:9} {review}")
    tally = Counter(deferred.labels)
    say("  labels: " + ", ".join(f"{label} {n:,}" for label, n in tally.most_common()) + "\n")
    price = price_of(MODEL)
    assert price is not None
    live_cost = price.cost(live.usage, batch=False) or 0.0
    deferred_cost = price.cost(deferred.usage, batch=True) or 0.0
    say(f"{'':10}{'HTTP requests':>15}{'input tok':>12}{'output tok':>12}{'cost USD':>11}"
        f"{'wall s':>9}")
    for name, run, cost in (("live", live, live_cost), ("deferred", deferred, deferred_cost)):
        say(f"{name:10}{sum(run.requests.values()):>15,}{run.usage.input:>12,}"
            f"{run.usage.output:>12,}{cost:>11.4f}{run.seconds:>9.1f}")
    saved = live_cost - deferred_cost
    say(f"\nSame answers both ways: {'yes' if live.labels == deferred.labels else 'NO'}. "
        f"Deferred saved ${saved:.4f} ({saved / live_cost:.0%}) at list prices of {AS_OF}.")
    say("HTTP requests by route:")
    for name, run in (("live", live), ("deferred", deferred)):
        routes = ", ".join(f"{route} x{n:,}" for route, n in sorted(run.requests.items()))
        say(f"  {name:9}{routes}")


def _printer(stream: TextIO | None) -> Say:
    target = stream or sys.stdout
    interactive = target.isatty()

    def say(text: str = "", end: str = "\n") -> None:
        if text.startswith("\r") and not interactive:
            return  # progress lines only on a terminal
        target.write(text + end)
        target.flush()

    return say


def _text(message: anthropic.types.Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def _delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {route: n - before.get(route, 0) for route, n in after.items()
            if n - before.get(route, 0)}

