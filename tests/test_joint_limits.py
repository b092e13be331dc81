"""The shared table of anatomical ranges covers every angle column, in order."""

from core.angle_set import ANGLE_COLUMNS
from core.joint_limits import JOINT_RANGES


def test_one_range_per_angle_column_in_column_order() -> None:
    assert tuple(JOINT_RANGES) == ANGLE_COLUMNS


def test_ranges_are_ordered_and_span_less_than_a_turn() -> None:
    bounded = [r for r in JOINT_RANGES.values() if r is not None]
    assert len(bounded) == len(ANGLE_COLUMNS) - 1  # only the pelvis heading is free
    for low, high in bounded:
        assert low < 0.0 < high  # the neutral pose is inside
        assert high - low < 360.0  # one representative per angle, no unwrapping
