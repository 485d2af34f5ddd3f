"""Processes for the crash-resume tests: the emulator in one, the job in another, each
read while it runs and killed with SIGKILL at the moment a test chooses."""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
_LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")


class Lines:
    """The lines a process writes to a stream, collected by a thread as they come."""

    def __init__(self, stream: IO[str]) -> None:
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def next(self, timeout: float) -> str | None:
        """The next line (None at the end), or AssertionError after `timeout` seconds."""
        try:
            line = self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout} s; so far: {self.seen[-5:]}") from None
        if line is not None:
            self.seen.append(line)
        return line


class EmulatorProcess:
    """``python -m deferrable emulator`` on a free port, with the given extra flags."""

    def __init__(self, *flags: str, batch_latency: float = 1.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "deferrable", "emulator", "--port", "0",
             "--batch-latency", str(batch_latency), *flags],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        assert self.process.stdout is not None
        line = Lines(self.process.stdout).next(timeout=30) or ""
        found = _LISTENING.search(line)
        assert found, f"the emulator did not start: {line!r}"
        self.url = found.group(1)

    def stats(self) -> dict[str, Any]:
        """The emulator's accounting, over HTTP."""
        with urllib.request.urlopen(f"{self.url}/_emulator/stats", timeout=10) as answer:
            stats: dict[str, Any] = json.load(answer)
        return stats

    def stop(self) -> None:
        """Stop the emulator with SIGTERM, so it removes its data directory (SIGKILL left one
        in the temp directory per test); killed if it is not gone within 10 s."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


class Job:
    """The resume job (tests/jobs/resume_job.py) against `url`, journaling in `store`."""

    def __init__(self, url: str, store: Path, *args: str) -> None:
        env = {**os.environ, "DEFERRABLE_STORE": str(store), "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.jobs.resume_job", "--base-url", url, *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=env)
        assert self.process.stdout is not None
        self._lines = Lines(self.process.stdout)
        self.events: list[dict[str, Any]] = []

    def until(self, event: str, timeout: float = 60, **fields: Any) -> dict[str, Any]:
        """Read events up to the first `event` with these `fields`; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            line = self._lines.next(timeout=max(0.1, deadline - time.monotonic()))
            if line is None:
                raise AssertionError(f"the job ended before {event}: {self.failure()}")
            record = json.loads(line)
            self.events.append(record)
            if record["event"] == event and all(record.get(k) == v for k, v in fields.items()):
                return record

    def answers(self) -> dict[int, str]:
        """The answers printed so far, by call index."""
        return {e["index"]: e["text"] for e in self.events if e["event"] == "answer"}

    def finish(self, timeout: float = 60) -> dict[int, str]:
        """Read to the end; the job must succeed. Returns its answers."""
        self.until("done", timeout)
        assert self.process.wait(timeout) == 0, self.failure()
        self._close()
        return self.answers()

    def kill(self) -> None:
        """SIGKILL the job, as a crash would."""
        self.process.kill()
        self.process.wait()
        self._close()

    def failure(self) -> str:
        """What the job wrote to stderr (once it ended)."""
        if self.process.poll() is None or self.process.stderr is None:
            return "(running)"
        return self.process.stderr.read()

    def _close(self) -> None:
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None and not stream.closed:
                stream.close()


def wait_for(condition: Callable[[], Any], timeout: float = 30, interval: float = 0.05) -> Any:
    """Poll `condition` until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(interval)
