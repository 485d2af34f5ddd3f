"""The emulator at the providers' batch limits: a 100,000-request Anthropic batch and a
50,000-line OpenAI batch, end to end (create, end, stream every result), through the
official SDKs.

Phases, in seconds, measured the same way for both providers:

- create_s: create the batch (OpenAI: write the JSONL file, upload it, create the batch;
  Anthropic: send the request list, built beforehand);
- end_s: poll until the batch has ended;
- stream_raw_s: read every line of the results stream, as bytes, building nothing
  (`with_streaming_response` + `iter_lines()`, Anthropic's results and OpenAI's output
  file alike);
- total_s: create_s + end_s + stream_raw_s;
- stream_objects_s, apart: read the same stream again and build the SDK's objects for
  every line: Anthropic's `messages.batches.results()` (a `MessageBatchIndividualResponse`
  holding a `Message` per line); OpenAI's SDK has no results reader, so each line is
  decoded and its response body built into a `ChatCompletion` the way the SDK builds a
  response (`ChatCompletion.construct`, no validation).

The emulator runs in its own process (`deferrable emulator` on 127.0.0.1, batches end at
once), so its peak memory is measured apart from the client's. Run:

    python benchmarks/emulator_scale.py [--anthropic N] [--openai N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import anthropic
import openai
from openai.types.chat import ChatCompletion

from _support import KEY, emulator_process


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
        lines = 0
        with client.messages.batches.with_streaming_response.results(batch.id) as response:
            for line in response.iter_lines():
                lines += bool(line)
        streamed = time.perf_counter()
        succeeded = sum(r.result.type == "succeeded" for r in client.messages.batches.results(batch.id))
        built = time.perf_counter()
    assert lines == count, f"{lines} of {count} result lines"
    assert succeeded == count, f"{succeeded} of {count} succeeded"
    return {"create_s": created - started, "end_s": ended - created,
            "stream_raw_s": streamed - ended, "total_s": streamed - started,
            "stream_objects_s": built - streamed}


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
            for line in response.iter_lines():
                lines += bool(line)
        streamed = time.perf_counter()
        succeeded = 0
        with client.files.with_streaming_response.content(batch.output_file_id) as response:
            for line in response.iter_lines():
                if line:
                    body = json.loads(line)["response"]["body"]
                    succeeded += bool(ChatCompletion.construct(**body).choices)
        built = time.perf_counter()
    assert lines == count, f"{lines} of {count} output lines"
    assert succeeded == count, f"{succeeded} of {count} succeeded"
    return {"create_s": created - started, "end_s": ended - created,
            "stream_raw_s": streamed - ended, "total_s": streamed - started,
            "stream_objects_s": built - streamed}


def main() -> None:
    """Run both batches against one emulator process and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--anthropic", type=int, default=100_000, metavar="N")
    parser.add_argument("--openai", type=int, default=50_000, metavar="N")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    with emulator_process() as emulator:
        for name, run, count in (("anthropic", anthropic_batch, args.anthropic),
                                 ("openai", openai_batch, args.openai)):
            if count <= 0:
                continue
            figures = run(emulator.url, count)
            print(f"{name:9} {count:>7,} requests: " + ", ".join(
                f"{key} {value:6.2f}" for key, value in figures.items())
                + f"; emulator peak RSS so far {emulator.peak_rss_mib():.0f} MiB")
        client_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"client peak RSS {client_peak:.0f} MiB (it builds the {args.anthropic:,} Anthropic "
              "requests in memory)")


if __name__ == "__main__":
    main()
