"""What the durable journal costs per deferred call: ``journal=True`` (a fresh store in a
temporary directory) vs ``journal=False``, measured side by side in one run, the two modes
alternating over several rounds (which goes first alternates too); medians and ratios are
printed.

1. End to end: N async `messages.create` calls under `@deferrable` against the emulator
   running in its own process (batch_latency=0, every answer the same 275-character
   paragraph), so that only the client's work is billed. Two figures per run: wall time
   from the first call to the last result, and this process's CPU time (all its threads,
   `time.process_time`) from the first call until the engine has also finished its
   after-result journal work; the emulator's own CPU time is shown for scale.
2. The journal's own work, isolated: `request_digest` + canonical JSON per call,
   `Journal.plan` for N fresh custom ids (the intent writes), `Journal.received` for N
   result lines of ~1 KB in chunks of 512 (as the engine records them), and
   `Journal.plan` again once the results are in (a rerun: every call served).
3. A rerun served from the journal: the journals closed (occurrence numbering restarts, as
   in a new process), the same N calls again on the same store; the emulator's counters
   must show that no batch was created.
4. Disk used by the store after N calls.

Every journal lives in a temporary directory, removed at the end (the process-wide default
store too, so nothing reaches the user's own journal); the progress display is off; the
emulator listens on 127.0.0.1 only and is stopped at the end, on Ctrl-C too. Run:

    python benchmarks/journal_cost.py [--calls 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anthropic
import diskcache

import deferrable
from _support import KEY, EmulatorProcess, emulator_process, temporary_store
from deferrable.engine import engine
from deferrable.engine._work import SETTLE_CHUNK
from deferrable.journal import Journal, close_journals, request_digest
from deferrable.providers._deferral import canonical_json

MODEL = "claude-haiku-4-5"
REUSE_FOR = deferrable.Options().reuse_for
LAUNCH = deferrable.Options().max_batch_size
"""Calls planned in one `Journal.plan` at most: the engine's largest launch."""
ANSWER = ("positive: the reviewer praises the battery life, the bright screen and the quick "
          "delivery, mentions that setup took a few minutes longer than expected, and says "
          "they would buy from this seller again and recommend the product to their family "
          "and colleagues without hesitation.")
"""What the emulator answers to every prompt: a result line of about 1 KB, as a short real
answer makes."""
BATCHES = "POST /v1/messages/batches"


def params(i: int) -> dict[str, Any]:
    """A small request, distinct for every `i`."""
    return {"model": MODEL, "max_tokens": 128,
            "messages": [{"role": "user", "content": f"Summarize review {i}: great, works well"}]}


@dataclass(frozen=True)
class Run:
    """What one end-to-end run cost."""

    wall: float
    """Seconds from the first call to the last result."""
    cpu: float
    """This process's CPU seconds from the first call until the engine's journal work after
    the last result was done too."""
    server_cpu: float
    """The emulator process's CPU seconds over the same span."""
    batches: int
    """Batches the emulator accepted during the run."""


def end_to_end(emu: EmulatorProcess, client: anthropic.AsyncAnthropic, count: int,
               **options: Any) -> Run:
    """`count` gathered @deferrable calls: wall and CPU time, batches sent."""

    @deferrable.deferrable(max_wait=0.05, poll_interval=0.05, **options)
    async def ask(i: int) -> str:
        block = (await client.messages.create(**params(i))).content[0]
        return block.text if block.type == "text" else ""

    async def run() -> float:
        started = time.perf_counter()
        texts = await asyncio.gather(*(ask(i) for i in range(count)))
        elapsed = time.perf_counter() - started
        assert texts == [ANSWER] * count, "a call got a wrong answer"
        return elapsed

    batches = emu.requests(BATCHES)
    gc.collect()
    server_cpu = emu.cpu_seconds()
    cpu = time.process_time()
    elapsed = asyncio.run(run())
    engine().finish_cleanups()  # the last batch is marked collected before anything else
    cpu = time.process_time() - cpu
    server_cpu = emu.cpu_seconds() - server_cpu
    return Run(elapsed, cpu, server_cpu, emu.requests(BATCHES) - batches)


def disk_usage(directory: Path) -> dict[str, int]:
    """Bytes of each file under `directory` (the SQLite database, its WAL, value files)."""
    return {str(p.relative_to(directory)): p.stat().st_size
            for p in sorted(directory.rglob("*")) if p.is_file()}


def close_all() -> None:
    """Close the process's journals, as a new process would start (numbering included)."""
    close_journals()
    gc.collect()  # connections the engine's worker threads opened go with their cache


@dataclass
class Figures:
    """Seconds (or bytes) of every round, by measurement."""

    runs: dict[str, list[float]] = field(default_factory=dict)
    rerun_batches: list[int] = field(default_factory=list)
    run_batches: dict[str, list[int]] = field(default_factory=dict)

    def add(self, name: str, value: float) -> None:
        self.runs.setdefault(name, []).append(value)

    def add_run(self, name: str, run: Run) -> None:
        """Record an end-to-end run as ``name`` (wall), ``name cpu`` and ``name server``."""
        self.add(name, run.wall)
        self.add(f"{name} cpu", run.cpu)
        self.add(f"{name} server", run.server_cpu)

    def median(self, name: str) -> float:
        return statistics.median(self.runs[name])


def round_end_to_end(emu: EmulatorProcess, client: anthropic.AsyncAnthropic, root: Path,
                     count: int, index: int, figures: Figures) -> dict[str, int]:
    """One round of part 1, 3 and 4: both modes (order alternating), then the rerun."""
    store = root / f"round-{index}"
    usage: dict[str, int] = {}
    order = (False, True) if index % 2 == 0 else (True, False)
    for journaled in order:
        if not journaled:
            run = end_to_end(emu, client, count, journal=False)
            figures.add_run("e2e off", run)
            figures.run_batches.setdefault("off", []).append(run.batches)
            continue
        run = end_to_end(emu, client, count, journal=True, store=str(store))
        figures.add_run("e2e on", run)
        figures.run_batches.setdefault("on", []).append(run.batches)
        close_all()
        usage = disk_usage(store)
        figures.add("disk", float(sum(usage.values())))
        rerun = end_to_end(emu, client, count, journal=True, store=str(store))
        figures.add_run("rerun", rerun)
        figures.rerun_batches.append(rerun.batches)
        close_all()
        shutil.rmtree(store)
    return usage


def timed(call: Callable[[], object]) -> float:
    """Wall seconds of one call (after a collection, so that earlier garbage is not billed)."""
    gc.collect()
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def round_isolated(root: Path, count: int, index: int, destination: str,
                   line: dict[str, Any], figures: Figures) -> None:
    """One round of part 2: the journal's steps for `count` calls, on a fresh store."""
    bodies = [params(index * count + i) for i in range(count)]  # fresh ids every round
    digests: list[str] = []

    def identify() -> None:
        digests.extend(request_digest(destination, canonical_json(b)) for b in bodies)

    figures.add("digest", timed(identify))
    ids = [f"{digest}-0" for digest in digests]
    journal = Journal(root / f"isolated-{index}")
    tokens: list[str] = []

    def plan() -> None:
        for start in range(0, count, LAUNCH):
            launch = ids[start:start + LAUNCH]
            decided = journal.plan(launch, provider="anthropic", destination=destination,
                                   reuse_for=REUSE_FOR)
            assert decided.token is not None
            assert len(decided.submit) == len(launch)
            tokens.append(decided.token)

    journal.batch("warm")  # the store is created and opened outside the timing
    figures.add("plan", timed(plan))
    records = [(custom_id, {**line, "custom_id": custom_id}, True) for custom_id in ids]

    def receive() -> None:
        for launch, token in zip(range(0, count, LAUNCH), tokens, strict=True):
            end = min(launch + LAUNCH, count)
            for start in range(launch, end, SETTLE_CHUNK):
                journal.received(token, records[start:min(start + SETTLE_CHUNK, end)],
                                 REUSE_FOR)

    figures.add("received", timed(receive))
    journal.close()
    rerun = Journal(root / f"isolated-{index}")
    rerun.batch("warm")

    def serve() -> None:
        for start in range(0, count, LAUNCH):
            launch = ids[start:start + LAUNCH]
            decided = rerun.plan(launch, provider="anthropic", destination=destination,
                                 reuse_for=REUSE_FOR)
            assert not decided.submit
            assert len(decided.served) == len(launch)

    figures.add("served", timed(serve))
    rerun.close()
    shutil.rmtree(root / f"isolated-{index}")


def sample(emu: EmulatorProcess, client: anthropic.AsyncAnthropic,
           root: Path) -> tuple[str, dict[str, Any]]:
    """(destination, result line) of one real deferred call, read back from its journal;
    also warms up the engine, the SDK and the emulator in both modes."""
    store = root / "sample"
    end_to_end(emu, client, 200, journal=False)
    end_to_end(emu, client, 200, journal=True, store=str(store))
    close_all()
    journal = Journal(store)
    destination = journal.batches()[0].destination
    line = next(record["result"] for _, record in journal.requests() if "result" in record)
    journal.close()
    shutil.rmtree(store)
    return destination, line


def main() -> None:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    count, rounds = args.calls, args.rounds
    figures = Figures()
    with temporary_store(), \
            tempfile.TemporaryDirectory(prefix="deferrable-journal-bench-") as directory, \
            emulator_process(batch_latency=0, answer=ANSWER) as emu:
        root = Path(directory)
        client = anthropic.AsyncAnthropic(api_key=KEY, base_url=emu.url)
        destination, line = sample(emu, client, root)
        usage: dict[str, int] = {}
        for index in range(rounds):
            usage = round_end_to_end(emu, client, root, count, index, figures) or usage
            round_isolated(root, count, index, destination, line, figures)
        left = sorted(p.name for p in root.iterdir())
    report(figures, count, rounds, line, usage, left)


def header(title: str, unit: str) -> None:
    """A section's title and its columns."""
    print(f"{title:<52}{unit:>8}{'us/call':>10}  range us/call")


def report(figures: Figures, count: int, rounds: int, line: dict[str, Any],
           usage: dict[str, int], left: list[str]) -> None:
    """Print the table and the key ratios."""
    per = 1e6 / count
    off, on, rerun = (figures.median(k) for k in ("e2e off", "e2e on", "rerun"))
    off_cpu, on_cpu, rerun_cpu = (figures.median(f"{k} cpu") for k in ("e2e off", "e2e on", "rerun"))
    line_bytes = len(json.dumps(line, separators=(",", ":")))
    steps = [("request_digest + canonical JSON", "digest"),
             ("Journal.plan, fresh ids (intent writes)", "plan"),
             (f"Journal.received, chunks of {SETTLE_CHUNK} ({line_bytes:,} B lines)", "received"),
             ("Journal.plan again, every call served", "served")]
    journal_work = sum(figures.median(k) for k in ("digest", "plan", "received"))
    disk = figures.median("disk")

    def spread(key: str) -> str:
        return f"{min(figures.runs[key]) * per:,.1f}-{max(figures.runs[key]) * per:,.1f}"

    print(f"journal cost: {count:,} async messages.create calls, {rounds} rounds, medians "
          f"(Python {sys.version.split()[0]}, diskcache {diskcache.__version__})")
    print()
    header("1. end to end, wall: first call to last result", "s")
    print(f"{'   journal=False':<52}{off:>8.2f}{off * per:>10,.0f}  {spread('e2e off')}")
    print(f"{'   journal=True, fresh store':<52}{on:>8.2f}{on * per:>10,.0f}  {spread('e2e on')}")
    print(f"   wall ratio journal / no journal {on / off:.3f}; journal cost "
          f"{(on - off) * per:+,.0f} us per call")
    header("   CPU of this process: first call to journal done", "s")
    print(f"{'   journal=False':<52}{off_cpu:>8.2f}{off_cpu * per:>10,.0f}  "
          f"{spread('e2e off cpu')}")
    print(f"{'   journal=True, fresh store':<52}{on_cpu:>8.2f}{on_cpu * per:>10,.0f}  "
          f"{spread('e2e on cpu')}")
    print(f"   CPU ratio journal / no journal {on_cpu / off_cpu:.3f}; journal cost "
          f"{(on_cpu - off_cpu) * per:+,.0f} us CPU per call")
    print(f"   for scale, the emulator process's CPU time per run: "
          f"{figures.median('e2e off server'):.2f} s / {figures.median('e2e on server'):.2f} s; "
          f"batches per run: {figures.run_batches['off']} / {figures.run_batches['on']}")
    print()
    header("2. the journal's own work, isolated", "ms")
    for label, key in steps:
        value = figures.median(key)
        print(f"   {label:<49}{value * 1e3:>8.1f}{value * per:>10.1f}  {spread(key)}")
    print(f"   digest + plan + received: {journal_work * per:,.1f} us per call, "
          f"{journal_work / on:.1%} of the journaled run's wall time, "
          f"{journal_work / on_cpu:.1%} of its CPU time")
    print()
    header("3. rerun served from the journal (journals closed)", "s")
    print(f"{'   same calls, same store, wall':<52}{rerun:>8.2f}{rerun * per:>10,.0f}  "
          f"{spread('rerun')}")
    print(f"{'   same calls, same store, CPU':<52}{rerun_cpu:>8.2f}{rerun_cpu * per:>10,.0f}  "
          f"{spread('rerun cpu')}")
    check = "OK" if not any(figures.rerun_batches) else "FAILED"
    print(f"   wall: rerun / journaled run {rerun / on:.3f}, rerun / no journal {rerun / off:.3f}; "
          f"CPU: {rerun_cpu / on_cpu:.3f}, {rerun_cpu / off_cpu:.3f}")
    print(f"   batches created by the rerun: {figures.rerun_batches} -> {check}")
    print()
    files = ", ".join(f"{name} {size:,} B" for name, size in usage.items())
    print(f"4. disk: store after {count:,} calls {disk:,.0f} B ({disk / 2**20:.1f} MiB), "
          f"{disk / count:,.0f} B per call (a result line is {line_bytes:,} B)")
    print(f"   files after the last round: {files}")
    print(f"   stores left in the temporary directory before its removal: {left or 'nothing'}")
    print()
    print(f"key ratios: end to end journal / no journal: wall {on / off:.2f} "
          f"({(on - off) * per:+,.0f} us/call), CPU {on_cpu / off_cpu:.2f} "
          f"({(on_cpu - off_cpu) * per:+,.0f} us/call); rerun / journaled run: wall "
          f"{rerun / on:.2f}, CPU {rerun_cpu / on_cpu:.2f}; "
          f"isolated journal work {journal_work * per:,.0f} us/call; "
          f"disk {disk / count:,.0f} B/call")
    if check != "OK":
        raise SystemExit("the rerun created batches: the journal did not serve it")


if __name__ == "__main__":
    main()
