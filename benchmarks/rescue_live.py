"""Time to rescue N calls live at a deadline, against running the same N calls live from
the start, side by side in one process (async Anthropic calls, emulator in-process).

- live: N ``await client.messages.create(...)`` gathered, at most `CONCURRENCY` in flight
  (the bound rescues run with), timed from the first call to the last answer.
- rescue: the same N calls in an async ``@deferrable(deadline=..., rescue_margin=...)``
  function, in one batch that the emulator would take an hour to run. When the first
  call's deadline less its margin comes, the engine cancels the batch, reads it (nothing
  finished) and the calls run live. Timed from the cancel (the engine's log record) to the
  last answer; the time spent waiting for the deadline is not counted.

Both check every answer, and the emulator's bill: N live requests and none at the batch
price for the rescue. Each mode runs `--repeat` times alternately; medians are printed.

Run: python benchmarks/rescue_live.py [--calls 10000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import statistics
import tempfile
import time

import anthropic

import deferrable
from deferrable._rescue import CONCURRENCY
from deferrable.emulator import Emulator, Prompt, default_responder
from deferrable.engine import engine
from deferrable.journal import close_journals

KEY = "benchmark-dummy-key"
MODEL = "claude-haiku-4-5"


def prompt(run: int, i: int) -> str:
    """The user turn of call `i` of run `run` (distinct, so no journal serves it)."""
    return f"Sentiment of review {run}-{i}: great"


def expected(run: int, i: int) -> str:
    """What the emulator's default responder answers to that call."""
    return default_responder(Prompt(provider="anthropic", endpoint="/v1/messages", model=MODEL,
                                    system="", turns=(("user", prompt(run, i)),), params={}))


class _CancelSeen(logging.Handler):
    """Notes when the engine logs that it cancels a batch at a deadline."""

    def __init__(self) -> None:
        super().__init__()
        self.at: float | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self.at is None and "cancelling batch" in record.getMessage():
            self.at = time.perf_counter()


async def live(client: anthropic.AsyncAnthropic, run: int, count: int) -> float:
    """Seconds to run `count` calls live, `CONCURRENCY` at a time."""
    slots = asyncio.Semaphore(CONCURRENCY)

    async def ask(i: int) -> str:
        async with slots:
            message = await client.messages.create(
                model=MODEL, max_tokens=5, messages=[{"role": "user", "content": prompt(run, i)}])
        block = message.content[0]
        return block.text if block.type == "text" else ""

    started = time.perf_counter()
    answers = await asyncio.gather(*(ask(i) for i in range(count)))
    took = time.perf_counter() - started
    check(answers, run)
    return took


async def rescue(client: anthropic.AsyncAnthropic, run: int, count: int, deadline: float) -> float:
    """Seconds from the deadline's cancel to `count` rescued answers."""

    @deferrable.deferrable(deadline=deadline, rescue_margin=deadline / 2, max_wait=3600,
                           max_batch_size=count)
    async def ask(i: int) -> str:
        message = await client.messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": prompt(run, i)}])
        block = message.content[0]
        return block.text if block.type == "text" else ""

    seen = _CancelSeen()
    logging.getLogger("deferrable").addHandler(seen)
    logging.getLogger("deferrable").setLevel(logging.INFO)
    try:
        answers = await asyncio.gather(*(ask(i) for i in range(count)))
        ended = time.perf_counter()
    finally:
        logging.getLogger("deferrable").removeHandler(seen)
    check(answers, run)
    if seen.at is None:
        raise SystemExit("the batch was never cancelled: no rescue happened")
    return ended - seen.at


def check(answers: list[str], run: int) -> None:
    """Every answer is the emulator's own."""
    wrong = [i for i, answer in enumerate(answers) if answer != expected(run, i)]
    if wrong:
        raise SystemExit(f"{len(wrong)} answers are wrong, e.g. call {wrong[0]}")


def billed(emu: Emulator, mode: str) -> int:
    """Requests the emulator billed in `mode`."""
    return int(emu.stats()["billed_total"][mode]["requests"])


async def main_async(count: int, repeat: int, deadline: float) -> None:
    """Alternate the two modes `repeat` times; print medians and their ratio."""
    times: dict[str, list[float]] = {"live": [], "rescue": []}
    with tempfile.TemporaryDirectory(prefix="deferrable-bench-") as store, \
            Emulator(batch_latency=3600) as emu:
        deferrable.configure(store=store, poll_interval=0.05, max_poll_interval=0.5)
        async with anthropic.AsyncAnthropic(api_key=KEY, base_url=emu.url) as client:
            for run in range(repeat):
                emu.reset_stats()
                times["live"].append(await live(client, 2 * run, count))
                if billed(emu, "live") != count:
                    raise SystemExit(f"live: {billed(emu, 'live')} billed, not {count}")
                emu.reset_stats()
                times["rescue"].append(await rescue(client, 2 * run + 1, count, deadline))
                if billed(emu, "live") != count or billed(emu, "batch") != 0:
                    raise SystemExit(f"rescue: billed {billed(emu, 'live')} live and "
                                     f"{billed(emu, 'batch')} batch, not {count} live")
                print(f"run {run + 1}: live {times['live'][-1]:.2f} s, "
                      f"rescue {times['rescue'][-1]:.2f} s", flush=True)
        engine().finish_cleanups()  # the rescued answers' journal writes, before the store goes
        close_journals()
    live_s, rescue_s = statistics.median(times["live"]), statistics.median(times["rescue"])
    print(f"{count:,} calls, {CONCURRENCY} in flight: live from the start {live_s:.2f} s "
          f"({live_s / count * 1e6:.0f} us/call); rescued at the deadline {rescue_s:.2f} s "
          f"({rescue_s / count * 1e6:.0f} us/call); rescue / live = {rescue_s / live_s:.2f}x")


def main() -> None:
    """Parse the arguments and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--deadline", type=float, default=30.0,
                        help="seconds; the rescue begins at half of it (after the calls "
                             "are all made)")
    args = parser.parse_args()
    asyncio.run(main_async(args.calls, args.repeat, args.deadline))


if __name__ == "__main__":
    main()
