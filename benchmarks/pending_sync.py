"""Memory and time of N sync `@deferrable` calls held pending, then resolved, per provider.

Each measurement runs in a fresh child process (this script with `--child`), so that its
peak RSS is its own. The child starts the emulator in-process (default config: batches end
at once), opens a journal in a temporary directory, makes one deferred warm-up call and
reads its baseline RSS (VmRSS). It then makes N calls of a sync `@deferrable` function with
options that keep them all pending (`max_wait=3600`, `max_batch_size=N`), calls `flush()`
and waits for every result. It checks each result against the emulator's own answer and
that no call went live, and reports:

- enqueue: seconds to make the N calls (each returns a `Deferred` at once);
- resolve: seconds from `flush()` to every result in hand;
- peak RSS (`ru_maxrss`) once all N calls are made, and at the end of the run (the batch
  submitted and its results read; the emulator in the same process holds the batch too);
- KiB per pending call: (end-of-run peak - baseline) / N.

Run: python benchmarks/pending_sync.py [--calls 10000 100000] [--provider anthropic|openai]
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import deferrable
from deferrable.emulator import Emulator, Prompt, default_responder

KEY = "benchmark-dummy-key"
GOAL_MB = {10_000: 100, 100_000: 600}
PROVIDERS = {  # provider: (model, endpoint, the route a live call would be counted on)
    "anthropic": ("claude-haiku-4-5", "/v1/messages", "POST /v1/messages"),
    "openai": ("gpt-4o-mini", "/v1/chat/completions", "POST /v1/chat/completions"),
}


def prompt_text(i: int) -> str:
    """The user turn of call `i`."""
    return f"Sentiment of review {i}: great"


def expected_answer(provider: str, i: int) -> str:
    """What the emulator's default responder answers to call `i`."""
    model, endpoint, _ = PROVIDERS[provider]
    return default_responder(Prompt(provider=provider, endpoint=endpoint, model=model, system="",
                                    turns=(("user", prompt_text(i)),), params={}))


def rss_kib() -> int:
    """This process's resident memory now (VmRSS), in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def peak_kib() -> int:
    """This process's peak resident memory so far (ru_maxrss: KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def make_ask(provider: str, emu: Emulator) -> tuple[Callable[[int], deferrable.Deferred[str]], Any]:
    """(the sync `@deferrable` function under test, the SDK client it uses)."""
    if provider == "anthropic":
        import anthropic

        claude = anthropic.Anthropic(api_key=KEY, base_url=emu.url)

        @deferrable.deferrable
        def ask_claude(i: int) -> str:
            msg = claude.messages.create(model="claude-haiku-4-5", max_tokens=5, messages=[
                {"role": "user", "content": prompt_text(i)}])
            block = msg.content[0]
            return block.text if block.type == "text" else ""

        return ask_claude, claude
    import openai

    gpt = openai.OpenAI(api_key=KEY, base_url=emu.openai_url)

    @deferrable.deferrable
    def ask_gpt(i: int) -> str:
        completion = gpt.chat.completions.create(model="gpt-4o-mini", max_tokens=5, messages=[
            {"role": "user", "content": prompt_text(i)}])
        return completion.choices[0].message.content or ""

    return ask_gpt, gpt


def measure(provider: str, count: int) -> dict[str, Any]:
    """One measurement of `count` pending calls (run in a fresh process)."""
    _, _, live_route = PROVIDERS[provider]
    with tempfile.TemporaryDirectory(prefix="deferrable-bench-") as store, Emulator() as emu:
        deferrable.configure(store=store, max_wait=3600, max_batch_size=count,
                             poll_interval=0.05, max_poll_interval=0.5)
        ask, client = make_ask(provider, emu)
        with client:
            warm = ask(-1)  # a prompt no measured call repeats (the journal would serve it)
            deferrable.flush()
            if warm.result() != expected_answer(provider, -1):
                raise SystemExit(f"warm-up call answered {warm.result()!r}")
            del warm
            emu.reset_stats()
            gc.collect()
            baseline = rss_kib()

            started = time.perf_counter()
            futures = [ask(i) for i in range(count)]
            enqueued = time.perf_counter()
            peak_pending = peak_kib()
            deferrable.flush()
            results = [f.result() for f in futures]
            resolved = time.perf_counter()
            peak_end = peak_kib()
        stats = emu.stats()
    wrong = [(i, r) for i, r in enumerate(results) if not r or r != expected_answer(provider, i)]
    if wrong:
        raise SystemExit(f"{len(wrong)} of {count} results are wrong, e.g. {wrong[:3]}")
    live = stats["requests"].get(live_route, 0)
    if live:
        raise SystemExit(f"{live} calls went live ({live_route}); stats: {stats['requests']}")
    return {"provider": provider, "calls": count, "module": deferrable.__file__,
            "enqueue_s": enqueued - started, "resolve_s": resolved - enqueued,
            "baseline_kib": baseline, "peak_pending_kib": peak_pending, "peak_kib": peak_end,
            "batches": stats["batches"].get(f"{provider}_batches", 0),
            "batch_requests": stats["batches"].get(f"{provider}_batch_requests", 0)}


def run_child(provider: str, count: int, timeout: float) -> dict[str, Any] | str:
    """The figures of one measurement in a fresh process, or why it failed."""
    command = [sys.executable, __file__, "--child", "--provider", provider, "--calls", str(count)]
    try:
        done = subprocess.run(command, stdout=subprocess.PIPE, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout:.0f} s"
    if done.returncode != 0:
        return f"child exited with {done.returncode} (its stderr is above)"
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def row(figures: dict[str, Any]) -> str:
    """One line of the table."""
    count, mib = figures["calls"], 1024
    goal = GOAL_MB.get(count)
    return (f"{count:>8,} {figures['enqueue_s']:9.2f} {figures['enqueue_s'] / count * 1e6:8.0f} "
            f"{figures['resolve_s']:9.2f} {figures['peak_kib'] / mib:9.0f} "
            f"{f'<= {goal} MB' if goal else '-':>11} {figures['peak_pending_kib'] / mib:12.0f} "
            f"{figures['baseline_kib'] / mib:9.0f} "
            f"{(figures['peak_kib'] - figures['baseline_kib']) / count:9.2f}  "
            f"{figures['batches']} / {figures['batch_requests']:,}")


def main() -> None:
    """Measure each N in a child process and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, nargs="+", default=[10_000, 100_000], metavar="N")
    parser.add_argument("--provider", choices=sorted(PROVIDERS), default="anthropic")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds per measurement")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.provider, args.calls[0])))
        return
    print(f"{args.provider}: sync @deferrable calls held pending, one fresh process per N "
          "(goal: 10k <= 100 MB, 100k <= 600 MB peak)")
    print(f"{'N':>8} {'enqueue s':>9} {'us/call':>8} {'resolve s':>9} {'peak MiB':>9} "
          f"{'goal':>11} {'peak@enq MiB':>12} {'base MiB':>9} {'KiB/call':>9}  batches / requests")
    failed = shown = False
    for count in args.calls:
        figures = run_child(args.provider, count, args.timeout)
        if isinstance(figures, str):
            failed = True
            print(f"{count:>8,} FAILED: {figures}", flush=True)
            continue
        if not shown:
            print(f"(deferrable imported from {figures['module']})")
            shown = True
        print(row(figures), flush=True)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
