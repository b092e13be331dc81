"""The markers stage's helpers."""

import bisect

import numpy as np

from stages.markers import sorted_median


def test_sorted_median_is_numpys_bit_for_bit() -> None:
    """The running median of the height estimates equals np.median's, odd and even counts."""
    rng = np.random.default_rng(0)
    heights: list[float] = []
    for h in rng.normal(1.7, 0.1, 201):
        bisect.insort(heights, float(h))
        assert sorted_median(heights) == float(np.median(heights))
    assert len(heights) == 201
