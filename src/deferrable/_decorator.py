"""`@deferrable`: the switch users put on their functions."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, overload

from . import _generators, _greenlets
from ._deferred import Deferred
from ._patching import patch
from ._scope import scope
from ._sites import function_site
from .ledger._budget import Budget

P = ParamSpec("P")
R = TypeVar("R")


@overload
def deferrable(function: Callable[P, Coroutine[Any, Any, R]], /  # type: ignore[overload-overlap]
               ) -> Callable[P, Coroutine[Any, Any, R]]: ...
@overload
def deferrable(function: Callable[P, R], /) -> Callable[P, Deferred[R]]: ...
@overload
def deferrable(function: None = None, /, **options: Any) -> Callable[[Callable[..., Any]],
                                                                     Callable[..., Any]]: ...


def deferrable(function: Callable[..., Any] | None = None, /, **options: Any) -> Any:
    """Defer every supported SDK call made inside the decorated function.

    On ``async def`` calls stay coroutines; on ``def`` a call returns a `Deferred` at
    once (the body runs on deferrable's driver thread), and ``.result()`` waits for the
    batch. Generators, sync and async, stay generators that defer while iterated. Bare
    (``@deferrable``) or with options (``@deferrable(max_wait=5)``); ``max_cost_usd``
    caps what all calls of the function may spend together. Patches the SDKs on first use.
    """
    cap = options.pop("max_cost_usd", None)
    scope(**options)  # unknown option names fail here, at decoration time
    patch()

    def decorate(target: Callable[..., Any]) -> Callable[..., Any]:
        # One budget for every call of the function; its calls are its site in the ledger.
        budget = Budget(cap) if cap is not None else None
        site = function_site(target)
        if inspect.iscoroutinefunction(target):

            @functools.wraps(target)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                with scope(budget=budget, site=site, summary=False, **options):
                    return await target(*args, **kwargs)

            return run_async
        if inspect.isasyncgenfunction(target):

            @functools.wraps(target)
            def run_async_generator(*args: Any, **kwargs: Any) -> Any:
                step_scope = scope(budget=budget, site=site, summary=False, **options)
                return _generators.scoped_async(target(*args, **kwargs), step_scope)

            return run_async_generator
        if inspect.isgeneratorfunction(target):

            @functools.wraps(target)
            def run_generator(*args: Any, **kwargs: Any) -> Any:
                step_scope = scope(budget=budget, site=site, summary=False, **options)
                return _generators.scoped(target(*args, **kwargs), step_scope)

            return run_generator

        def in_scope(*args: Any, **kwargs: Any) -> Any:
            with scope(budget=budget, site=site, summary=False, **options):
                return target(*args, **kwargs)

        @functools.wraps(target)
        def run_sync(*args: Any, **kwargs: Any) -> Deferred[Any]:
            return _greenlets.start(in_scope, args, kwargs)

        return run_sync

    return decorate if function is None else decorate(function)
