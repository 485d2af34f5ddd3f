"""An SDK outside the versions deferrable declares is left unpatched, with a warning."""

from __future__ import annotations

import importlib
import logging

import pytest

import deferrable
from deferrable import _sdk_versions
from deferrable._patching import TARGETS
from deferrable._sdk_versions import outside, unsupported

DECLARED = ["anthropic<3,>=2.12", "openai<4,>=3.54", "wrapt>=2.0",
            'pytest>=8; extra == "test"']


def test_a_version_inside_the_declared_range_is_supported() -> None:
    """Versions within the range pass, pre-releases of them too; an SDK nobody names passes."""
    assert outside("anthropic", "2.12.0", DECLARED) is None
    assert outside("anthropic", "2.99.1rc1", DECLARED) is None
    assert outside("openai", "3.57.0", DECLARED) is None
    assert outside("cohere", "9.0", DECLARED) is None


def test_a_version_outside_the_range_says_which_and_why() -> None:
    """Too old, too new or unreadable: the reason names the SDK, its version and the range."""
    assert outside("anthropic", "2.11.9", DECLARED) == (
        "anthropic 2.11.9 is outside the versions deferrable supports (<3,>=2.12)")
    assert outside("openai", "4.0.0", DECLARED) == (
        "openai 4.0.0 is outside the versions deferrable supports (<4,>=3.54)")
    assert outside("openai", "not-a-version", DECLARED) == (
        "openai not-a-version is not a version deferrable can compare")


def test_the_installed_sdks_are_supported() -> None:
    """The SDKs this suite runs against meet deferrable's own declared ranges (which the
    installed metadata does declare: an old version falls outside them)."""
    assert unsupported("anthropic") is None
    assert unsupported("openai") is None
    declared = _sdk_versions.metadata.requires("deferrable") or []
    assert outside("anthropic", "0.1", declared) is not None
    assert outside("openai", "0.1", declared) is not None


def test_an_unsupported_sdk_is_left_unpatched_with_a_warning(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """patch() with an SDK reported outside the range wraps nothing of it and says so;
    the other SDK is patched as usual."""
    deferrable.unpatch()
    monkeypatch.setattr(_sdk_versions.metadata, "version",
                        lambda name: "9.0.0" if name == "anthropic" else "3.57.0")
    unsupported.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="deferrable"):
            deferrable.patch()
        for target in TARGETS:
            owner_name, method = target.name.split(".")
            found = getattr(importlib.import_module(target.module), owner_name).__dict__[method]
            assert hasattr(found, "__wrapped__") is (target.provider == "openai"), target
        assert any("anthropic 9.0.0 is outside the versions deferrable supports" in r.getMessage()
                   and "go live, at the full price" in r.getMessage() for r in caplog.records)
    finally:
        deferrable.unpatch()
        unsupported.cache_clear()
