"""The live ``ik`` stage and ``--static`` scaling, with real OpenSim, against synthetic truth:
markers of a model scaled by known factors and driven along known coordinates."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core.demo_data import demo_video
from core.marker_sets import MARKERS_64
from core.packet import Packet
from core.trc import TrcWriter
from models.opensim_ik import MarkerIk, read_tasks
from models.opensim_model import (
    coordinate_names,
    load_model,
    marker_names,
    marker_positions,
    scaled_model,
    setup_file,
)
from stages.live_ik import LiveIk
from stages.static import scale_from_static
from stream.config import load_config
from tests.data import REPO
from tests.test_ik import FACTORS, gait, pose

FPS = 60.0


@pytest.fixture(scope="module")
def settings() -> dict:
    config = load_config()
    config["opensim"]["scale_s"] = 0.5  # 31 frames at 60 fps
    return config


@pytest.fixture(scope="module")
def scaled(settings: dict):
    """The generic model scaled by ``FACTORS``: the subject of these tests."""
    return scaled_model(load_model(settings["opensim"]), FACTORS, 75.0)


def in_marker_order(model, xyz: np.ndarray) -> np.ndarray:
    """(T, 64, 3) in the order of ``MARKERS_64`` (the augmenter's) from the model's order;
    the video keypoints the model has no marker for (used neither by scaling nor by IK) at
    the origin, so every frame is complete."""
    names = marker_names(model)
    shared = [n for n in MARKERS_64 if n in names]
    assert len(shared) == 48
    out = np.zeros((len(xyz), len(MARKERS_64), 3))
    out[:, [MARKERS_64.index(n) for n in shared]] = xyz[:, [names.index(n) for n in shared]]
    return out


def standing(model, frames: int) -> np.ndarray:
    """Markers of the subject standing and swaying a little (a static trial)."""
    curves = {k: v / 4 for k, v in gait(np.linspace(0.0, 1.0, frames)).items()}
    curves["pelvis_ty"] = np.full(frames, 0.93)
    return in_marker_order(model, pose(model, curves, frames)[0])


def packet(i: int, markers: np.ndarray) -> Packet:
    """Frame ``i`` as the augmenter hands it on: 64 markers and 2D landmarks inside the image."""
    return Packet(
        "walk",
        i,
        0,
        i / FPS,
        (100, 100),
        data={"markers_64": markers, "landmarks_2d": np.full((33, 2), 50.0)},
        meta={"fps": FPS},
    )


def segment_lengths(model) -> np.ndarray:
    """Thigh and shank lengths (hip centre-knee-ankle markers) in the default pose, m."""
    xyz = marker_positions(model, model.initSystem())
    at = dict(zip(marker_names(model), xyz, strict=True))
    return np.array(
        [
            np.linalg.norm(at[a] - at[b])
            for a, b in (("RHJC_study", "r_knee_study"), ("r_knee_study", "r_ankle_study"))
        ]
    )


def test_coordinate_names_follow_opensims_order(settings: dict, scaled, tmp_path: Path) -> None:
    """The sink names the coordinates from the file's text without OpenSim: the same list."""
    osim = tmp_path / "scaled.osim"
    scaled.printToXML(str(osim))
    generic = setup_file(settings["opensim"]["model"])
    tasks = read_tasks(setup_file(settings["opensim"]["ik_setup"]))
    for path, model in (
        (osim, load_model(settings["opensim"], path=osim)),
        (generic, load_model(settings["opensim"])),
    ):
        solver = MarkerIk(model, MARKERS_64, tasks, 10)
        names = coordinate_names(path.read_text())
        assert names == solver.coordinates and len(names) == 40


def test_live_stage_scales_from_the_first_frames_then_tracks_known_gait(
    settings: dict, scaled
) -> None:
    stage = LiveIk()
    stage.setup(settings)
    still = standing(scaled, 31)
    frames = 40
    curves = gait(np.linspace(0.0, 1.0, frames))
    walk, truth = pose(scaled, curves, frames)
    walk = in_marker_order(scaled, walk)
    walk[10, 8:] = np.nan  # 8 markers left: too few (min_markers 10), a NaN row, counted
    walk[12, :20] = np.nan  # 44 left: solved with those
    out = [stage(packet(i, m)) for i, m in enumerate([*still, *walk])]
    assert all(p is not None for p in out)
    scaled_flags = [p.meta["ik_scaled"] for p in out]
    assert scaled_flags == [False] * 30 + [True] * (len(out) - 30)  # at 0.5 s, the 31st frame
    values = np.array([p.data["ik"] for p in out])
    assert np.isnan(values[:30]).all() and np.isfinite(values[30]).all()
    models = [p.meta["ik_model"] for p in out if "ik_model" in p.meta]
    assert len(models) == 1 and "ik_model" in out[30].meta  # once, with the first solution
    assert coordinate_names(models[0]) == stage.coordinates
    moving = values[31:]
    assert np.isnan(moving[10]).all() and out[31 + 10].meta["ik_skipped"] == 1
    left = sum(n in stage.tasks.markers for n in MARKERS_64[20:])
    assert out[-1].meta["ik_skipped"] == 1 and out[31 + 12].data["ik_errors"][2] == left
    solved = np.isfinite(moving).all(axis=1)
    assert solved.sum() == frames - 1
    columns = [stage.coordinates.index(n) for n in curves if not n.startswith("pelvis_t")]
    rotations = [i for i, n in enumerate(curves) if not n.startswith("pelvis_t")]
    diff = moving[solved][:, columns] - truth[solved][:, rotations]
    rms = np.sqrt(np.mean(diff**2, axis=0))
    assert len(rms) == 14 and rms.max() < 2.0, rms  # a model scaled within 2% of the truth
    errors = np.array([p.data["ik_errors"] for p in out[31:]])
    assert np.nanmedian(errors[:, 0]) < 0.01  # metres
    stage.reset("walk")  # a new person: scaled again from their first frames
    assert stage(packet(100, walk[0])).meta["ik_scaled"] is False


def test_static_trc_scales_the_model(settings: dict, scaled, tmp_path: Path) -> None:
    trc = TrcWriter(tmp_path / "static_final.trc", MARKERS_64, FPS)
    for i, frame in enumerate(standing(scaled, 30)):
        trc.add(i / FPS, frame)
    config = {**settings, "opensim": {**settings["opensim"], "static": str(trc.finish())}}
    path = scale_from_static(config, tmp_path)
    assert path.name == "static_final_static_scaled.osim"
    model = load_model(settings["opensim"], path=path)
    ratio = segment_lengths(model) / segment_lengths(scaled)
    assert np.abs(ratio - 1).max() < 0.02, ratio


def test_static_video_runs_the_pipeline_and_scales_to_the_subject(
    settings: dict, tmp_path: Path
) -> None:
    """A static trial given as a video goes through the real stages (MediaPipe on the demo)
    and scales the model to a body of the subject's height (1.70 m)."""
    video = demo_video("cam02")
    config = {**settings, "opensim": {**settings["opensim"], "static": str(video)}}
    path = scale_from_static(config, tmp_path)
    assert path.name == "cam02_static_scaled.osim"
    thigh, shank = segment_lengths(load_model(settings["opensim"], path=path))
    assert 0.33 < thigh < 0.5 and 0.33 < shank < 0.5, (thigh, shank)  # ~0.245 x height


def test_static_errors_are_one_line(tmp_path: Path) -> None:
    """A missing file, --osim with --static, a TRC of another marker set: one error line
    each, before any process starts, and no output."""
    wrong = tmp_path / "coco.trc"
    trc = TrcWriter(wrong, ("Nose", "LEye", "REye"), FPS)
    trc.add(0.0, np.zeros((3, 3)))
    trc.finish()
    cases = [
        (["--static", tmp_path / "missing.trc"], 2, "--static: file not found"),
        (["--static", wrong, "--osim", wrong], 2, "contradict each other"),
        (["--static", wrong], 1, "marker set does not match"),
    ]
    for args, code, words in cases:
        result = subprocess.run(
            [sys.executable, str(REPO / "run_live.py"), "--source", demo_video("cam02"),
             "--no-viewer", *map(str, args)],
            capture_output=True, text=True, cwd=tmp_path, timeout=120,
        )  # fmt: skip
        errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
        assert result.returncode == code and len(errors) == 1, result.stderr
        assert words in errors[0], errors[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco.trc"]  # nor opensim.log
