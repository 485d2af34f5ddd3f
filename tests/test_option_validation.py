"""Option values are checked where they are given: Options(...), replace(), scope(),
@deferrable(...), configure() and DEFERRABLE_* variables."""

from __future__ import annotations

import dataclasses
import datetime
import math
import re
import typing
from pathlib import Path
from typing import Any

import pytest

import deferrable
from deferrable import Options
from deferrable._options import _RULES, deadline_at, defaults, reset_defaults
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
    ("deadline", "60", "deadline must be None, a number of seconds or an aware datetime, not str ('60')"),
    ("deadline", True, "deadline must be None, a number of seconds or an aware datetime, not bool (True)"),
    ("deadline", datetime.date(2026, 12, 3),
     "deadline must be None, a number of seconds or an aware datetime, "
     "not date (datetime.date(2026, 12, 3))"),
    ("rescue_margin", "120", "rescue_margin must be a number of seconds, not str ('120')"),
    ("rescue_margin", None, "rescue_margin must be a number of seconds, not NoneType (None)"),
    ("on_deadline", None, "on_deadline must be 'live' or 'raise', not NoneType (None)"),
    ("on_deadline", True, "on_deadline must be 'live' or 'raise', not bool (True)"),
    ("max_retries", "3", "max_retries must be None or an int, not str ('3')"),
    ("max_retries", 2.0, "max_retries must be None or an int, not float (2.0)"),
    ("max_retries", False, "max_retries must be None or an int, not bool (False)"),
    ("lane", 1, "lane must be 'batch', 'flex' or 'auto', not int (1)"),
    ("lane", b"flex", "lane must be 'batch', 'flex' or 'auto', not bytes (b'flex')"),
    ("store", 3, "store must be None, a str or an os.PathLike, not int (3)"),
    ("store", b"/tmp/j", "store must be None, a str or an os.PathLike, not bytes (b'/tmp/j')"),
    ("journal", 1, "journal must be True or False, not int (1)"),
    ("journal", "false", "journal must be True or False, not str ('false'); write False, without quotes"),
    ("reuse_for", "3600", "reuse_for must be a number of seconds, not str ('3600')"),
    ("dedupe", "true", "dedupe must be True or False, not str ('true'); write True, without quotes"),
    ("delete_files", 0, "delete_files must be True or False, not int (0)"),
    ("defer_streams", None, "defer_streams must be True or False, not NoneType (None)"),
    ("strict", "maybe", "strict must be True or False, not str ('maybe')"),
    ("progress", 1, "progress must be True or False, not int (1)"),
    ("freeze_gc", "no", "freeze_gc must be True or False, not str ('no'); write False, without quotes"),
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
    ("deadline", datetime.datetime(2026, 12, 3, 6),
     "deadline must be an aware datetime (with tzinfo), not a naive one: 2026-12-03T06:00:00"),
    ("rescue_margin", -1, "rescue_margin must be at least 0, not -1"),
    ("rescue_margin", math.inf, "rescue_margin must be finite, not inf"),
    ("rescue_margin", math.nan, "rescue_margin must be a number of seconds, not nan"),
    ("on_deadline", "fail", "on_deadline must be 'live' or 'raise', not 'fail'"),
    ("on_deadline", "Live", "on_deadline must be 'live' or 'raise', not 'Live'"),
    ("max_retries", -1, "max_retries must be at least 0, not -1"),
    ("lane", "fast", "lane must be 'batch', 'flex' or 'auto', not 'fast'"),
    ("lane", "", "lane must be 'batch', 'flex' or 'auto', not ''"),
    ("store", "", "store must be a non-empty path, not ''"),
    ("reuse_for", -1, "reuse_for must be at least 0, not -1"),
    ("reuse_for", math.nan, "reuse_for must be a number of seconds, not nan"),
]
"""(option, value of the right type out of range, the exact ValueError message)."""

FLAGS = {"journal", "dedupe", "delete_files", "defer_streams", "strict", "progress",
         "freeze_gc"}

VALID: dict[str, Any] = {
    "max_batch_size": 1, "max_batch_bytes": 1, "max_wait": 0, "poll_interval": 0.01,
    "max_poll_interval": 0.001, "deadline": 3600, "rescue_margin": 0, "on_deadline": "raise",
    "max_retries": 0, "lane": "auto", "store": "journal-dir", "journal": False,
    "reuse_for": math.inf, "dedupe": True, "delete_files": False, "defer_streams": False,
    "strict": True,
    "progress": False, "freeze_gc": False,
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


@pytest.mark.parametrize(("name", "value", "message"), WRONG_TYPES + WRONG_RANGES,
                         ids=_ids(WRONG_TYPES + WRONG_RANGES))
def test_configure_refuses_every_bad_value(name: str, value: Any, message: str) -> None:
    """configure(option=bad) raises the option's own error and leaves the defaults as they were."""
    before = defaults()
    with pytest.raises((TypeError, ValueError), match=f"^{re.escape(message)}$"):
        deferrable.configure(**{name: value})
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
    ("DEADLINE", "-5", "DEFERRABLE_DEADLINE=-5: deadline must be greater than 0, not -5.0"),
    ("DEADLINE", "inf", "DEFERRABLE_DEADLINE=inf: deadline must be finite, not inf"),
    ("DEADLINE", "tomorrow",
     "DEFERRABLE_DEADLINE=tomorrow: deadline must be a number of seconds or an ISO 8601 timestamp "
     "with an offset (2026-12-03T06:00:00+00:00), not 'tomorrow'"),
    ("DEADLINE", "2026-12-03T06:00:00",
     "DEFERRABLE_DEADLINE=2026-12-03T06:00:00: deadline must be an aware datetime (with tzinfo), "
     "not a naive one: 2026-12-03T06:00:00"),
    ("DEADLINE", "2026-13-03T06:00:00Z",
     "DEFERRABLE_DEADLINE=2026-13-03T06:00:00Z: deadline must be a number of seconds or an ISO 8601 "
     "timestamp with an offset (2026-12-03T06:00:00+00:00), not '2026-13-03T06:00:00Z'"),
    ("RESCUE_MARGIN", "-1", "DEFERRABLE_RESCUE_MARGIN=-1: rescue_margin must be at least 0, not -1.0"),
    ("RESCUE_MARGIN", "inf", "DEFERRABLE_RESCUE_MARGIN=inf: rescue_margin must be finite, not inf"),
    ("RESCUE_MARGIN", "2m",
     "DEFERRABLE_RESCUE_MARGIN=2m: rescue_margin must be a number of seconds, not '2m'"),
    ("ON_DEADLINE", "fail",
     "DEFERRABLE_ON_DEADLINE=fail: on_deadline must be 'live' or 'raise', not 'fail'"),
    ("MAX_RETRIES", "-1", "DEFERRABLE_MAX_RETRIES=-1: max_retries must be at least 0, not -1"),
    ("MAX_RETRIES", "2.5", "DEFERRABLE_MAX_RETRIES=2.5: max_retries must be an int, not '2.5'"),
    ("MAX_RETRIES", "none", "DEFERRABLE_MAX_RETRIES=none: max_retries must be an int, not 'none'"),
    ("LANE", "fast", "DEFERRABLE_LANE=fast: lane must be 'batch', 'flex' or 'auto', not 'fast'"),
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


def test_environment_reads_the_new_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFERRABLE_RESCUE_MARGIN/ON_DEADLINE/MAX_RETRIES/LANE are read; words stripped, any case."""
    monkeypatch.setenv("DEFERRABLE_RESCUE_MARGIN", "0")
    monkeypatch.setenv("DEFERRABLE_ON_DEADLINE", " Raise ")
    monkeypatch.setenv("DEFERRABLE_MAX_RETRIES", "0")
    monkeypatch.setenv("DEFERRABLE_LANE", "FLEX")
    reset_defaults()
    options = defaults()
    assert (options.rescue_margin, options.on_deadline, options.max_retries, options.lane) == (
        0.0, "raise", 0, "flex")


def test_new_options_defaults() -> None:
    """Without configuration: rescue 120 s before the deadline, live, the client's retries, batch."""
    options = Options()
    assert (options.deadline, options.rescue_margin, options.on_deadline, options.max_retries,
            options.lane) == (None, 120.0, "live", None, "batch")


@pytest.mark.parametrize("name", ["on_deadline", "lane"])
def test_choices_accept_exactly_their_literal_values(name: str) -> None:
    """A Literal option accepts each value its annotation names, and its rule names those values."""
    allowed = typing.get_args(typing.get_type_hints(Options)[name])
    assert allowed
    for value in allowed:
        assert getattr(Options(**{name: value}), name) == value
        assert repr(value) in _RULES[name].expected
    assert _RULES[name].expected.count("'") == 2 * len(allowed)


def test_max_retries_none_is_the_default_and_accepted() -> None:
    """max_retries=None (the client's own) and any int >= 0 are accepted."""
    assert Options(max_retries=None).max_retries is None
    assert Options().replace(max_retries=5).max_retries == 5


PARIS = datetime.timezone(datetime.timedelta(hours=1), "CET")


def test_aware_datetime_deadline_is_accepted_and_hashes() -> None:
    """An aware datetime deadline (even a past one) is kept as given, and Options still hash."""
    at = datetime.datetime(2026, 12, 3, 6, tzinfo=datetime.timezone.utc)
    options = Options(deadline=at)
    assert options.deadline is at
    assert Options().replace(deadline=at) == options
    assert hash(Options().replace(deadline=at)) == hash(options)
    past = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)
    assert Options(deadline=past).deadline == past
    with deferrable.scope(deadline=at) as scoped:
        assert scoped.deadline == at


def test_replace_keeps_the_zone_of_an_equal_instant() -> None:
    """replace() after an equal instant in another zone keeps the zone given, not the cached one."""
    utc = datetime.datetime(2026, 12, 3, 6, tzinfo=datetime.timezone.utc)
    paris = utc.astimezone(PARIS)
    assert utc == paris
    assert Options().replace(deadline=utc).deadline.tzinfo is datetime.timezone.utc
    assert Options().replace(deadline=paris).deadline.tzinfo is PARIS


def test_naive_datetime_deadline_is_refused_everywhere() -> None:
    """A naive datetime deadline is a ValueError in Options, replace, scope, @deferrable, configure."""
    naive = datetime.datetime(2026, 12, 3, 6, 30)
    message = "deadline must be an aware datetime (with tzinfo), not a naive one: 2026-12-03T06:30:00"
    before = defaults()
    for make in (Options, Options().replace, deferrable.scope, deferrable.deferrable,
                 deferrable.configure):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            make(deadline=naive)
    assert defaults() is before


@pytest.mark.parametrize(("raw", "expected"), [
    ("2026-12-03T06:00:00Z", datetime.datetime(2026, 12, 3, 6, tzinfo=datetime.timezone.utc)),
    ("2026-12-03T06:00:00z", datetime.datetime(2026, 12, 3, 6, tzinfo=datetime.timezone.utc)),
    ("2026-12-03T06:00:00+00:00", datetime.datetime(2026, 12, 3, 6, tzinfo=datetime.timezone.utc)),
    ("2026-12-03T07:00:00+01:00", datetime.datetime(2026, 12, 3, 6, tzinfo=datetime.timezone.utc)),
    (" 2026-12-03T06:00:00.250000Z ",
     datetime.datetime(2026, 12, 3, 6, 0, 0, 250_000, tzinfo=datetime.timezone.utc)),
])
def test_environment_deadline_reads_an_iso_timestamp(monkeypatch: pytest.MonkeyPatch, raw: str,
                                                      expected: datetime.datetime) -> None:
    """DEFERRABLE_DEADLINE reads an ISO 8601 timestamp with Z or an offset as an aware datetime."""
    monkeypatch.setenv("DEFERRABLE_DEADLINE", raw)
    reset_defaults()
    deadline = defaults().deadline
    assert isinstance(deadline, datetime.datetime)
    assert deadline.utcoffset() is not None
    assert deadline == expected


def test_environment_deadline_keeps_the_offset_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """DEFERRABLE_DEADLINE with +01:00 keeps that offset (the same instant as 06:00 UTC)."""
    monkeypatch.setenv("DEFERRABLE_DEADLINE", "2026-12-03T07:00:00+01:00")
    reset_defaults()
    deadline = defaults().deadline
    assert isinstance(deadline, datetime.datetime)
    assert deadline.utcoffset() == datetime.timedelta(hours=1)


@pytest.mark.parametrize(("raw", "expected"), [("90", 90.0), ("0.5", 0.5), (" 1e3 ", 1000.0)])
def test_environment_deadline_reads_seconds(monkeypatch: pytest.MonkeyPatch, raw: str,
                                            expected: float) -> None:
    """DEFERRABLE_DEADLINE as a number is seconds, read as a float."""
    monkeypatch.setenv("DEFERRABLE_DEADLINE", raw)
    reset_defaults()
    deadline = defaults().deadline
    assert type(deadline) is float
    assert deadline == expected


def test_deadline_at_none_is_none() -> None:
    """No deadline has no deadline time."""
    assert deadline_at(None, 1_000.0) is None


def test_deadline_at_seconds_count_from_the_call() -> None:
    """A deadline in seconds is that many seconds after the call was made, int or float."""
    assert deadline_at(60, 1_000.0) == 1_060.0
    assert deadline_at(0.5, 1_000.0) == 1_000.5
    assert deadline_at(60.0, 2_000.0) == 2_060.0


def test_deadline_at_an_aware_datetime_is_its_instant_for_every_call() -> None:
    """An aware datetime deadline is its own epoch time, whenever the call was made, in any zone."""
    at = datetime.datetime(2026, 12, 3, 6, tzinfo=datetime.timezone.utc)
    epoch = 1_796_277_600.0  # 2026-12-03T06:00:00Z
    assert deadline_at(at, 0.0) == epoch
    assert deadline_at(at, 1_800_000_000.0) == epoch  # a call made after it: still that instant
    assert deadline_at(at.astimezone(PARIS), 5.0) == epoch


def test_deadline_at_refuses_a_naive_datetime() -> None:
    """A naive datetime has no instant of its own: deadline_at() refuses it rather than guess."""
    with pytest.raises(ValueError, match="deadline must be an aware datetime"):
        deadline_at(datetime.datetime(2026, 12, 3, 6), 0.0)


def test_deadline_at_a_huge_int_is_never() -> None:
    """An int deadline too large for a float (accepted by Options) is an infinite deadline time."""
    huge = 10**400
    assert Options(deadline=huge).deadline == huge
    assert deadline_at(huge, 1_000.0) == math.inf


def test_deadline_exceeded_error_is_exported() -> None:
    """DeadlineExceededError is a DeferrableError exported from deferrable."""
    assert issubclass(deferrable.DeadlineExceededError, deferrable.DeferrableError)
    assert "DeadlineExceededError" in deferrable.__all__
