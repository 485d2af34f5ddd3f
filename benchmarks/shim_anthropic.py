"""What the Anthropic shim costs, measured side by side in one run against the emulator.

1. Pass-through overhead: a patched call outside any scope vs the unpatched call (ratio of
   medians, interleaved rounds), over real HTTP and over an in-process transport that
   removes the network so the wrapper's own cost shows.
2. Time to enqueue one deferred call (async: the coroutine's creation and submission;
   sync: the `@deferrable` call that returns a Deferred).
3. 10,000 async deferred calls end to end vs the hand-written batch pipeline doing the
   same work on the same emulator (ratio of wall times).
4. Peak memory of 10,000 pending sync calls (tracemalloc).

Run: python benchmarks/shim_anthropic.py [--calls 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import anthropic
import httpx2

import deferrable
from deferrable.emulator import Emulator

KEY = "benchmark-dummy-key"
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
    """Median patched / median unpatched, interleaving the two in `rounds`."""
    patched: list[float] = []
    plain: list[float] = []
    for _ in range(rounds):
        deferrable.unpatch()
        plain.append(median_seconds(lambda: client.messages.create(**params(0)), per_round))
        deferrable.patch()
        patched.append(median_seconds(lambda: client.messages.create(**params(0)), per_round))
    deferrable.unpatch()
    return statistics.median(patched) / statistics.median(plain)


def in_process_client() -> anthropic.Anthropic:
    """A client whose transport answers in-process: the call minus the network."""
    body = json.dumps(MESSAGE).encode()
    transport = httpx2.MockTransport(
        lambda request: httpx2.Response(200, content=body,
                                        headers={"content-type": "application/json"}))
    return anthropic.Anthropic(api_key=KEY, base_url="http://in-process.invalid",
                               http_client=httpx2.Client(transport=transport))


def enqueue_async(emu: Emulator, count: int) -> float:
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


def enqueue_sync(emu: Emulator, count: int) -> tuple[float, float]:
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


def deferred_end_to_end(emu: Emulator, count: int) -> float:
    """Wall seconds for `count` gathered @deferrable async calls."""
    client = anthropic.AsyncAnthropic(api_key=KEY, base_url=emu.url)

    @deferrable.deferrable(poll_interval=0.2)
    async def ask(i: int) -> str:
        block = (await client.messages.create(**params(i))).content[0]
        return block.text if block.type == "text" else ""

    async def run() -> list[str]:
        return await asyncio.gather(*(ask(i) for i in range(count)))

    started = time.perf_counter()
    labels = asyncio.run(run())
    assert labels == ["positive"] * count
    return time.perf_counter() - started


def hand_written(emu: Emulator, count: int) -> float:
    """Wall seconds for the same work as a hand-written create / poll / results pipeline."""
    started = time.perf_counter()
    with anthropic.Anthropic(api_key=KEY, base_url=emu.url) as client:
        batch = client.messages.batches.create(
            requests=[{"custom_id": f"r{i}", "params": params(i)}  # type: ignore[misc]
                      for i in range(count)])
        time.sleep(0.2)
        while client.messages.batches.retrieve(batch.id).processing_status != "ended":
            time.sleep(0.2)
        labels = {r.custom_id: r.result.message.content[0]
                  for r in client.messages.batches.results(batch.id)
                  if r.result.type == "succeeded"}
    assert len(labels) == count
    return time.perf_counter() - started


def main() -> None:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    with Emulator() as emu, anthropic.Anthropic(api_key=KEY, base_url=emu.url) as http_client:
        ratio_http = pass_through(http_client, rounds=7, per_round=40)
        local = in_process_client()
        ratio_local = pass_through(local, rounds=7, per_round=300)
        print(f"pass-through, patched / unpatched (median): over HTTP {ratio_http:.3f}, "
              f"in-process transport {ratio_local:.3f}")
        live = median_seconds(lambda: local.messages.create(**params(0)), 300)
        print(f"for scale: one live call through the SDK, in-process transport, {live * 1e6:.0f} us")
        print(f"enqueue one deferred call: async {enqueue_async(emu, args.calls) * 1e6:.0f} us")
        per_sync, peak = enqueue_sync(emu, args.calls)
        print(f"enqueue one deferred call: sync {per_sync * 1e6:.0f} us; "
              f"peak memory of {args.calls:,} pending sync calls {peak:.1f} MiB")
        emu.reset_stats()
        shim = deferred_end_to_end(emu, args.calls)
        batches = emu.stats()["requests"].get("POST /v1/messages/batches", 0)
        manual = hand_written(emu, args.calls)
        print(f"{args.calls:,} async calls end to end: @deferrable {shim:.2f} s "
              f"({batches} batches), hand-written pipeline {manual:.2f} s, "
              f"ratio {shim / manual:.2f}")


if __name__ == "__main__":
    main()
