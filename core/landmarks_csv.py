"""Raw MediaPipe landmarks per frame: image pixels, world metres and visibility.

Kept so users can re-run later stages or inspect detections without the video. Left and
right are as the swap repair (stages/swap_repair.py) left them: ``swap_repaired`` names the
labels it swapped back in the frame ("" none, "body", "arms" or "legs").
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from core.atomic import AtomicFile
from core.number_text import number_row

LANDMARK_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_pinky",
    "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "left_heel",
    "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
FIELDS = ("x_px", "y_px", "z_px", "visibility", "world_x_m", "world_y_m", "world_z_m")


class LandmarksCsvWriter:
    """One row per frame: frame, time, person flag, swap repaired, then 7 values per landmark."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._file = AtomicFile(self.path)
        self._csv = csv.writer(self._file)
        header = ["frame", "time_s", "person", "swap_repaired"]
        header += [f"{lm}_{f}" for lm in LANDMARK_NAMES for f in FIELDS]
        self._csv.writerow(header)

    def add(
        self,
        frame: int,
        time_s: float,
        person: bool,
        swap_repaired: str,
        image_xy: np.ndarray,
        image_z: np.ndarray,
        visibility: np.ndarray,
        world: np.ndarray,
    ) -> None:
        per_landmark = np.column_stack([image_xy, image_z, visibility, world])
        values = number_row(per_landmark, ".6g", ",", "").split(",")
        self._csv.writerow([frame, f"{time_s:.6f}", int(person), swap_repaired, *values])

    def finish(self) -> Path:
        return self._file.commit()

    def discard(self) -> None:
        self._file.discard()
