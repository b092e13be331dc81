"""Angles stay in their anatomical ranges (core/joint_limits.py, docs/joint_angles.md) and
only the pelvis heading counts whole turns: through injected left/right swaps, dropouts and
re-detections, and on a real video played forth and back, where the angles used to walk
through whole turns (elbow -362 deg, pelvis heading +1068 deg on the loop below)."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from bench.clips import paced_clip, read_frames
from core.angle_set import ANGLE_COLUMNS, ANGLE_GROUPS
from core.demo_data import demo_video
from core.joint_limits import JOINT_RANGES
from core.marker_sets import MARKERS_64
from core.packet import Packet
from stages.angles import JointAngles
from stages.capture import VideoSource
from stream.pipeline import build_stages, run_inline
from tests.data import REPO
from tests.test_angles import FPS, markers_from_angles, movement, walk_path

LOW, HIGH = np.array([JOINT_RANGES[c] or (-np.inf, np.inf) for c in ANGLE_COLUMNS]).T
HEADING = ANGLE_COLUMNS.index("pelvis_rot_deg")


def col(name: str) -> int:
    return ANGLE_COLUMNS.index(name)


def assert_within_ranges(angles: np.ndarray, min_finite: float) -> None:
    """Every value NaN or inside its range, and at least ``min_finite`` of them finite."""
    finite = np.isfinite(angles)
    assert finite.mean() >= min_finite, f"only {100 * finite.mean():.0f}% of values finite"
    outside = finite & ((angles < LOW) | (angles > HIGH))
    assert not outside.any(), {
        ANGLE_COLUMNS[c]: (np.nanmin(angles[:, c]), np.nanmax(angles[:, c]))
        for c in np.flatnonzero(outside.any(axis=0))
    }


def run(markers: np.ndarray, meta: dict[int, dict[str, Any]] | None = None) -> np.ndarray:
    """Angles of every frame through one stage (``meta``: frame -> packet meta), the way
    ``run_inline`` calls it, so ``track_reset`` resets the stage."""
    stage = JointAngles()
    out = []
    for i, frame in enumerate(markers):
        packet = Packet("cam", i, i, i / FPS, (640, 480), data={"markers_64": frame})
        packet.meta.update((meta or {}).get(i, {}))
        out.append(stage(packet).data["angles"])
    return np.array(out)


def partner(name: str) -> str:
    """The marker of the other side (``name`` itself on the midline)."""
    for a, b in (("r.", "L."), ("r_", "L_"), ("R", "L")):
        for this, other in ((a, b), (b, a)):
            if name.startswith(this):
                return other + name[len(this) :]
    return name


SWAPPED = {  # left/right labels exchanged: MediaPipe's swaps of the whole body or one limb pair
    "body": lambda name: True,
    "arms": lambda name: any(k in name for k in ("houlder", "lbow", "rist")),
    "legs": lambda name: any(
        k in name for k in ("nee", "nkle", "Heel", "oe", "calc", "meta", "thigh", "_sh")
    ),  # fmt: skip
}


def swap_labels(frames: np.ndarray, part: str) -> np.ndarray:
    order = [
        MARKERS_64.index(partner(n)) if SWAPPED[part](n) else i for i, n in enumerate(MARKERS_64)
    ]
    return frames[:, order]


def wrap(deg: np.ndarray) -> np.ndarray:
    return (deg + 180.0) % 360.0 - 180.0


def test_every_side_marker_has_a_partner() -> None:
    sided = [n for n in MARKERS_64 if partner(n) != n]
    assert len(sided) == 60 and all(partner(n) in MARKERS_64 for n in sided)
    assert all(partner(partner(n)) == n for n in MARKERS_64)


def test_swaps_dropouts_and_redetections_never_leave_the_ranges() -> None:
    """15 s of large motion of every joint (the pelvis turning 1.5 times) with swaps of
    tens of frames, dropouts and two re-detections."""
    truth = movement(1500)
    clean = markers_from_angles(truth, walk_path(1500))
    swaps = {"body": (200, 240), "arms": (500, 560), "legs": (800, 830), "body ": (1100, 1160)}
    markers = clean.copy()
    for part, (start, end) in swaps.items():
        markers[start:end] = swap_labels(clean[start:end], part.strip())
    markers[300:306] = np.nan  # nobody in view
    markers[900:904, MARKERS_64.index("r_knee_study")] = np.nan
    resets = (650, 1300)
    angles = run(markers, {i: {"track_reset": True} for i in resets})
    reference = run(clean)
    assert np.isfinite(reference).all()
    assert_within_ranges(reference, 1.0)
    assert_within_ranges(angles, 0.9)
    for part, (start, end) in swaps.items():  # the swaps really left the ranges
        assert np.isnan(angles[start:end]).any(), part
    disturbed = np.zeros(len(clean), dtype=bool)
    for start, end in (*swaps.values(), (300, 306), (900, 904)):
        disturbed[start : end + 5] = True  # and a few frames to come out of a gimbal lock
    # Right after a disturbance every joint reads what it reads undisturbed...
    joints = [c for c in range(len(ANGLE_COLUMNS)) if c != HEADING]
    np.testing.assert_allclose(angles[~disturbed][:, joints], reference[~disturbed][:, joints])
    # ... and the heading too, with no turn gained or lost, until a re-detection restarts
    # it from its principal value (the reference has turned past 180 by frame 1300).
    heading, expected = angles[:, HEADING], reference[:, HEADING].copy()
    expected[1300:] -= 360.0
    np.testing.assert_allclose(heading[~disturbed], expected[~disturbed], atol=1e-9)
    assert -180.0 <= heading[1300] < 180.0 < reference[1300, HEADING]


def _pose(shoulder_r: tuple[float, float, float]) -> np.ndarray:
    truth = {k: np.zeros((1, 3)) for k in ANGLE_GROUPS}
    truth["shoulder_r"][0] = shoulder_r
    return markers_from_angles(truth, walk_path(1))[0]


def test_a_swap_repair_reanchors_continuity() -> None:
    """An arm near gimbal lock (abduction 88) whose labels the swap repair puts right: the
    repaired frame reads its own pose at once, not one dragged from the swapped frames."""
    before, after = (0.0, 88.0, 0.0), (60.0, 88.0, -40.0)
    markers = np.array([_pose(before)] * 10 + [_pose(after)] * 3)
    shoulder = [col(c) for c in ANGLE_GROUPS["shoulder_r"]]
    repaired = run(markers, {i: {"swap_repaired": "arms"} for i in range(10, 13)})
    np.testing.assert_allclose(repaired[:10, shoulder], [before] * 10, atol=1e-9)
    np.testing.assert_allclose(repaired[10:, shoulder], [after] * 3, atol=1e-9)
    dragged = run(markers)  # without the repair's flag, the lock damps the jump
    assert np.abs(dragged[10, shoulder] - after).max() > 10.0


@pytest.mark.parametrize("joint, pose, column", [
    ("knee_r", (30.0, 0.0, 80.0), "knee_r_rot_deg"),  # tibia turned in beyond 60
    ("elbow_l", (-45.0, 0.0, 0.0), "elbow_l_flex_deg"),  # hyperextended beyond 20
    ("hip_l", (20.0, -60.0, 0.0), "hip_l_abd_deg"),  # adducted beyond 45
])  # fmt: skip
def test_an_impossible_angle_is_nan_and_only_it(joint: str, pose: tuple, column: str) -> None:
    truth = {k: np.zeros((1, 3)) for k in ANGLE_GROUPS}
    truth[joint][0] = pose
    angles = run(markers_from_angles(truth, walk_path(1)))[0]
    assert np.isnan(angles[col(column)])
    others = [c for c in range(len(ANGLE_COLUMNS)) if c != col(column)]
    assert np.isfinite(angles[others]).all()
    for n, name in enumerate(ANGLE_GROUPS[joint]):
        if name != column:
            assert angles[col(name)] == pytest.approx(pose[n])


# The real video: cam02 of the test demo played forth and back (two loops, 13 s at 30 fps,
# 720 px wide), through the whole default pipeline, once for the tests below.
LOOP_S = 400 / 30.0


@pytest.fixture(scope="module")
def pingpong(
    config: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> tuple[np.ndarray, np.ndarray]:
    """markers_64 and angles of every frame of the loop."""
    video = tmp_path_factory.mktemp("loop") / "cam02_pingpong.mp4"
    paced_clip(read_frames(demo_video("cam02"), scale=2 / 3), 30.0, LOOP_S, video)
    stages = build_stages(config)
    packets = [run_inline(stages, p) for p in VideoSource(video)]
    markers = np.array([p.data["markers_64"] for p in packets])
    return markers, np.array([p.data["angles"] for p in packets])


def test_a_real_video_played_forth_and_back_stays_anatomical(pingpong) -> None:
    _, angles = pingpong
    assert len(angles) == 400
    assert_within_ranges(angles, 0.9)
    heading = angles[:, HEADING]
    # The subject never turns around: MediaPipe's flips must not add whole turns.
    assert np.nanmax(np.abs(heading - heading[0])) < 360.0


def test_a_person_turning_around_twice_reads_720(pingpong) -> None:
    """A real pose from the video, turned about the vertical through its pelvis by two
    whole turns at 300 deg/s (with 1 mm of marker noise), then re-detected."""
    markers, angles = pingpong
    pose = markers[0]
    assert np.isfinite(pose).all() and np.isfinite(angles[0]).all()
    n = 241
    turn = np.radians(np.linspace(0.0, 720.0, n))
    c, s = np.cos(turn), np.sin(turn)
    spin = np.zeros((n, 3, 3))
    spin[:, 0, 0], spin[:, 0, 2], spin[:, 1, 1], spin[:, 2, 0], spin[:, 2, 2] = c, s, 1, -s, c
    centre = pose[[MARKERS_64.index(m) for m in ("r.ASIS_study", "L.ASIS_study")]].mean(axis=0)
    turning = centre + np.einsum("nij,mj->nmi", spin, pose - centre)
    turning += np.random.default_rng(3).normal(0.0, 0.001, turning.shape)
    turning = np.concatenate([turning, turning[-1:]])
    readings = run(turning, {n: {"track_reset": True}})
    heading = readings[:, HEADING]
    assert heading[n - 1] - heading[0] == pytest.approx(720.0, abs=3.0)
    assert np.all(np.diff(heading[:n]) > 0)  # 3 deg per frame, every frame
    assert heading[n] == pytest.approx(heading[0], abs=3.0)  # re-detected: principal value
    assert_within_ranges(readings, 0.9)


def test_the_documented_table_is_the_code_table() -> None:
    """docs/joint_angles.md's "Anatomical ranges" table lists exactly JOINT_RANGES."""
    text = (REPO / "docs" / "joint_angles.md").read_text(encoding="utf-8")
    section = text.split("## Anatomical ranges", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([^|]+) \| ([^|]+) \|", section, re.MULTILINE)
    documented = {
        name: None if low.strip() == "none" else (float(low), float(high))
        for name, low, high in rows
    }
    assert list(documented) == list(JOINT_RANGES)
    assert documented == JOINT_RANGES
