"""What the OpenAI shim costs, measured side by side in one run against the emulator (the
twin of shim_anthropic.py).

1. Pass-through overhead of a patched `chat.completions.create` outside any scope vs the
   unpatched call (ratio of medians), over an in-process transport so that the wrapper's
   own cost shows; the arm measured first alternates from round to round.
2. Time to enqueue one deferred async call (median over the rounds of part 3).
3. N async deferred chat calls end to end vs the hand-written Files + Batches pipeline
   doing the same work on the same emulator, both ending with the same product: N
   `openai.types.chat.ChatCompletion` objects in request order (the hand-written arm builds
   each from its output line's response body as the SDK builds a response,
   `ChatCompletion.construct`, i.e. without validation). Both arms send one batch (the
   deferred one with `max_batch_size=N` and a long `max_wait`, so the size threshold sends
   it); the batches of each arm are printed. Rounds alternate which arm goes first; the
   ratios are of median wall times and of median CPU times of this process (the
   client's work alone; the emulator's runs in its own process).

The emulator runs in its own process on 127.0.0.1 (`deferrable emulator`, batches end at
once); the journal is a temporary store, removed at the end; the progress display is off.
Run:

    python benchmarks/shim_openai.py [--calls 10000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletion

import deferrable
from _support import KEY, EmulatorProcess, emulator_process, temporary_store

MODEL = "gpt-6.2-sol"
BATCHES = "POST /v1/batches"
COMPLETION = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": MODEL,
              "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                           "message": {"role": "assistant", "content": "positive",
                                       "refusal": None}}],
              "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}


def params(i: int) -> dict[str, Any]:
    """A small sentiment request."""
    return {"model": MODEL, "max_completion_tokens": 5,
            "messages": [{"role": "user", "content": f"Sentiment of review {i}: great"}]}


def pass_through(rounds: int = 8, per_round: int = 300) -> float:
    """Median patched / median unpatched over an in-process transport; the arm measured
    first alternates between rounds."""
    body = json.dumps(COMPLETION).encode()
    transport = httpx2.MockTransport(lambda request: httpx2.Response(
        200, content=body, headers={"content-type": "application/json"}))
    client = openai.OpenAI(api_key=KEY, base_url="http://in-process.invalid/v1",
                           http_client=httpx2.Client(transport=transport))

    def median_of_round() -> float:
        times = []
        for _ in range(per_round):
            started = time.perf_counter()
            client.chat.completions.create(**params(0))
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    arms: dict[str, tuple[Callable[[], None], list[float]]] = {
        "plain": (deferrable.unpatch, []), "patched": (deferrable.patch, [])}
    names = list(arms)
    for index in range(rounds):
        for name in names[index % 2:] + names[:index % 2]:
            switch, medians = arms[name]
            switch()
            medians.append(median_of_round())
    deferrable.unpatch()
    return statistics.median(arms["patched"][1]) / statistics.median(arms["plain"][1])


def check(answers: list[ChatCompletion], count: int) -> None:
    """Both arms end with `count` ChatCompletion objects saying "positive"."""
    assert len(answers) == count
    assert all(isinstance(a, ChatCompletion) and a.choices[0].message.content == "positive"
               for a in answers)


def deferred(emu: EmulatorProcess, count: int) -> tuple[float, float]:
    """(seconds per enqueued call, wall seconds) for `count` gathered deferred calls, sent
    as one batch."""

    async def run() -> tuple[float, float]:
        async with openai.AsyncOpenAI(api_key=KEY, base_url=emu.openai_url) as client:
            await client.chat.completions.create(**params(0))  # its first call yields once more
            async with deferrable.scope(poll_interval=0.2, max_batch_size=count, max_wait=3600):
                return await gathered(client)

    async def gathered(client: openai.AsyncOpenAI) -> tuple[float, float]:
        started = time.perf_counter()
        calls = [asyncio.ensure_future(client.chat.completions.create(**params(i)))
                 for i in range(count)]
        await asyncio.sleep(0)
        enqueued = time.perf_counter() - started
        answers = await asyncio.gather(*calls)
        elapsed = time.perf_counter() - started
        check(answers, count)
        return enqueued / count, elapsed

    return asyncio.run(run())


def hand_written(emu: EmulatorProcess, count: int) -> float:
    """Wall seconds for the same work written by hand: JSONL, upload, batch, poll, read the
    output file and build a ChatCompletion per line, in request order."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as directory, \
            openai.OpenAI(api_key=KEY, base_url=emu.openai_url) as client:
        path = Path(directory) / "requests.jsonl"
        with path.open("w") as out:
            for i in range(count):
                out.write(json.dumps({"custom_id": f"r{i}", "method": "POST",
                                      "url": "/v1/chat/completions", "body": params(i)}) + "\n")
        with path.open("rb") as upload:
            file = client.files.create(file=upload, purpose="batch")
        batch = client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        time.sleep(0.2)
        while (batch := client.batches.retrieve(batch.id)).status != "completed":
            time.sleep(0.2)
        assert batch.output_file_id is not None
        by_id: dict[str, ChatCompletion] = {}
        for line in client.files.content(batch.output_file_id).text.splitlines():
            record = json.loads(line)
            by_id[record["custom_id"]] = ChatCompletion.construct(**record["response"]["body"])
        answers = [by_id[f"r{i}"] for i in range(count)]
        for file_id in (file.id, batch.output_file_id):
            client.files.delete(file_id)
    elapsed = time.perf_counter() - started
    check(answers, count)
    return elapsed


def end_to_end(emu: EmulatorProcess, count: int, rounds: int) -> dict[str, list[float]]:
    """Both arms `rounds` times, the first arm alternating: wall seconds, this process's CPU
    seconds, enqueue seconds per call and batches created, by arm."""
    figures: dict[str, list[float]] = {}
    arms = ["deferred", "hand"]
    for index in range(rounds):
        for arm in arms[index % 2:] + arms[:index % 2]:
            before = emu.requests(BATCHES)
            gc.collect()
            cpu = time.process_time()
            if arm == "deferred":
                per_call, wall = deferred(emu, count)
                figures.setdefault("enqueue", []).append(per_call)
            else:
                wall = hand_written(emu, count)
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
    with temporary_store(), emulator_process() as emu:
        print(f"pass-through, patched / unpatched (median), in-process transport: "
              f"{pass_through():.3f}")
        figures = end_to_end(emu, args.calls, args.rounds)
    shim, manual = statistics.median(figures["deferred"]), statistics.median(figures["hand"])
    print(f"enqueue one deferred async call: {statistics.median(figures['enqueue']) * 1e6:.0f} us")
    print(f"{args.calls:,} async chat calls end to end, each arm ending with {args.calls:,} "
          f"ChatCompletion objects, {args.rounds} rounds (first arm alternating), medians:")
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
