"""The markers stage's helpers."""

import bisect

import numpy as np

from models.arrays import vector_length
from stages.markers import sorted_median


def test_sorted_median_is_numpys_bit_for_bit() -> None:
    """The running median of the height estimates equals np.median's, odd and even counts."""
    rng = np.random.default_rng(0)
    heights: list[float] = []
    for h in rng.normal(1.7, 0.1, 201):
        bisect.insort(heights, float(h))
        assert sorted_median(heights) == float(np.median(heights))
    assert len(heights) == 201


def test_vector_length_is_numpys_norm_bit_for_bit() -> None:
    """The segment lengths of the height estimate equal np.linalg.norm's, NaN included."""
    rng = np.random.default_rng(1)
    vectors = [*rng.normal(0, 0.5, (500, 3)), *rng.normal(0, 300, (500, 2)), np.full(3, np.nan)]
    for v in vectors:
        assert np.array_equal(vector_length(v), float(np.linalg.norm(v)), equal_nan=True)
    assert len(vectors) == 1001
