"""OpenSim scaling and IK (``--ik``) against synthetic truth, and the CLI on the demo."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import opensim
import pytest

from core.angle_files import read_mot
from core.trc import TrcWriter, read_trc
from models.opensim_model import load_model, marker_names, marker_positions
from stages.ik import scale_to_markers, solve_trial
from stream.config import load_config
from tests.data import REPO

# Known scale factors per measurement of Scaling_Setup_Pose2Sim_LSTM.xml (uniform per body).
KNOWN = {
    ("talus_r", "calcn_r", "toes_r", "talus_l", "calcn_l", "toes_l"): 1.05,
    ("tibia_r", "tibia_l"): 1.08,
    ("femur_r", "patella_r", "femur_l", "patella_l"): 1.06,
    ("pelvis", "torso", "lumbar5", "lumbar4", "lumbar3", "lumbar2", "lumbar1"): 0.96,
    ("sacrum", "Abdomen", "head", "scapulaPhantom_r", "scapulaPhantom_l"): 0.96,
    ("humerus_r", "humerus_l"): 1.02,
    ("ulna_r", "radius_r", "hand_r", "ulna_l", "radius_l", "hand_l"): 1.04,
}
FACTORS = {body: np.full(3, f) for bodies, f in KNOWN.items() for body in bodies}


def gait(t: np.ndarray) -> dict[str, np.ndarray]:
    """Gait-like coordinate curves (degrees; pelvis translations in metres) over phase t."""
    w = 2 * np.pi * t
    return {
        "pelvis_tilt": -5 + 4 * np.sin(2 * w),
        "pelvis_list": 4 * np.sin(w),
        "pelvis_rotation": 6 * np.sin(w + 0.5),
        "pelvis_tx": 1.2 * t,
        "pelvis_ty": 0.93 + 0.02 * np.sin(2 * w),
        "pelvis_tz": 0.02 * np.sin(w),
        "hip_flexion_r": 10 + 25 * np.sin(w),
        "hip_flexion_l": 10 - 25 * np.sin(w),
        "hip_adduction_r": 4 * np.sin(w),
        "hip_adduction_l": -4 * np.sin(w),
        "hip_rotation_r": 5 * np.sin(w + 1),
        "hip_rotation_l": -5 * np.sin(w + 1),
        "knee_angle_r": 30 + 28 * np.sin(w - 1.2),
        "knee_angle_l": 30 - 28 * np.sin(w - 1.2),
        "ankle_angle_r": 12 * np.sin(w + 0.7),
        "ankle_angle_l": -12 * np.sin(w + 0.7),
        # No arm swing: with the arms down (arm_add -90 deg) this model's arm_flex and arm_rot
        # turn about nearly the same axis (gimbal lock), so markers cannot tell them apart.
        "elbow_flex_r": 25 + 10 * np.sin(w),
        "elbow_flex_l": 25 - 10 * np.sin(w),
    }


def pose(model, curves: dict[str, np.ndarray], frames: int):
    """Drive the model along ``curves``: (T, N, 3) marker positions and the (T, C) true
    coordinates (read back after assembly, in degrees/metres)."""
    coords = model.getCoordinateSet()
    state = model.initSystem()
    xyz, truth = [], []
    for i in range(frames):
        for name, series in curves.items():
            c = coords.get(name)
            rotational = c.getMotionType() == opensim.Coordinate.Rotational
            c.setValue(state, np.radians(series[i]) if rotational else series[i], False)
        model.assemble(state)
        xyz.append(marker_positions(model, state))
        truth.append(
            [
                np.degrees(coords.get(n).getValue(state))
                if coords.get(n).getMotionType() == opensim.Coordinate.Rotational
                else coords.get(n).getValue(state)
                for n in curves
            ]
        )
    return np.array(xyz), np.array(truth)


@pytest.fixture(scope="module")
def settings() -> dict:
    return load_config()


@pytest.fixture(scope="module")
def scaled(settings: dict):
    """The generic model scaled by ``FACTORS`` (no data involved)."""
    from models.opensim_model import scaled_model

    return scaled_model(load_model(settings["opensim"]), FACTORS, 75.0)


def test_ik_recovers_known_gait_coordinates(scaled, settings: dict, tmp_path: Path) -> None:
    frames = 40
    curves = gait(np.linspace(0.0, 1.0, frames))
    xyz, truth = pose(scaled, curves, frames)
    names = marker_names(scaled)
    xyz[5, names.index("r_knee_study")] = np.nan  # a missing marker: left out of frame 5
    xyz[7, names.index("L_ankle_study")] = np.nan
    xyz[20] = np.nan  # nobody: too few markers, a NaN row
    trc = TrcWriter(tmp_path / "synthetic.trc", names, 60.0)
    for i, frame in enumerate(xyz):
        trc.add(i / 60.0, frame)
    data = read_trc(trc.finish())
    ik, values, errors, _ = solve_trial(scaled, settings["opensim"], data.times, data.xyz, names)
    solved = np.isfinite(errors[:, 0])
    assert solved.sum() == frames - 1 and not solved[20] and np.isnan(values[20]).all()
    columns = [ik.coordinates.index(n) for n in curves]
    rotations = [i for i, n in enumerate(curves) if not n.startswith("pelvis_t")]
    diff = (values[solved][:, columns] - truth[solved])[:, rotations]
    rms = np.sqrt(np.mean(diff**2, axis=0))
    named = dict(zip(np.array(list(curves))[rotations], rms, strict=True))
    assert len(rms) == 14 and rms.max() < 0.5, named
    assert np.nanmedian(errors[:, 0]) < 0.002  # metres: the markers are the model's own


def test_scaling_recovers_known_segment_factors(scaled, settings: dict) -> None:
    frames = 30
    curves = {k: v / 4 for k, v in gait(np.linspace(0.0, 1.0, frames)).items()}
    curves["pelvis_ty"] = np.full(frames, 0.93)  # standing, swaying a little
    xyz, _ = pose(scaled, curves, frames)
    _, factors = scale_to_markers(
        settings["opensim"], xyz, marker_names(scaled), np.ones(frames, bool), 75.0
    )
    checked = {body: f[0] for body, f in factors.items()}
    assert set(checked) == set(FACTORS)
    worst = max(checked, key=lambda b: abs(checked[b] / FACTORS[b][0] - 1))
    assert abs(checked[worst] / FACTORS[worst][0] - 1) < 0.02, (worst, checked[worst])


def run_offline(cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO / "run_offline.py"), "--quiet", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=900,
    )


def test_demo_with_ik_writes_the_files_and_the_summary(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_offline(tmp_path, "--demo", "--ik", "--output", out)
    assert result.returncode == 0, result.stderr
    folder = out / "cam01"
    for name in ("cam01_scaled.osim", "cam01_ik.mot", "cam01_ik_marker_errors.csv"):
        assert (folder / name).is_file(), name
    assert "median marker RMS error" in result.stdout
    columns, values = read_mot(folder / "cam01_ik.mot")
    assert "knee_angle_r" in columns and len(values) == 100
    errors = np.loadtxt(folder / "cam01_ik_marker_errors.csv", delimiter=",", skiprows=1)
    assert np.nanmedian(errors[:, 1]) < 0.05  # metres
    assert load_model(load_config()["opensim"], path=folder / "cam01_scaled.osim") is not None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no opensim.log
    again = tmp_path / "again"
    osim = folder / "cam01_scaled.osim"
    result = run_offline(tmp_path, "--demo", "--osim", osim, "--output", again)
    assert result.returncode == 0, result.stderr
    same = (again / "cam01" / "cam01_ik.mot").read_bytes()
    assert same == (folder / "cam01_ik.mot").read_bytes()  # the same model, the same IK


def test_osim_that_does_not_load_is_one_error_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.osim"
    broken.write_text("<OpenSimDocument><Model>not a model")
    out = tmp_path / "out"
    result = run_offline(tmp_path, "--demo", "--osim", broken, "--output", out)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot load the model" in errors[0], result.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    ("setting", "words"),
    [
        ('markers = "Markers_Coco17.xml"', "marker set does not match"),
        ('model = "BROKEN"', "cannot load the model"),
    ],
)
def test_bad_opensim_setup_is_one_error_line(tmp_path: Path, setting: str, words: str) -> None:
    broken = tmp_path / "broken.osim"
    broken.write_text("<OpenSimDocument><Model>not a model")
    config = tmp_path / "ik.toml"
    config.write_text("[opensim]\n" + setting.replace("BROKEN", str(broken)) + "\n")
    out = tmp_path / "out"
    result = run_offline(tmp_path, "--demo", "--ik", "--config", config, "--output", out)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and words in errors[0], result.stderr
    assert not out.exists()
