"""The fast row formatting must write exactly the text of formatting one value at a time."""

from __future__ import annotations

import numpy as np
import pytest

from core.number_text import number_row


def one_at_a_time(values: np.ndarray, spec: str, sep: str, missing: str | None) -> str:
    return sep.join(
        f"{v:{spec}}" if missing is None or np.isfinite(v) else missing for v in values.ravel()
    )


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("spec", "sep", "missing"), [(".6f", "\t", "NaN"), (".6g", ",", ""), (".6f", ",", None)]
)
def test_rows_equal_value_by_value_formatting(
    dtype: type, spec: str, sep: str, missing: str | None
) -> None:
    rng = np.random.default_rng(7)
    rows_with_gaps = 0
    for trial in range(300):
        values = rng.standard_normal((rng.integers(1, 70), 3)) * 10.0 ** rng.integers(-9, 9)
        values = values.astype(dtype)
        if trial % 3 == 0:  # NaN, infinities and signed zeros among them
            picks = rng.integers(0, values.size, 4)
            values.ravel()[picks] = rng.choice([np.nan, np.inf, -np.inf, -0.0], 4)
            rows_with_gaps += not np.isfinite(values).all()
        assert number_row(values, spec, sep, missing) == one_at_a_time(values, spec, sep, missing)
    assert rows_with_gaps > 50
