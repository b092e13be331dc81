"""Fit: the lifted joints -> a skeleton with constant bones and anatomical joint ranges.

The lift solves each frame on its own: nothing keeps a forearm's length from one frame to
the next or an elbow from bending backwards. This stage fits the kinematic skeleton of
models/kinematic_model.py (hinge knees and elbows, ball hips and shoulders, the ranges of
core/joint_limits.py as hard bounds) to the frame's 2D keypoints, the lifter's limb
directions (``limb_directions``, weighted by ``limb_confidence``) and the previous frame,
with the learned joint-angle prior (models/pose_prior.py) as one more term
(models/kinematic_fit.py). Bone lengths: the subject's height times the lifter's ratios,
then the running median of the lifted lengths (frozen after a few hundred frames).

The result replaces the 17 rows of ``world_3d`` the lift wrote (hip-centred, camera axes),
so the marker stage downstream is unchanged; ``joints_camera`` gets the fitted joints too.
``fit_residual`` (17,) m says how far each fitted joint moved from the lifted one (both
hip-centred): where the fit had to move a joint far, the lift and the fit disagree, an
input of the marker confidence (models/confidence.py).
State per source, forgotten on ``track_reset`` and on frames without a person. On with
``[fit] enabled`` (``--joint-refinement``, the default) and the POF lift: MediaPipe's own
3D (``--lift mediapipe``) has no limb directions to fit, so it passes through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from core.intrinsics import CameraMatrices
from core.packet import Packet
from core.stage import Stage
from models.kinematic_fit import FitWeights, PersonFit
from models.kinematic_model import N_PARAMS, forward
from models.pof_solver import bone_lengths
from models.pose_prior import PosePrior
from models.skeleton import MEDIAPIPE_INDEX, N_JOINTS, N_LIMBS, limb_vectors, mid_hip, unit


class KinematicFit(Stage):
    """Replaces the lifted joints by the kinematic skeleton fitted to them."""

    name = "fit"

    def __init__(self) -> None:
        self._people: dict[str, PersonFit] = {}

    def setup(self, config: Mapping[str, Any]) -> None:
        fit = config["fit"]
        self.enabled = bool(fit["enabled"]) and config["lift"]["method"] == "pof"
        self.bones = bone_lengths(float(config["subject"]["height"]))
        self.camera = CameraMatrices(config)
        self.vis_min = float(config["markers"]["visibility_min"])
        self.weights = FitWeights.from_config(fit)
        if not self.enabled:
            return
        self.prior = PosePrior.load()
        self._warm_up()

    def _warm_up(self) -> None:
        """Load numba's compiled fit now, never during a frame."""
        person = PersonFit(self.bones, self.prior, self.weights)
        neutral = np.zeros(N_PARAMS)
        neutral[2] = 3.0  # standing 3 m in front of the camera
        joints = forward(neutral, person.geometry, np.eye(3))[0]
        uv = joints[:, :2] / joints[:, 2:]
        dirs = unit(limb_vectors(joints))
        person(uv, np.ones(N_JOINTS), np.eye(3), joints, dirs, np.ones(N_LIMBS), self.vis_min)

    def process(self, packet: Packet) -> Packet:
        if not self.enabled:
            return packet
        if not packet.meta.get("person", False) or "limb_directions" not in packet.data:
            self.reset(packet.source_id)
            return packet
        if packet.source_id not in self._people:
            self._people[packet.source_id] = PersonFit(self.bones, self.prior, self.weights)
        joints = self._people[packet.source_id](
            packet.data["landmarks_2d"][MEDIAPIPE_INDEX],
            packet.data["visibility"][MEDIAPIPE_INDEX],
            self.camera(packet.image_size),
            # writable copies: numba compiles read-only arrays (frozen packets) as another
            # type, which would cost seconds on the first frame of a fresh install
            np.array(packet.data["joints_camera"]),
            np.array(packet.data["limb_directions"]),
            np.array(packet.data["limb_confidence"]),
            self.vis_min,
        )
        lifted = packet.data["joints_camera"]
        world = packet.data["world_3d"].copy()
        world[MEDIAPIPE_INDEX] = joints - mid_hip(joints)
        packet.data["world_3d"] = world
        packet.data["joints_camera"] = joints
        packet.data["fit_residual"] = np.linalg.norm(
            world[MEDIAPIPE_INDEX] - (lifted - mid_hip(lifted)), axis=1
        )
        return packet

    def reset(self, source_id: str | None = None) -> None:
        for sid in list(self._people) if source_id is None else [source_id]:
            self._people.pop(sid, None)

    def close(self) -> None:
        self._people.clear()
