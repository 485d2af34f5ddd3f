"""The patch registry and the SDK private names the shim relies on."""

from __future__ import annotations

import concurrent.futures
import importlib
import threading

import pytest

import deferrable
from deferrable._patching import TARGETS
from deferrable.providers import _anthropic_sdk, _openai_sdk


def resolve(dotted: str) -> object:
    """The object a dotted name reaches (a module, then attributes, classes' annotations too)."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            if hasattr(found, name):
                found = getattr(found, name)
            else:
                annotations = getattr(found, "__annotations__", {})
                assert name in annotations, f"{dotted}: no {name}"
                found = annotations[name]
        return found
    raise AssertionError(f"{dotted}: no module")


@pytest.mark.parametrize("name", [*_anthropic_sdk.NAMES, *_openai_sdk.NAMES])
def test_each_private_sdk_name_exists(name: str) -> None:
    """Every private SDK name the shim uses is where it expects it (the one list per SDK)."""
    assert resolve(name) is not None


def test_patch_wraps_once_and_unpatch_restores_exactly() -> None:
    """patch() twice wraps each send method once; unpatch() puts back the very functions."""
    owners = [(importlib.import_module(t.module), *t.name.split(".")) for t in TARGETS]
    originals = [getattr(module, owner).__dict__[method] for module, owner, method in owners]
    deferrable.patch()
    deferrable.patch()
    for (module, owner, method), original in zip(owners, originals, strict=True):
        assert getattr(module, owner).__dict__[method].__wrapped__ is original
    deferrable.unpatch()
    deferrable.unpatch()
    for (module, owner, method), original in zip(owners, originals, strict=True):
        assert getattr(module, owner).__dict__[method] is original


def test_every_sdk_send_method_is_patched() -> None:
    """The four places the SDKs send from (sync and async, both SDKs) are the patch targets."""
    assert {(t.provider, t.is_async) for t in TARGETS} == {
        ("anthropic", False), ("anthropic", True), ("openai", False), ("openai", True)}


def test_patch_returns_with_every_imported_sdk_patched_on_any_thread() -> None:
    """Threads calling patch() at once each return only once the imported SDKs are wrapped."""
    deferrable.unpatch()
    owners = [(importlib.import_module(t.module), *t.name.split(".")) for t in TARGETS]
    start = threading.Barrier(8)

    def patch_then_look() -> bool:
        start.wait()
        deferrable.patch()
        return all(hasattr(getattr(module, owner).__dict__[method], "__wrapped__")
                   for module, owner, method in owners)

    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            seen = list(pool.map(lambda _: patch_then_look(), range(8)))
        assert seen == [True] * 8
    finally:
        deferrable.unpatch()
