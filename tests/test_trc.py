"""TRC files read back by an independent parser written here to the OpenSim TRC layout."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from core.atomic import AtomicFile
from core.trc import TrcWriter


def read_trc_independently(path: Path) -> dict:
    """Parse a TRC file from its documented layout (no project code involved)."""
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[0].split("\t")[:3] == ["PathFileType", "4", "(X/Y/Z)"]
    keys = lines[1].split("\t")
    values = lines[2].split("\t")
    header = dict(zip(keys, values, strict=True))
    names = [n for n in lines[3].split("\t")[2:] if n]
    axes = lines[4].split("\t")
    assert axes[:2] == ["", ""]
    assert axes[2:5] == ["X1", "Y1", "Z1"]
    assert lines[5] == ""
    rows = [line.split("\t") for line in lines[6:] if line]
    frames = np.array([int(r[0]) for r in rows])
    times = np.array([float(r[1]) for r in rows])
    xyz = np.array([[float(v) for v in r[2:]] for r in rows]).reshape(len(rows), -1, 3)
    return {"header": header, "names": names, "frames": frames, "times": times, "xyz": xyz}


def test_trc_round_trip_identical_numbers(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    names = ("Hip", "RKnee", "LKnee")
    data = np.round(rng.normal(size=(25, 3, 3)), 6)
    data[3, 1] = np.nan  # a gap
    writer = TrcWriter(tmp_path / "walk.trc", names, rate=60.0)
    for i, frame in enumerate(data):
        writer.add(i / 60.0, frame)
    path = writer.finish()

    parsed = read_trc_independently(path)
    assert parsed["header"]["DataRate"] == "60.00"
    assert parsed["header"]["NumFrames"] == "25"
    assert parsed["header"]["NumMarkers"] == "3"
    assert parsed["header"]["Units"] == "m"
    assert parsed["names"] == list(names)
    assert list(parsed["frames"]) == list(range(1, 26))
    np.testing.assert_allclose(parsed["times"], np.arange(25) / 60.0, atol=1e-6)
    np.testing.assert_array_equal(parsed["xyz"], data)  # NaN compares equal here


def test_trc_not_visible_until_finished_and_discard_leaves_nothing(tmp_path: Path) -> None:
    writer = TrcWriter(tmp_path / "run.trc", ("Hip",), rate=30.0)
    writer.add(0.0, np.zeros((1, 3)))
    assert not (tmp_path / "run.trc").exists()
    writer.discard()
    assert list(tmp_path.iterdir()) == []


def test_trc_rejects_wrong_marker_count(tmp_path: Path) -> None:
    writer = TrcWriter(tmp_path / "x.trc", ("Hip", "Neck"), rate=30.0)
    with pytest.raises(ValueError, match="expected"):
        writer.add(0.0, np.zeros((3, 3)))
    writer.discard()


def test_output_files_get_the_usual_permissions(tmp_path: Path) -> None:
    """Atomic writes go through mkstemp (mode 0600); the final file is readable as any
    file the user creates (mode 0666 minus the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    with AtomicFile(tmp_path / "out.txt") as f:
        f.write("x")
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o666 & ~mask
