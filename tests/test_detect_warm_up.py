"""The detect stage's warm-up (one inference on a blank image before the first frame) must
not change a single landmark: real MediaPipe on the real demo video, warmed and fresh; nor
may the tracker a finished source leaves behind, restarted and warmed for the next one."""

from __future__ import annotations

import cv2
import numpy as np

from core.demo_data import demo_video
from stages.capture import VideoSource
from stages.detect import MediaPipeDetector, pose_settings, pose_solution, warmed
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


def detections(stage: MediaPipeDetector, source: VideoSource) -> np.ndarray:
    """(frames, 33, 7) image x, y, depth, visibility and world x, y, z of the first frames."""
    rows = []
    for packet, _ in zip(source, range(FRAMES), strict=False):
        data = stage(packet).data  # type: ignore[union-attr]
        rows.append(
            np.column_stack(
                [data["landmarks_2d"], data["landmarks_z"], data["visibility"], data["world_3d"]]
            )
        )
    return np.array(rows)


def test_the_next_source_gets_a_warm_tracker_that_detects_as_a_fresh_one() -> None:
    stage = MediaPipeDetector()
    stage.setup(load_config())
    source = VideoSource(demo_video())
    try:
        first = detections(stage, source)
        stage.reset(source.source_id)  # the video ended
        assert stage._spare is not None  # restarted and warmed now, not on the next frame
        source.close()
        source = VideoSource(demo_video())
        again = detections(stage, source)
    finally:
        source.close()
        stage.close()
    assert np.isfinite(first).all()
    np.testing.assert_array_equal(again, first)
