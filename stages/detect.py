"""Detect: MediaPipe Pose (0.10.21 ``solutions.pose``, full model, with tracking).

Per frame it adds the 33 landmarks in image pixels, MediaPipe's metric hip-centred world
landmarks and the per-landmark visibility. Frames with nobody in view get NaN arrays and
``meta["person"] = False`` so later stages can keep running. The image is dropped from the
packet once used: nothing downstream needs pixels except the viewer, which asks for them.
With ``[detect] preview`` on (the live viewer), a small JPEG of the frame travels instead as
``data["preview_jpeg"]`` (uint8 bytes, ~20 kB at 480 px; ~0.5 ms per 1080p frame, a few
percent of detection), with its size in ``meta["preview_size"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from stream.packet import Packet
from stream.stage import Stage

N_LANDMARKS = 33


class MediaPipeDetector(Stage):
    """Runs one MediaPipe Pose tracker per source (its tracking state is per video)."""

    name = "detect"

    def __init__(self, keep_image: bool = False) -> None:
        self.keep_image = keep_image
        self.preview_size = 0  # longer side of the preview in px; 0: no preview
        self.preview_quality = 70
        self._settings: dict[str, Any] = {}
        self._trackers: dict[str, Any] = {}
        self._spare: Any = None

    def setup(self, config: Mapping[str, Any]) -> None:
        detect = config.get("detect", {})
        self._settings = {
            "static_image_mode": False,
            "model_complexity": int(detect.get("model_complexity", 1)),
            "smooth_landmarks": True,
            "enable_segmentation": False,
            "min_detection_confidence": float(detect.get("min_detection_confidence", 0.5)),
            "min_tracking_confidence": float(detect.get("min_tracking_confidence", 0.5)),
        }
        if detect.get("preview", False):
            self.preview_size = int(detect.get("preview_size", 480))
            self.preview_quality = int(detect.get("preview_quality", 70))
        self._spare = self._new_tracker()  # load the model now, not on the first frame

    def _new_tracker(self) -> Any:
        from mediapipe.python.solutions import pose as mp_pose

        return mp_pose.Pose(**self._settings)

    def _tracker(self, source_id: str) -> Any:
        tracker = self._trackers.get(source_id)
        if tracker is None:
            tracker, self._spare = self._spare or self._new_tracker(), None
            self._trackers[source_id] = tracker
        return tracker

    def process(self, packet: Packet) -> Packet:
        if packet.image is None:
            raise ValueError("detect needs the image: capture must run before detect")
        rgb = cv2.cvtColor(packet.image, cv2.COLOR_BGR2RGB)
        result = self._tracker(packet.source_id).process(rgb)
        width, height = packet.image_size
        image_xy = np.full((N_LANDMARKS, 2), np.nan)
        image_z = np.full(N_LANDMARKS, np.nan)
        visibility = np.zeros(N_LANDMARKS)
        world = np.full((N_LANDMARKS, 3), np.nan)
        person = result.pose_landmarks is not None
        if person:
            lms = result.pose_landmarks.landmark
            image_xy = np.array([[lm.x * width, lm.y * height] for lm in lms])
            image_z = np.array([lm.z * width for lm in lms])
            visibility = np.array([lm.visibility for lm in lms])
            world = np.array([[lm.x, lm.y, lm.z] for lm in result.pose_world_landmarks.landmark])
        packet.data["landmarks_2d"] = image_xy
        packet.data["landmarks_z"] = image_z
        packet.data["visibility"] = visibility
        packet.data["world_3d"] = world
        packet.meta["person"] = person
        if self.preview_size > 0:
            jpeg, size = encode_preview(packet.image, self.preview_size, self.preview_quality)
            packet.data["preview_jpeg"] = jpeg
            packet.meta["preview_size"] = size
        if not self.keep_image:
            packet.image = None
        return packet

    def reset(self, source_id: str | None = None) -> None:
        ids = list(self._trackers) if source_id is None else [source_id]
        for sid in ids:
            tracker = self._trackers.pop(sid, None)
            if tracker is not None:
                tracker.close()

    def close(self) -> None:
        self.reset()
        if self._spare is not None:
            self._spare.close()
            self._spare = None


def encode_preview(
    image: np.ndarray, longer_side: int, quality: int
) -> tuple[np.ndarray, list[int]]:
    """The image downscaled to ``longer_side`` px as JPEG bytes (uint8), and its [w, h].

    Bilinear: INTER_AREA looks smoother but costs up to 10x more at these ratios.
    """
    height, width = image.shape[:2]
    scale = min(1.0, longer_side / max(width, height))
    size = [max(1, round(width * scale)), max(1, round(height * scale))]
    small = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding failed for a {width}x{height} image")
    return jpeg.reshape(-1), size
