"""Joint angles against a synthetic kinematic model with known joint rotations.

The model is a tree of rigid segments (pelvis, trunk, thighs, shanks, feet, upper arms,
forearms). Each joint rotation is built from (flex, abd, rot) in degrees with the sign
conventions of docs/joint_angles.md, and the markers sit at anatomical offsets on their
segment (ASIS/PSIS on the pelvis, epicondyles on the femur, malleoli on the shank, ...).
The sign tests check those conventions against what the body visibly does.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from core.angle_files import read_mot, write_angle_outputs
from core.angle_set import ANGLE_COLUMNS, ANGLE_GROUPS, ANGLE_POSITIVE
from core.atomic import OutputError
from core.marker_sets import MARKERS_64
from core.packet import Packet
from stages.angles import JointAngles

FPS = 100.0
# Lab axes of a subject in the anatomical pose facing the camera: anterior = +Z,
# superior = +Y, right = -X (columns: anterior, superior, right).
FACING_CAMERA = np.column_stack(([0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]))


def rot(axis: str, deg: np.ndarray | float) -> np.ndarray:
    """Right-handed rotation(s) about a body axis, shape (..., 3, 3)."""
    a = np.radians(np.asarray(deg, dtype=float))
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    rows = {
        "x": [[o, z, z], [z, c, -s], [z, s, c]],
        "y": [[c, z, s], [z, o, z], [-s, z, c]],
        "z": [[c, -s, z], [s, c, z], [z, z, o]],
    }[axis]
    return np.moveaxis(np.array(rows), (0, 1), (-2, -1))


def joint_rotation(joint: str, flex, abd, rot_deg) -> np.ndarray:
    """Rotation of a joint's child relative to its parent, from the documented angles."""
    if joint == "pelvis":  # Y, X, Z about the pelvis axes: rotation, obliquity, tilt
        return FACING_CAMERA @ rot("y", rot_deg) @ rot("x", abd) @ rot("z", -flex)
    side = -1.0 if joint.endswith("_l") else 1.0
    if joint == "trunk":
        return rot("z", -flex) @ rot("x", abd) @ rot("y", rot_deg)
    if joint.startswith("knee"):  # knee flexion swings the shank backwards: -Z
        return rot("z", -flex) @ rot("x", -side * abd) @ rot("y", side * rot_deg)
    if joint.startswith("elbow"):  # abd = carrying angle, rot = pronation: not measured
        return rot("z", flex) @ rot("x", abd) @ rot("y", rot_deg)
    return rot("z", flex) @ rot("x", -side * abd) @ rot("y", side * rot_deg)


# (parent segment, joint name, child segment, joint centre in the parent's frame, metres)
CHAIN = (
    ("pelvis", "trunk", "trunk", (-0.07, -0.08, 0.0)),  # the trunk turns about mid-hip
    ("pelvis", "hip_r", "femur_r", (-0.07, -0.08, 0.085)),
    ("pelvis", "hip_l", "femur_l", (-0.07, -0.08, -0.085)),
    ("femur_r", "knee_r", "tibia_r", (0.0, -0.42, 0.0)),
    ("femur_l", "knee_l", "tibia_l", (0.0, -0.42, 0.0)),
    ("tibia_r", "ankle_r", "foot_r", (0.0, -0.40, 0.0)),
    ("tibia_l", "ankle_l", "foot_l", (0.0, -0.40, 0.0)),
    ("trunk", "shoulder_r", "humerus_r", (0.0, 0.46, 0.18)),
    ("trunk", "shoulder_l", "humerus_l", (0.0, 0.46, -0.18)),
    ("humerus_r", "elbow_r", "forearm_r", (0.0, -0.30, 0.0)),
    ("humerus_l", "elbow_l", "forearm_l", (0.0, -0.30, 0.0)),
)


def _marker_layout() -> dict[str, tuple[str, tuple[float, float, float]]]:
    """Marker name -> (segment, offset in the segment frame: X anterior, Y up, Z right)."""
    layout: dict[str, tuple[str, tuple[float, float, float]]] = {
        "Hip": ("pelvis", (-0.06, -0.09, 0.0)),
        "Neck": ("trunk", (0.0, 0.46, 0.0)),
        "Nose": ("trunk", (0.10, 0.70, 0.0)),
        "C7_study": ("trunk", (-0.07, 0.55, 0.0)),
    }
    for side, s in (("r", 1.0), ("l", -1.0)):
        big, cap = ("R", "r") if side == "r" else ("L", "L")
        layout |= {
            f"{big}Hip": ("pelvis", (-0.06, -0.09, 0.10 * s)),
            f"{cap}.ASIS_study": ("pelvis", (0.0, 0.0, 0.12 * s)),
            f"{cap}.PSIS_study": ("pelvis", (-0.16, 0.0, 0.045 * s)),
            f"{big}HJC_study": ("pelvis", (-0.07, -0.08, 0.085 * s)),
            f"{big}Knee": (f"femur_{side}", (0.0, -0.42, 0.0)),
            f"{cap}_knee_study": (f"femur_{side}", (0.0, -0.42, 0.05 * s)),
            f"{cap}_mknee_study": (f"femur_{side}", (0.0, -0.42, -0.05 * s)),
            f"{cap}_thigh1_study": (f"femur_{side}", (0.03, -0.15, 0.07 * s)),
            f"{cap}_thigh2_study": (f"femur_{side}", (0.05, -0.25, 0.06 * s)),
            f"{cap}_thigh3_study": (f"femur_{side}", (0.02, -0.30, 0.08 * s)),
            f"{big}Ankle": (f"tibia_{side}", (0.0, -0.40, 0.0)),
            f"{cap}_ankle_study": (f"tibia_{side}", (0.0, -0.40, 0.035 * s)),
            f"{cap}_mankle_study": (f"tibia_{side}", (0.0, -0.40, -0.035 * s)),
            f"{cap}_sh1_study": (f"tibia_{side}", (0.03, -0.12, 0.05 * s)),
            f"{cap}_sh2_study": (f"tibia_{side}", (0.04, -0.20, 0.04 * s)),
            f"{cap}_sh3_study": (f"tibia_{side}", (0.02, -0.28, 0.05 * s)),
            f"{big}Heel": (f"foot_{side}", (-0.06, -0.06, 0.0)),
            f"{cap}_calc_study": (f"foot_{side}", (-0.05, -0.05, 0.0)),
            f"{cap}_toe_study": (f"foot_{side}", (0.15, -0.05, 0.0)),
            f"{cap}_5meta_study": (f"foot_{side}", (0.12, -0.05, 0.04 * s)),
            f"{big}BigToe": (f"foot_{side}", (0.18, -0.06, -0.01 * s)),
            f"{big}SmallToe": (f"foot_{side}", (0.15, -0.06, 0.04 * s)),
            f"{cap}_shoulder_study": ("trunk", (0.0, 0.50, 0.18 * s)),
            f"{big}Shoulder": (f"humerus_{side}", (0.0, 0.0, 0.0)),
            f"{big}Elbow": (f"humerus_{side}", (0.0, -0.30, 0.0)),
            f"{cap}_lelbow_study": (f"humerus_{side}", (0.0, -0.30, 0.035 * s)),
            f"{cap}_melbow_study": (f"humerus_{side}", (0.0, -0.30, -0.035 * s)),
            f"{big}Wrist": (f"forearm_{side}", (0.0, -0.25, 0.0)),
            f"{cap}_lwrist_study": (f"forearm_{side}", (0.0, -0.25, 0.025 * s)),
            f"{cap}_mwrist_study": (f"forearm_{side}", (0.0, -0.25, -0.025 * s)),
        }
    assert set(layout) == set(MARKERS_64)
    return layout


LAYOUT = _marker_layout()


def markers_from_angles(
    truth: dict[str, np.ndarray], pelvis_origin: np.ndarray, heading_deg: float = 0.0
) -> np.ndarray:
    """(T, 64, 3) markers in MARKERS_64 order for joint angles ``truth[joint]`` (T, 3)."""
    spin = rot("y", heading_deg)
    rotation = {"pelvis": spin @ joint_rotation("pelvis", *truth["pelvis"].T)}
    origin = {"pelvis": pelvis_origin @ spin.T}
    for parent, joint, child, centre in CHAIN:
        rotation[child] = rotation[parent] @ joint_rotation(joint, *truth[joint].T)
        origin[child] = origin[parent] + rotation[parent] @ np.array(centre)
    return np.stack(
        [origin[seg] + rotation[seg] @ np.array(off) for seg, off in map(LAYOUT.get, MARKERS_64)],
        axis=1,
    )


def smooth(t: np.ndarray, centre: float, amplitude: float, freq: float, phase: float = 0.0):
    return centre + amplitude * np.sin(2 * np.pi * freq * t + phase)


def movement(n_frames: int = 500) -> dict[str, np.ndarray]:
    """Large combined 3-axis motions of every joint, (T, 3) degrees (flex, abd, rot)."""
    t = np.arange(n_frames) / FPS
    u = t / t[-1]

    def dof(*spec: tuple[float, float, float, float]) -> np.ndarray:
        return np.stack([smooth(t, *s) for s in spec], axis=1)

    truth = {
        "pelvis": np.stack([smooth(t, 10, 15, 0.9), smooth(t, 0, 12, 0.7, 0.3), 540 * u - 90], 1),
        "trunk": dof((20, 40, 0.5, 0.2), (0, 25, 0.8), (0, 35, 0.6, 1.0)),
        "shoulder_r": dof((60, 110, 0.4, -0.5), (75, 75, 0.55, -1.5), (0, 60, 0.7)),
        "shoulder_l": dof((60, 110, 0.45, 2.0), (75, 75, 0.5, -1.2), (10, 50, 0.9)),
        "elbow_r": dof((72.5, 72.5, 0.6, -1.5), (10, 0, 0), (0, 80, 0.7)),
        "elbow_l": dof((72.5, 72.5, 0.5, 1.0), (10, 0, 0), (0, 80, 0.9)),
    }
    for side, phase in (("r", 0.0), ("l", 2.5)):
        truth[f"hip_{side}"] = dof((45, 65, 0.6, phase), (10, 20, 0.8, phase), (0, 35, 0.5))
        truth[f"knee_{side}"] = dof((65, 65, 0.7, phase - 1.5), (0, 5, 1.1), (0, 20, 0.9))
        truth[f"ankle_{side}"] = dof((-7.5, 32.5, 0.9, phase), (0, 15, 0.6), (0, 15, 1.2))
    return truth


def walk_path(n_frames: int) -> np.ndarray:
    t = np.arange(n_frames) / FPS
    return np.stack([0.8 * np.sin(0.3 * t), 0.95 + 0.02 * np.sin(4 * t), -3.0 + 0.5 * t], 1)


def expected_columns(truth: dict[str, np.ndarray]) -> np.ndarray:
    """Truth in ANGLE_COLUMNS order (elbows: flexion only)."""
    return np.concatenate(
        [truth[group][:, : len(cols)] for group, cols in ANGLE_GROUPS.items()], axis=1
    )


def run_stage(
    markers: np.ndarray, stage: JointAngles | None = None, source: str = "cam"
) -> np.ndarray:
    stage = stage or JointAngles()
    out = []
    for i, frame in enumerate(markers):
        packet = Packet(source, i, i, i / FPS, (640, 480), data={"markers_64": frame})
        out.append(stage(packet).data["angles"])
    return np.array(out)


@pytest.fixture(scope="module")
def ready_stage() -> JointAngles:
    stage = JointAngles()
    stage.setup({})
    return stage


@pytest.fixture(scope="module")
def motion() -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    truth = movement()
    markers = markers_from_angles(truth, walk_path(len(truth["pelvis"])))
    return truth, markers, run_stage(markers)


def col(name: str) -> int:
    return ANGLE_COLUMNS.index(name)


def test_columns_and_groups() -> None:
    assert len(ANGLE_GROUPS) == 12
    assert len(ANGLE_COLUMNS) == len(set(ANGLE_COLUMNS)) == 10 * 3 + 2
    assert ANGLE_GROUPS["elbow_r"] == ("elbow_r_flex_deg",)
    assert ANGLE_GROUPS["hip_l"] == ("hip_l_flex_deg", "hip_l_abd_deg", "hip_l_rot_deg")
    assert set(ANGLE_POSITIVE) == set(ANGLE_COLUMNS)
    assert ANGLE_POSITIVE["ankle_l_flex_deg"] == "dorsiflexion"


def near_lock(truth: dict[str, np.ndarray], group: str, within_deg: float) -> np.ndarray:
    """Frames where a shoulder is within ``within_deg`` of its gimbal lock (abduction 90)."""
    return np.abs(np.abs(truth[group][:, 1]) - 90) < within_deg


def test_recovers_known_angles(motion) -> None:
    truth, _, angles = motion
    error = angles - expected_columns(truth)
    assert np.all(np.isfinite(angles))
    for group in ("shoulder_r", "shoulder_l"):
        idx = [col(c) for c in ANGLE_GROUPS[group]]
        lock = near_lock(truth, group, 10.0)
        assert 0 < lock.sum() < 0.2 * len(lock)
        assert np.abs(error[lock][:, idx]).max() < 6.0  # damped near the lock, not lost
        error[lock, idx[0] : idx[-1] + 1] = np.nan
    rms = np.sqrt(np.nanmean(error**2, axis=0))
    assert rms.max() < 0.5, dict(zip(ANGLE_COLUMNS, rms.round(4), strict=True))


def test_continuous_through_large_ranges(motion) -> None:
    truth, _, angles = motion
    steps = np.abs(np.diff(angles, axis=0))
    truth_steps = np.abs(np.diff(expected_columns(truth), axis=0))
    assert (steps - truth_steps).max() < 3.0
    assert angles[:, col("pelvis_rot_deg")].max() > 400  # 1.5 turns, unwrapped
    assert np.abs(truth["shoulder_r"][:, 1]).max() > 140  # abduction crosses the lock


def test_exact_gimbal_lock_is_continuous() -> None:
    """Abduction sweeps 30 -> 150 through exactly 90 (flexion and rotation axes coincide)."""
    n = 121
    truth = {k: np.zeros((n, 3)) for k in ANGLE_GROUPS}
    truth["pelvis"][:, 2] = 30.0
    sweep = np.linspace(30, 150, n)  # exactly 90 at frame 60
    truth["shoulder_r"] = np.stack([np.linspace(10, 50, n), sweep, np.linspace(0, -40, n)], 1)
    markers = markers_from_angles(truth, walk_path(n))
    angles = run_stage(markers)
    shoulder = angles[:, [col(c) for c in ANGLE_GROUPS["shoulder_r"]]]
    assert np.abs(np.diff(shoulder, axis=0)).max() < 2.0  # the truth moves 1 deg/frame
    recomposed = joint_rotation("shoulder_r", *shoulder.T)
    expected = joint_rotation("shoulder_r", *truth["shoulder_r"].T)
    assert np.abs(recomposed - expected).max() < np.radians(1.0)
    away = ~near_lock(truth, "shoulder_r", 10.0)
    np.testing.assert_allclose(shoulder[away], truth["shoulder_r"][away], atol=1e-6)


def test_noise_near_the_lock_does_not_flip() -> None:
    """Noisy markers through the lock: the angles stay on the truth's solution."""
    truth = movement()
    markers = markers_from_angles(truth, walk_path(len(truth["pelvis"])))
    noisy = markers + np.random.default_rng(7).normal(0, 0.002, markers.shape)
    error = run_stage(noisy) - expected_columns(truth)
    for group in ("shoulder_r", "shoulder_l"):
        away = ~near_lock(truth, group, 10.0)
        idx = [col(c) for c in ANGLE_GROUPS[group]]
        assert np.abs(error[away][:, idx]).max() < 20.0  # noise, never a 180 or 360 jump


def test_unnatural_solution_heals_in_a_moderate_pose() -> None:
    """(180, 150, 180) and (0, 30, 0) are the same arm: a joint back in a moderate pose
    reads the natural one even if continuity had carried it onto the other solution."""
    up = np.linspace(0, 150, 60)
    turn = np.linspace(0, 180, 60)
    path = np.concatenate(
        [np.stack([0 * up, up, 0 * up], 1), np.stack([turn, np.full(60, 150.0), turn], 1)]
    )
    truth = {k: np.zeros((len(path), 3)) for k in ANGLE_GROUPS}
    truth["shoulder_r"] = path
    angles = run_stage(markers_from_angles(truth, walk_path(len(path))))
    shoulder = angles[:, [col(c) for c in ANGLE_GROUPS["shoulder_r"]]]
    np.testing.assert_allclose(shoulder[59], [0, 150, 0], atol=1e-6)  # continuity past 90
    np.testing.assert_allclose(shoulder[-1], [0, 30, 0], atol=1e-6)


def test_whole_body_heading_changes_only_pelvis_rotation(motion) -> None:
    truth, _, angles = motion
    turned = run_stage(markers_from_angles(truth, walk_path(len(angles)), heading_deg=73.0))
    joints = [i for i, c in enumerate(ANGLE_COLUMNS) if not c.startswith("pelvis")]
    np.testing.assert_allclose(turned[:, joints], angles[:, joints], atol=1e-7)
    shift = turned[:, col("pelvis_rot_deg")] - angles[:, col("pelvis_rot_deg")]
    np.testing.assert_allclose((shift - 73.0 + 180) % 360 - 180, 0, atol=1e-7)


def test_neutral_pose_is_zero() -> None:
    truth = {k: np.zeros((1, 3)) for k in ANGLE_GROUPS}
    angles = run_stage(markers_from_angles(truth, walk_path(1)))
    np.testing.assert_allclose(angles, 0, atol=1e-9)


def _pose(**angles: tuple[float, float, float]) -> np.ndarray:
    truth = {k: np.zeros((1, 3)) for k in ANGLE_GROUPS}
    for joint, value in angles.items():
        truth[joint][0] = value
    return markers_from_angles(truth, walk_path(1))[0]


def _in_pelvis(markers: np.ndarray, name: str) -> np.ndarray:
    """A marker in body axes of the neutral pelvis (X anterior, Y up, Z right)."""
    return FACING_CAMERA.T @ markers[MARKERS_64.index(name)]


@pytest.mark.parametrize("side, s", [("r", 1.0), ("l", -1.0)])
def test_signs_match_what_the_body_does(side: str, s: float) -> None:
    cap, big = ("r", "R") if side == "r" else ("L", "L")
    neutral = _pose()

    def moved(name: str, pose: np.ndarray) -> np.ndarray:
        return _in_pelvis(pose, name) - _in_pelvis(neutral, name)

    knee = _pose(**{f"knee_{side}": (40, 0, 0)})
    assert moved(f"{big}Ankle", knee)[0] < -0.1  # the foot goes backwards
    assert run_stage(knee[None])[0, col(f"knee_{side}_flex_deg")] == pytest.approx(40)

    hip = _pose(**{f"hip_{side}": (0, 20, 0)})
    assert s * moved(f"{big}Knee", hip)[2] > 0.1  # the knee goes away from the midline
    assert run_stage(hip[None])[0, col(f"hip_{side}_abd_deg")] == pytest.approx(20)

    # Elbow flexed 90 (hand forward); external rotation swings the hand laterally.
    shoulder = _pose(**{f"shoulder_{side}": (0, 0, -30), f"elbow_{side}": (90, 0, 0)})
    bent = _pose(**{f"elbow_{side}": (90, 0, 0)})
    lateral = s * (_in_pelvis(shoulder, f"{big}Wrist") - _in_pelvis(bent, f"{big}Wrist"))[2]
    assert lateral > 0.05
    assert run_stage(shoulder[None])[0, col(f"shoulder_{side}_rot_deg")] == pytest.approx(-30)

    ankle = _pose(**{f"ankle_{side}": (15, 0, 0)})
    assert moved(f"{cap}_toe_study", ankle)[1] > 0.02  # toes up: dorsiflexion
    assert run_stage(ankle[None])[0, col(f"ankle_{side}_flex_deg")] == pytest.approx(15)


def test_trunk_pelvis_and_elbow_signs() -> None:
    neutral = _pose()
    cases = [  # (joint, angles, column, marker, body axis, direction of its displacement)
        ("trunk", (30, 0, 0), "trunk_flex_deg", "C7_study", 0, 1),  # bends forward
        ("trunk", (0, 20, 0), "trunk_abd_deg", "C7_study", 2, 1),  # bends to the right
        ("trunk", (0, 0, 30), "trunk_rot_deg", "r_shoulder_study", 0, 1),  # turns left
        ("pelvis", (15, 0, 0), "pelvis_flex_deg", "r.PSIS_study", 1, 1),  # anterior tilt
        ("pelvis", (0, 10, 0), "pelvis_abd_deg", "r.ASIS_study", 1, -1),  # right side down
        ("pelvis", (0, 0, 30), "pelvis_rot_deg", "r.ASIS_study", 0, 1),  # turns left
        ("elbow_r", (60, 0, 0), "elbow_r_flex_deg", "RWrist", 0, 1),  # hand forward
    ]
    for joint, angles, column, marker, axis, direction in cases:
        pose = _pose(**{joint: angles})
        shift = _in_pelvis(pose, marker) - _in_pelvis(neutral, marker)
        assert direction * shift[axis] > 0.01, column
        assert run_stage(pose[None])[0, col(column)] == pytest.approx(max(angles)), column


@pytest.mark.parametrize(
    "marker, nan_groups",
    [
        ("r_knee_study", {"hip_r", "knee_r", "ankle_r"}),
        ("r_calc_study", {"ankle_r"}),
        ("RShoulder", {"shoulder_r", "elbow_r"}),
        ("L_mwrist_study", {"elbow_l"}),
        ("L.PSIS_study", {"pelvis", "trunk", "hip_r", "hip_l"}),
        ("LHJC_study", {"trunk", "hip_l", "knee_l", "shoulder_r", "shoulder_l"}),
        ("C7_study", set()),
    ],
)
def test_missing_marker_blanks_only_its_joints(motion, marker: str, nan_groups: set[str]) -> None:
    _, markers, angles = motion
    frames = markers[:3].copy()
    frames[1, MARKERS_64.index(marker)] = np.nan
    out = run_stage(frames)
    for group, cols in ANGLE_GROUPS.items():
        idx = [col(c) for c in cols]
        assert np.all(np.isnan(out[1, idx]) == (group in nan_groups)), group
    np.testing.assert_array_equal(out[[0, 2]], angles[[0, 2]])


def test_degenerate_axes_give_nan(motion) -> None:
    _, markers, _ = motion
    knee = [col(c) for c in ANGLE_GROUPS["knee_r"]]
    collapsed = markers[:1].copy()
    collapsed[0, MARKERS_64.index("r_knee_study")] = collapsed[0, MARKERS_64.index("r_mknee_study")]
    assert np.all(np.isnan(run_stage(collapsed)[0, knee]))
    # Epicondyles lined up along the thigh: the axes are 10 degrees from parallel.
    aligned = markers[:1].copy()
    i_lat, i_med = MARKERS_64.index("r_knee_study"), MARKERS_64.index("r_mknee_study")
    i_hjc = MARKERS_64.index("RHJC_study")
    centre = 0.5 * (aligned[0, i_lat] + aligned[0, i_med])
    along = (aligned[0, i_hjc] - centre) / np.linalg.norm(aligned[0, i_hjc] - centre)
    across = (aligned[0, i_lat] - aligned[0, i_med]) / np.linalg.norm(
        aligned[0, i_lat] - aligned[0, i_med]
    )
    half = 0.05 * (np.cos(np.radians(10)) * along + np.sin(np.radians(10)) * across)
    aligned[0, i_lat], aligned[0, i_med] = centre + half, centre - half
    assert np.all(np.isnan(run_stage(aligned)[0, knee]))


def test_empty_frames_and_bad_input(motion) -> None:
    _, markers, angles = motion
    frames = markers[:4].copy()
    frames[1:3] = np.nan  # nobody in view for two frames
    out = run_stage(frames)
    assert np.all(np.isnan(out[1:3]))
    np.testing.assert_array_equal(out[3], angles[3])
    with pytest.raises(ValueError, match="markers_64"):
        JointAngles().process(Packet("cam", 0, 0, 0.0, (1, 1)))


def test_deterministic_and_per_source(motion) -> None:
    _, markers, angles = motion
    stage = JointAngles()
    other = markers_from_angles(movement(50), walk_path(50), heading_deg=180.0)
    a, b = [], []
    for i in range(50):  # interleave two sources through one stage
        a.append(run_stage(markers[i : i + 1], stage, "a")[0])
        b.append(run_stage(other[i : i + 1], stage, "b")[0])
    np.testing.assert_array_equal(np.array(a), angles[:50])
    np.testing.assert_array_equal(np.array(b), run_stage(other))
    stage.reset("a")
    np.testing.assert_array_equal(run_stage(markers[:1], stage, "a")[0], angles[0])


def test_per_frame_cost(ready_stage: JointAngles, motion) -> None:
    _, markers, _ = motion
    packets = [
        Packet("cam", i, i, 0.0, (1, 1), data={"markers_64": m}) for i, m in enumerate(markers)
    ]
    costs = []
    for packet in packets:
        start = time.perf_counter()
        ready_stage.process(packet)
        costs.append(time.perf_counter() - start)
    assert np.median(costs) < 1e-3  # target 0.2 ms; loose for shared CI machines


def test_writers_round_trip(tmp_path: Path, motion) -> None:
    _, _, angles = motion
    angles = angles[:120].copy()
    angles[10:15, col("knee_r_flex_deg")] = np.nan
    times = np.arange(len(angles)) / FPS
    paths = write_angle_outputs(tmp_path, "demo", times, angles)
    folder = tmp_path / "joint_angles"
    assert {p.name for p in paths} == (
        {f"demo_{g}.csv" for g in ANGLE_GROUPS}
        | {f"demo_{g}.png" for g in ANGLE_GROUPS}
        | {"demo_angles.mot", "demo_angles_summary.png"}
    )
    assert all(p.parent == folder and p.stat().st_size > 0 for p in paths)
    assert not [p for p in folder.iterdir() if p not in paths]  # no temp files left
    names, data = read_mot(folder / "demo_angles.mot")
    assert names == ["time", *ANGLE_COLUMNS]
    np.testing.assert_allclose(data[:, 0], times, atol=1e-6)
    np.testing.assert_allclose(data[:, 1:], angles, atol=1e-6)
    header = (folder / "demo_hip_l.csv").read_text().splitlines()[0]
    assert header == "time," + ",".join(ANGLE_GROUPS["hip_l"])
    csv = np.genfromtxt(folder / "demo_knee_r.csv", delimiter=",", skip_header=1)
    np.testing.assert_allclose(
        csv[:, 1:], angles[:, [col(c) for c in ANGLE_GROUPS["knee_r"]]], atol=1e-6
    )
    for png in folder.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_writer_failure_keeps_the_old_file(tmp_path: Path, monkeypatch, motion) -> None:
    _, _, angles = motion
    times = np.arange(len(angles)) / FPS
    with pytest.raises(ValueError, match="ANGLE_COLUMNS"):
        write_angle_outputs(tmp_path, "demo", times, angles[:, :5])
    folder = tmp_path / "joint_angles"
    folder.mkdir()
    old = folder / "demo_pelvis.csv"
    old.write_text("previous run")

    def broken_replace(src, dst) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OutputError, match="demo_pelvis.csv: disk full"):
        write_angle_outputs(tmp_path, "demo", times, angles, plots=False)
    monkeypatch.undo()

    def broken_savefig(self, f, **kwargs) -> None:
        f.write(b"\x89PNG half")
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(RuntimeError, match="renderer failed"):
        write_angle_outputs(tmp_path, "demo", times, angles, csv=False)
    assert old.read_text() == "previous run"
    assert [p.name for p in folder.iterdir()] == ["demo_pelvis.csv"]
