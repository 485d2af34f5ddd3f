"""The SDK patches: thin wrapt wrappers that decide live or deferred, nothing more.

Outside a deferrable scope a patched method runs the original at once (one context
variable read). Inside, the provider adapter either accepts the call, which the engine
then owns, or names the reason it must go live (logged once per reason).
"""

from __future__ import annotations

import functools
import importlib
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import wrapt

from . import _greenlets
from ._scope import active_options
from .engine import engine
from .providers._deferral import Deferral

log = logging.getLogger("deferrable")
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]
Prepare = Callable[[object, Mapping[str, Any]], "Deferral | str"]
"""A provider adapter's decision for one call: (SDK client, kwargs) -> deferral or reason."""


@dataclass(frozen=True)
class PatchTarget:
    """One SDK method to patch, and the provider adapter (a module of
    `deferrable.providers` with a `prepare()`) that decides its calls, with the keyword
    arguments that adapter needs for this method."""

    module: str
    name: str
    is_async: bool
    provider: str
    arguments: tuple[tuple[str, Any], ...] = ()

    def prepare(self) -> Prepare:
        """The adapter's `prepare`, bound to this method's arguments."""
        adapter = importlib.import_module(f"{__package__}.providers.{self.provider}")
        return functools.partial(adapter.prepare, **dict(self.arguments))


_CHAT = "openai.resources.chat.completions.completions"
_RESPONSES = "openai.resources.responses.responses"
_EMBEDDINGS = "openai.resources.embeddings"
TARGETS = (
    PatchTarget("anthropic.resources.messages.messages", "Messages.create", False,
                "anthropic", (("beta", False),)),
    PatchTarget("anthropic.resources.messages.messages", "AsyncMessages.create", True,
                "anthropic", (("beta", False),)),
    PatchTarget("anthropic.resources.beta.messages.messages", "Messages.create", False,
                "anthropic", (("beta", True),)),
    PatchTarget("anthropic.resources.beta.messages.messages", "AsyncMessages.create", True,
                "anthropic", (("beta", True),)),
    PatchTarget(_CHAT, "Completions.create", False, "openai",
                (("endpoint", "/v1/chat/completions"),)),
    PatchTarget(_CHAT, "AsyncCompletions.create", True, "openai",
                (("endpoint", "/v1/chat/completions"),)),
    PatchTarget(_RESPONSES, "Responses.create", False, "openai", (("endpoint", "/v1/responses"),)),
    PatchTarget(_RESPONSES, "AsyncResponses.create", True, "openai",
                (("endpoint", "/v1/responses"),)),
    PatchTarget(_EMBEDDINGS, "Embeddings.create", False, "openai",
                (("endpoint", "/v1/embeddings"),)),
    PatchTarget(_EMBEDDINGS, "AsyncEmbeddings.create", True, "openai",
                (("endpoint", "/v1/embeddings"),)),
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
            wrapt.wrap_function_wrapper(target.module, target.name, factory(target.prepare()))
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


def _sync_wrapper(prepare: Prepare) -> Wrapper:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        options = active_options()
        if options is None or args:
            return wrapped(*args, **kwargs)
        decision = prepare(instance._client, kwargs)
        if isinstance(decision, str):
            _warn_live(decision)
            return wrapped(*args, **kwargs)
        future = engine().submit(decision.target, decision.params, decision.size, options,
                                 decision.units)
        return _greenlets.wait(future)

    return wrapper


def _async_wrapper(prepare: Prepare) -> Wrapper:
    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Awaitable[Any]:
        options = active_options()
        if options is None or args:
            return wrapped(*args, **kwargs)  # type: ignore[no-any-return]
        decision = prepare(instance._client, kwargs)
        if isinstance(decision, str):
            _warn_live(decision)
            return wrapped(*args, **kwargs)  # type: ignore[no-any-return]

        async def deferred() -> Any:
            # Submitted when the coroutine runs, so that it may be created before its loop
            # exists, as in ``asyncio.run(client.messages.create(...))``.
            return await engine().submit_async(decision.target, decision.params,
                                               decision.size, options, decision.units)

        return deferred()

    return wrapper


def _warn_live(reason: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        log.warning("deferrable: call goes live inside a deferrable scope: %s", reason)
