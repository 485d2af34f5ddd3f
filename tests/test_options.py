"""Options: built-in defaults, DEFERRABLE_* variables, configure(), and scopes over them."""

from __future__ import annotations

import pytest

import deferrable
from deferrable._options import defaults, reset_defaults
from deferrable._scope import active_options


def test_environment_then_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFERRABLE_* variables set defaults; configure() overrides them."""
    reset_defaults()
    monkeypatch.setenv("DEFERRABLE_MAX_WAIT", "7.5")
    monkeypatch.setenv("DEFERRABLE_MAX_BATCH_SIZE", "42")
    assert defaults().max_wait == 7.5
    assert defaults().max_batch_size == 42
    deferrable.configure(max_wait=2)
    assert defaults().max_wait == 2
    assert defaults().max_batch_size == 42


def test_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed DEFERRABLE_* value is an error naming the variable."""
    reset_defaults()
    monkeypatch.setenv("DEFERRABLE_MAX_WAIT", "soon")
    with pytest.raises(ValueError, match="DEFERRABLE_MAX_WAIT"):
        defaults()


def test_scopes_nest_and_restore() -> None:
    """An inner scope overrides the outer one's options and restores them on exit."""
    assert active_options() is None
    with deferrable.scope(max_wait=3) as outer:
        assert outer.max_wait == 3
        with deferrable.scope(max_batch_size=9) as inner:
            assert (inner.max_wait, inner.max_batch_size) == (3, 9)
            with deferrable.live():
                assert active_options() is None
            assert active_options() == inner
        assert active_options() == outer
    assert active_options() is None


def test_unknown_options_fail_where_they_are_written() -> None:
    """An unknown option name is a TypeError at scope() / @deferrable / configure()."""
    with pytest.raises(TypeError, match="max_wiat"):
        deferrable.scope(max_wiat=1)
    with pytest.raises(TypeError, match="max_wiat"):
        deferrable.deferrable(max_wiat=1)
    with pytest.raises(TypeError, match="max_wiat"):
        deferrable.configure(max_wiat=1)


def test_boolean_options_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFERRABLE_DELETE_FILES reads true/false words; anything else names the variable."""
    reset_defaults()
    assert defaults().delete_files is True
    reset_defaults()
    monkeypatch.setenv("DEFERRABLE_DELETE_FILES", "False")
    assert defaults().delete_files is False
    reset_defaults()
    monkeypatch.setenv("DEFERRABLE_DELETE_FILES", "maybe")
    with pytest.raises(ValueError, match="DEFERRABLE_DELETE_FILES"):
        defaults()
