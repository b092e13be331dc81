"""The detect stage's warm-up (one inference on a blank image before the first frame) must
not change a single landmark: real MediaPipe on the real demo video, warmed and fresh."""

from __future__ import annotations

import cv2
import numpy as np

from core.demo_data import demo_video
from stages.detect import pose_settings, pose_solution, warmed
from stream.config import load_config

FRAMES = 12


def landmarks(tracker: object, frames: list[np.ndarray]) -> np.ndarray:
    """(frames, 33, 4) x, y, z, visibility of every frame, as MediaPipe gives them."""
    rows = []
    for frame in frames:
        result = tracker.process(frame)  # type: ignore[attr-defined]
        assert result.pose_landmarks is not None  # the demo's person is always found
        rows.append([(p.x, p.y, p.z, p.visibility) for p in result.pose_landmarks.landmark])
    return np.array(rows)


def test_a_warmed_tracker_gives_the_same_landmarks_as_a_fresh_one() -> None:
    capture = cv2.VideoCapture(str(demo_video()))
    frames = []
    while len(frames) < FRAMES:
        ok, frame = capture.read()
        assert ok
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    settings = pose_settings(load_config()["detect"])
    with pose_solution().Pose(**settings) as fresh:
        expected = landmarks(fresh, frames)
    with warmed(pose_solution().Pose(**settings)) as warm:
        got = landmarks(warm, frames)
    np.testing.assert_array_equal(got, expected)
