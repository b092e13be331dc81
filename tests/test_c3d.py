"""C3D output and run.json provenance: a real offline run on real demo frames, read back
with ezc3d (an independent reader) against the TRC and the .mot of the same run."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import cv2
import ezc3d
import numpy as np
import pytest

from bench.clips import read_frames
from core.angle_files import read_mot
from core.angle_set import ANGLE_COLUMNS, ANGLE_GROUPS
from core.c3d import ANGLE_POINTS, C3dWriter
from core.demo_data import demo_video
from core.provenance import (
    Invocation,
    RunRecord,
    git_commit,
    sha256_file,
    software_label,
    software_version,
)
from core.trc import read_trc
from tests.data import REPO

RATE = 25.0  # not 30: the C3D's rate must come from the video
BLANK = range(20, 25)  # frames with nobody in them: every marker missing


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 real demo frames at 25 fps, frames 20-24 black."""
    frames = read_frames(demo_video("cam01"), scale=0.5)[:50]
    path = tmp_path_factory.mktemp("clip") / "gap.mp4"
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), RATE, (width, height))
    for i, frame in enumerate(frames):
        writer.write(np.zeros_like(frame) if i in BLANK else frame)
    writer.release()
    return path


@pytest.fixture(scope="module")
def run(clip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The output folder of ``run_offline.py clip --c3d --compute-all-joint-angles``."""
    out = tmp_path_factory.mktemp("out")
    done = subprocess.run(
        [sys.executable, "run_offline.py", clip, "--output", out, "--quiet", "--c3d",
         "--compute-all-joint-angles"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out / "gap"


def test_c3d_holds_the_trc_markers_in_mm_with_missing_ones_invalid(run: Path) -> None:
    trc = read_trc(run / "gap_final.trc")
    c3d = ezc3d.c3d(str(run / "gap.c3d"))
    point = c3d["parameters"]["POINT"]
    assert point["LABELS"]["value"] == [*trc.names, *ANGLE_POINTS]
    assert point["UNITS"]["value"] == ["mm"]
    assert point["RATE"]["value"][0] == pytest.approx(RATE) == trc.rate
    xyz = c3d["data"]["points"][:3].transpose(2, 1, 0)  # (frames, points, 3)
    residuals = c3d["data"]["meta_points"]["residuals"][0].T
    assert xyz.shape[0] == len(trc.xyz) == 50
    markers, missing = xyz[:, : len(trc.names)] / 1000.0, np.isnan(trc.xyz).any(axis=2)
    assert missing[list(BLANK)].all() and (~missing).sum() > 1000  # both kinds present
    assert np.abs(markers[~missing] - trc.xyz[~missing]).max() < 1e-4  # metres
    assert (residuals[:, : len(trc.names)][missing] == -1).all()
    assert np.isnan(markers[missing]).all()  # what a reader makes of an invalid point
    assert (residuals[:, : len(trc.names)][~missing] == 0).all()


def test_c3d_angles_are_the_mot_angles(run: Path) -> None:
    names, mot = read_mot(run / "joint_angles" / "gap_angles.mot")
    assert names == ["time", *ANGLE_COLUMNS]
    c3d = ezc3d.c3d(str(run / "gap.c3d"))
    point = c3d["parameters"]["POINT"]
    assert point["ANGLES"]["value"] == list(ANGLE_POINTS)
    assert point["ANGLE_UNITS"]["value"] == ["deg"]
    assert point["TYPE_GROUPS"]["value"] == ["Angles", "ANGLES"]
    labels = point["LABELS"]["value"]
    checked = 0
    for (label, columns), group in zip(ANGLE_POINTS.items(), ANGLE_GROUPS, strict=True):
        assert columns == ANGLE_GROUPS[group]
        values = c3d["data"]["points"][:3, labels.index(label)].T  # (frames, xyz)
        residual = c3d["data"]["meta_points"]["residuals"][0, labels.index(label)]
        expected = mot[:, [names.index(c) for c in columns]]
        valid = np.isfinite(expected).all(axis=1)
        assert (residual[~valid] == -1).all() and (residual[valid] == 0).all()
        assert np.abs(values[valid, : len(columns)] - expected[valid]).max() < 1e-3  # degrees
        assert (values[valid, len(columns) :] == 0).all()  # a hinge's y and z
        checked += valid.sum()
    assert checked > 400


def test_headers_name_the_software_version(run: Path) -> None:
    c3d = ezc3d.c3d(str(run / "gap.c3d"))
    assert c3d["parameters"]["MANUFACTURER"]["VERSION_LABEL"]["value"] == [software_version()]
    assert c3d["parameters"]["MANUFACTURER"]["SOFTWARE"]["value"] == ["monomocap"]
    for trc in ("gap_initial.trc", "gap_final.trc"):
        first = (run / trc).read_text().splitlines()[0].split("\t")
        assert first == ["PathFileType", "4", "(X/Y/Z)", trc, software_label()]
    mot = (run / "joint_angles" / "gap_angles.mot").read_text().splitlines()
    assert f"software={software_label()}" in mot[: mot.index("endheader")]


def test_run_json_names_software_models_config_and_input(run: Path, clip: Path) -> None:
    record = json.loads((run / "run.json").read_text())
    assert record["software"]["version"] == software_version() != "unknown"
    assert record["software"]["commit"] == git_commit()["commit"] != "unknown"
    assert record["input"] == {
        "path": str(clip.resolve()),
        "sha256": hashlib.sha256(clip.read_bytes()).hexdigest(),
    }
    models = {Path(m["path"]).name: m["sha256"] for m in record["models"]}
    assert models["pof_mlp_w9.onnx"] == sha256_file(REPO / "models/weights/pof_mlp_w9.onnx")
    assert "pose_prior.npz" in models and "model.onnx" in models
    assert sum(Path(m["path"]).parent.name.startswith("v0.3_") for m in record["models"]) == 6
    assert all(len(m["sha256"]) == 64 for m in record["models"])
    assert record["config"]["output"]["c3d"] is True
    assert record["config"]["angles"]["compute_all"] is True
    assert record["calibration"] is None
    assert "--c3d" in record["command"] and record["command"][1] == "run_offline.py"
    assert record["program_started"] <= record["started"] <= record["ended"]


def test_no_c3d_unless_asked(run: Path, clip: Path, tmp_path: Path) -> None:
    """The default run writes no C3D (but its run.json)."""
    done = subprocess.run(
        [sys.executable, "run_offline.py", clip, "--output", tmp_path, "--quiet",
         "--no-joint-refinement"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in (tmp_path / "gap").iterdir())
    assert names == ["gap_final.trc", "gap_initial.trc", "gap_raw_landmarks.csv", "run.json"]
    record = json.loads((tmp_path / "gap" / "run.json").read_text())
    assert not any(Path(m["path"]).name == "pose_prior.npz" for m in record["models"])


def test_c3d_beyond_65535_frames_and_a_discarded_one(tmp_path: Path) -> None:
    """A long recording keeps its frame count (TRIAL:ACTUAL_END_FIELD); a discarded writer
    leaves nothing."""
    n = 70_000
    writer = C3dWriter(tmp_path / "long.c3d", ["M"], {"knee": ("flex",)}, 100.0, ("x", "1"))
    for i in range(n):
        writer.add(np.full((1, 3), i / 1000.0), np.array([float(i % 90)]))
    writer.finish()
    c3d = ezc3d.c3d(str(tmp_path / "long.c3d"))
    points = c3d["data"]["points"]
    assert points.shape == (4, 2, n)
    assert points[0, 0, -1] == pytest.approx(n - 1, rel=1e-6)  # mm
    assert points[0, 1, -1] == (n - 1) % 90
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.c3d"]
    broken = C3dWriter(tmp_path / "broken.c3d", ["M"], {}, 100.0, ("x", "1"))
    broken.add(np.zeros((1, 3)), np.array([]))
    broken.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["long.c3d"]


def test_provenance_never_fails(tmp_path: Path) -> None:
    """Outside a git checkout, with a camera for input, an unreadable model and a NaN in
    the configuration, run.json is still written, as valid JSON."""
    assert git_commit(tmp_path) == {"commit": "unknown", "modified": None}  # not a checkout
    assert sha256_file(tmp_path / "absent.mp4") == "unknown"
    config = {"camera": {"pitch": float("nan"), "calibration": ""}}
    record = RunRecord(Invocation(["run_live.py"]), config, "0", [tmp_path / "absent.onnx"])
    written = json.loads(record.write(tmp_path).read_text())
    assert written["input"] == {"source": "0", "sha256": None}
    assert written["models"] == [{"path": str(tmp_path / "absent.onnx"), "sha256": "unknown"}]
    assert written["config"] == {"camera": {"pitch": None, "calibration": ""}}
    assert written["command"] == ["run_live.py"] and written["calibration"] is None
