"""The SDK patches: thin wrapt wrappers that decide live or deferred, nothing more.

Outside a deferrable scope a patched method runs the original at once (one context
variable read). Inside, the provider adapter either accepts the call, which the engine
then owns, or names the reason it must go live (logged once per reason).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import wrapt

from . import _greenlets
from ._scope import active_options
from .engine import engine
from .providers import anthropic as anthropic_provider

log = logging.getLogger("deferrable")
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass(frozen=True)
class PatchTarget:
    """One SDK method to patch."""

    module: str
    name: str
    is_async: bool
    beta: bool


TARGETS = (
    PatchTarget("anthropic.resources.messages.messages", "Messages.create", False, False),
    PatchTarget("anthropic.resources.messages.messages", "AsyncMessages.create", True, False),
    PatchTarget("anthropic.resources.beta.messages.messages", "Messages.create", False, True),
    PatchTarget("anthropic.resources.beta.messages.messages", "AsyncMessages.create", True, True),
)

_lock = threading.Lock()
_installed: dict[PatchTarget, tuple[type, str, Any, bool]] = {}
_warned: set[str] = set()


def patch() -> None:
    """Install the SDK patches (idempotent)."""
    if len(_installed) == len(TARGETS):
        return
    with _lock:
        for target in TARGETS:
            if target in _installed:
                continue
            owner_name, method = target.name.split(".")
            owner = getattr(importlib.import_module(target.module), owner_name)
            original = owner.__dict__.get(method, getattr(owner, method))
            had_own = method in owner.__dict__
            factory = _async_wrapper if target.is_async else _sync_wrapper
            wrapt.wrap_function_wrapper(target.module, target.name, factory(target.beta))
            _installed[target] = (owner, method, original, had_own)


def unpatch() -> None:
    """Remove the patches exactly, leaving the SDK classes as they were (idempotent); a
    later `patch()` warns afresh about calls that go live."""
    with _lock:
        for target, (owner, method, original, had_own) in list(_installed.items()):
            current = owner.__dict__.get(method)
            if isinstance(current, wrapt.FunctionWrapper) and current.__wrapped__ is original:
                if had_own:
                    setattr(owner, method, original)
                else:
                    delattr(owner, method)
            del _installed[target]
        _warned.clear()


def is_patched() -> bool:
    """Whether the patches are installed."""
    return bool(_installed)


def _sync_wrapper(beta: bool) -> Wrapper:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        options = active_options()
        if options is None or args:
            return wrapped(*args, **kwargs)
        decision = anthropic_provider.prepare(instance._client, kwargs, beta=beta)
        if isinstance(decision, str):
            _warn_live(decision)
            return wrapped(*args, **kwargs)
        future = engine().submit(decision.target, decision.params, decision.size, options)
        return _greenlets.wait(future)

    return wrapper


def _async_wrapper(beta: bool) -> Wrapper:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Awaitable[Any]:
        options = active_options()
        if options is None or args:
            return wrapped(*args, **kwargs)  # type: ignore[no-any-return]
        decision = anthropic_provider.prepare(instance._client, kwargs, beta=beta)
        if isinstance(decision, str):
            _warn_live(decision)
            return wrapped(*args, **kwargs)  # type: ignore[no-any-return]

        async def deferred() -> Any:
            # Submitted when the coroutine runs, so that it may be created before its loop
            # exists, as in ``asyncio.run(client.messages.create(...))``.
            return await engine().submit_async(decision.target, decision.params,
                                               decision.size, options)

        return deferred()

    return wrapper


def _warn_live(reason: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        log.warning("deferrable: call goes live inside a deferrable scope: %s", reason)
