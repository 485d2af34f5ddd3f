"""Call sites, as the ledger names them: a deferrable function by its qualified name, any
other call by the location of the code that made it."""

from __future__ import annotations

import contextvars
import functools
import os
import sys
from types import CodeType, FrameType

_function: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "deferrable_site", default=None)
_INTERNAL = ("deferrable._patching", "deferrable._scope", "deferrable._api", "deferrable._greenlets",
             "deferrable._decorator", "wrapt", "anthropic", "openai", "httpx2", "langchain_core",
             "langchain_anthropic", "langchain_openai", "pydantic_ai", "pydantic_graph")
"""Modules between a caller and the patched method (ours, the SDKs', and the frameworks'
built on them): their frames are not the call site."""


def function_site(function: object) -> str:
    """The site name of a decorated function: ``module.qualname``."""
    module = getattr(function, "__module__", None) or "?"
    return f"{module}.{getattr(function, '__qualname__', repr(function))}"


def enter_function(site: str) -> contextvars.Token[str | None]:
    """Name the site of the calls made from here on (in this context)."""
    return _function.set(site)


def leave_function(token: contextvars.Token[str | None]) -> None:
    """Undo `enter_function`."""
    _function.reset(token)


def current_site() -> str:
    """The site of a call being made: the enclosing deferrable function, else the location
    of the first frame outside deferrable, wrapt and the SDKs."""
    named = _function.get()
    if named is not None:
        return named
    frame: FrameType | None = sys._getframe(1)
    outermost = frame
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module == "asyncio" or module.startswith("asyncio."):
            break  # the top of a task: nobody awaited the call but the event loop
        if not _internal(module):
            return f"{_where(frame.f_code)}:{frame.f_lineno} ({_name(frame.f_code)})"
        if "._utils" not in module:  # the SDKs' argument-checking decorators
            outermost = frame
        frame = frame.f_back
    if outermost is None:
        return "?"
    # A coroutine of the SDK handed straight to a task (``asyncio.gather(client....create())``):
    # its creator is not on the stack, so the site is the SDK method that was called.
    return f"{outermost.f_globals.get('__name__')}.{_name(outermost.f_code)} (in a task)"


@functools.lru_cache(maxsize=256)
def _internal(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in _INTERNAL)


@functools.lru_cache(maxsize=1024)
def _where(code: CodeType) -> str:
    """The code's file, relative to the working directory when inside it."""
    path = code.co_filename
    try:
        relative = os.path.relpath(path)
    except ValueError:
        return path
    return path if relative.startswith("..") else relative


def _name(code: CodeType) -> str:
    return getattr(code, "co_qualname", code.co_name)
