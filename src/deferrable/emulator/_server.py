"""`Emulator`: the app on a real socket, in a background thread or in the foreground."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import threading
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from aiohttp import web

from ._app import build_app
from ._config import FLEX_MODELS, Faults, HttpFault, Limits, Quirks
from ._responder import Responder, default_responder
from ._state import EmulatorState


class Emulator:
    """A local server that speaks Anthropic's and OpenAI's APIs, batches included.

    ``with Emulator(batch_latency=0.5) as emu:`` serves on 127.0.0.1 at an ephemeral
    port from a background thread. Point ``anthropic.Anthropic(base_url=emu.url)`` or
    ``openai.OpenAI(base_url=emu.url + "/v1")`` at it with any dummy key.

    OpenAI flex processing (``service_tier: "flex"``) is offered for `flex_models` (default
    `FLEX_MODELS`, dated snapshots included) and answers after `flex_latency` seconds;
    a background response (``background: true``) ends `background_latency` seconds after
    its creation. All three latencies run on the emulator's clock (`advance()`).
    """

    def __init__(
        self,
        *,
        batch_latency: float = 0.0,
        flex_latency: float = 0.0,
        background_latency: float = 0.0,
        flex_models: Iterable[str] | None = None,
        responder: Responder | None = None,
        faults: Faults | None = None,
        quirks: Quirks | None = None,
        limits: Limits | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | Path | None = None,
    ) -> None:
        self._own_dir = data_dir is None
        directory = Path(tempfile.mkdtemp(prefix="deferrable-emulator-") if data_dir is None
                         else data_dir)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.state = EmulatorState(
            responder=responder or default_responder, faults=faults or Faults(),
            quirks=quirks or Quirks(), limits=limits or Limits(), data_dir=directory,
            batch_latency=batch_latency, flex_latency=flex_latency,
            background_latency=background_latency,
            flex_models=FLEX_MODELS if flex_models is None else frozenset(flex_models))
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._bound_port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> Emulator:
        """Start serving from a background thread; returns once the socket is bound."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as error:  # reported to the starting thread
                failure.append(error)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_site())
            # Work still writing into the data directory (a batch's results) ends first.
            loop.run_until_complete(loop.shutdown_default_executor())
            loop.close()

        self._thread = threading.Thread(target=run, name="deferrable-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def close(self) -> None:
        """Stop serving and remove the emulator's temporary files."""
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._thread = None
        if self._own_dir:
            shutil.rmtree(self.state.data_dir, ignore_errors=True)

    def __enter__(self) -> Emulator:
        try:
            return self.start()
        except BaseException:  # no __exit__ follows: remove the temporary files here
            self.close()
            raise

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def serve_forever(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve in the foreground until interrupted (the `deferrable emulator` command).

        `on_ready`, if given, is called with `url` once the socket is bound.
        """

        async def serve() -> None:
            await self._start_site()
            try:
                if on_ready is not None:
                    on_ready(self.url)
                await asyncio.Event().wait()
            finally:
                await self._stop_site()

        try:
            asyncio.run(serve())
        except KeyboardInterrupt:
            pass
        finally:
            if self._own_dir:
                shutil.rmtree(self.state.data_dir, ignore_errors=True)

    async def _start_site(self) -> None:
        self._runner = web.AppRunner(build_app(self.state), access_log=None,
                                     handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, backlog=1024)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        self._bound_port = server.sockets[0].getsockname()[1]

    async def _stop_site(self) -> None:
        await self.state.cancel_tasks()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what tests and users touch ------------------------------------------------------

    @property
    def url(self) -> str:
        """The Anthropic `base_url`; OpenAI's is ``url + "/v1"``."""
        if self._bound_port is None:
            raise RuntimeError("the emulator is not running; use `with Emulator() as emu:`")
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self._bound_port}"

    @property
    def openai_url(self) -> str:
        """The OpenAI `base_url` (``url + "/v1"``)."""
        return self.url + "/v1"

    @property
    def faults(self) -> Faults:
        """The live fault configuration; change it while the emulator runs."""
        return self.state.faults

    @property
    def batch_latency(self) -> float:
        """Seconds from a batch's creation to its end."""
        return self.state.batch_latency

    @batch_latency.setter
    def batch_latency(self, seconds: float) -> None:
        self.state.batch_latency = seconds

    @property
    def flex_latency(self) -> float:
        """Seconds a live OpenAI flex request takes before it is answered."""
        return self.state.flex_latency

    @flex_latency.setter
    def flex_latency(self, seconds: float) -> None:
        self.state.flex_latency = seconds

    @property
    def background_latency(self) -> float:
        """Seconds from a background response's creation to its end."""
        return self.state.background_latency

    @background_latency.setter
    def background_latency(self, seconds: float) -> None:
        self.state.background_latency = seconds

    def inject(self, fault: HttpFault) -> HttpFault:
        """Add an HTTP fault; returns it so a test can check `fault.times` afterwards."""
        self.state.faults.http.append(fault)
        return fault

    def outage(self, seconds: float, status: int = 503) -> None:
        """Make the API unreachable for `seconds` of the emulator's time from now: every
        request is answered with `status` (not to be retried) until then, while batches run
        on. Replaces an outage in progress; ``outage(0)`` ends one."""
        if not seconds >= 0:  # also rejects nan
            raise ValueError(f"an outage lasts zero seconds or more, not {seconds}")
        if not 400 <= status <= 599:
            raise ValueError(f"an outage answers with an error status (400-599), not {status}")
        faults = self.state.faults
        faults.outage_status = status
        faults.outage_until = self.state.clock.now() + seconds

    def advance(self, seconds: float) -> None:
        """Move the emulator's clock forward (e.g. 24 h, to make batches expire)."""
        self.state.clock.advance(seconds)

    def stats(self) -> dict[str, Any]:
        """Requests served by ``"METHOD /path-template"``, tokens billed, batches made."""
        return self.state.stats.snapshot()

    def reset_stats(self) -> None:
        """Zero every counter."""
        self.state.stats.reset()

    def fetch_stats(self) -> dict[str, Any]:
        """The same numbers over HTTP (``GET /_emulator/stats``), as another process sees them."""
        with urllib.request.urlopen(self.url + "/_emulator/stats", timeout=10) as answer:  # noqa: S310
            data: dict[str, Any] = json.load(answer)
            return data
