"""Which lane a deferred call takes with ``lane="auto"``: a batch, or flex processing (a live
request at batch prices that usually answers in minutes). A pure decision, tested alone."""

from __future__ import annotations

from typing import Literal

AUTO_FLEX_BELOW = 20
"""Groups of fewer calls go flex under ``lane="auto"``: for so few, a batch's files, polls
and hours-long tail buy nothing that flex does not give at the same price."""
AUTO_FLEX_HORIZON = 3600.0
"""Seconds: a call whose rescue time is nearer than this goes flex under ``lane="auto"``
(a batch usually ends within the hour, but nothing promises it)."""


def choose_lane(lane: str, *, offers_flex: bool, group_size: int,
                seconds_left: float | None) -> Literal["batch", "flex"]:
    """The lane of a call of a `group_size` group whose rescue time is `seconds_left`
    away (None without a deadline), for its `lane` option, when its model `offers_flex`."""
    if lane == "batch" or not offers_flex:
        return "batch"
    if lane == "flex":
        return "flex"
    if seconds_left is not None and seconds_left < AUTO_FLEX_HORIZON:
        return "flex"
    return "flex" if group_size < AUTO_FLEX_BELOW else "batch"
