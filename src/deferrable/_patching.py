"""The SDK patches: thin wrapt wrappers where each SDK sends a request, deciding live or
deferred, nothing more.

Each SDK sends every request (resource methods, `.parse()` helpers, raw and streaming
wrappers, streams, methods bound before patching, frameworks) through one method of its
base client; that is what is patched. Outside a deferrable scope the wrapper runs the
original at once (one context variable read). Inside, a request to one of the four
endpoints is taken as the SDK encoded it (so the SDK has already checked the arguments),
and the provider adapter either accepts it, which the engine then owns, or names the reason
it goes live. The engine's answer is handed back to the SDK as an HTTP response, which the
SDK turns into its return value or its own exception, as it does live.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
import wrapt

from . import _flex, _greenlets, _rescue, _telemetry
from ._collector import freezer
from ._errors import BatchSubmissionError, BudgetExceededError, LiveCallError
from ._options import Options, defaults
from ._scope import active_options, count_deferred, count_live, open_scopes
from ._sdk_versions import unsupported
from ._sites import current_site
from .engine import engine
from .engine._target import RescueLive, SendFlex
from .ledger import Spend, Tokens, live_ledger, price_of
from .ledger._budget import Budget, active_budgets
from .providers import _anthropic_sdk, _openai_sdk
from .providers._deferral import Answer, Deferral, Live, body_of, live_body

log = logging.getLogger("deferrable")
R = TypeVar("R")
Wrapper = Callable[[Callable[..., Any], Any, tuple[Any, ...], dict[str, Any]], Any]


@dataclass(frozen=True)
class PatchTarget:
    """One SDK method to patch (where a base client sends), and its provider."""

    module: str
    name: str
    is_async: bool
    provider: str

    def adapter(self) -> Any:
        """The provider adapter module (`deferrable.providers.<provider>`)."""
        return importlib.import_module(f"{__package__}.providers.{self.provider}")


TARGETS = (
    PatchTarget(_anthropic_sdk.SEND_MODULE, _anthropic_sdk.SEND_SYNC, False, "anthropic"),
    PatchTarget(_anthropic_sdk.SEND_MODULE, _anthropic_sdk.SEND_ASYNC, True, "anthropic"),
    PatchTarget(_openai_sdk.SEND_MODULE, _openai_sdk.SEND_SYNC, False, "openai"),
    PatchTarget(_openai_sdk.SEND_MODULE, _openai_sdk.SEND_ASYNC, True, "openai"),
)

PROVIDERS = ("anthropic", "openai")
"""The SDKs patched, by the name of their top-level module."""

_patch_turn = threading.Lock()
"""Held by `patch()` and `unpatch()` throughout (taken before `_lock`, never by the hook)."""
_lock = threading.Lock()
"""Guards the state below; never held while importing."""
_installed: dict[PatchTarget, tuple[type, str, Any, bool]] = {}
_warned: set[tuple[str, str]] = set()
_wanted = False
"""Whether the patches are wanted (`patch()` called, `unpatch()` not since)."""
_ready = False
"""Whether `patch()` has finished: every imported SDK patched, the others awaited."""


def patch() -> None:
    """Install the SDK patches (idempotent): now for an SDK already imported, else when it
    is first imported (so that `import deferrable` and `@deferrable` import no SDK the
    program does not use). Returns once every imported SDK is patched."""
    if not _ready:
        _patch_now()


def _patch_now() -> None:
    global _wanted, _ready
    with _patch_turn:
        if _ready:
            return
        _wanted = True
        for provider in PROVIDERS:  # wrapt runs the hook at once for an SDK imported already
            wrapt.register_post_import_hook(_imported, provider)
        _ready = True


def _imported(module: Any) -> None:
    """The post-import hook of an SDK: patch it, if the patches are still wanted (an
    earlier `patch()`'s hook may fire too: installing is idempotent)."""
    _install(module.__name__)


def _install(provider: str) -> None:
    """Wrap `provider`'s send methods unless done, or say why not (a version outside the
    supported range is left unpatched: its private names may have moved). Its modules are
    imported before the lock is taken: the thread importing the SDK may hold its import
    lock while it waits for ours (in the post-import hook)."""
    reason = unsupported(provider)
    if reason is not None:
        log.warning("deferrable: %s; its calls are not deferred (they go live, at the full "
                    "price): install a supported version", reason)
        return
    targets = [target for target in TARGETS if target.provider == provider]
    wrappers = {target: _WRAPPERS[target](target) for target in targets}  # imports the adapter
    owners = {target: getattr(importlib.import_module(target.module), target.name.split(".")[0])
              for target in targets}
    with _lock:
        if not _wanted:
            return
        for target in targets:
            if target in _installed:
                continue
            owner, method = owners[target], target.name.split(".")[1]
            original = owner.__dict__.get(method, getattr(owner, method))
            had_own = method in owner.__dict__
            wrapt.wrap_function_wrapper(target.module, target.name, wrappers[target])
            _installed[target] = (owner, method, original, had_own)


def unpatch() -> None:
    """Remove the patches exactly, leaving the SDK classes as they were (idempotent); a
    later `patch()` warns afresh about calls that go live."""
    global _wanted, _ready
    with _patch_turn, _lock:
        _wanted = _ready = False
        for target, (owner, method, original, had_own) in list(_installed.items()):
            current = owner.__dict__.get(method)
            if isinstance(current, wrapt.FunctionWrapper) and current.__wrapped__ is original:
                if had_own:
                    setattr(owner, method, original)
                else:
                    delattr(owner, method)
            del _installed[target]
        _warned.clear()


# -- where each SDK sends ---------------------------------------------------------------


def _anthropic_sync(target: PatchTarget) -> Wrapper:
    adapter = target.adapter()

    def wrapper(wrapped: Callable[..., Any], client: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        options = active_options()
        if options is None and not _observing and not open_scopes.total:
            return wrapped(*args, **kwargs)
        attempt, stream, retries_taken, call = _anthropic_sdk.attempt_arguments(args, kwargs)
        if not _anthropic_sdk.targets_messages(attempt):
            return wrapped(*args, **kwargs)
        if options is None:
            site = _unscoped(current_site())
            sent = wrapped(*args, **kwargs)
            _record_live(adapter, sent[0], stream, None, site)
            return sent
        request = None
        decision: Deferral | Live = Live(f"{type(client).__name__} is not a first-party "
                                         "Anthropic client")
        if type(client) in adapter.FIRST_PARTY:
            request = _anthropic_sdk.build_request(client, attempt, retries_taken, call)
            decision = adapter.examine(client, request, options)
        return _in_scope_sync(
            adapter, _retry_goes_live(decision, retries_taken), options, request, stream,
            send=lambda: wrapped(*args, **kwargs), response_of=lambda sent: sent[0],
            answered=lambda response: (response, attempt),
            retried=lambda error: _anthropic_sdk.sdk_would_retry(client, error))

    return wrapper


def _anthropic_async(target: PatchTarget) -> Wrapper:
    adapter = target.adapter()

    def wrapper(wrapped: Callable[..., Any], client: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        options = active_options()
        if options is None and not _observing and not open_scopes.total:
            return wrapped(*args, **kwargs)
        attempt, stream, retries_taken, call = _anthropic_sdk.attempt_arguments(args, kwargs)
        if not _anthropic_sdk.targets_messages(attempt):
            return wrapped(*args, **kwargs)
        site = current_site() if options is not None else _unscoped(current_site())

        async def send() -> Any:
            if options is None:
                sent = await wrapped(*args, **kwargs)
                _record_live(adapter, sent[0], stream, None, site)
                return sent
            request = None
            decision: Deferral | Live = Live(f"{type(client).__name__} is not a first-party "
                                             "Anthropic client")
            if type(client) in adapter.FIRST_PARTY:
                request = await _anthropic_sdk.build_request_async(client, attempt,
                                                                   retries_taken, call)
                decision = adapter.examine(client, request, options)
            return await _in_scope_async(
                adapter, _retry_goes_live(decision, retries_taken), options, request, stream, site,
                send=lambda: wrapped(*args, **kwargs), response_of=lambda sent: sent[0],
                answered=lambda response: (response, attempt),
                retried=lambda error: _anthropic_sdk.sdk_would_retry(client, error))

        return send()

    return wrapper


def _openai_sync(target: PatchTarget) -> Wrapper:
    adapter = target.adapter()

    def wrapper(wrapped: Callable[..., Any], client: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        options = active_options()
        if options is None and not _observing and not open_scopes.total:
            return wrapped(*args, **kwargs)
        request: httpx2.Request = args[0] if args else kwargs["request"]
        endpoint = adapter.endpoint_of(client, request)
        if endpoint is None:
            return wrapped(*args, **kwargs)
        stream = bool(kwargs.get("stream", False))
        if options is None:
            site = _unscoped(current_site())
            sent = wrapped(*args, **kwargs)
            _record_live(adapter, sent, stream, None, site)
            return sent
        decision = _retry_goes_live(adapter.examine(client, request, options, endpoint),
                                    _openai_sdk.retries_taken(request))
        return _in_scope_sync(
            adapter, decision, options, request, stream, send=lambda: wrapped(*args, **kwargs),
            response_of=_same, answered=_same, retried=None,
            send_as=_sending(wrapped, args, kwargs))

    return wrapper


def _openai_async(target: PatchTarget) -> Wrapper:
    adapter = target.adapter()

    def wrapper(wrapped: Callable[..., Any], client: Any, args: tuple[Any, ...],
                kwargs: dict[str, Any]) -> Any:
        options = active_options()
        if options is None and not _observing and not open_scopes.total:
            return wrapped(*args, **kwargs)
        request: httpx2.Request = args[0] if args else kwargs["request"]
        endpoint = adapter.endpoint_of(client, request)
        if endpoint is None:
            return wrapped(*args, **kwargs)
        stream = bool(kwargs.get("stream", False))
        site = current_site() if options is not None else _unscoped(current_site())
        if options is None:
            return _observed_async(adapter, wrapped(*args, **kwargs), stream, site)
        decision = _retry_goes_live(adapter.examine(client, request, options, endpoint),
                                    _openai_sdk.retries_taken(request))
        return _in_scope_async(
            adapter, decision, options, request, stream, site,
            send=lambda: wrapped(*args, **kwargs), response_of=_same, answered=_same,
            retried=None, send_as=_sending(wrapped, args, kwargs))

    return wrapper


_WRAPPERS: dict[PatchTarget, Callable[[PatchTarget], Wrapper]] = dict(
    zip(TARGETS, (_anthropic_sync, _anthropic_async, _openai_sync, _openai_async), strict=True))


def _same(value: R) -> R:
    return value


def _sending(wrapped: Callable[..., R], args: tuple[Any, ...],
             kwargs: dict[str, Any]) -> Callable[[httpx2.Request], R]:
    """An OpenAI ``_send_request`` call like this one, sending another request instead."""
    rest = {name: value for name, value in kwargs.items() if name != "request"}
    return lambda other: wrapped(other, *args[1:], **rest)


_RETRY = "a retry of a live attempt"


def _retry_goes_live(decision: Deferral | Live, retries_taken: int) -> Deferral | Live:
    """A request the SDK sends again is a retry of a live attempt (a rescued call, or one
    that went live): deferred answers are never retried. It goes live, unannounced."""
    if retries_taken and isinstance(decision, Deferral):
        return Live(_RETRY, decision.params)
    return decision


# -- a request inside a deferrable scope ------------------------------------------------


def _in_scope_sync(adapter: Any, decision: Deferral | Live, options: Options,
                   request: httpx2.Request | None, stream: bool, *, send: Callable[[], R],
                   response_of: Callable[[R], httpx2.Response],
                   answered: Callable[[httpx2.Response], R],
                   retried: Callable[[BaseException], bool] | None,
                   send_as: Callable[[httpx2.Request], R] | None = None) -> R:
    """Carry out the decision for a request made in a sync scope (or a sync @deferrable).
    `send` sends the request as the SDK built it; `send_as` sends another in its place
    (a flex request), where the provider has flex."""
    site = current_site()
    if isinstance(decision, Live):
        if decision.reason != _RETRY:
            _going_live(decision.reason, site, options)
            _telemetry.counted("live", adapter.PROVIDER)
        with _Holds(adapter, decision.params) as holds:
            sent = send()
            holds.settle_live(response_of(sent),
                              _record_live(adapter, response_of(sent), stream, options, site))
            return sent
    assert request is not None
    count_deferred()
    if options.freeze_gc:
        freezer.call()
    if not _greenlets.in_task():
        _waits_in_a_row(site)
    with _Holds(adapter, decision.params, batch=_batch_priced(options)) as holds, \
            _telemetry.deferred_call(adapter.PROVIDER, request.url.path, decision.params,
                                     options.lane) as traced:
        lane_options = options
        flex_first = options.lane == "flex" and send_as is not None
        while True:
            if flex_first and send_as is not None:
                sent_flex = _flex.send_sync(adapter, request, send_as, response_of)
                if sent_flex is not None:
                    _served_flex(adapter, holds, traced, response_of(sent_flex), stream,
                                 options, site)
                    return sent_flex
                lane_options = options.replace(lane="batch")
            future = engine().submit(decision.target, decision.params, decision.size,
                                     lane_options, decision.units, site, _greenlets.waiter())
            try:
                answer: Answer = _greenlets.wait(future)
            except SendFlex:  # (never for a provider without flex; if so, a batch)
                flex_first = send_as is not None
                lane_options = options if flex_first else options.replace(lane="batch")
                continue
            except RescueLive as rescue:
                sent = _rescue.run_sync(send)
                _rescued(adapter, rescue, holds, traced, response_of(sent), stream, options,
                         site)
                return sent
            except Exception as error:
                final = _final(error, retried)
                if final is error:
                    raise
                raise final  # noqa: B904 - a __cause__ would have the SDK's retry loop send it again
            holds.settle_answer(answer)
            _telemetry.answered(traced, adapter.PROVIDER, status=answer.status,
                                spent=answer.spent, batch=answer.batch, lane="batch")
            return answered(answer.response(request, request_id_header=adapter.REQUEST_ID_HEADER,
                                            replay=decision.replay))


async def _in_scope_async(adapter: Any, decision: Deferral | Live, options: Options,
                          request: httpx2.Request | None, stream: bool, site: str, *,
                          send: Callable[[], Awaitable[R]],
                          response_of: Callable[[R], httpx2.Response],
                          answered: Callable[[httpx2.Response], R],
                          retried: Callable[[BaseException], bool] | None,
                          send_as: Callable[[httpx2.Request], Awaitable[R]] | None = None) -> R:
    """`_in_scope_sync` for async code."""
    if isinstance(decision, Live):
        if decision.reason != _RETRY:
            _going_live(decision.reason, site, options)
            _telemetry.counted("live", adapter.PROVIDER)
        with _Holds(adapter, decision.params) as holds:
            sent = await send()
            holds.settle_live(response_of(sent),
                              _record_live(adapter, response_of(sent), stream, options, site))
            return sent
    assert request is not None
    count_deferred()
    if options.freeze_gc:
        freezer.call()
    with _Holds(adapter, decision.params, batch=_batch_priced(options)) as holds, \
            _telemetry.deferred_call(adapter.PROVIDER, request.url.path, decision.params,
                                     options.lane) as traced:
        lane_options = options
        flex_first = options.lane == "flex" and send_as is not None
        while True:
            if flex_first and send_as is not None:
                sent_flex = await _flex.send_async(adapter, request, send_as, response_of)
                if sent_flex is not None:
                    _served_flex(adapter, holds, traced, response_of(sent_flex), stream,
                                 options, site)
                    return sent_flex
                lane_options = options.replace(lane="batch")
            waiting = engine().submit_async(decision.target, decision.params, decision.size,
                                            lane_options, decision.units, site)
            try:
                answer: Answer = await waiting
            except SendFlex:  # (never for a provider without flex; if so, a batch)
                flex_first = send_as is not None
                lane_options = options if flex_first else options.replace(lane="batch")
                continue
            except RescueLive as rescue:
                rescued = await _rescue.run_async(send)
                _rescued(adapter, rescue, holds, traced, response_of(rescued), stream, options,
                         site)
                return rescued
            except Exception as error:
                final = _final(error, retried)
                if final is error:
                    raise
                raise final  # noqa: B904 - a __cause__ would have the SDK's retry loop send it again
            holds.settle_answer(answer)
            _telemetry.answered(traced, adapter.PROVIDER, status=answer.status,
                                spent=answer.spent, batch=answer.batch, lane="batch")
            return answered(answer.response(request, request_id_header=adapter.REQUEST_ID_HEADER,
                                            replay=decision.replay))


def _batch_priced(options: Options) -> bool:
    """Whether a deferred call can only be billed at the batch price: no deadline may
    rescue it live (flex is billed at batch prices too)."""
    return options.deadline is None or options.on_deadline == "raise" or options.strict


def _rescued(adapter: Any, rescue: RescueLive, holds: _Holds, traced: _telemetry.CallTrace,
             response: httpx2.Response, stream: bool, options: Options, site: str) -> None:
    """A rescued call's live attempt answered: record its spend (marked rescued), charge
    the budgets, and keep a successful answer in the journal for a rerun."""
    spent = _record_live(adapter, response, stream, options, f"{site} {_rescue.RESCUED}")
    holds.settle_live(response, spent)
    _telemetry.counted("rescued", adapter.PROVIDER)
    if traced.span is not None:
        traced.span.set_attribute("deferrable.lane", "rescued")
        traced.span.set_attribute("deferrable.wait_s", time.monotonic() - traced.started)
    body = live_body(response, stream)
    if body is not None and rescue.keep is not None:
        rescue.keep(body, response.headers.get(adapter.REQUEST_ID_HEADER, ""))


def _served_flex(adapter: Any, holds: _Holds, traced: _telemetry.CallTrace,
                 response: httpx2.Response, stream: bool, options: Options, site: str) -> None:
    """A flex answer: record its spend at batch prices and charge the budgets so."""
    spent = _record_live(adapter, response, stream, options, site, mode="flex")
    _telemetry.counted("flex", adapter.PROVIDER)
    _telemetry.answered(traced, adapter.PROVIDER, status=response.status_code, spent=spent,
                        batch=None, lane="flex")
    if response.is_success:
        holds.settle(spent, batch=True)
    else:
        holds.release()


class _SerialWaits(threading.local):
    """Per thread: deferred calls that blocked it until their batch ended, in a row."""

    count = 0


_serial = _SerialWaits()
_SERIAL_HINT_AFTER = 3


def _waits_in_a_row(site: str) -> None:
    """A deferred call is about to block its thread until its batch ends: after several in
    a row, hint (once per site) that they could share a batch."""
    _serial.count += 1
    if _serial.count >= _SERIAL_HINT_AFTER and (site, "serial") not in _warned:
        _warned.add((site, "serial"))
        log.warning(
            "deferrable: the calls at %s each wait for their own batch, one after another "
            "(%d so far on this thread): at a real provider each wait is minutes to hours. "
            "To put them in one batch, make them from a sync @deferrable function (its calls "
            "return futures at once) or run them with deferrable.map(function, items)",
            site, _serial.count)


def _final(error: Exception, retried: Callable[[BaseException], bool] | None) -> Exception:
    """The exception a deferred caller gets: `error` as it is, unless the SDK's retry loop
    would send the request again after it (the engine already retried what a batch
    allows), in which case a `BatchSubmissionError` that names it."""
    if retried is None or not retried(error):
        return error
    return BatchSubmissionError(f"the batch holding this call failed: {error!r}")


def _going_live(reason: str, site: str, options: Options) -> None:
    """A call in a scope goes live: refused under `strict`, else counted, and logged once
    per call site and reason."""
    if options.strict:
        raise LiveCallError(f"the call at {site} would go live at full price ({reason}); "
                            "strict=True refuses it")
    count_live(reason)
    if (site, reason) not in _warned:
        _warned.add((site, reason))
        log.warning("deferrable: the call at %s goes live at full price inside a deferrable "
                    "scope: %s", site, reason)


def _unscoped(site: str) -> str:
    """A call outside any scope goes live: say so once per site when a scope is open on
    another thread (a thread pool started inside it, say), which it may belong to."""
    if open_scopes.elsewhere() and (site, "thread") not in _warned:
        _warned.add((site, "thread"))
        log.warning(
            "deferrable: the call at %s goes live at full price: it runs on thread %r, "
            "outside any deferrable scope, while a scope is open on another thread. Threads "
            "do not inherit a scope; if the call belongs to it, submit the work through "
            "deferrable.ThreadPoolExecutor (it carries the scope) or run it in "
            "contextvars.copy_context()", site, threading.current_thread().name)
    return site


# -- live calls: the ledger and observe mode ----------------------------------------------


async def _observed_async(adapter: Any, sending: Awaitable[httpx2.Response], stream: bool,
                          site: str) -> httpx2.Response:
    """A live call outside any scope, recorded in the ledger (observe mode)."""
    response = await sending
    _record_live(adapter, response, stream, None, site)
    return response


def _record_live(adapter: Any, response: httpx2.Response, stream: bool,
                 options: Options | None, site: str,
                 mode: str = "live") -> tuple[str, Tokens] | None:
    """Record a live call's spend in the ledger of its scope's journal (outside a scope,
    the default one's); returns it. In a scope, a call whose usage is not known here (a
    stream) is recorded too, as a call of unknown cost. Outside a scope, only in observe
    mode."""
    if options is None and not _observing:
        return None
    spent: tuple[str, Tokens] | None = adapter.live_spend(live_body(response, stream))
    journal = (options or defaults()).journal
    if not journal or not response.is_success:
        return spent
    if spent is not None:
        live_ledger.add((options or defaults()).store,
                        Spend(site, adapter.PROVIDER, spent[0], mode, spent[1]))
    elif options is not None:
        model = _model_of(response.request)
        live_ledger.add(options.store, Spend(site, adapter.PROVIDER, model, mode, None))
    return spent


def _model_of(request: httpx2.Request) -> str:
    """The model a live request names (for the ledger), or ``?``."""
    body = body_of(request)
    model = body.get("model") if body is not None else None
    return model if isinstance(model, str) else "?"


class _Holds:
    """A call's reservations against the budgets of the scopes around it: taken on
    entry (BudgetExceededError if any cannot cover the call), replaced by the actual
    cost by `settle()`, released if the call fails."""

    def __init__(self, adapter: Any, params: Mapping[str, Any] | None, *,
                 batch: bool = False) -> None:
        """`batch`: the call can only be billed at the batch price (it is deferred, and no
        deadline may rescue it live), so its worst case is held at that price."""
        self._adapter = adapter
        self._params = params
        self._batch = batch
        self._budgets = active_budgets()
        self._estimate = 0.0
        self._held: list[Budget] = []

    def __enter__(self) -> _Holds:
        if self._budgets and not self._held:
            model, tokens = self._adapter.upper_bound(self._params or {})
            price = price_of(model)
            estimate = price.cost(tokens, batch=self._batch) if price is not None else None
            if estimate is None:
                raise BudgetExceededError(f"the price of {model} is unknown, so a call to it "
                                          "cannot be held to this scope's budget; it was not made")
            self._estimate = estimate
            for budget in self._budgets:
                try:
                    budget.reserve(estimate, f"this call to {model}")
                except BudgetExceededError:
                    self.release()
                    raise
                self._held.append(budget)
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        if kind is not None:
            self.release()

    def settle(self, spent: tuple[str, Tokens] | None, *, batch: bool = False) -> None:
        """Charge the budgets what the call cost (at the batch price when `batch`); what
        cannot be priced stays charged at its estimate."""
        if not self._held:
            return
        price = price_of(spent[0]) if spent is not None else None
        cost = price.cost(spent[1], batch=batch) if price is not None and spent else None
        for budget in self._held:
            budget.settle(self._estimate, self._estimate if cost is None else cost)
        self._held = []

    def settle_live(self, response: httpx2.Response, spent: tuple[str, Tokens] | None) -> None:
        """Charge a live attempt: its cost, or nothing for an error answer (which the SDK
        may send again, holding afresh)."""
        if response.is_success:
            self.settle(spent)
        else:
            self.release()

    def settle_answer(self, answer: Answer) -> None:
        """Charge a deferred call's answer: its cost, or nothing for an error."""
        if answer.status >= 400:
            self.release()
        else:
            self.settle(answer.spent, batch=True)

    def release(self) -> None:
        """Give back what is held (the call was not made, or failed)."""
        for budget in self._held:
            budget.settle(self._estimate, None)
        self._held = []


_observing = os.environ.get("DEFERRABLE_OBSERVE", "").strip().lower() in ("1", "true", "yes", "on")


def observe(enabled: bool = True) -> None:
    """Record live calls made outside any deferrable scope in the ledger, with their call
    site, to find what deferring them would save (``deferrable report`` lists them as
    candidates); installs the patches. Nothing is deferred by this."""
    global _observing
    _observing = enabled
    if enabled:
        patch()


if _observing:  # DEFERRABLE_OBSERVE=1 with a plain `import deferrable` records from the start
    patch()
