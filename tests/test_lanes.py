"""`choose_lane`, the pure rule of ``lane="auto"``: flex for small groups and near deadlines
of models that offer it, a batch otherwise."""

from __future__ import annotations

from deferrable.engine._lanes import AUTO_FLEX_BELOW, AUTO_FLEX_HORIZON, choose_lane


def test_batch_and_models_without_flex_always_batch() -> None:
    """lane='batch', or a model without flex, is a batch whatever the group or deadline."""
    assert choose_lane("batch", offers_flex=True, group_size=1, seconds_left=1.0) == "batch"
    assert choose_lane("auto", offers_flex=False, group_size=1, seconds_left=1.0) == "batch"
    assert choose_lane("flex", offers_flex=False, group_size=1, seconds_left=None) == "batch"


def test_lane_flex_is_flex() -> None:
    """lane='flex' on a model that offers it is flex, even for a large group."""
    assert choose_lane("flex", offers_flex=True, group_size=10_000, seconds_left=None) == "flex"


def test_auto_takes_flex_below_the_group_size() -> None:
    """auto: groups under AUTO_FLEX_BELOW go flex, from that size a batch."""
    small, large = AUTO_FLEX_BELOW - 1, AUTO_FLEX_BELOW
    assert choose_lane("auto", offers_flex=True, group_size=small, seconds_left=None) == "flex"
    assert choose_lane("auto", offers_flex=True, group_size=large, seconds_left=None) == "batch"


def test_auto_takes_flex_when_the_rescue_time_is_within_the_horizon() -> None:
    """auto: a large group whose rescue time is under the horizon goes flex, past it a batch."""
    near, far = AUTO_FLEX_HORIZON - 1, AUTO_FLEX_HORIZON
    assert choose_lane("auto", offers_flex=True, group_size=500, seconds_left=near) == "flex"
    assert choose_lane("auto", offers_flex=True, group_size=500, seconds_left=far) == "batch"
