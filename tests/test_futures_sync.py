"""A sync `@deferrable` call's `Deferred` is a real future: it completes on its own, for any
waiter on any thread, and a cancel stops that call alone (the async twin is
test_futures_async)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable
from typing import Any

import anthropic
import pytest

import deferrable
from deferrable import Deferred
from deferrable import deferrable as defer
from deferrable.emulator import Emulator
from deferrable.engine._work import CANCELLED
from tests.emulator_helpers import message_request, wait_until
from tests.ledger_helpers import ledger_rows

HELD = {"max_wait": 60}
"""Calls stay buffered until `flush()`."""


def asker(client: anthropic.Anthropic, **options: Any) -> Callable[[str], Deferred[str]]:
    """A sync @deferrable function answering `text` with the emulator's sentiment."""

    @defer(**options)
    def ask(text: str) -> str:
        block = client.messages.create(**message_request(f"Sentiment: {text}")).content[0]
        assert block.type == "text"
        return block.text

    return ask


def batch_requests(emulator: Emulator) -> int:
    """Requests the emulator took in batches so far."""
    return int(emulator.stats()["batches"].get("anthropic_batch_requests", 0))


def test_completes_with_nobody_waiting(anthropic_client: anthropic.Anthropic) -> None:
    """Without any `.result()`, the future completes once its batch ends (polling `.done()`)."""
    future = asker(anthropic_client)("great")
    wait_until(future.done)
    assert future.result(timeout=0) == "positive"


def test_result_from_another_thread(anthropic_client: anthropic.Anthropic) -> None:
    """A thread other than the creator gets the value through `.result()`."""
    future = asker(anthropic_client)("awful")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(future.result, 60).result(timeout=60) == "negative"


def test_wait_as_completed_and_callbacks(anthropic_client: anthropic.Anthropic) -> None:
    """`concurrent.futures.wait`, `as_completed` and `add_done_callback` all see completion."""
    ask = asker(anthropic_client)
    futures = [ask(text) for text in ("great", "awful", "fine")]
    called = threading.Event()
    futures[0].add_done_callback(lambda _: called.set())
    done, pending = concurrent.futures.wait(futures, timeout=60)
    assert (len(done), pending) == (3, set())
    assert called.wait(10)
    more = [ask(text) for text in ("great", "fine")]
    assert sorted(f.result() for f in concurrent.futures.as_completed(more, timeout=60)) == [
        "neutral", "positive"]


def test_awaited_on_event_loops(anthropic_client: anthropic.Anthropic) -> None:
    """`await deferred` and `asyncio.wrap_future` work on any event loop."""
    ask = asker(anthropic_client)

    async def both() -> list[str]:
        first = await ask("great")
        second = await asyncio.wrap_future(ask("awful"))
        return [first, second]

    async def bounded() -> str:
        return await asyncio.wait_for(asyncio.wrap_future(ask("fine")), 60)

    assert asyncio.run(both()) == ["positive", "negative"]
    assert asyncio.run(bounded()) == "neutral"  # another loop


def test_result_timeout_is_exact(anthropic_client: anthropic.Anthropic) -> None:
    """`.result(timeout=T)` and `.exception(timeout=T)` give up after T, not 2T."""
    future = asker(anthropic_client, **HELD)("great")
    for wait in (future.result, future.exception):
        started = time.monotonic()
        with pytest.raises(concurrent.futures.TimeoutError):
            wait(0.3)
        assert 0.3 <= time.monotonic() - started < 0.55
    deferrable.flush()
    assert future.result(timeout=60) == "positive"


def test_waiting_inside_a_deferrable_call_suspends_it(anthropic_client: anthropic.Anthropic) -> None:
    """A @deferrable function waiting on another's future, with a timeout, does not block
    the driver: the inner call still completes, and a too-short timeout raises in time."""
    ask = asker(anthropic_client, **HELD)

    @defer
    def outer() -> tuple[str, bool]:
        inner = ask("great")
        try:
            inner.result(timeout=0.2)
            timed_out = False
        except concurrent.futures.TimeoutError:
            timed_out = True
        deferrable.flush()
        return inner.result(), timed_out

    assert outer().result(timeout=60) == ("positive", True)


def test_cancel_while_buffered_sends_nothing(anthropic_client: anthropic.Anthropic,
                                             emulator: Emulator) -> None:
    """A call cancelled while buffered is left out of its batch; its neighbours resolve."""
    ask = asker(anthropic_client, **HELD)
    futures = [ask(text) for text in ("great", "awful", "fine")]
    assert futures[1].cancel()
    assert futures[1].cancelled()
    deferrable.flush()
    assert futures[0].result(timeout=60) == "positive"
    assert futures[2].result(timeout=60) == "neutral"
    assert batch_requests(emulator) == 2
    with pytest.raises(concurrent.futures.CancelledError):
        futures[1].result()


def test_cancel_runs_the_functions_cleanup(anthropic_client: anthropic.Anthropic) -> None:
    """Cancelling stops the function where it waits: its `finally` runs, the rest does not."""
    steps: list[str] = []
    finished = threading.Event()

    @defer(**HELD)
    def job() -> str:
        try:
            text = anthropic_client.messages.create(**message_request("Sentiment: great")).content[0]
            steps.append("after the call")
            return str(text)
        finally:
            steps.append("finally")
            finished.set()

    future = job()
    assert future.cancel()
    assert finished.wait(10)
    assert steps == ["finally"]


def test_cancel_after_submission_is_paid_unused(anthropic_client: anthropic.Anthropic,
                                                emulator: Emulator) -> None:
    """Cancelled once its batch is submitted: the result is dropped when it arrives, and the
    ledger counts it as paid but unused; the other call of the batch resolves."""
    emulator.batch_latency = 0.5
    ask = asker(anthropic_client, **HELD)
    kept, dropped = ask("great"), ask("awful")
    deferrable.flush()
    wait_until(lambda: batch_requests(emulator) == 2)
    assert dropped.cancel()
    assert kept.result(timeout=60) == "positive"
    sites = {row["site"]: row["calls"] for row in ledger_rows()}
    assert sites[f"{ask.__module__}.{ask.__qualname__} {CANCELLED}"] == 1
    assert sites[f"{ask.__module__}.{ask.__qualname__}"] == 1


def test_a_cancel_never_touches_another_call(anthropic_client: anthropic.Anthropic) -> None:
    """Cancelling one pending call leaves every other call's result intact."""
    ask = asker(anthropic_client, **HELD)
    futures = [ask(f"great {i}") for i in range(6)]
    for future in futures[::2]:
        assert future.cancel()
    deferrable.flush()
    assert [f.result(timeout=60) for f in futures[1::2]] == ["positive"] * 3
    assert all(f.cancelled() for f in futures[::2])


def test_a_sync_scope_loop_gets_a_hint(anthropic_client: anthropic.Anthropic,
                                       caplog: pytest.LogCaptureFixture) -> None:
    """Calls that each wait for their own batch in a sync scope, one after another, log a
    hint pointing at @deferrable and deferrable.map (once)."""
    with deferrable.scope():
        for text in ("great", "awful", "fine", "great again"):
            anthropic_client.messages.create(**message_request(f"Sentiment: {text}"))
    hints = [r.getMessage() for r in caplog.records if "deferrable.map" in r.getMessage()]
    assert len(hints) == 1
    assert "one after another" in hints[0]


def test_blocking_waits_inside_a_deferrable_call_are_refused(
        anthropic_client: anthropic.Anthropic) -> None:
    """`concurrent.futures.wait` on a @deferrable future inside another @deferrable call
    raises at once, naming `.result()` instead, rather than hanging the driver."""
    ask = asker(anthropic_client)

    @defer
    def outer() -> str:
        inner = ask("great")
        with pytest.raises(RuntimeError, match=r"wait with \.result\(\) there"):
            concurrent.futures.wait([inner], timeout=5)
        return inner.result()

    assert outer().result(timeout=60) == "positive"
