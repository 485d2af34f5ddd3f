"""What the benchmark scripts share: the emulator in a process of its own (so that its work
is not billed to the client being measured), and a temporary journal store (so that no run
touches the user's own journal).

Import it from a script run as ``python benchmarks/<script>.py`` (``benchmarks/`` is then
first on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

HOST = "127.0.0.1"
"""The only address the emulator binds and the clients reach."""
KEY = "benchmark-dummy-key"
"""The API key every benchmark client sends: a dummy, the emulator never checks it."""

_CONSTANT_ANSWER = """
import sys
from deferrable.emulator import Emulator
host, port, latency, data_dir, answer = sys.argv[1:]
Emulator(batch_latency=float(latency), responder=lambda prompt: answer, host=host,
         port=int(port), data_dir=data_dir).serve_forever()
"""
"""The child's program when every prompt gets the same answer (the command line offers
no responder); SIGINT stops it as it stops ``deferrable emulator``."""


def free_port() -> int:
    """A TCP port of 127.0.0.1 free now (the OS picks it for a socket bound to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class EmulatorProcess:
    """A running emulator child process, as a benchmark sees it."""

    url: str
    """The Anthropic ``base_url``."""
    pid: int

    @property
    def openai_url(self) -> str:
        """The OpenAI ``base_url``."""
        return self.url + "/v1"

    def stats(self) -> dict[str, Any]:
        """The emulator's counters (``GET /_emulator/stats``): requests by route, batches."""
        with urllib.request.urlopen(self.url + "/_emulator/stats", timeout=30) as answer:  # noqa: S310
            stats: dict[str, Any] = json.load(answer)
            return stats

    def requests(self, route: str) -> int:
        """Requests served so far on `route` (``"POST /v1/messages/batches"``)."""
        return int(self.stats()["requests"].get(route, 0))

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the emulator process has used so far."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mib(self) -> float:
        """The high-water mark of the emulator's resident memory (VmHWM), in MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")


@contextmanager
def emulator_process(*, batch_latency: float = 0.0, answer: str | None = None,
                     start_timeout: float = 60.0,
                     env: Mapping[str, str] | None = None) -> Iterator[EmulatorProcess]:
    """The emulator serving on 127.0.0.1 in a child process for the block's duration.

    Without `answer` the child is ``python -m deferrable emulator`` (its default responder);
    with it, the same server answering `answer` to every prompt. `env` is the child's
    environment (default: this process's). Returns once the emulator answers HTTP; the
    child is stopped (SIGINT, then SIGKILL) and its temporary directory (its data, its
    stderr) removed when the block ends, by an exception or Ctrl-C too. Within the block,
    SIGTERM to this process unwinds it as Ctrl-C does.
    """
    port = free_port()
    directory = Path(tempfile.mkdtemp(prefix="deferrable-bench-emulator-"))
    data_dir = str(directory / "data")
    if answer is None:
        command = [sys.executable, "-m", "deferrable", "emulator", "--host", HOST,
                   "--port", str(port), "--batch-latency", str(batch_latency),
                   "--data-dir", data_dir]
    else:
        command = [sys.executable, "-c", _CONSTANT_ANSWER, HOST, str(port), str(batch_latency),
                   data_dir, answer]
    log = directory / "stderr.log"
    previous = _exit_on_sigterm()
    try:
        with log.open("wb") as stderr:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, env=env,
                                       stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            emulator = EmulatorProcess(url=f"http://{HOST}:{port}", pid=process.pid)
            _wait_until_answering(emulator, process, start_timeout, log)
            yield emulator
        finally:
            _stop(process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm() -> Any:
    """Make SIGTERM raise SystemExit (so `finally` blocks run); the previous handler, or
    None off the main thread (where handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def leave(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    return signal.signal(signal.SIGTERM, leave)


def _wait_until_answering(emulator: EmulatorProcess, process: subprocess.Popen[bytes],
                          timeout: float, log: Path) -> None:
    """Return once the emulator answers its stats route; raise, with what the child wrote
    on stderr, if it exits or times out first."""
    give_up = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the emulator exited with status {process.returncode} before "
                               f"answering on {emulator.url}:\n{log.read_text(errors='replace')}")
        try:
            emulator.stats()
            return
        except OSError:
            if time.monotonic() > give_up:
                raise RuntimeError(f"the emulator did not answer on {emulator.url} within "
                                   f"{timeout:.0f} s:\n{log.read_text(errors='replace')}") from None
            time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the child as Ctrl-C would (it cleans up), then for good if it lingers."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def temporary_store() -> Iterator[Path]:
    """A fresh journal store in a temporary directory, made the process-wide default for
    the block (``configure(store=..., progress=False)``, and ``DEFERRABLE_STORE`` /
    ``DEFERRABLE_PROGRESS=0`` for child processes); removed when the block ends.

    The default stays pointed at the removed directory afterwards, never at the user's.
    """
    import deferrable
    from deferrable.journal import close_journals
    from deferrable.ledger import live_ledger

    directory = Path(tempfile.mkdtemp(prefix="deferrable-bench-store-"))
    saved = {name: os.environ.get(name) for name in ("DEFERRABLE_STORE", "DEFERRABLE_PROGRESS")}
    os.environ["DEFERRABLE_STORE"] = str(directory)
    os.environ["DEFERRABLE_PROGRESS"] = "0"
    deferrable.configure(store=str(directory), progress=False)
    try:
        yield directory
    finally:
        live_ledger.flush()  # live spend recorded in the block goes in before the removal
        close_journals()
        shutil.rmtree(directory, ignore_errors=True)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
