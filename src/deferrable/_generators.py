"""Decorated generators keep their scope while they are iterated, and only then.

Each step of the generator (``next``, ``send``, ``throw``, ``close``) runs inside the
scope, entered and left around the step: the consumer's code between two steps is not in
it, and a step may run in another context than the one before (another task or thread).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator
from typing import Any, TypeVar

from ._scope import scope

Y = TypeVar("Y")
S = TypeVar("S")
R = TypeVar("R")


def scoped(inner: Generator[Y, S, R], step_scope: scope) -> Generator[Y, S, R]:
    """`inner`, each of whose steps runs in `step_scope`."""
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        with step_scope:
            try:
                item = inner.send(sent) if thrown is None else inner.throw(thrown)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            finally:
                thrown = None
        try:
            sent = yield item
        except GeneratorExit:
            with step_scope:
                inner.close()
            raise
        except BaseException as error:  # thrown in by the consumer: pass it on
            thrown = error
            sent = None


async def scoped_async(inner: AsyncGenerator[Y, S], step_scope: scope) -> AsyncGenerator[Y, S]:
    """`inner`, each of whose steps runs in `step_scope`."""
    sent: Any = None
    thrown: BaseException | None = None
    while True:
        with step_scope:
            try:
                item = await (inner.asend(sent) if thrown is None else inner.athrow(thrown))
            except StopAsyncIteration:
                return
            finally:
                thrown = None
        try:
            sent = yield item
        except GeneratorExit:
            with step_scope:
                await inner.aclose()
            raise
        except BaseException as error:  # thrown in by the consumer: pass it on
            thrown = error
            sent = None
