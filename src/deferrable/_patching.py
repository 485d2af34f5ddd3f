"""The SDK patches: thin wrapt wrappers that decide live or deferred, nothing more.

Outside a deferrable scope a patched method runs the original at once (one context
variable read). Inside, the provider adapter either accepts the call, which the engine
then owns, or names the reason it must go live (logged once per reason).
"""

from __future__ import annotations

import functools
import importlib
import logging
import os
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import wrapt

from . import _greenlets
from ._errors import BudgetExceededError
from ._options import Options, defaults
from ._scope import active_options
from ._sites import current_site
from .engine import engine
from .ledger import Spend, Tokens, live_ledger, price_of
from .ledger._budget import Budget, active_budgets
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

    def adapter(self) -> Any:
        """The provider adapter module."""
        return importlib.import_module(f"{__package__}.providers.{self.provider}")

    def prepare(self) -> Prepare:
        """The adapter's `prepare`, bound to this method's arguments."""
        return functools.partial(self.adapter().prepare, **dict(self.arguments))


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
            wrapt.wrap_function_wrapper(target.module, target.name, factory(target))
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


def _sync_wrapper(target: PatchTarget) -> Wrapper:
    prepare, adapter = target.prepare(), target.adapter()

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        options = active_options()
        if options is None or args:
            if not _observing or args:
                return wrapped(*args, **kwargs)
            value = wrapped(*args, **kwargs)
            _record_live(adapter, value, None)
            return value
        with _Holds(adapter, kwargs) as holds:
            decision = prepare(instance._client, kwargs)
            if isinstance(decision, str):
                _warn_live(decision)
                value = wrapped(*args, **kwargs)
                _record_live(adapter, value, options)
                holds.settle(value, batch=False)
                return value
            future = engine().submit(decision.target, decision.params, decision.size, options,
                                     decision.units, current_site())
            value = _greenlets.wait(future)
            holds.settle(value, batch=True)
            return value

    return wrapper


def _async_wrapper(target: PatchTarget) -> Wrapper:
    prepare, adapter = target.prepare(), target.adapter()

    def wrapper(wrapped: Callable[..., Any], instance: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Awaitable[Any]:
        options = active_options()
        if options is None or args:
            if not _observing or args:
                return wrapped(*args, **kwargs)  # type: ignore[no-any-return]
            return _observed(adapter, wrapped(*args, **kwargs), current_site())
        holds = _Holds(adapter, kwargs)  # taken when the coroutine runs, as errors are
        decision = prepare(instance._client, kwargs)
        if isinstance(decision, str):
            _warn_live(decision)
            return _live_in_scope(adapter, functools.partial(wrapped, *args, **kwargs), holds,
                                  options, current_site())
        site = current_site()

        async def deferred() -> Any:
            # Submitted when the coroutine runs, so that it may be created before its loop
            # exists, as in ``asyncio.run(client.messages.create(...))``.
            with holds:
                value = await engine().submit_async(decision.target, decision.params,
                                                    decision.size, options, decision.units, site)
                holds.settle(value, batch=True)
                return value

        return deferred()

    return wrapper


async def _observed(adapter: Any, call: Awaitable[Any], site: str) -> Any:
    """A live call outside any scope, recorded in the ledger (observe mode)."""
    value = await call
    _record_live(adapter, value, None, site)
    return value


async def _live_in_scope(adapter: Any, call: Callable[[], Awaitable[Any]], holds: _Holds,
                         options: Options, site: str) -> Any:
    """A call that had to go live inside a scope: held against its budgets (made only if
    they allow it), and recorded."""
    with holds:
        value = await call()
        _record_live(adapter, value, options, site)
        holds.settle(value, batch=False)
        return value


def _record_live(adapter: Any, value: object, options: Options | None,
                 site: str | None = None) -> None:
    """Record a live call's spend in the ledger of its scope's journal (outside a scope,
    the default one's)."""
    options = options or defaults()
    spent: tuple[str, Tokens] | None = adapter.live_spend(value)
    if spent is not None and options.journal:
        live_ledger.add(options.store, Spend(site or current_site(), adapter.PROVIDER, spent[0], "live",
                                     spent[1]))


class _Holds:
    """A call's reservations against the budgets of the scopes around it: taken on
    entry (BudgetExceededError if any cannot cover the call), replaced by the actual
    cost by `settle()`, released if the call fails."""

    def __init__(self, adapter: Any, kwargs: dict[str, Any]) -> None:
        self._adapter = adapter
        self._kwargs = kwargs
        self._budgets = active_budgets()
        self._estimate = 0.0
        self._held: list[Budget] = []
        self._settled = False

    def open(self) -> _Holds:
        """Take the reservations (once); returns self."""
        if self._budgets and not self._held:
            model, tokens = self._adapter.upper_bound(self._kwargs)
            price = price_of(model)
            estimate = price.cost(tokens, batch=False) if price is not None else None
            if estimate is None:
                raise BudgetExceededError(f"the price of {model} is unknown, so a call to it "
                                          "cannot be held to this scope's budget; it was not made")
            self._estimate = estimate
            for budget in self._budgets:
                try:
                    budget.reserve(estimate, f"this call to {model}")
                except BudgetExceededError:
                    self._release()
                    raise
                self._held.append(budget)
        return self

    def settle(self, value: object, *, batch: bool) -> None:
        """Charge the budgets what the call that returned `value` cost (at the batch
        price when `batch`); what cannot be priced stays charged at its estimate."""
        if not self._held:
            return
        spent: tuple[str, Tokens] | None = self._adapter.live_spend(value)
        price = price_of(spent[0]) if spent is not None else None
        cost = price.cost(spent[1], batch=batch) if price is not None and spent else None
        for budget in self._held:
            budget.settle(self._estimate, self._estimate if cost is None else cost)
        self._held = []

    def _release(self) -> None:
        for budget in self._held:
            budget.settle(self._estimate, None)
        self._held = []

    def __enter__(self) -> _Holds:
        return self.open()

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None:
            self._release()


_observing = os.environ.get("DEFERRABLE_OBSERVE", "").strip().lower() in ("1", "true", "yes", "on")


def observe(enabled: bool = True) -> None:
    """Record live calls made outside any deferrable scope in the ledger, with their call
    site, to find what deferring them would save (``deferrable report`` lists them as
    candidates); installs the patches. Nothing is deferred by this."""
    global _observing
    _observing = enabled
    if enabled:
        patch()


def _warn_live(reason: str) -> None:
    if reason not in _warned:
        _warned.add(reason)
        log.warning("deferrable: call goes live inside a deferrable scope: %s", reason)
