"""Call sites, as the ledger names them: short, and the same on every run of the same code,
since they are the ledger's keys.

A site is the function that made the call: ``module.qualname`` for code of an importable
module (``myjob.pipeline.classify``, also when the module runs as ``python -m``), and
``path:qualname`` for a script's code, the path relative to the working directory
(``jobs/nightly.py:classify``). A deferrable function is named the same way, so a call
site that was observed live and is then decorated keeps its name. No line numbers: they
move whenever the code above them is edited.
"""

from __future__ import annotations

import contextvars
import functools
import os
import re
import sys
from collections.abc import Mapping
from types import FrameType

_function: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "deferrable_site", default=None)
_INTERNAL = ("deferrable._patching", "deferrable._scope", "deferrable._api", "deferrable._greenlets",
             "deferrable._decorator", "wrapt", "anthropic", "openai", "httpx2", "langchain_core",
             "langchain_anthropic", "langchain_openai", "pydantic_ai", "pydantic_graph")
"""Modules between a caller and the patched method (ours, the SDKs', and the frameworks'
built on them): their frames are not the call site."""
_COMPREHENSION = re.compile(r"(?:^|\.<locals>\.)<(?:listcomp|dictcomp|setcomp|genexpr)>$")
"""A comprehension's own scope at the end of a qualified name: Python 3.12 runs list, dict
and set comprehensions in their function's frame, 3.11 in a frame of their own."""


def function_site(function: object) -> str:
    """The site name of a decorated function: ``module.qualname``, or ``path:qualname`` for
    a function of a script."""
    while isinstance(function, functools.partial):
        function = function.func
    if not hasattr(function, "__qualname__"):  # a callable object: its class
        function = type(function)
    module = getattr(function, "__module__", None)
    loaded = sys.modules.get(module) if isinstance(module, str) else None
    namespace: Mapping[str, object] = vars(loaded) if loaded is not None else {"__name__": module}
    code = getattr(function, "__code__", None)
    filename = getattr(code, "co_filename", None) or namespace.get("__file__")
    return site_name(module_name(namespace), filename if isinstance(filename, str) else None,
                     str(getattr(function, "__qualname__", "?")), os.getcwd())


def enter_function(site: str) -> contextvars.Token[str | None]:
    """Name the site of the calls made from here on (in this context)."""
    return _function.set(site)


def leave_function(token: contextvars.Token[str | None]) -> None:
    """Undo `enter_function`."""
    _function.reset(token)


def current_site() -> str:
    """The site of a call being made: the enclosing deferrable function, else the function
    of the first frame outside deferrable, wrapt, the SDKs and the frameworks on them."""
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
            return _frame_site(frame)
        if "._utils" not in module:  # the SDKs' argument-checking decorators
            outermost = frame
        frame = frame.f_back
    if outermost is None:
        return "?"
    # A coroutine of the SDK handed straight to a task (``asyncio.gather(client....create())``):
    # its creator is not on the stack, so the site is the SDK method that was called.
    return f"{_frame_site(outermost)} (in a task)"


def module_name(namespace: Mapping[str, object]) -> str | None:
    """The name a module (given by its globals) is imported by: its spec's (also when it
    runs as ``python -m``), else its ``__name__``; None for a script (``__main__`` without a
    spec) or a name that is not dotted identifiers (code run by ``runpy.run_path``, say)."""
    name = getattr(namespace.get("__spec__"), "name", None) or namespace.get("__name__")
    if not isinstance(name, str) or name == "__main__":
        return None
    return name if all(part.isidentifier() for part in name.split(".")) else None


def site_name(module: str | None, filename: str | None, qualname: str, cwd: str,
              home: str | None = None) -> str:
    """A site's name: ``module.qualname`` for a module's code, else ``path:qualname`` with
    `script_path`; a comprehension's code is its function's."""
    while (steady := _COMPREHENSION.sub("", qualname)) != qualname:
        qualname = steady or "<module>"
    if module is not None:
        return f"{module}.{qualname}"
    return f"{script_path(filename, cwd, home)}:{qualname}"


def script_path(filename: str | None, cwd: str, home: str | None = None) -> str:
    """A script's file as a site names it: relative to `cwd` when inside it, else under
    ``~`` when inside `home` (default: the user's), else absolute; ``/``-separated.
    Pseudo-files (``<stdin>``, ``<string>``) stay as they are."""
    if not filename:
        return "?"
    if filename.startswith("<") and filename.endswith(">"):
        return filename
    path = os.path.normpath(os.path.join(cwd, filename))
    home = os.path.expanduser("~") if home is None else home
    for base, prefix in ((cwd, ""), (home, "~/")):
        try:
            relative = os.path.relpath(path, base)
        except ValueError:  # another drive
            continue
        if relative != os.curdir and relative != os.pardir \
                and not relative.startswith(os.pardir + os.sep):
            return prefix + relative.replace(os.sep, "/")
    return path.replace(os.sep, "/")


@functools.lru_cache(maxsize=256)
def _internal(module: str) -> bool:
    return any(module == name or module.startswith(name + ".") for name in _INTERNAL)


def _frame_site(frame: FrameType) -> str:
    code = frame.f_code
    return _site_of(module_name(frame.f_globals), code.co_filename,
                    getattr(code, "co_qualname", code.co_name), os.getcwd())


@functools.lru_cache(maxsize=1024)
def _site_of(module: str | None, filename: str, qualname: str, cwd: str) -> str:
    return site_name(module, filename, qualname, cwd)
