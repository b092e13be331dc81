"""The full offline chain on the four real demo cameras: completeness and plausible bones.

Bone-length ranges are anthropometric ratios of standing height (Winter, Biomechanics and
Motor Control of Human Movement): thigh (hip-knee) ~0.245 H, shank (knee-ankle) ~0.246 H,
upper arm ~0.186 H, forearm ~0.146 H; the ranges below allow for MediaPipe's landmark
placement (its hip points sit above and outside the joint centres).

Stability is MediaPipe's: its world landmarks foreshorten a limb that points at the
camera (cam02's left forearm shrinks to 6-15 cm for ~40 frames), so the coefficient of
variation is printed for every bone and only gross instability fails. The learned lifter
(POF) is what is meant to fix this.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from core.angle_set import ANGLE_COLUMNS, ANGLE_GROUPS
from core.demo_data import DEMO_CAMERAS, demo_video
from core.marker_sets import MARKERS_64
from stages.capture import VideoSource
from stream.config import with_overrides
from stream.pipeline import build_stages, run_inline

HEIGHT = 1.70
BONES = {  # name: (marker a, marker b, min ratio of height, max ratio)
    "thigh": ("Hip", "Knee", 0.20, 0.30),
    "shank": ("Knee", "Ankle", 0.19, 0.28),
    "upper_arm": ("Shoulder", "Elbow", 0.12, 0.22),
    "forearm": ("Elbow", "Wrist", 0.11, 0.19),
}
MAX_BONE_CV = 0.35
LIFTS = ("mediapipe", "pof")


def run_demos(config: dict[str, Any], lift: str, field: str) -> dict[str, np.ndarray]:
    """``field`` of every frame of every demo camera, through the chain with ``lift``."""
    stages = build_stages(with_overrides(config, {"lift.method": lift}))
    out = {}
    for camera in DEMO_CAMERAS:
        out[camera] = np.array(
            [run_inline(stages, p).data[field] for p in VideoSource(demo_video(camera))]
        )
        for stage in stages:
            stage.reset()
    return out


# The two chains below run once per lift on first use, whatever order the tests come in
# (parametrized module fixtures were set up again when a random order split their tests).
@pytest.fixture(scope="module")
def demo_markers(config: dict[str, Any]) -> Callable[[str], dict[str, np.ndarray]]:
    """markers_64 of every frame of every demo camera, run with --estimate-missing, with
    MediaPipe's 3D (--lift mediapipe) or with the learned POF lift (--lift pof)."""
    cfg = with_overrides(config, {"markers.estimate_missing": True, "subject.height": HEIGHT})
    return functools.cache(lambda lift: run_demos(cfg, lift, "markers_64"))


@pytest.fixture(scope="module")
def demo_angles(config: dict[str, Any]) -> Callable[[str], dict[str, np.ndarray]]:
    """Joint angles of every frame of every demo camera, default settings, with a lift."""
    return functools.cache(lambda lift: run_demos(config, lift, "angles"))


@pytest.mark.parametrize("camera", DEMO_CAMERAS)
@pytest.mark.parametrize("lift", LIFTS)
def test_at_least_95_percent_frames_complete(demo_markers: Any, lift: str, camera: str) -> None:
    markers = demo_markers(lift)[camera]
    assert markers.shape == (100, 64, 3)
    complete = np.isfinite(markers).all(axis=(1, 2)).mean()
    print(f"{camera}: {100 * complete:.1f}% of frames with 64 finite markers")
    assert complete >= 0.95


@pytest.mark.parametrize("camera", DEMO_CAMERAS)
@pytest.mark.parametrize("lift", LIFTS)
def test_bone_lengths_plausible_and_stable(demo_markers: Any, lift: str, camera: str) -> None:
    markers = demo_markers(lift)[camera]
    for bone, (a, b, low, high) in BONES.items():
        for side in "RL":
            i, j = MARKERS_64.index(side + a), MARKERS_64.index(side + b)
            length = np.linalg.norm(markers[:, i] - markers[:, j], axis=1)
            mean, cv = np.nanmedian(length), np.nanstd(length) / np.nanmean(length)
            print(f"{camera} {side}{bone}: {mean:.3f} m ({mean / HEIGHT:.3f} H), CV {cv:.3f}")
            assert low * HEIGHT <= mean <= high * HEIGHT, f"{side}{bone} {mean:.3f} m"
            assert cv <= MAX_BONE_CV, f"{side}{bone} CV {cv:.3f}"


# Physiological ranges of motion (deg, generous: AAOS normal values plus margin for
# monocular error) for the flexion columns, checked on the 5th..95th percentiles: MediaPipe's
# depth of a foot pointing away from the camera is sometimes wrong for a few frames (cam02:
# ankle down to -146 deg for 3 frames), which the learned lifter is meant to fix.
# Continuity is validated on the synthetic model (tests/test_angles.py): on these videos
# MediaPipe itself jumps when it re-detects the person (cam02 frames 41, 62-67, 75: the 2D
# landmarks move 100-240 px in one frame), so frame-to-frame steps are not the stage's.
FLEXION_RANGES = {
    "hip_r_flex_deg": (-40, 140),
    "hip_l_flex_deg": (-40, 140),
    "knee_r_flex_deg": (-20, 160),
    "knee_l_flex_deg": (-20, 160),
    # plantarflexion up to ~55 deg, plus the ~-15 deg offset that the augmenter's heel
    # marker gives a neutral foot (see docs/joint_angles.md)
    "ankle_r_flex_deg": (-80, 45),
    "ankle_l_flex_deg": (-80, 45),
    "elbow_r_flex_deg": (-20, 170),
    "elbow_l_flex_deg": (-20, 170),
}


@pytest.mark.parametrize("camera", DEMO_CAMERAS)
@pytest.mark.parametrize("lift", LIFTS)
def test_every_joint_group_for_90_percent_of_frames(demo_angles: Any, lift: str, camera: str):
    known = {c for (bad_lift, cam, c) in KNOWN_LIFT_FAILURES if (bad_lift, cam) == (lift, camera)}
    for group, columns in ANGLE_GROUPS.items():
        assert_coverage(demo_angles(lift)[camera], camera, group, set(columns) - known)


def assert_coverage(angles: np.ndarray, camera: str, what: str, columns: set[str]) -> None:
    rows = angles[:, [ANGLE_COLUMNS.index(c) for c in sorted(columns)]]
    coverage = np.isfinite(rows).all(axis=1).mean()
    assert coverage >= 0.9, f"{camera} {what}: {100 * coverage:.0f}% of frames"


# Known failures of the MediaPipe lift: a foot pointing away from the camera gets its depth
# wrong and is tipped down (or twisted) beyond the anatomical range of the ankle, which the
# angle stage reports as NaN (docs/joint_angles.md): on cam04 the left ankle's flexion in 21
# frames of 100 and its rotation in 27, on cam02 the left ankle's flexion in 18 (the right
# one's before the swap repair put cam02's labels right); the POF lift gets them right.
# Kept as a strict xfail below so the day MediaPipe's lift fixes them, the test says so.
KNOWN_LIFT_FAILURES = {
    ("mediapipe", "cam04", "ankle_l_flex_deg"),
    ("mediapipe", "cam04", "ankle_l_rot_deg"),
    ("mediapipe", "cam02", "ankle_l_flex_deg"),
}


def assert_flexion_in_range(angles: np.ndarray, camera: str, column: str) -> None:
    low, high = FLEXION_RANGES[column]
    series = angles[:, ANGLE_COLUMNS.index(column)]
    p5, p95 = np.nanpercentile(series, [5, 95])
    print(f"{camera} {column}: min {np.nanmin(series):.0f}, p5 {p5:.0f}, p95 {p95:.0f}")
    assert low <= p5 and p95 <= high, f"{camera} {column}: p5 {p5:.0f}, p95 {p95:.0f}"


@pytest.mark.parametrize("camera", DEMO_CAMERAS)
@pytest.mark.parametrize("lift", LIFTS)
def test_flexion_ranges_physiological(demo_angles: Any, lift: str, camera: str) -> None:
    for column in FLEXION_RANGES:
        if (lift, camera, column) not in KNOWN_LIFT_FAILURES:
            assert_flexion_in_range(demo_angles(lift)[camera], camera, column)


@pytest.mark.xfail(strict=True, reason="MediaPipe foot depth (see KNOWN_LIFT_FAILURES)")
@pytest.mark.parametrize(("lift", "camera", "column"), sorted(KNOWN_LIFT_FAILURES))
def test_known_lift_failures(demo_angles: Any, lift: str, camera: str, column: str) -> None:
    assert_coverage(demo_angles(lift)[camera], camera, column, {column})
    if column in FLEXION_RANGES:
        assert_flexion_in_range(demo_angles(lift)[camera], camera, column)
