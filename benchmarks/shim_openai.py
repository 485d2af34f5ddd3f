"""What the OpenAI shim costs, measured side by side in one run against the emulator (the
twin of shim_anthropic.py).

1. Pass-through overhead of a patched `chat.completions.create` outside any scope vs the
   unpatched call (ratio of medians, interleaved), over an in-process transport so that the
   wrapper's own cost shows.
2. Time to enqueue one deferred async call.
3. N async deferred chat calls end to end vs the hand-written Files + Batches pipeline
   doing the same work on the same emulator (ratio of wall times).

Run: python benchmarks/shim_openai.py [--calls 10000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import openai

import deferrable
from deferrable.emulator import Emulator

KEY = "benchmark-dummy-key"
MODEL = "gpt-6.2-sol"
COMPLETION = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": MODEL,
              "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                           "message": {"role": "assistant", "content": "positive",
                                       "refusal": None}}],
              "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11}}


def params(i: int) -> dict[str, Any]:
    """A small sentiment request."""
    return {"model": MODEL, "max_completion_tokens": 5,
            "messages": [{"role": "user", "content": f"Sentiment of review {i}: great"}]}


def pass_through(rounds: int = 7, per_round: int = 300) -> float:
    """Median patched / median unpatched over an in-process transport."""
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

    patched, plain = [], []
    for _ in range(rounds):
        deferrable.unpatch()
        plain.append(median_of_round())
        deferrable.patch()
        patched.append(median_of_round())
    deferrable.unpatch()
    return statistics.median(patched) / statistics.median(plain)


def deferred(emu: Emulator, count: int) -> tuple[float, float]:
    """(seconds per enqueued call, wall seconds) for `count` gathered deferred calls."""

    async def run() -> tuple[float, float]:
        async with openai.AsyncOpenAI(api_key=KEY, base_url=emu.openai_url) as client:
            await client.chat.completions.create(**params(0))  # its first call yields once more
            async with deferrable.scope(poll_interval=0.2):
                return await gathered(client)

    async def gathered(client: openai.AsyncOpenAI) -> tuple[float, float]:
        started = time.perf_counter()
        calls = [asyncio.ensure_future(client.chat.completions.create(**params(i)))
                 for i in range(count)]
        await asyncio.sleep(0)
        enqueued = time.perf_counter() - started
        answers = await asyncio.gather(*calls)
        assert all(a.choices[0].message.content == "positive" for a in answers)
        return enqueued / count, time.perf_counter() - started

    return asyncio.run(run())


def hand_written(emu: Emulator, count: int) -> float:
    """Wall seconds for the same work written by hand: JSONL, upload, batch, poll, read."""
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
        answers = [json.loads(line) for line in
                   client.files.content(batch.output_file_id).text.splitlines()]
        for file_id in (file.id, batch.output_file_id):
            client.files.delete(file_id)
    assert len(answers) == count
    return time.perf_counter() - started


def main() -> None:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000)
    args = parser.parse_args()
    print(f"pass-through, patched / unpatched (median), in-process transport: "
          f"{pass_through():.3f}")
    with Emulator() as emu:
        per_call, shim = deferred(emu, args.calls)
        batches = emu.stats()["requests"].get("POST /v1/batches", 0)
        manual = hand_written(emu, args.calls)
    print(f"enqueue one deferred async call: {per_call * 1e6:.0f} us")
    print(f"{args.calls:,} async chat calls end to end: @deferrable {shim:.2f} s ({batches} "
          f"batches), hand-written pipeline {manual:.2f} s, ratio {shim / manual:.2f}")


if __name__ == "__main__":
    main()
