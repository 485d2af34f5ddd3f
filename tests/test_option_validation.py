"""Option values are checked where they are given: Options(...), replace(), scope(),
@deferrable(...), configure() and DEFERRABLE_* variables."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pytest

import deferrable
from deferrable import Options
from deferrable._options import defaults, reset_defaults
from deferrable._scope import active_options

WRONG_TYPES: list[tuple[str, Any, str]] = [
    ("max_batch_size", "5", "max_batch_size must be an int, not str ('5')"),
    ("max_batch_size", 5.0, "max_batch_size must be an int, not float (5.0)"),
    ("max_batch_size", True, "max_batch_size must be an int, not bool (True)"),
    ("max_batch_bytes", "1000", "max_batch_bytes must be an int, not str ('1000')"),
    ("max_batch_bytes", None, "max_batch_bytes must be an int, not NoneType (None)"),
    ("max_wait", "0.05", "max_wait must be a number of seconds, not str ('0.05')"),
    ("max_wait", False, "max_wait must be a number of seconds, not bool (False)"),
    ("poll_interval", "1", "poll_interval must be a number of seconds, not str ('1')"),
    ("max_poll_interval", None, "max_poll_interval must be a number of seconds, not NoneType (None)"),
    ("deadline", "60", "deadline must be None or a number of seconds, not str ('60')"),
    ("deadline", True, "deadline must be None or a number of seconds, not bool (True)"),
    ("store", 3, "store must be None, a str or an os.PathLike, not int (3)"),
    ("store", b"/tmp/j", "store must be None, a str or an os.PathLike, not bytes (b'/tmp/j')"),
    ("journal", 1, "journal must be True or False, not int (1)"),
    ("journal", "false", "journal must be True or False, not str ('false'); write False, without quotes"),
    ("reuse_for", "3600", "reuse_for must be a number of seconds, not str ('3600')"),
    ("dedupe", "true", "dedupe must be True or False, not str ('true'); write True, without quotes"),
    ("delete_files", 0, "delete_files must be True or False, not int (0)"),
    ("defer_streams", None, "defer_streams must be True or False, not NoneType (None)"),
    ("strict", "maybe", "strict must be True or False, not str ('maybe')"),
]
"""(option, value of the wrong type, the exact TypeError message)."""

WRONG_RANGES: list[tuple[str, Any, str]] = [
    ("max_batch_size", 0, "max_batch_size must be at least 1, not 0"),
    ("max_batch_bytes", -1, "max_batch_bytes must be at least 1, not -1"),
    ("max_wait", -5, "max_wait must be at least 0, not -5"),
    ("max_wait", math.inf, "max_wait must be finite, not inf"),
    ("max_wait", math.nan, "max_wait must be a number of seconds, not nan"),
    ("poll_interval", 0, "poll_interval must be greater than 0, not 0"),
    ("poll_interval", math.inf, "poll_interval must be finite, not inf"),
    ("max_poll_interval", -0.5, "max_poll_interval must be greater than 0, not -0.5"),
    ("deadline", 0, "deadline must be greater than 0, not 0"),
    ("deadline", math.inf, "deadline must be finite, not inf"),
    ("store", "", "store must be a non-empty path, not ''"),
    ("reuse_for", -1, "reuse_for must be at least 0, not -1"),
    ("reuse_for", math.nan, "reuse_for must be a number of seconds, not nan"),
]
"""(option, value of the right type out of range, the exact ValueError message)."""

FLAGS = {"journal", "dedupe", "delete_files", "defer_streams", "strict"}

VALID: dict[str, Any] = {
    "max_batch_size": 1, "max_batch_bytes": 1, "max_wait": 0, "poll_interval": 0.01,
    "max_poll_interval": 0.001, "deadline": 3600, "store": "journal-dir", "journal": False,
    "reuse_for": math.inf, "dedupe": True, "delete_files": False, "defer_streams": False,
    "strict": True,
}
"""A value for every option, each at or near the edge of what is accepted."""


def _ids(cases: list[tuple[str, Any, str]]) -> list[str]:
    return [f"{name}={value!r}" for name, value, _ in cases]


def test_tables_cover_every_option() -> None:
    """Every option has a wrong-type case, and every non-flag option a wrong-range case."""
    names = {field.name for field in dataclasses.fields(Options)}
    assert {name for name, _, _ in WRONG_TYPES} == names
    assert {name for name, _, _ in WRONG_RANGES} == names - FLAGS
    assert set(VALID) == names


@pytest.mark.parametrize(("name", "value", "message"), WRONG_TYPES, ids=_ids(WRONG_TYPES))
def test_wrong_type_is_a_type_error(name: str, value: Any, message: str) -> None:
    """Options(...) and replace() refuse a wrong type with a TypeError naming option and value."""
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        Options(**{name: value})
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        Options().replace(**{name: value})


@pytest.mark.parametrize(("name", "value", "message"), WRONG_RANGES, ids=_ids(WRONG_RANGES))
def test_wrong_range_is_a_value_error(name: str, value: Any, message: str) -> None:
    """Options(...) and replace() refuse an out-of-range value with a ValueError naming both."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Options(**{name: value})
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Options().replace(**{name: value})


@pytest.mark.parametrize(("name", "value", "message"), WRONG_TYPES + WRONG_RANGES,
                         ids=_ids(WRONG_TYPES + WRONG_RANGES))
def test_scope_refuses_bad_values_at_construction(name: str, value: Any, message: str) -> None:
    """scope(...) raises when it is created, before it is entered."""
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        deferrable.scope(**{name: value})
    assert active_options() is None


def test_scope_refuses_a_string_max_wait() -> None:
    """deferrable.scope(max_wait="0.05") is a TypeError at construction."""
    with pytest.raises(TypeError, match=re.escape("max_wait must be a number of seconds")):
        deferrable.scope(max_wait="0.05")


@pytest.mark.parametrize(("name", "value", "message"), WRONG_TYPES + WRONG_RANGES,
                         ids=_ids(WRONG_TYPES + WRONG_RANGES))
def test_decorator_refuses_bad_values_at_decoration(name: str, value: Any, message: str) -> None:
    """@deferrable(option=bad) raises when the decorator is built, not when the function runs."""
    with pytest.raises((TypeError, ValueError), match=re.escape(message)):
        deferrable.deferrable(**{name: value})


def test_decorator_with_negative_max_wait() -> None:
    """@deferrable(max_wait=-5) is a ValueError at decoration time."""
    with pytest.raises(ValueError, match=re.escape("max_wait must be at least 0, not -5")):

        @deferrable.deferrable(max_wait=-5)
        def never() -> None: ...


def test_configure_refuses_and_keeps_the_defaults() -> None:
    """configure(poll_interval=0) raises and leaves the defaults as they were."""
    before = defaults()
    with pytest.raises(ValueError, match=re.escape("poll_interval must be greater than 0, not 0")):
        deferrable.configure(poll_interval=0)
    with pytest.raises(TypeError, match=re.escape("max_batch_size must be an int, not str ('9')")):
        deferrable.configure(max_batch_size="9")
    assert defaults() is before


ENVIRONMENT: list[tuple[str, str, str]] = [
    ("MAX_WAIT", "-1", "DEFERRABLE_MAX_WAIT=-1: max_wait must be at least 0, not -1.0"),
    ("MAX_WAIT", "nan", "DEFERRABLE_MAX_WAIT=nan: max_wait must be a number of seconds, not nan"),
    ("MAX_WAIT", "inf", "DEFERRABLE_MAX_WAIT=inf: max_wait must be finite, not inf"),
    ("MAX_WAIT", "soon", "DEFERRABLE_MAX_WAIT=soon: max_wait must be a number of seconds, not 'soon'"),
    ("POLL_INTERVAL", "0", "DEFERRABLE_POLL_INTERVAL=0: poll_interval must be greater than 0, not 0.0"),
    ("MAX_POLL_INTERVAL", "-3",
     "DEFERRABLE_MAX_POLL_INTERVAL=-3: max_poll_interval must be greater than 0, not -3.0"),
    ("MAX_BATCH_SIZE", "0", "DEFERRABLE_MAX_BATCH_SIZE=0: max_batch_size must be at least 1, not 0"),
    ("MAX_BATCH_BYTES", "1.5", "DEFERRABLE_MAX_BATCH_BYTES=1.5: max_batch_bytes must be an int, not '1.5'"),
    ("DEADLINE", "0", "DEFERRABLE_DEADLINE=0: deadline must be greater than 0, not 0.0"),
    ("REUSE_FOR", "-1", "DEFERRABLE_REUSE_FOR=-1: reuse_for must be at least 0, not -1.0"),
    ("REUSE_FOR", "NaN", "DEFERRABLE_REUSE_FOR=NaN: reuse_for must be a number of seconds, not nan"),
    ("JOURNAL", "maybe",
     "DEFERRABLE_JOURNAL=maybe: journal must be one of 1/true/yes/on or 0/false/no/off, not 'maybe'"),
]
"""(variable without its DEFERRABLE_ prefix, bad text, the exact ValueError message)."""


@pytest.mark.parametrize(("variable", "raw", "message"), ENVIRONMENT,
                         ids=[f"{v}={r}" for v, r, _ in ENVIRONMENT])
def test_environment_errors_name_the_variable(monkeypatch: pytest.MonkeyPatch, variable: str,
                                              raw: str, message: str) -> None:
    """A malformed or out-of-range DEFERRABLE_* value is a ValueError naming the variable."""
    monkeypatch.setenv(f"DEFERRABLE_{variable}", raw)
    reset_defaults()
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        defaults()


def test_environment_accepts_valid_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFERRABLE_* values in range are read, including an infinite reuse_for."""
    monkeypatch.setenv("DEFERRABLE_REUSE_FOR", "inf")
    monkeypatch.setenv("DEFERRABLE_MAX_WAIT", "0")
    monkeypatch.setenv("DEFERRABLE_DEADLINE", "90")
    monkeypatch.setenv("DEFERRABLE_STRICT", "yes")
    reset_defaults()
    options = defaults()
    assert (options.reuse_for, options.max_wait, options.deadline, options.strict) == (
        math.inf, 0.0, 90.0, True)


def test_valid_values_are_accepted_and_equal_options_hash_equal() -> None:
    """A valid value for every option is accepted, and equal Options compare and hash equal."""
    options = Options(**VALID)
    assert dataclasses.asdict(options) == VALID
    same = Options().replace(**VALID)
    assert same == options
    assert hash(same) == hash(options)
    assert Options(deadline=None, store=None) == Options()


def test_ints_for_seconds_are_kept_and_equal_to_floats() -> None:
    """An int for a seconds option is kept as given and equals (and hashes as) the float."""
    as_int, as_float = Options(max_wait=2, poll_interval=1), Options(max_wait=2.0, poll_interval=1.0)
    assert type(as_int.max_wait) is int
    assert as_int == as_float
    assert hash(as_int) == hash(as_float)
    assert type(Options().replace(reuse_for=5).reuse_for) is int
    assert type(Options().replace(reuse_for=5.0).reuse_for) is float


def test_replace_cache_does_not_let_an_equal_value_of_another_type_through() -> None:
    """replace(max_batch_size=1) cached does not make replace(max_batch_size=True) valid."""
    assert Options().replace(max_batch_size=1).max_batch_size == 1
    with pytest.raises(TypeError, match="max_batch_size must be an int, not bool"):
        Options().replace(max_batch_size=True)
    assert Options().replace(journal=False).journal is False
    with pytest.raises(TypeError, match="journal must be True or False, not int"):
        Options().replace(journal=0)


def test_dataclasses_replace_is_checked_too() -> None:
    """dataclasses.replace() goes through the same checks as Options(...)."""
    with pytest.raises(ValueError, match="max_batch_size must be at least 1, not 0"):
        dataclasses.replace(Options(), max_batch_size=0)


def test_unhashable_values_are_reported_by_option_or_unknown_name() -> None:
    """An unhashable value still gets the option's own TypeError, or the unknown-name one."""
    with pytest.raises(TypeError, match=re.escape("journal must be True or False, not list ([1])")):
        Options().replace(journal=[1])
    with pytest.raises(TypeError, match=r"unknown deferrable option.*max_wiat"):
        Options().replace(max_wiat=[1])


def test_store_path_is_kept_as_given(tmp_path: Path) -> None:
    """store accepts an os.PathLike and keeps that very object, unconverted."""
    store = tmp_path / "journal"
    assert Options(store=store).store is store
    assert Options().replace(store=store).store == store
