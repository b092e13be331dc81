"""Levelling: the lab frame's Y is the true vertical and its floor Y = 0 (stages/levelling.py).

Synthetic scenes (real CMU motion capture through tilted and rolled virtual cameras), the
real demo video with its calibration, the real demo video rotated by a known roll, and the
undistortion of the detect stage, all through the real stages.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from core.demo_data import TUNING_DEMO, demo_calibration, demo_video
from core.intrinsics import read_calibration, undistort
from core.landmarks import LANDMARK
from core.packet import Packet
from models.skeleton import HIPS, MEDIAPIPE_INDEX
from models.training.camera import look_at
from models.training.mocap import load_clips
from stages.capture import VideoSource
from stages.detect import MediaPipeDetector
from stages.levelling import (
    FOOT,
    WORLD_TO_LAB,
    lab_rotation,
    pitch_roll_up,
    up_pitch_roll,
)
from stages.lift import PofLift
from stages.markers import IDX, MarkerBuilder
from stream.config import with_overrides
from stream.pipeline import run_inline
from tests.data import MOCAP_FIXTURE_DIR
from tests.test_intrinsics import write_pose2sim_toml

CLIPS = {clip.name: clip for clip in load_clips(MOCAP_FIXTURE_DIR)}
# Within 2 deg, except where the subject leans in place for the whole levelling window (a
# dancer's sway, a crouch): the body's mean axis leans and the still feet span no floor.
TOLERANCE_DEG = {"daz_salsa_01": 4.0, "dm_002_04": 8.0}
ROLL_DEG = 10.0  # the demo video is turned by this
REPROJECTION_PX = 25.0  # median of a 1920-px frame: the lifted skeleton's own fit to the 2D


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    return math.degrees(math.acos(float(np.clip(cos, -1.0, 1.0))))


def output_up(packet: Packet) -> np.ndarray:
    """The lab's Y axis in the camera frame: the vertical the output assumes."""
    return packet.data["camera_to_lab"][1, :3]


def test_a_level_camera_gives_the_old_lab_frame_and_angles_round_trip() -> None:
    np.testing.assert_allclose(lab_rotation(pitch_roll_up(0.0, 0.0)), np.diag([1.0, -1, -1]))
    for pitch, roll in ((20.0, 0.0), (-10.0, 15.0), (35.0, -25.0)):
        up = pitch_roll_up(pitch, roll)
        np.testing.assert_allclose(up_pitch_roll(up), (pitch, roll), atol=1e-9)
        rotation = lab_rotation(up)
        np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(rotation) == pytest.approx(1.0)
        np.testing.assert_allclose(rotation[1], up, atol=1e-12)
        # X is the camera's right projected on the floor: in the plane of right and up
        assert rotation[0] @ np.cross(up, [1.0, 0.0, 0.0]) == pytest.approx(0.0, abs=1e-12)
        assert rotation[0, 0] > 0
    # a camera looking down sees up tilted toward itself; a positive roll leans it right
    assert pitch_roll_up(30.0, 0.0)[2] < 0 and pitch_roll_up(0.0, 10.0)[0] > 0


def mocap_through_camera(
    clip: np.ndarray, pitch_deg: float, roll_deg: float, azimuth: float
) -> tuple[list[Packet], np.ndarray]:
    """Detect-stage packets of a mocap clip (30 fps) seen by a camera 4 m away looking
    ``pitch_deg`` down at it with ``roll_deg``; and the true up in the camera frame."""
    centre = clip.mean(axis=(0, 1))
    pitch = math.radians(pitch_deg)
    ray = np.array([math.cos(pitch) * math.sin(azimuth), math.sin(pitch),
                    math.cos(pitch) * math.cos(azimuth)])  # fmt: skip
    eye = centre + 4.0 * ray
    R = look_at(eye[None], centre[None], np.array([math.radians(roll_deg)]))[0]
    f = 0.5 * 1920 / math.tan(math.radians(30.0))
    packets = []
    for t, joints in enumerate(clip):
        cam = (joints - eye) @ R.T
        world, xy, vis = np.full((33, 3), np.nan), np.full((33, 2), np.nan), np.zeros(33)
        world[MEDIAPIPE_INDEX] = cam - cam[HIPS].mean(axis=0)
        xy[MEDIAPIPE_INDEX] = cam[:, :2] / cam[:, 2:] * f + [960.0, 540.0]
        vis[MEDIAPIPE_INDEX] = 1.0
        p = Packet("mocap", t, 0, t / 30.0, (1920, 1080))
        p.data.update(world_3d=world, landmarks_2d=xy, visibility=vis)
        p.meta["person"] = True
        packets.append(p)
    return packets, R @ np.array([0.0, 1.0, 0.0])


def run_markers(packets: list[Packet], config: dict[str, Any]) -> list[Packet]:
    markers = MarkerBuilder()
    markers.setup(config)
    return [run_inline([markers], p) for p in packets]


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_mocap_through_tilted_cameras_is_levelled(name: str, config: dict[str, Any]) -> None:
    rng = np.random.default_rng(sorted(CLIPS).index(name))
    tolerance = TOLERANCE_DEG.get(name, 2.0)
    for _ in range(3):
        pitch, roll = rng.uniform(0.0, 35.0), rng.uniform(-20.0, 20.0)
        packets, up = mocap_through_camera(
            CLIPS[name].joints.astype(float), pitch, roll, rng.uniform(0, 2 * np.pi)
        )
        out = run_markers(packets, config)
        assert angle_deg(up, np.array([0.0, -1.0, 0.0])) > 5.0  # the camera is not level
        error = angle_deg(output_up(out[-1]), up)
        assert error <= tolerance, f"{name}: pitch {pitch:.0f}, roll {roll:.0f}: {error:.1f} deg"


def test_given_pitch_and_roll_override_the_estimate(config: dict[str, Any]) -> None:
    packets, up = mocap_through_camera(CLIPS["dm_002_01"].joints.astype(float), 25.0, 10.0, 1.0)
    given = with_overrides(config, {"camera.pitch": 12.0, "camera.roll": -4.0})
    for p in run_markers(packets, given):
        np.testing.assert_allclose(output_up(p), pitch_roll_up(12.0, -4.0), atol=1e-12)
    pitch_only = run_markers(packets, with_overrides(config, {"camera.pitch": 12.0}))[-1]
    pitch, roll = up_pitch_roll(output_up(pitch_only))
    assert pitch == pytest.approx(12.0)
    assert roll == pytest.approx(up_pitch_roll(up)[1], abs=2.0)  # still estimated


def run_demo(video: Path, config: dict[str, Any]) -> list[Packet]:
    stages = [MediaPipeDetector(), PofLift(), MarkerBuilder()]
    for stage in stages:
        stage.setup(config)
    try:
        return [run_inline(stages, p) for p in VideoSource(video)]
    finally:
        stages[0].close()


def test_calibrated_demo_is_in_the_calibration_world(config: dict[str, Any]) -> None:
    """Demo_SinglePerson cam01 with its calibration: the lab is its world turned to Y up,
    the markers reproject onto the detections through it, and the still feet stand on
    Y = 0 within 2 cm (the floor fixes the depth the height alone leaves uncertain)."""
    calibration = str(demo_calibration())
    posed = with_overrides(config, {"camera.calibration": calibration, "camera.camera": "cam01"})
    out = [p for p in run_demo(demo_video("cam01"), posed) if p.meta["person"]]
    assert len(out) > 50
    calib = read_calibration(Path(calibration), "cam01")
    for p in out:
        np.testing.assert_allclose(
            p.data["camera_to_lab"][:, :3] / np.linalg.norm(p.data["camera_to_lab"][0, :3]),
            WORLD_TO_LAB @ calib.R.T,
            atol=1e-9,
        )
    rows, columns = [IDX[name] for name in LANDMARK], list(LANDMARK.values())
    errors, feet = [], []
    for p in out:
        lab = p.data["markers_21"]
        camera = (lab @ WORLD_TO_LAB) @ calib.R.T + calib.t  # lab -> world -> camera
        uv = camera[:, :2] / camera[:, 2:] @ calib.K[:2, :2].T + calib.K[:2, 2]
        errors.append(
            np.nanmedian(np.linalg.norm(uv[rows] - p.data["landmarks_2d"][columns], axis=1))
        )
        feet.append(lab[FOOT, 1].min())
    assert np.median(errors) < REPROJECTION_PX
    assert abs(np.median(feet)) < 0.02


def rotated_video(source: Path, degrees: float, path: Path) -> tuple[Path, float]:
    """``source`` turned by ``degrees`` (counter-clockwise on screen) about its centre and
    zoomed just enough to leave no empty corner (their edges would be straight lines of
    the scene); and that zoom."""
    capture = cv2.VideoCapture(str(source))
    fps = capture.get(cv2.CAP_PROP_FPS)
    ok, frame = capture.read()
    height, width = frame.shape[:2]
    a = math.radians(abs(degrees))
    zoom = math.cos(a) + max(width, height) / min(width, height) * math.sin(a)
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, zoom)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    while ok:
        writer.write(cv2.warpAffine(frame, turn, (width, height)))
        ok, frame = capture.read()
    writer.release()
    return path, zoom


def test_a_rotated_demo_video_is_levelled(tmp_path: Path, config: dict[str, Any]) -> None:
    """Demo_MultiPerson cam01 turned by 10 deg: a camera rolled by a known angle (and
    zoomed, which its field of view says). Without calibration, the output's vertical is
    the calibration's, turned by the same roll."""
    source = demo_video("cam01", TUNING_DEMO)
    video, zoom = rotated_video(source, ROLL_DEG, tmp_path / "cam01.mp4")
    calib = read_calibration(demo_calibration(TUNING_DEMO), "cam01")
    fov = 2 * math.degrees(math.atan(0.5 * max(calib.size) / (zoom * calib.K[0, 0])))
    out = [p for p in run_demo(video, with_overrides(config, {"markers.fov_deg": fov}))]
    out = [p for p in out if p.meta["person"]]
    assert len(out) > 30
    c, s = math.cos(math.radians(ROLL_DEG)), math.sin(math.radians(ROLL_DEG))
    turn = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])  # image turn, camera frame
    up = turn @ calib.R[:, 2]
    level = angle_deg(np.array([0.0, -1.0, 0.0]), up)
    error = angle_deg(output_up(out[-1]), up)
    assert level > 20.0 and error < 5.0, f"level camera {level:.1f} deg, levelled {error:.1f}"


def test_detect_undistorts_the_keypoints(tmp_path: Path, config: dict[str, Any]) -> None:
    K = np.array([[1680.0, 0.0, 540.0], [0.0, 1680.0, 960.0], [0.0, 0.0, 1.0]])
    calibration = write_pose2sim_toml(tmp_path / "Calib.toml", {"cam_01": K})
    lens = with_overrides(config, {"camera.calibration": str(calibration)})
    runs = []
    for settings in (config, lens):
        detect = MediaPipeDetector()
        detect.setup(settings)
        packets = [p for _, p in zip(range(5), VideoSource(demo_video()), strict=False)]
        runs.append([run_inline([detect], p).data["landmarks_2d"] for p in packets])
        detect.close()
    dist = read_calibration(calibration, None).dist
    for raw, undistorted in zip(*runs, strict=True):
        assert np.isfinite(raw).any()
        np.testing.assert_allclose(undistorted, undistort(raw, K, dist), atol=1e-9)
        assert np.nanmax(np.abs(undistorted - raw)) > 1.0  # the lens moved them
