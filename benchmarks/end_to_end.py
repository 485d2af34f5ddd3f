"""The deferred path end to end against the hand-written Batch API pipeline, one process per run.

An emulator (``python -m deferrable emulator --batch-latency 0``, started and stopped by
``_support.emulator_process``) serves both providers in a process of its own on 127.0.0.1.
Every measured run is a fresh child process (this script in its hidden ``--child`` mode)
that makes N calls and reports, over the span from just before its first call to all N
results in hand: wall seconds, CPU seconds (user + sys, every thread), GC seconds
(``gc.callbacks``), HTTP requests and batches created (counted at the httpx2 transports,
which every client of the process sends through: deferrable sends its batch calls on a
client of its own, which a hook on the caller's client would miss); and its peak RSS
(``ru_maxrss``, imports included: a deferred run imports both SDKs). The child checks that
it holds N results of the SDK's own type (``anthropic.types.Message`` /
``openai.types.chat.ChatCompletion``) and exits nonzero otherwise; the parent checks that
every run got the same answers, in call order, as its hand-written baseline. ``--json``
also records the RSS when the span began and what the emulator served each child over its
whole life (file deletions at exit included).

Workloads (N calls each; ratios against the baseline and the SDK floor of the same round):

- ``async``: ``@deferrable`` coroutines on ``AsyncAnthropic``, gathered; journal on,
  ``max_wait=1`` (the buffer's deliberate wait is part of the wall time).
- ``async-nojournal``: the same, journal off, ``max_wait=0.05``.
- ``sync``: ``@deferrable`` functions on ``Anthropic`` returning Deferred futures, then
  ``.result()`` on each; journal on, ``max_wait=1``.
- ``openai``: ``chat.completions.create`` deferred on ``AsyncOpenAI``; journal on,
  ``max_wait=1``, at most 50,000 requests a batch.
- ``rerun``: ``async`` again on the journal of an earlier ``async`` run (results served
  from the journal); also shown as a ratio against that round's ``async`` run.

Baselines (unpatched SDKs; the child never imports deferrable): ``hand-anthropic`` creates
Message Batches of the N requests, polls each until it has ended and reads its results
into a list in call order; ``hand-openai`` uploads the JSONL, creates the batches, polls,
downloads the output files and builds a ChatCompletion per line. Deferred runs poll on the
same fixed 0.05 s cadence as the baselines (``poll_interval = max_poll_interval = 0.05``),
so that wall-time ratios compare work, not polling schedules.

SDK floors (``sdk-anthropic``, ``sdk-openai``): the same N calls made live through the
unpatched async SDK (``AsyncAnthropic.messages.create`` / ``AsyncOpenAI.chat.completions
.create``, N coroutines gathered on a fresh client, as in the deferred runs; for the
``sync`` workload ``sdk-anthropic-sync``, N ``Anthropic.messages.create`` calls in turn,
since the sync SDK's own cost per call differs from the async one's), sent to an
in-process ``httpx2.MockTransport``: no server, no network, no batch. Its handler counts
and answers each request at once with a 200 body shaped as the emulator's live answer (a Message / a
ChatCompletion, usage included) and the text the emulator's default responder gives that
prompt, so that the answer check holds for these runs too. What such a run costs is what
the SDK itself costs per call: building each request, parsing each answer into SDK objects.
Deferrable lets the SDK build each request and each result of a deferred call, so this is
the floor of any faithful deferred call; a deferred run's ``wall/SDK`` and ``CPU/SDK``
ratios say how far above that floor it lands (its own work, the journal, the batch round
trips, the deliberate waits). The handler's own work (reading the request, answering) is
counted in the floor, and shown apart in the table (``handler_s`` in ``--json``). The floor
child imports ``deferrable.emulator`` for the responder (its peak RSS includes deferrable's
imports) and exits nonzero if anything patched an SDK method.

Each round runs every arm once, the order rotated by one each round (after one small
unmeasured run of each hand-written baseline to warm the emulator); the journal of each
deferred run is a fresh temporary directory (``DEFERRABLE_STORE``), removed after the round.

The table gives, per deferred workload, five ratios against the runs of the same round
(wall, CPU and peak RSS against its hand-written baseline; wall and CPU against its
provider's SDK floor), each as ``median±spread`` over rounds, the spread being max - min
(``1.84±0.12``: median 1.84, every round between some x and x + 0.12; one round shows
its ratio alone); then the medians of its absolute figures. The baselines and floors are
listed with their absolute medians.

Run:
    python benchmarks/end_to_end.py --calls 10000
    python benchmarks/end_to_end.py --calls 100000 --rounds 1
    python benchmarks/end_to_end.py --workloads async,rerun --json results.json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import itertools
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from _support import KEY, EmulatorProcess, emulator_process

if TYPE_CHECKING:
    import httpx2

POLL = 0.05
"""Seconds between polls, the baselines' and the deferred runs' alike."""
ANTHROPIC_BATCH_CAP = 100_000
OPENAI_BATCH_CAP = 50_000
DEFERRED_COMMON: dict[str, Any] = {"poll_interval": POLL, "max_poll_interval": POLL,
                                   "progress": False}


@dataclass(frozen=True)
class Arm:
    """One thing measured: a deferred workload, a hand-written baseline or an SDK floor."""

    name: str
    provider: str
    kind: str
    """``"deferred"``, ``"hand"`` (a hand-written baseline) or ``"sdk"`` (an SDK floor)."""
    options: dict[str, Any] | None = None
    """The `@deferrable` options of a deferred workload."""
    sync: bool = False
    """Whether its calls are the sync SDK's (its SDK floor is then the sync one)."""

    @property
    def baseline(self) -> str:
        """The hand-written baseline of its provider (ratios, answer check)."""
        return f"hand-{self.provider}"

    @property
    def floor(self) -> str:
        """The SDK floor of its provider (and kind of call, sync or async)."""
        return f"sdk-{self.provider}-sync" if self.sync else f"sdk-{self.provider}"


WORKLOADS = {arm.name: arm for arm in (
    Arm("async", "anthropic", "deferred",
        {"max_wait": 1.0, "max_batch_size": ANTHROPIC_BATCH_CAP, "journal": True}),
    Arm("async-nojournal", "anthropic", "deferred",
        {"max_wait": 0.05, "max_batch_size": ANTHROPIC_BATCH_CAP, "journal": False}),
    Arm("sync", "anthropic", "deferred",
        {"max_wait": 1.0, "max_batch_size": ANTHROPIC_BATCH_CAP, "journal": True}, sync=True),
    Arm("openai", "openai", "deferred",
        {"max_wait": 1.0, "max_batch_size": OPENAI_BATCH_CAP, "journal": True}),
    Arm("rerun", "anthropic", "deferred",
        {"max_wait": 1.0, "max_batch_size": ANTHROPIC_BATCH_CAP, "journal": True}),
)}
BASELINES = {arm.name: arm for arm in (Arm("hand-anthropic", "anthropic", "hand"),
                                       Arm("hand-openai", "openai", "hand"))}
FLOORS = {arm.name: arm for arm in (Arm("sdk-anthropic", "anthropic", "sdk"),
                                    Arm("sdk-anthropic-sync", "anthropic", "sdk", sync=True),
                                    Arm("sdk-openai", "openai", "sdk"))}
ARMS = {**WORKLOADS, **BASELINES, **FLOORS}


# -- the child: one measured run -----------------------------------------------------------

def anthropic_params(i: int) -> dict[str, Any]:
    """The Messages request of call `i`."""
    return {"model": "claude-haiku-4-5", "max_tokens": 5,
            "messages": [{"role": "user", "content": f"Sentiment of review {i}: great"}]}


def openai_params(i: int) -> dict[str, Any]:
    """The Chat Completions request of call `i`."""
    return {"model": "gpt-4o-mini", "max_tokens": 5,
            "messages": [{"role": "user", "content": f"Sentiment of review {i}: great"}]}


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_mib() -> float:
    """This process's peak resident memory so far (``ru_maxrss``), in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resident_mib() -> float:
    """This process's resident memory now (VmRSS), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Meter:
    """What one run costs: the measured span's wall, CPU and GC seconds, and the HTTP
    requests and batch creations that every httpx2 transport of the process sends in it."""

    BATCH_CREATES = frozenset({"/v1/messages/batches", "/v1/batches"})

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.batches = 0
        self._gc_seconds = 0.0
        self._gc_started = 0.0
        self._started = self._cpu = self._rss_start = 0.0
        self.handler_seconds = 0.0
        """Seconds spent in an SDK floor's in-process handler (0 elsewhere)."""
        self.figures: dict[str, float] = {}

    def saw(self, method: str, path: str, status: int) -> None:
        """Count one HTTP exchange (a 2xx batch create counts as a batch)."""
        with self._lock:
            self.requests += 1
            if method == "POST" and path in self.BATCH_CREATES and 200 <= status < 300:
                self.batches += 1

    def _on_gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif phase == "stop":
            self._gc_seconds += time.perf_counter() - self._gc_started

    def start(self) -> None:
        """Just before the first call: zero the counters and start the clocks."""
        with self._lock:
            self.requests = self.batches = 0
        self._gc_seconds = self.handler_seconds = 0.0
        gc.callbacks.append(self._on_gc)
        self._rss_start = resident_mib()
        self._cpu = cpu_seconds()
        self._started = time.perf_counter()

    def stop(self) -> None:
        """With every result in hand: read the clocks and counters."""
        wall = time.perf_counter() - self._started
        cpu = cpu_seconds() - self._cpu
        gc.callbacks.remove(self._on_gc)
        with self._lock:
            self.figures = {"wall_s": wall, "cpu_s": cpu, "gc_s": self._gc_seconds,
                            "http_requests": self.requests, "batches": self.batches,
                            "rss_mib": peak_mib(), "rss_at_start_mib": self._rss_start,
                            "handler_s": self.handler_seconds}


def count_http(meter: Meter) -> None:
    """Make every httpx2 transport of this process report its exchanges to `meter`."""
    import httpx2

    sync_send = httpx2.HTTPTransport.handle_request
    async_send = httpx2.AsyncHTTPTransport.handle_async_request

    def handle_request(self: httpx2.HTTPTransport, request: httpx2.Request) -> httpx2.Response:
        response = sync_send(self, request)
        meter.saw(request.method, request.url.path, response.status_code)
        return response

    async def handle_async_request(self: httpx2.AsyncHTTPTransport,
                                   request: httpx2.Request) -> httpx2.Response:
        response = await async_send(self, request)
        meter.saw(request.method, request.url.path, response.status_code)
        return response

    httpx2.HTTPTransport.handle_request = handle_request  # type: ignore[method-assign]
    httpx2.AsyncHTTPTransport.handle_async_request = handle_async_request  # type: ignore[method-assign]


def spans(total: int, size: int) -> list[range]:
    """`range(total)` cut into consecutive ranges of at most `size`."""
    return [range(start, min(start + size, total)) for start in range(0, total, size)]


def index_of(custom_id: str) -> int:
    """The call number a baseline put in a custom_id (``r17`` -> 17)."""
    return int(custom_id[1:])


async def hand_anthropic(calls: int, url: str, meter: Meter, options: dict[str, Any]) -> list[Any]:
    """The hand-written Message Batches pipeline: create, poll, read results in call order
    (`options` are deferrable's, unused here)."""
    import anthropic

    async def one_batch(client: anthropic.AsyncAnthropic, part: range) -> None:
        batch = await client.messages.batches.create(
            requests=[{"custom_id": f"r{i}", "params": anthropic_params(i)}  # type: ignore[misc]
                      for i in part])
        while True:
            await asyncio.sleep(POLL)
            batch = await client.messages.batches.retrieve(batch.id)
            if batch.processing_status == "ended":
                break
        async for item in await client.messages.batches.results(batch.id):
            if item.result.type != "succeeded":
                raise RuntimeError(f"{item.custom_id}: {item.result.type}")
            results[index_of(item.custom_id)] = item.result.message

    results: list[Any] = [None] * calls
    async with anthropic.AsyncAnthropic(api_key=KEY, base_url=url) as client:
        meter.start()
        await asyncio.gather(*(one_batch(client, part)
                               for part in spans(calls, ANTHROPIC_BATCH_CAP)))
        meter.stop()
    return results


async def hand_openai(calls: int, url: str, meter: Meter, options: dict[str, Any]) -> list[Any]:
    """The hand-written Files + Batches pipeline: upload, create, poll, download, build
    a ChatCompletion per output line, in call order."""
    import openai
    from openai.types.chat import ChatCompletion

    async def one_batch(client: openai.AsyncOpenAI, part: range) -> None:
        lines = "".join(json.dumps({"custom_id": f"r{i}", "method": "POST",
                                    "url": "/v1/chat/completions", "body": openai_params(i)}) + "\n"
                        for i in part)
        upload = await client.files.create(file=("requests.jsonl", lines.encode()), purpose="batch")
        batch = await client.batches.create(input_file_id=upload.id, completion_window="24h",
                                            endpoint="/v1/chat/completions")
        while batch.status not in ("completed", "failed", "expired", "cancelled"):
            await asyncio.sleep(POLL)
            batch = await client.batches.retrieve(batch.id)
        if batch.status != "completed" or batch.output_file_id is None:
            raise RuntimeError(f"batch {batch.id} {batch.status}")
        output = await client.files.content(batch.output_file_id)
        for line in output.text.splitlines():
            record = json.loads(line)
            response = record["response"]
            if response is None or response["status_code"] != 200:
                raise RuntimeError(f"{record['custom_id']}: {record.get('error') or response}")
            results[index_of(record["custom_id"])] = ChatCompletion.model_construct(**response["body"])

    results: list[Any] = [None] * calls
    async with openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/v1") as client:
        meter.start()
        await asyncio.gather(*(one_batch(client, part) for part in spans(calls, OPENAI_BATCH_CAP)))
        meter.stop()
    return results


async def deferred_anthropic(calls: int, url: str, meter: Meter, options: dict[str, Any]) -> list[Any]:
    """N `@deferrable` coroutines on AsyncAnthropic, gathered."""
    import anthropic

    from deferrable import deferrable

    async with anthropic.AsyncAnthropic(api_key=KEY, base_url=url) as client:

        @deferrable(**options)
        async def ask(i: int) -> anthropic.types.Message:
            return await client.messages.create(**anthropic_params(i))

        meter.start()
        results = await asyncio.gather(*(ask(i) for i in range(calls)))
        meter.stop()
    return results


async def deferred_openai(calls: int, url: str, meter: Meter, options: dict[str, Any]) -> list[Any]:
    """N `@deferrable` coroutines on AsyncOpenAI, gathered."""
    import openai
    from openai.types.chat import ChatCompletion

    from deferrable import deferrable

    async with openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/v1") as client:

        @deferrable(**options)
        async def ask(i: int) -> ChatCompletion:
            return await client.chat.completions.create(**openai_params(i))

        meter.start()
        results = await asyncio.gather(*(ask(i) for i in range(calls)))
        meter.stop()
    return results


def deferred_sync(calls: int, url: str, meter: Meter, options: dict[str, Any]) -> list[Any]:
    """N sync `@deferrable` calls on Anthropic (each a Deferred at once), then `.result()`."""
    import anthropic

    from deferrable import deferrable

    with anthropic.Anthropic(api_key=KEY, base_url=url) as client:

        @deferrable(**options)
        def ask(i: int) -> anthropic.types.Message:
            return client.messages.create(**anthropic_params(i))

        meter.start()
        futures = [ask(i) for i in range(calls)]
        results = [future.result() for future in futures]
        meter.stop()
    return results


LIVE_PATHS = {"anthropic": "/v1/messages", "openai": "/v1/chat/completions"}
"""The route each SDK floor's calls take."""


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or the text of its text blocks."""
    if isinstance(content, str):
        return content
    return "\n".join(str(block.get("text", "")) for block in content if block.get("type") == "text")


class LiveAnswers:
    """The `httpx2.MockTransport` handler of an SDK floor: answers each live request at once
    (200, JSON) with the body the emulator would send for it (a Message or a ChatCompletion,
    usage included, the text of its default responder cut at the request's token limit),
    counts it on `meter` and adds the time it took to ``meter.handler_seconds``."""

    def __init__(self, provider: str, meter: Meter) -> None:
        import httpx2

        from deferrable import emulator

        self.provider, self.meter = provider, meter
        self.path = LIVE_PATHS[provider]
        self.emulator = emulator
        self.response = httpx2.Response
        self.numbers = itertools.count()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        started = time.perf_counter()
        if request.method != "POST" or request.url.path != self.path:
            response = self.response(404, json={"error": {"type": "not_found_error",
                                                          "message": str(request.url)}})
        else:
            params = json.loads(request.content)
            body = self.message(params) if self.provider == "anthropic" else self.completion(params)
            response = self.response(200, json=body)
        self.meter.saw(request.method, request.url.path, response.status_code)
        self.meter.handler_seconds += time.perf_counter() - started
        return response

    def said(self, params: dict[str, Any], limit: int | None) -> tuple[str, bool]:
        """The default responder's text for `params`, cut to `limit` tokens as the emulator
        cuts it; whether it was cut."""
        system_roles = ("system", "developer")
        system = [text_of(params["system"])] if params.get("system") else []
        system += [text_of(m["content"]) for m in params["messages"] if m["role"] in system_roles]
        turns = tuple((m["role"], text_of(m["content"])) for m in params["messages"]
                      if m["role"] not in system_roles)
        prompt = self.emulator.Prompt(provider=self.provider, endpoint=self.path,
                                      model=params["model"], system="\n\n".join(system),
                                      turns=turns, params=params)
        text = self.emulator.default_responder(prompt)
        if limit is not None and self.emulator.count_tokens(text) > limit:
            return text[: max(limit, 0) * 4], True
        return text, False

    def prompt_tokens(self, params: dict[str, Any]) -> int:
        """The request's input tokens, roughly as the emulator counts them."""
        return sum(self.emulator.count_tokens(text_of(m["content"])) + 4 for m in params["messages"])

    def message(self, params: dict[str, Any]) -> dict[str, Any]:
        """A Messages answer, field for field as the emulator's."""
        text, cut = self.said(params, params["max_tokens"])
        return {
            "id": f"msg_01{next(self.numbers):022d}", "type": "message", "role": "assistant",
            "model": params["model"], "content": [{"type": "text", "text": text, "citations": None}],
            "stop_reason": "max_tokens" if cut else "end_turn", "stop_sequence": None,
            "stop_details": None, "container": None, "diagnostics": None,
            "usage": {"input_tokens": self.prompt_tokens(params),
                      "output_tokens": max(self.emulator.count_tokens(text), 1),
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                      "cache_creation": {"ephemeral_5m_input_tokens": 0,
                                         "ephemeral_1h_input_tokens": 0},
                      "server_tool_use": None, "service_tier": "standard", "inference_geo": None,
                      "output_tokens_details": {"thinking_tokens": 0}, "speed": None}}

    def completion(self, params: dict[str, Any]) -> dict[str, Any]:
        """A Chat Completions answer, field for field as the emulator's."""
        text, cut = self.said(params, params.get("max_completion_tokens", params.get("max_tokens")))
        prompt, output = self.prompt_tokens(params), self.emulator.count_tokens(text)
        return {
            "id": f"chatcmpl-{next(self.numbers):029d}", "object": "chat.completion",
            "created": int(time.time()), "model": params["model"],
            "choices": [{"index": 0, "logprobs": None, "finish_reason": "length" if cut else "stop",
                         "message": {"role": "assistant", "content": text, "refusal": None,
                                     "annotations": []}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": output,
                      "total_tokens": prompt + output,
                      "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0,
                                                "cache_write_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0,
                                                    "rejected_prediction_tokens": 0}},
            "service_tier": "default", "system_fingerprint": "fp_0123456789"}


async def sdk_anthropic(calls: int, url: str, meter: Meter, options: dict[str, Any]) -> list[Any]:
    """The SDK floor: N live `messages.create` coroutines on an unpatched AsyncAnthropic,
    gathered, each answered in-process (`url` only goes into the requests' URLs)."""
    import anthropic
    import httpx2

    http_client = httpx2.AsyncClient(transport=httpx2.MockTransport(LiveAnswers("anthropic", meter)))
    async with anthropic.AsyncAnthropic(api_key=KEY, base_url=url, http_client=http_client) as client:

        async def ask(i: int) -> anthropic.types.Message:
            return await client.messages.create(**anthropic_params(i))

        meter.start()
        results = await asyncio.gather(*(ask(i) for i in range(calls)))
        meter.stop()
    return results


def sdk_anthropic_sync(calls: int, url: str, meter: Meter, options: dict[str, Any]) -> list[Any]:
    """The SDK floor of sync calls: N live `messages.create` calls in turn on an unpatched
    Anthropic, each answered in-process."""
    import anthropic
    import httpx2

    http_client = httpx2.Client(transport=httpx2.MockTransport(LiveAnswers("anthropic", meter)))
    with anthropic.Anthropic(api_key=KEY, base_url=url, http_client=http_client) as client:
        meter.start()
        results = [client.messages.create(**anthropic_params(i)) for i in range(calls)]
        meter.stop()
    return results


async def sdk_openai(calls: int, url: str, meter: Meter, options: dict[str, Any]) -> list[Any]:
    """The SDK floor: N live `chat.completions.create` coroutines on an unpatched
    AsyncOpenAI, gathered, each answered in-process."""
    import httpx2
    import openai
    from openai.types.chat import ChatCompletion

    http_client = httpx2.AsyncClient(transport=httpx2.MockTransport(LiveAnswers("openai", meter)))
    async with openai.AsyncOpenAI(api_key=KEY, base_url=f"{url}/v1", http_client=http_client) as client:

        async def ask(i: int) -> ChatCompletion:
            return await client.chat.completions.create(**openai_params(i))

        meter.start()
        results = await asyncio.gather(*(ask(i) for i in range(calls)))
        meter.stop()
    return results


RunFunction = Callable[[int, str, Meter, dict[str, Any]], list[Any]]


def in_event_loop(function: Callable[..., Coroutine[Any, Any, list[Any]]]) -> RunFunction:
    """`function` run to completion in a new event loop."""
    return lambda *args: asyncio.run(function(*args))


RUNS: dict[str, RunFunction] = {
    "async": in_event_loop(deferred_anthropic),
    "async-nojournal": in_event_loop(deferred_anthropic),
    "sync": deferred_sync,
    "openai": in_event_loop(deferred_openai),
    "rerun": in_event_loop(deferred_anthropic),
    "hand-anthropic": in_event_loop(hand_anthropic),
    "hand-openai": in_event_loop(hand_openai),
    "sdk-anthropic": in_event_loop(sdk_anthropic),
    "sdk-anthropic-sync": sdk_anthropic_sync,
    "sdk-openai": in_event_loop(sdk_openai),
}
"""How each arm makes its N calls: ``run(calls, url, meter, options)``, results in call order."""


def answer_text(result: Any) -> str:
    """The text of a Message or a ChatCompletion."""
    if hasattr(result, "choices"):
        return str(result.choices[0].message.content)
    return "".join(block.text for block in result.content if block.type == "text")


def result_type(provider: str) -> type:
    """What a call returns: ``anthropic.types.Message`` or ``openai.types.chat.ChatCompletion``
    (only that provider's SDK is imported)."""
    if provider == "anthropic":
        import anthropic

        return anthropic.types.Message
    import openai

    return openai.types.chat.ChatCompletion


def verify(arm: Arm, calls: int, results: Sequence[Any]) -> str | None:
    """Why `results` are not N objects of the provider's own type (None when they are)."""
    expected = result_type(arm.provider)
    wrong = [type(r).__name__ for r in results if type(r) is not expected]
    if len(results) != calls or wrong:
        return (f"{len(results)} results for {calls} calls; {len(wrong)} not "
                f"{expected.__name__} (e.g. {wrong[:3]})")
    if arm.kind == "hand" and "deferrable" in sys.modules:
        return "a baseline imported deferrable"
    if arm.kind == "sdk":
        from deferrable import _patching

        if _patching._installed:
            return f"an SDK floor ran on patched SDKs ({sorted(map(str, _patching._installed))})"
    return None


def child(name: str, calls: int, url: str) -> int:
    """The hidden ``--child`` mode: one measured run; prints one JSON line, or exits 1."""
    arm = ARMS[name]
    meter = Meter()
    count_http(meter)
    options = {**DEFERRED_COMMON, **arm.options} if arm.options is not None else {}
    results = RUNS[name](calls, url, meter, options)
    problem = verify(arm, calls, results)
    if problem:
        print(f"{name}: {problem}", file=sys.stderr)
        return 1
    digest = hashlib.sha256("\n".join(map(answer_text, results)).encode()).hexdigest()
    print(json.dumps({"arm": name, "calls": calls, **meter.figures,
                      "answers_sha256": digest[:16]}), flush=True)
    return 0


# -- the parent: emulator, rounds, table ---------------------------------------------------

def clean_environment(root: Path) -> dict[str, str]:
    """This process's environment minus provider and deferrable settings, with temporary
    files, state and the default journal kept under `root`."""
    dropped = ("ANTHROPIC_", "OPENAI_", "DEFERRABLE_", "CLAUDE_")
    environment = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    return {**environment, "TMPDIR": str(root), "XDG_STATE_HOME": str(root / "state"),
            "DEFERRABLE_PROGRESS": "0", "PYTHONHASHSEED": "0"}


def served(before: dict[str, Any], after: dict[str, Any]) -> tuple[int, int]:
    """(HTTP requests, batches) the emulator served between two snapshots."""
    requests = sum(after["requests"].values()) - sum(before["requests"].values())
    batch_keys = ("anthropic_batches", "openai_batches")
    batches = sum(after["batches"].get(k, 0) - before["batches"].get(k, 0) for k in batch_keys)
    return requests, batches


def run_child(name: str, calls: int, emulator: EmulatorProcess, store: Path,
              root: Path) -> dict[str, Any]:
    """One measured run of arm `name` in a fresh interpreter, journalling into `store`."""
    environment = {**clean_environment(root), "DEFERRABLE_STORE": str(store)}
    before = emulator.stats()
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", name, "--calls", str(calls),
         "--base-url", emulator.url],
        env=environment, capture_output=True, text=True, timeout=120 + calls / 100, check=False)
    elapsed = time.perf_counter() - started
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"{name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    requests, batches = served(before, emulator.stats())
    record = {**json.loads(lines[-1]), "process_s": elapsed, "emulator_requests": requests,
              "emulator_batches": batches}
    if done.stderr.strip():
        record["stderr"] = done.stderr[-2000:]
        print(f"  ({name} wrote to stderr: {done.stderr.strip().splitlines()[-1][:200]})",
              file=sys.stderr)
    return record


class Rounds:
    """Runs arms round after round, each deferred run on a journal of its own."""

    def __init__(self, calls: int, emulator: EmulatorProcess, root: Path) -> None:
        self.calls, self.emulator, self.root = calls, emulator, root
        self.records: list[dict[str, Any]] = []
        self._stores = 0

    def new_store(self) -> Path:
        """A fresh, empty journal directory under the temporary root."""
        self._stores += 1
        return self.root / f"journal-{self._stores}"

    def warm_up(self, names: Sequence[str]) -> None:
        """One small unmeasured run of each hand-written baseline in `names`, so that the
        emulator's first requests (its lazy imports, first spools) fall in no measured run."""
        for name in names:
            if name in BASELINES:
                run_child(name, min(self.calls, 100), self.emulator, self.new_store(), self.root)
        self.remove_journals()

    def round(self, number: int, order: Sequence[str]) -> None:
        """Run every arm of `order` once. `rerun` reads the journal of the round's `async`
        run, or, when it comes first, of an unmeasured `async` run made for it."""
        async_journal: Path | None = None
        for position, name in enumerate(order):
            journal = self.new_store()
            if name == "rerun":
                if async_journal is None:
                    run_child("async", self.calls, self.emulator, journal, self.root)
                    async_journal = journal
                journal = async_journal
            record = run_child(name, self.calls, self.emulator, journal, self.root)
            self.records.append({"round": number, "position": position, **record})
            report_progress(number, record)
            if name == "async":
                async_journal = journal
        self.remove_journals()

    def remove_journals(self) -> None:
        """Delete every journal made so far."""
        for journal in self.root.glob("journal-*"):
            shutil.rmtree(journal, ignore_errors=True)


def report_progress(number: int, record: dict[str, Any]) -> None:
    """One line on stderr per finished run."""
    print(f"  round {number + 1}: {record['arm']:<18} wall {record['wall_s']:7.2f} s  "
          f"cpu {record['cpu_s']:7.2f} s  rss {record['rss_mib']:7.0f} MiB", file=sys.stderr,
          flush=True)


def rotated(names: Sequence[str], by: int) -> list[str]:
    """`names` rotated left by `by`."""
    shift = by % len(names)
    return [*names[shift:], *names[:shift]]


def arms_for(workloads: Sequence[str]) -> list[str]:
    """The workloads, then the baselines and the SDK floors they are compared with, in a
    fixed order."""
    providers = {WORKLOADS[w].provider for w in workloads}
    floors = {WORKLOADS[w].floor for w in workloads}
    references = [*(a.name for a in BASELINES.values() if a.provider in providers),
                  *(name for name in FLOORS if name in floors)]
    return [*workloads, *references]


# -- the table -----------------------------------------------------------------------------

METRICS = (("wall_s", "wall"), ("cpu_s", "CPU"), ("rss_mib", "peak RSS"))
"""The ratios against the hand-written baseline."""
FLOOR_METRICS = (("wall_s", "wall/SDK"), ("cpu_s", "CPU/SDK"))
"""The ratios against the SDK floor."""
NAME_WIDTH, CELL_WIDTH = 19, 10
ABSOLUTES = (("wall_s", "wall s", "{:7.2f}"), ("cpu_s", "CPU s", "{:7.2f}"),
             ("rss_mib", "RSS MiB", "{:8.0f}"), ("gc_s", "GC s", "{:6.2f}"),
             ("batches", "batches", "{:8g}"), ("http_requests", "HTTP", "{:7g}"))


def by_round(records: Sequence[dict[str, Any]], arm: str) -> dict[int, dict[str, Any]]:
    """The records of `arm`, keyed by round."""
    return {r["round"]: r for r in records if r["arm"] == arm}


def ratios(records: Sequence[dict[str, Any]], arm: str, against: str, metric: str) -> list[float]:
    """`arm`'s `metric` over `against`'s, one ratio per round both ran in."""
    mine, theirs = by_round(records, arm), by_round(records, against)
    return [mine[n][metric] / theirs[n][metric] for n in sorted(mine) if n in theirs]


def short(ratio: float) -> str:
    """A ratio in at most four characters: 0.97, 12.3, 145."""
    if ratio < 9.995:
        return f"{ratio:.2f}"
    return f"{ratio:.1f}" if ratio < 99.95 else f"{ratio:.0f}"


def spread(values: Sequence[float]) -> str:
    """Ratios as ``median±spread``, the spread being max - min (the median alone for one
    value), right-aligned in a cell."""
    if not values:
        text = "-"
    elif len(values) == 1:
        text = short(values[0])
    else:
        text = f"{short(statistics.median(values))}±{short(max(values) - min(values))}"
    return f"{text:>{CELL_WIDTH}}"


def absolutes(records: Sequence[dict[str, Any]], arm: str) -> str:
    """The medians over rounds of `arm`'s absolute figures."""
    mine = list(by_round(records, arm).values())
    return absolutes_of({key: statistics.median(r[key] for r in mine) for key, _, _ in ABSOLUTES})


def absolutes_of(figures: dict[str, float]) -> str:
    """`figures` (0 for those missing) in the absolute columns."""
    return "".join(fmt.format(figures.get(key, 0)) for key, _, fmt in ABSOLUTES)


def table(records: Sequence[dict[str, Any]], workloads: Sequence[str]) -> str:
    """The summary: ratios (median±spread over rounds) and absolute medians."""
    ratio_width = CELL_WIDTH * (len(METRICS) + len(FLOOR_METRICS))
    groups = (f"{'':{NAME_WIDTH}}{'against hand-written':^{CELL_WIDTH * len(METRICS)}}"
              f"{'against SDK floor':^{CELL_WIDTH * len(FLOOR_METRICS)}}"
              f"{'absolute medians':^{len(absolutes_of({}))}}")
    header = f"{'':{NAME_WIDTH}}" + "".join(f"{label:>{CELL_WIDTH}}"
                                            for _, label in (*METRICS, *FLOOR_METRICS))
    header += "".join(f"{title:>{len(fmt.format(0))}}" for _, title, fmt in ABSOLUTES)
    lines = [groups.rstrip(), header, "-" * len(header)]
    for name in workloads:
        arm = WORKLOADS[name]
        cells = "".join(spread(ratios(records, name, arm.baseline, key)) for key, _ in METRICS)
        cells += "".join(spread(ratios(records, name, arm.floor, key)) for key, _ in FLOOR_METRICS)
        lines.append(f"{name:{NAME_WIDTH}}{cells}{absolutes(records, name)}")
        if name == "rerun" and "async" in workloads:
            cells = "".join(spread(ratios(records, name, "async", key)) for key, _ in METRICS)
            lines.append(f"{'  rerun/async':{NAME_WIDTH}}{cells}")
    for name in arms_for(workloads)[len(workloads):]:
        if ARMS[name].kind == "hand":
            what = "hand-written baseline"
        else:
            handler = statistics.median(r["handler_s"] for r in by_round(records, name).values())
            what = f"SDK floor (its mock server: {handler:.2f} s)"
        lines.append(f"{name:{NAME_WIDTH}}{what:^{ratio_width}}{absolutes(records, name)}")
    return "\n".join(lines)


def check_answers(records: Sequence[dict[str, Any]]) -> None:
    """Every run of a provider (deferred or SDK floor) got the same answers in the same
    order as its hand-written baseline of the same round."""
    for record in records:
        against = ARMS[record["arm"]].baseline
        base = by_round(records, against).get(record["round"]) if record["arm"] != against else None
        if base is not None and base["answers_sha256"] != record["answers_sha256"]:
            raise RuntimeError(f"{record['arm']} (round {record['round'] + 1}) got other answers "
                               f"than {against}")


# -- command line --------------------------------------------------------------------------

def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=10_000, help="calls per run (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every arm (default: %(default)s)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS),
                        help="comma-separated subset of: %(default)s")
    parser.add_argument("--json", type=Path, metavar="PATH", help="write every run's figures here")
    parser.add_argument("--child", choices=sorted(ARMS), help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = sorted(set(args.workloads) - set(WORKLOADS))
    if unknown or not args.workloads:
        parser.error(f"--workloads: unknown {unknown}; choose from {', '.join(WORKLOADS)}")
    if args.calls < 1 or args.rounds < 1:
        parser.error("--calls and --rounds must be at least 1")
    return args


def interruptible() -> None:
    """Ctrl-C ends the parent with KeyboardInterrupt, so that its cleanups run, even when it
    was started with SIGINT ignored (as a background job is). SIGTERM is `emulator_process`'s
    to handle: SystemExit within its block, which the same cleanups see."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def describe(args: argparse.Namespace) -> str:
    """The run's setting, printed above the table."""
    versions = ", ".join(f"{p} {version(p)}" for p in ("deferrable", "anthropic", "openai", "httpx2"))
    return (f"{args.calls:,} calls per run, {args.rounds} round(s), emulator batch latency 0, "
            f"poll {POLL} s\nPython {platform.python_version()}, {versions}, "
            f"{os.cpu_count()} CPU(s)\nratios: workload / its hand-written baseline, and / its "
            f"provider's SDK floor, of the same round;\neach cell median±(max-min) over rounds")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the rounds and print the table (or, with ``--child``, one measured run)."""
    args = parse(argv)
    if args.child:
        return child(args.child, args.calls, args.base_url)
    interruptible()
    names = arms_for(args.workloads)
    root = Path(tempfile.mkdtemp(prefix="deferrable-e2e-"))
    try:
        with emulator_process(batch_latency=0, env=clean_environment(root)) as emulator:
            runner = Rounds(args.calls, emulator, root)
            runner.warm_up(names)
            for number in range(args.rounds):
                runner.round(number, rotated(names, number))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(root, ignore_errors=True)
    check_answers(runner.records)
    print(describe(args))
    print(table(runner.records, args.workloads))
    if args.json:
        options = {name: {**DEFERRED_COMMON, **(WORKLOADS[name].options or {})}
                   for name in args.workloads}
        args.json.write_text(json.dumps({"calls": args.calls, "rounds": args.rounds,
                                         "options": options, "runs": runner.records},
                                        indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
