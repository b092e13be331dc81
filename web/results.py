"""What the results page draws, read back from a finished job's own files (so a restarted
server shows the same): the final markers of the TRC, the ISB angles of the ``.mot`` when
angles were computed, and OpenSim's coordinates when IK ran."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.angle_files import read_mot
from core.trc import TrcError, read_trc

DECIMALS = 4  # 0.1 mm and 1e-4 deg: finer than anything drawn


def plain(values: np.ndarray) -> list[Any]:
    """Nested lists for JSON, NaN as null (JSON has no NaN)."""
    rounded = np.round(np.asarray(values, dtype=np.float64), DECIMALS).astype(object)
    rounded[~np.isfinite(np.asarray(values, dtype=np.float64))] = None
    return rounded.tolist()


def _table(path: Path | None) -> dict[str, Any] | None:
    """A ``.mot`` as ``{"times", "columns": {name: values}}``; None if absent or unreadable."""
    if path is None:
        return None
    try:
        names, data = read_mot(path)
    except (OSError, ValueError):
        return None
    return {
        "times": plain(data[:, 0]),
        "columns": {name: plain(data[:, i]) for i, name in enumerate(names) if i > 0},
    }


def replay_data(files: list[tuple[str, Path]]) -> dict[str, Any]:
    """The page's data from a job's listed ``(name, path)`` files; KeyError without a TRC."""
    by_suffix = {}
    for name, path in files:
        for suffix in ("_final.trc", "_angles.mot", "_ik.mot"):
            if name.endswith(suffix):
                by_suffix[suffix] = path
    if "_final.trc" not in by_suffix:
        raise KeyError("_final.trc")
    try:
        trc = read_trc(by_suffix["_final.trc"])
    except TrcError as exc:
        raise KeyError(str(exc)) from None
    return {
        "rate": trc.rate,
        "names": list(trc.names),
        "times": plain(trc.times),
        "frames": plain(trc.xyz),
        "angles": _table(by_suffix.get("_angles.mot")),
        "ik": _table(by_suffix.get("_ik.mot")),
    }
