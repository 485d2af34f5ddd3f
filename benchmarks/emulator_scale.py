"""The emulator at the providers' batch limits: a 100,000-request Anthropic batch and a
50,000-line OpenAI batch, end to end (create, end, stream every result), through the
official SDKs.

The emulator runs in its own process (`deferrable emulator --port 0`), so its peak memory
is measured apart from the client's. Run:

    python benchmarks/emulator_scale.py [--anthropic N] [--openai N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anthropic
import openai

KEY = "benchmark-dummy-key"


@contextmanager
def emulator_process() -> Iterator[tuple[str, int]]:
    """(url, pid) of `deferrable emulator` running in a child process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "deferrable", "emulator", "--port", "0", "--batch-latency", "0"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        url = line.split(" listening on ")[1].split()[0]
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)


def peak_rss_mib(pid: int) -> float:
    """The high-water mark of a live process's resident memory (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def anthropic_batch(url: str, count: int) -> dict[str, float]:
    """Create one `count`-request batch, wait for its end, stream its results."""
    with anthropic.Anthropic(api_key=KEY, base_url=url, timeout=600) as client:
        requests = [{"custom_id": f"r{i}", "params": {
            "model": "claude-haiku-4-5", "max_tokens": 20,
            "messages": [{"role": "user", "content": f"Sentiment of review {i}: great, works well"}]}}
            for i in range(count)]
        started = time.perf_counter()
        batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
        created = time.perf_counter()
        del requests
        while client.messages.batches.retrieve(batch.id).processing_status != "ended":
            time.sleep(0.1)
        ended = time.perf_counter()
        succeeded = sum(r.result.type == "succeeded" for r in client.messages.batches.results(batch.id))
        streamed = time.perf_counter()
    assert succeeded == count, f"{succeeded} of {count} succeeded"
    return {"create_s": created - started, "end_s": ended - created,
            "stream_s": streamed - ended, "total_s": streamed - started}


def openai_batch(url: str, count: int) -> dict[str, float]:
    """Write and upload a `count`-line JSONL, run the batch, stream its output file."""
    with tempfile.TemporaryDirectory() as directory, \
            openai.OpenAI(api_key=KEY, base_url=url + "/v1", timeout=600) as client:
        path = Path(directory) / "requests.jsonl"
        started = time.perf_counter()
        with path.open("w") as out:
            for i in range(count):
                out.write(json.dumps({"custom_id": f"r{i}", "method": "POST",
                                      "url": "/v1/chat/completions", "body": {
                                          "model": "gpt-6.2-sol", "max_completion_tokens": 20,
                                          "messages": [{"role": "user",
                                                        "content": f"Sentiment of review {i}: great"}]}}))
                out.write("\n")
        with path.open("rb") as upload:
            file = client.files.create(file=upload, purpose="batch")
        batch = client.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions",
                                      completion_window="24h")
        created = time.perf_counter()
        while (batch := client.batches.retrieve(batch.id)).status not in (
                "completed", "failed", "expired", "cancelled"):
            time.sleep(0.1)
        ended = time.perf_counter()
        assert batch.status == "completed", batch.errors
        assert batch.output_file_id is not None
        lines = 0
        with client.files.with_streaming_response.content(batch.output_file_id) as response:
            for _ in response.iter_lines():
                lines += 1
        streamed = time.perf_counter()
    assert lines == count, f"{lines} of {count} output lines"
    return {"create_s": created - started, "end_s": ended - created,
            "stream_s": streamed - ended, "total_s": streamed - started}


def main() -> None:
    """Run both batches against one emulator process and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anthropic", type=int, default=100_000, metavar="N")
    parser.add_argument("--openai", type=int, default=50_000, metavar="N")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with emulator_process() as (url, pid):
        for name, run, count in (("anthropic", anthropic_batch, args.anthropic),
                                 ("openai", openai_batch, args.openai)):
            if count <= 0:
                continue
            figures = run(url, count)
            print(f"{name:9} {count:>7,} requests: " + ", ".join(
                f"{key} {value:6.2f}" for key, value in figures.items())
                + f"; emulator peak RSS so far {peak_rss_mib(pid):.0f} MiB")
        client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"client peak RSS {client_peak:.0f} MiB (it builds the 100,000 requests in memory)")


if __name__ == "__main__":
    main()
