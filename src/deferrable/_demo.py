"""`deferrable demo`: one sentiment job run live, then deferred with `@deferrable`, on the
embedded emulator, with no API key. It prints what each way cost and the HTTP requests it
took, side by side, then shows the same decorator on sync code and on OpenAI, and ends with
`deferrable report` of the deferred calls.

The live run is the baseline the deferred one is measured against, not a job to defer: it
runs unobserved, so the ledger (and the closing report) holds only the deferred calls,
whose saving is the one percentage the demo states.
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
from ._options import Options, configure
from ._patching import observe
from .emulator import Emulator
from .engine import engine
from .journal import close_journals, journal_for
from .ledger import AS_OF, Tokens, anthropic_tokens, build_report, live_ledger, price_of, render_report

MODEL = "claude-haiku-4-5"
OPENAI_MODEL = "gpt-6.2-sol"
DEMO_KEY = "demo-key-for-the-local-emulator"
REQUESTS = 1_000
"""The job's size by default: enough to show batching, quick to run live as the baseline."""
BATCH_LATENCY = 0.1
"""Seconds the demo's emulator takes to end a batch by default (real ones: minutes to hours)."""
SIDE_JOBS = 200
"""Calls of the sync and OpenAI examples (at most)."""
LIVE_CONCURRENCY = 64
"""Live calls in flight at once in the baseline, as a careful job would limit them."""
_OPENINGS = ("The room was", "Delivery was", "Support staff were", "The battery life is",
             "This blender is", "The hotel breakfast was", "Checkout felt", "The manual is")
_VERDICTS = ("great and I love it", "terrible, I want a refund", "fine, nothing special",
             "excellent, would recommend", "slow and disappointing", "okay for the price",
             "amazing, best purchase this year", "broken on arrival, awful")
_ROUTES = {"POST /v1/messages": "one per call",
           "POST /v1/messages/batches": "submit the batch",
           "GET /v1/messages/batches/{message_batch_id}": "poll it",
           "GET /v1/messages/batches/{message_batch_id}/results": "read its results"}
"""Routes of the Anthropic API the job uses, in the order a batch meets them, with what
each is for."""
CAVEAT = ("on the emulator, whose batches end after {latency:g} s;\n"
          "real batches take minutes to hours (24 h at most):\n"
          "defer the work nobody waits on")
"""What the emulator's wall times say about real ones, printed beside them."""
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


async def sentiment(client: anthropic.AsyncAnthropic, review: str) -> anthropic.types.Message:
    """The job's one call: the plain async function, run live and then under @deferrable."""
    return await client.messages.create(
        model=MODEL, max_tokens=5, system="Answer with one word.",
        messages=[{"role": "user", "content": f"Sentiment of this review: {review}"}])


def sentiment_sync(client: anthropic.Anthropic, review: str) -> str:
    """The same call from sync code."""
    message = client.messages.create(
        model=MODEL, max_tokens=5, system="Answer with one word.",
        messages=[{"role": "user", "content": f"Sentiment of this review: {review}"}])
    return _text(message)


async def sentiment_openai(client: openai.AsyncOpenAI, review: str) -> str:
    """The same question to OpenAI's chat completions."""
    completion = await client.chat.completions.create(
        model=OPENAI_MODEL, max_completion_tokens=5,
        messages=[{"role": "system", "content": "Answer with one word."},
                  {"role": "user", "content": f"Sentiment of this review: {review}"}])
    return completion.choices[0].message.content or ""


def run_demo(*, requests: int = REQUESTS, batch_latency: float = BATCH_LATENCY,
             out: TextIO | None = None) -> int:
    """Run the job both ways and print what each cost; returns the process exit status."""
    say = _printer(out)
    work = reviews(requests)
    say(f"deferrable demo: {requests:,} sentiment call{'' if requests == 1 else 's'} to {MODEL}, "
        f"made live and then under @deferrable,\non the embedded emulator (no API key, nothing "
        f"billed; its batches end after {batch_latency:g} s)\n")
    # The demo's journal is its own, gone at the end: a user's journal keeps real work.
    # Each @deferrable below is told the job's size, so its calls go in one batch the moment
    # the last one arrives (the default max_wait is only the backstop); the first poll comes
    # just after the emulator's batch ends, not at the default second that suits the real
    # providers; the demo's own progress lines stand for the engine's.
    with tempfile.TemporaryDirectory(prefix="deferrable-demo-") as store, \
            Emulator(batch_latency=batch_latency) as emu:
        configure(store=store, lane="batch", max_wait=Options().max_wait,
                  poll_interval=_first_poll(batch_latency), progress=False)
        observe(False)  # the live baseline is a comparison, not spend nor a candidate
        live, deferred = asyncio.run(_both_ways(emu, work, say))
        _compare(say, work, live, deferred, batch_latency)
        say("\n3/4  sync code: @deferrable on a plain def returns Deferred futures at once")
        sync_ok = _sync_example(emu, work[:SIDE_JOBS], say)
        say("\n4/4  OpenAI: the same decorator on chat.completions (Files + Batches)")
        openai_ok = asyncio.run(_openai_example(emu, work[:SIDE_JOBS], say))
        engine().finish_cleanups()
        live_ledger.flush()
        rows = journal_for(store).ledger()
        close_journals()
        say("\nThe deferred calls of steps 2-4, as `deferrable report` shows them (the live "
            "baseline of\nstep 1 ran unrecorded: it is the comparison, not work to defer):\n")
        say(render_report(build_report(rows), "deferrable report"))
    same = live.labels == deferred.labels and len(deferred.labels) == requests
    return 0 if same and sync_ok and openai_ok else 1


async def _both_ways(emu: Emulator, work: list[str], say: Say) -> tuple[Run, Run]:
    """The job run live, then under @deferrable, with one client."""
    async with anthropic.AsyncAnthropic(api_key=DEMO_KEY, base_url=emu.url) as client:
        say("1/4  live: the plain async function, one POST /v1/messages per call")
        live = await _measure(emu, lambda review: sentiment(client, review), work, say,
                              bounded=True)
        say("2/4  deferred: the same function under @deferrable")
        deferred_sentiment = deferrable(max_batch_size=len(work))(sentiment)
        deferred = await _measure(emu, lambda review: deferred_sentiment(client, review), work,
                                  say)
    return live, deferred


async def _measure(emu: Emulator, call: Callable[[str], Awaitable[anthropic.types.Message]],
                   work: list[str], say: Say, bounded: bool = False) -> Run:
    """Run `call` over `work` concurrently, showing progress on a terminal, and measure it."""
    before = emu.stats()["requests"]
    started = time.perf_counter()
    gate = asyncio.Semaphore(LIVE_CONCURRENCY if bounded else len(work))

    async def one(review: str) -> anthropic.types.Message:
        async with gate:
            return await call(review)

    tasks = [asyncio.ensure_future(one(review)) for review in work]
    while not all(task.done() for task in tasks):
        await asyncio.wait(tasks, timeout=0.25)  # returns as soon as all are done
        done = sum(task.done() for task in tasks)
        say(f"\r     {done:>6,} / {len(tasks):,} answered, {time.perf_counter() - started:5.1f} s",
            end="")
    seconds = time.perf_counter() - started
    requests = _delta(before, emu.stats()["requests"])
    batches = requests.get("POST /v1/messages/batches", 0)
    say(f"     {len(tasks):,} answered in {seconds:.1f} s"
        + (f", from {batches} batch{'es' if batches != 1 else ''} (on the emulator: a real "
           "batch takes minutes to hours)" if batches else ""))
    messages = [task.result() for task in tasks]
    usage = sum((anthropic_tokens(m.usage) for m in messages), Tokens())
    return Run([_text(m) for m in messages], usage, requests, seconds)


def _sync_example(emu: Emulator, work: list[str], say: Say) -> bool:
    before = emu.stats()["requests"]
    with anthropic.Anthropic(api_key=DEMO_KEY, base_url=emu.url) as client:
        label = deferrable(max_batch_size=len(work))(sentiment_sync)
        futures = [label(client, review) for review in work]
        pending = sum(not f.done() for f in futures)
        say(f"     {_counted(len(futures), 'future')} returned, {pending:,} pending; .result() waits for "
            "the batch")
        labels = [future.result() for future in futures]
    requests = _delta(before, emu.stats()["requests"])
    say(f"     {_counted(len(labels), 'label')} ({_tally(labels)}) "
        f"from {requests.get('POST /v1/messages/batches', 0)} batch, "
        f"{requests.get('POST /v1/messages', 0)} live requests")
    return len(labels) == len(work) and "POST /v1/messages" not in requests


async def _openai_example(emu: Emulator, work: list[str], say: Say) -> bool:
    before = emu.stats()["requests"]
    async with openai.AsyncOpenAI(api_key=DEMO_KEY, base_url=emu.openai_url) as client:
        label = deferrable(max_batch_size=len(work))(sentiment_openai)
        labels = await asyncio.gather(*(label(client, review) for review in work))
    await asyncio.to_thread(engine().finish_cleanups)  # the batch's files are deleted
    requests = _delta(before, emu.stats()["requests"])
    say(f"     {_counted(len(labels), 'label')} ({_tally(labels)}) "
        f"from {requests.get('POST /v1/files', 0)} upload and "
        f"{requests.get('POST /v1/batches', 0)} batch, "
        f"{requests.get('POST /v1/chat/completions', 0)} live requests; "
        f"{requests.get('DELETE /v1/files/{file_id}', 0)} files deleted after")
    return len(labels) == len(work) and "POST /v1/chat/completions" not in requests


def _compare(say: Say, work: list[str], live: Run, deferred: Run, batch_latency: float) -> None:
    """The two runs side by side, the one saving, and their HTTP requests by route."""
    same = live.labels == deferred.labels
    say(f"\nA sample of the answers (the same both ways: {'yes' if same else 'NO'}):")
    for review, label in list(zip(work, deferred.labels, strict=True))[:3]:
        say(f"  {label:9} {review}")
    say(f"  all {len(deferred.labels):,}: {_tally(deferred.labels)}\n")
    price = price_of(MODEL)
    assert price is not None
    live_cost = price.cost(live.usage, batch=False) or 0.0
    deferred_cost = price.cost(deferred.usage, batch=True) or 0.0
    caveat = CAVEAT.format(latency=batch_latency)
    places = 4 if deferred_cost >= 0.01 else 6  # a handful of calls costs under a cent

    def usd(amount: float) -> str:
        return f"{amount:.{places}f}"

    rows = [("HTTP requests", f"{sum(live.requests.values()):,}",
             f"{sum(deferred.requests.values()):,}", ""),
            ("input tokens", f"{live.usage.prompt:,}", f"{deferred.usage.prompt:,}", ""),
            ("output tokens", f"{live.usage.output:,}", f"{deferred.usage.output:,}", ""),
            ("cost, USD", usd(live_cost), usd(deferred_cost),
             f"list prices of {AS_OF}"),
            ("wall time, s", f"{live.seconds:.1f}", f"{deferred.seconds:.1f}", caveat)]
    title = f"The same {_counted(len(work), 'call')}"
    say(f"{title:26}{'live':>10}{'deferred':>10}")
    for name, live_figure, deferred_figure, note in rows:
        first, *more = note.split("\n")
        say(f"  {name:24}{live_figure:>10}{deferred_figure:>10}   {first}".rstrip())
        for line in more:
            say(" " * 49 + line)
    share = f"{(live_cost - deferred_cost) / live_cost:.0%}" if live_cost else "n/a"
    say(f"\nDeferring saved {share} of the cost: ${usd(deferred_cost)} instead of "
        f"${usd(live_cost)}, {'with the same answers' if same else 'but the answers DIFFER'}.")
    say("\nHTTP requests by route")
    lines = [(name if index == 0 else "", count, route.replace("{message_batch_id}", "{id}"),
              _ROUTES.get(route, ""))
             for name, run in (("live", live), ("deferred", deferred))
             for index, (route, count) in enumerate(sorted(run.requests.items(), key=_route_order))]
    width = max(len(route) for _, _, route, _ in lines)
    for name, count, route, note in lines:
        say(f"  {name:10}{count:>6,}  {route:{width}}  {note}".rstrip())


def _first_poll(batch_latency: float) -> float:
    """The first poll's delay: after the batch's end even when jittered down (by up to a
    fifth) and its results are written, so that one poll usually finds it ended; at most
    the default second."""
    return min(1.0, batch_latency * 1.3 + 0.05)


def _route_order(item: tuple[str, int]) -> tuple[int, str]:
    routes = list(_ROUTES)
    return (routes.index(item[0]) if item[0] in _ROUTES else len(routes), item[0])


def _counted(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _tally(labels: list[str]) -> str:
    return ", ".join(f"{label} {count:,}" for label, count in Counter(labels).most_common())


def _printer(stream: TextIO | None) -> Say:
    """`say(text, end="\\n")`: writes and flushes each line; a progress line (starting with
    ``\\r``) only on a terminal, so that piped output holds every result line and nothing else."""
    target = stream or sys.stdout
    interactive = target.isatty()
    shown = [0]  # the length of the progress line on screen, which the next line replaces

    def say(text: str = "", end: str = "\n") -> None:
        if text.startswith("\r"):
            if interactive:
                target.write(text + end)
                target.flush()
                shown[0] = len(text)
            return
        if shown[0]:
            target.write("\r" + " " * shown[0] + "\r")
            shown[0] = 0
        target.write(text + end)
        target.flush()

    return say


def _text(message: anthropic.types.Message) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


def _delta(before: Mapping[str, int], after: Mapping[str, int]) -> dict[str, int]:
    return {route: n - before.get(route, 0) for route, n in after.items()
            if n - before.get(route, 0)}
