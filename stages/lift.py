"""Lift: MediaPipe's 2D landmarks -> 3D joints from learned limb orientations (POF).

MediaPipe's own world landmarks get depth wrong. This stage feeds the 17 detected 2D
joints (models/skeleton.py) to the temporal POF network (ONNX Runtime, one prior and 2D
window per source, stepping over frames of fast video so the window spans the trained
30 fps), flips limb depth signs its sign head is sure about, fuses the orientations per
limb with MediaPipe's own 3D where the model carries fusion weights (models/fusion.py), and
solves the least-squares problem (models/pof_solver.py, models/lifter.py) with bone
lengths from the subject's height, in the camera frame of a pinhole camera of ``fov_deg``
or of the calibration file (core/intrinsics.py).
The result replaces the 17 matching rows of ``world_3d`` (hip-centred, MediaPipe's axes:
x right, y down, z away from the camera) so the marker stage downstream is unchanged. For
the kinematic fit (stages/fit.py) it also leaves ``joints_camera`` (17, 3: the same joints,
not hip-centred), ``limb_directions`` (18, 3: the unit orientations the solve used) and
``limb_confidence`` (18,: the depth-sign head's certainty, 0 = a coin toss, 1 = sure).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from core.intrinsics import CameraMatrices
from core.packet import Packet
from core.stage import Stage
from models.lifter import lift_frame
from models.pof_onnx import TRAINED_FPS, PofModel, PofOnnx, frame_step_for
from models.pof_solver import bone_lengths, solve
from models.skeleton import MEDIAPIPE_INDEX, N_LIMBS, mid_hip

PROJECT = Path(__file__).resolve().parent.parent  # relative model paths start here


def pof_model_path(config: Mapping[str, Any]) -> Path:
    """The lifter's ONNX file of ``[lift] model`` (relative to the project folder)."""
    return PROJECT / Path(config["lift"]["model"])


class PofLift(Stage):
    """Replaces MediaPipe's world landmarks by POF + least-squares 3D joints."""

    name = "lift"

    def __init__(self) -> None:
        self._lifters: dict[str, PofOnnx] = {}

    def setup(self, config: Mapping[str, Any]) -> None:
        self.enabled = config["lift"]["method"] == "pof"  # else MediaPipe's 3D passes through
        self.model_path = pof_model_path(config)
        self.bones = bone_lengths(float(config["subject"]["height"]))
        self.camera = CameraMatrices(config)
        self.vis_min = float(config["markers"]["visibility_min"])
        if not self.enabled:
            return
        if not self.model_path.is_file():
            raise FileNotFoundError(
                f"POF model not found: {self.model_path} (check --pof-model or [lift] model)"
            )
        self.model = PofModel(self.model_path)  # now, so the first frame is not held up
        warm = np.zeros((len(MEDIAPIPE_INDEX), 2))  # load numba's compiled solver now
        solve(warm, np.zeros(len(warm), bool), np.eye(3), np.zeros((N_LIMBS, 3)), np.zeros(N_LIMBS))

    def _lifter(self, packet: Packet) -> PofOnnx:
        if packet.source_id not in self._lifters:
            step = frame_step_for(float(packet.meta.get("fps", TRAINED_FPS)))
            self._lifters[packet.source_id] = PofOnnx(self.model, self.vis_min, step)
        return self._lifters[packet.source_id]

    def process(self, packet: Packet) -> Packet:
        if not self.enabled:
            return packet
        if not packet.meta.get("person", False):
            self.reset(packet.source_id)  # a lost track restarts the temporal prior
            return packet
        uv = packet.data["landmarks_2d"][MEDIAPIPE_INDEX]
        vis = packet.data["visibility"][MEDIAPIPE_INDEX]
        K = self.camera(packet.image_size)
        mediapipe = packet.data["world_3d"][MEDIAPIPE_INDEX]
        lifted = lift_frame(self._lifter(packet), uv, vis, K, mediapipe, self.bones, self.vis_min)
        joints = lifted.joints
        world = packet.data["world_3d"].copy()
        world[MEDIAPIPE_INDEX] = joints - mid_hip(joints)
        packet.data["world_3d"] = world
        packet.data["joints_camera"] = joints
        packet.data["limb_directions"] = lifted.directions
        packet.data["limb_confidence"] = lifted.confidence
        return packet

    def reset(self, source_id: str | None = None) -> None:
        for sid in list(self._lifters) if source_id is None else [source_id]:
            if sid in self._lifters:
                self._lifters[sid].reset()

    def close(self) -> None:
        self._lifters.clear()
