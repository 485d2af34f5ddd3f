"""What the Anthropic shim costs, measured side by side in one run against the emulator.

1. Pass-through overhead: a patched call outside any scope vs the unpatched call (ratio of
   medians over interleaved rounds, the arm measured first alternating from round to
   round), over real HTTP and over an in-process transport that removes the network so the
   wrapper's own cost shows.
2. Time to enqueue one deferred call (async: the coroutine's creation and submission;
   sync: the `@deferrable` call that returns a Deferred).
3. Peak memory of N pending sync calls (tracemalloc).
4. N async deferred calls end to end vs the hand-written batch pipeline doing the same
   work on the same emulator, both ending with the N answers' texts in request order. Both
   arms send one batch (the deferred one with `max_batch_size=N` and a long `max_wait`, so
   the size threshold sends it, however long enqueueing takes); the batches of each arm
   are printed. Rounds alternate which arm goes first; the ratios are of median wall
   times and of median CPU times of this process (the client's work alone; the
   emulator's runs in its own process).

The emulator runs in its own process on 127.0.0.1 (`deferrable emulator`, batches end at
once); the journal is a temporary store, removed at the end; the progress display is off.
Run:

    python benchmarks/shim_anthropic.py [--calls 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2

import deferrable
from _support import KEY, EmulatorProcess, emulator_process, temporary_store

BATCHES = "POST /v1/messages/batches"
MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
           "content": [{"type": "text", "text": "positive"}], "stop_reason": "end_turn",
           "stop_sequence": None, "usage": {"input_tokens": 10, "output_tokens": 1}}


def params(i: int) -> dict[str, Any]:
    """A small sentiment request."""
    return {"model": "claude-haiku-4-5", "max_tokens": 5,
            "messages": [{"role": "user", "content": f"Sentiment of review {i}: great"}]}


def median_seconds(call: Callable[[], object], repeat: int) -> float:
    """The median wall time of `call` over `repeat` runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def pass_through(client: anthropic.Anthropic, rounds: int, per_round: int) -> float:
    """Median patched / median unpatched, interleaving the two in `rounds`; the arm
    measured first alternates between rounds."""
    arms: dict[str, tuple[Callable[[], None], list[float]]] = {
        "plain": (deferrable.unpatch, []), "patched": (deferrable.patch, [])}
    names = list(arms)
    for index in range(rounds):
        for name in names[index % 2:] + names[:index % 2]:
            switch, medians = arms[name]
            switch()
            medians.append(median_seconds(lambda: client.messages.create(**params(0)),
                                          per_round))
    deferrable.unpatch()
    return statistics.median(arms["patched"][1]) / statistics.median(arms["plain"][1])


def in_process_client() -> anthropic.Anthropic:
    """A client whose transport answers in-process: the call minus the network."""
    body = json.dumps(MESSAGE).encode()
    transport = httpx2.MockTransport(
        lambda request: httpx2.Response(200, content=body,
                                        headers={"content-type": "application/json"}))
    return anthropic.Anthropic(api_key=KEY, base_url="http://in-process.invalid",
                               http_client=httpx2.Client(transport=transport))


def enqueue_async(emu: EmulatorProcess, count: int) -> float:
    """Seconds per deferred async call submitted (buffered, not yet sent)."""

    async def run() -> float:
        async with anthropic.AsyncAnthropic(api_key=KEY, base_url=emu.url) as client:
            await client.messages.create(**params(0))  # a client's first call yields once more
            async with deferrable.scope(max_wait=3600):
                return await submit_all(client)

    async def submit_all(client: anthropic.AsyncAnthropic) -> float:
        started = time.perf_counter()
        calls = [asyncio.ensure_future(client.messages.create(**params(i))) for i in range(count)]
        await asyncio.sleep(0)  # every task runs to its deferred call and submits it
        elapsed = time.perf_counter() - started
        await deferrable.aflush()
        await asyncio.gather(*calls)
        return elapsed / count

    return asyncio.run(run())


def enqueue_sync(emu: EmulatorProcess, count: int) -> tuple[float, float]:
    """(seconds per sync @deferrable call, peak MiB of `count` pending calls)."""
    with anthropic.Anthropic(api_key=KEY, base_url=emu.url) as client:

        @deferrable.deferrable(max_wait=3600)
        def ask(i: int) -> str:
            block = client.messages.create(**params(i)).content[0]
            return block.text if block.type == "text" else ""

        started = time.perf_counter()
        futures = [ask(i) for i in range(count)]
        elapsed = time.perf_counter() - started
        deferrable.flush()
        assert all(f.result() == "positive" for f in futures)
        tracemalloc.start()  # a second round, measured for memory only (tracing slows it)
        futures = [ask(i) for i in range(count)]
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        deferrable.flush()
        assert all(f.result() == "positive" for f in futures)
    return elapsed / count, peak / 2**20


def deferred_end_to_end(emu: EmulatorProcess, count: int) -> float:
    """Wall seconds for `count` gathered @deferrable async calls, sent as one batch."""

    async def run() -> list[str]:
        async with anthropic.AsyncAnthropic(api_key=KEY, base_url=emu.url) as client:

            @deferrable.deferrable(poll_interval=0.2, max_batch_size=count, max_wait=3600)
            async def ask(i: int) -> str:
                block = (await client.messages.create(**params(i))).content[0]
                return block.text if block.type == "text" else ""

            labels: list[str] = await asyncio.gather(*(ask(i) for i in range(count)))
            return labels

    started = time.perf_counter()
    labels = asyncio.run(run())
    elapsed = time.perf_counter() - started
    assert labels == ["positive"] * count
    return elapsed


def hand_written(emu: EmulatorProcess, count: int) -> float:
    """Wall seconds for the same work as a hand-written create / poll / results pipeline,
    ending with the answers' texts in request order."""
    started = time.perf_counter()
    with anthropic.Anthropic(api_key=KEY, base_url=emu.url) as client:
        batch = client.messages.batches.create(
            requests=[{"custom_id": f"r{i}", "params": params(i)}  # type: ignore[typeddict-item]
                      for i in range(count)])
        time.sleep(0.2)
        while client.messages.batches.retrieve(batch.id).processing_status != "ended":
            time.sleep(0.2)
        by_id: dict[str, str] = {}
        for line in client.messages.batches.results(batch.id):
            if line.result.type == "succeeded":
                block = line.result.message.content[0]
                by_id[line.custom_id] = block.text if block.type == "text" else ""
        labels = [by_id.get(f"r{i}", "") for i in range(count)]
    elapsed = time.perf_counter() - started
    assert labels == ["positive"] * count
    return elapsed


def end_to_end(emu: EmulatorProcess, count: int, rounds: int) -> dict[str, list[float]]:
    """Both arms `rounds` times, the first arm alternating: wall seconds, this process's CPU
    seconds and batches created, by arm."""
    figures: dict[str, list[float]] = {}
    arms = ["deferred", "hand"]
    for index in range(rounds):
        for arm in arms[index % 2:] + arms[:index % 2]:
            before = emu.requests(BATCHES)
            gc.collect()
            cpu = time.process_time()
            wall = (deferred_end_to_end if arm == "deferred" else hand_written)(emu, count)
            figures.setdefault(f"{arm} cpu", []).append(time.process_time() - cpu)
            figures.setdefault(arm, []).append(wall)
            figures.setdefault(f"{arm} batches", []).append(emu.requests(BATCHES) - before)
    return figures


def main() -> None:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with temporary_store(), emulator_process() as emu, \
            anthropic.Anthropic(api_key=KEY, base_url=emu.url) as http_client:
        ratio_http = pass_through(http_client, rounds=8, per_round=40)
        local = in_process_client()
        ratio_local = pass_through(local, rounds=8, per_round=300)
        print(f"pass-through, patched / unpatched (median, first arm alternating): over HTTP "
              f"{ratio_http:.3f}, in-process transport {ratio_local:.3f}")
        live = median_seconds(lambda: local.messages.create(**params(0)), 300)
        print(f"for scale: one live call through the SDK, in-process transport, {live * 1e6:.0f} us")
        print(f"enqueue one deferred call: async {enqueue_async(emu, args.calls) * 1e6:.0f} us")
        per_sync, peak = enqueue_sync(emu, args.calls)
        print(f"enqueue one deferred call: sync {per_sync * 1e6:.0f} us; "
              f"peak memory of {args.calls:,} pending sync calls {peak:.1f} MiB")
        figures = end_to_end(emu, args.calls, args.rounds)
    shim, manual = statistics.median(figures["deferred"]), statistics.median(figures["hand"])
    print(f"{args.calls:,} async calls end to end, {args.rounds} rounds (first arm alternating), "
          f"medians:")
    print(f"  @deferrable {shim:.2f} s (rounds {', '.join(f'{s:.2f}' for s in figures['deferred'])};"
          f" batches per round {[int(b) for b in figures['deferred batches']]})")
    print(f"  hand-written pipeline {manual:.2f} s (rounds "
          f"{', '.join(f'{s:.2f}' for s in figures['hand'])}; batches per round "
          f"{[int(b) for b in figures['hand batches']]})")
    shim_cpu = statistics.median(figures["deferred cpu"])
    manual_cpu = statistics.median(figures["hand cpu"])
    print(f"  ratio @deferrable / hand-written: wall {shim / manual:.2f}; client CPU "
          f"{shim_cpu:.2f} s / {manual_cpu:.2f} s = {shim_cpu / manual_cpu:.2f}")


if __name__ == "__main__":
    main()
