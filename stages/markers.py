"""Markers: MediaPipe landmarks -> the 21 Pose2Sim markers, metric, in a Y-up lab frame.

Steps per frame:
1. Pick the 21 markers from MediaPipe's 33 world landmarks (``Hip`` = mid-hip, ``Neck`` =
   mid-shoulder). BlazePose has no small toe: ``SmallToe`` is placed on the lateral side
   of the forefoot from heel, big toe and the pelvis' lateral axis, and flagged estimated.
2. Landmarks under ``visibility_min`` become missing (NaN). ``estimate_missing`` mirrors a
   missing marker from its visible counterpart through the mid-sagittal plane;
   ``force_complete`` additionally holds any marker still missing at its last body-relative
   position, so every frame with a person yields 21 markers.
3. Metric scale: MediaPipe's world landmarks assume an average body. The subject's
   standing height is estimated from segment lengths (heel-ankle + shank + thigh + trunk +
   1.5 x shoulder-to-nose, the anthropometric chain Pose2Sim also uses); a running median
   over the frames seen so far (so live and offline agree) gives the factor that makes it
   equal ``height``.
4. Global position: the hip-centred skeleton is placed in front of a pinhole camera
   (``fov_deg`` across the longer image side, or the ``[camera] calibration`` file's K:
   core/intrinsics.py) by the translation that best reprojects it onto the 2D landmarks
   (linear least squares, visibility-weighted).
5. Camera frame (x right, y down, z forward) -> lab frame (Y up, floor at Y = 0,
   right-handed as OpenSim expects): the calibration's world where it has extrinsics,
   else levelled from the video or ``[camera] pitch``/``roll`` (stages/levelling.py).
   ``data["camera_to_lab"]`` (3 x 4) holds the transform used: lab = M[:, :3] @ cam + M[:, 3].
6. Confidence (models/confidence.py): ``markers_21_confidence`` (21,) in [0, 1], the
   calibrated probability that each marker is within the model's tolerance of the truth;
   0 where missing, the measured probability of a mirrored marker where estimated (the
   small toes follow their heel and big toe, ``Hip`` and ``Neck`` the less sure of their
   pair), times ``[confidence] swap_factor`` for a part whose left/right labels are
   swapped back in this frame or were in the last ``swap_hold_s``. Its inputs per joint
   stay in ``confidence_features`` (17, 4) for the model's calibration.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.intrinsics import CameraMatrices
from core.landmarks import LANDMARK
from core.marker_sets import MARKERS_21
from core.packet import Packet
from core.stage import Stage
from models.arrays import vector_length
from models.confidence import MarkerConfidence, joint_features
from models.skeleton import JOINTS, MEDIAPIPE_INDEX
from stages.levelling import Levelling
from stages.scene_lines import scene_segments

# Left/right markers, proximal to distal, and the parent each limb segment hangs from.
MIRROR_ORDER = ("Shoulder", "Hip", "Elbow", "Knee", "Wrist", "Ankle", "Heel", "BigToe", "SmallToe")
SEGMENT_PARENT = {
    "Elbow": "Shoulder", "Wrist": "Elbow", "Knee": "Hip", "Ankle": "Knee",
    "Heel": "Ankle", "BigToe": "Ankle", "SmallToe": "Ankle",
}  # fmt: skip
IDX = {name: i for i, name in enumerate(MARKERS_21)}
SMALL_TOE_BACK = 0.10  # fraction of heel->big-toe length behind the big toe
SMALL_TOE_LATERAL = 0.25  # fraction of heel->big-toe length lateral of the big toe
# MediaPipe's world landmarks are drawn at about this standing height (m): the scale to use
# before the subject's own height has been measured.
MEDIAPIPE_BODY_HEIGHT = 1.70
SCALE_CALIBRATION_FRAMES = 600  # the running median freezes after this many usable frames
JOINT_ROWS = np.array([IDX[name] for name in JOINTS])  # the 17 observed joints in MARKERS_21
# MediaPipe's landmarks that are markers: their rows in MARKERS_21 and in the 33 landmarks.
LANDMARK_ROWS = np.array([IDX[name] for name in LANDMARK])
LANDMARK_INDEX = np.array(list(LANDMARK.values()))
# The markers whose visibility gates the height estimate (not the arms: they bend).
HEIGHT_ROWS = np.array(
    [IDX[n] for n in MARKERS_21 if n not in ("RWrist", "LWrist", "RElbow", "LElbow")]
)
SMALL_TOE_ROWS = np.array([IDX["RSmallToe"], IDX["LSmallToe"]])
# The markers as sure as the less sure of two others: (row, row a, row b).
LEAST_SURE_OF = tuple(
    (IDX[name], IDX[a], IDX[b])
    for name, (a, b) in (("Hip", ("RHip", "LHip")), ("Neck", ("RShoulder", "LShoulder")),
                         ("RSmallToe", ("RHeel", "RBigToe")),
                         ("LSmallToe", ("LHeel", "LBigToe")))
)  # fmt: skip
# The markers of each part the swap repair swaps on its own (stages/swap_repair.py PARTS).
_ARMS = ("Nose", "Neck", "RShoulder", "LShoulder", "RElbow", "LElbow", "RWrist", "LWrist")
SWAP_ROWS = {
    "arms": np.array([IDX[n] for n in _ARMS]),
    "legs": np.array([i for n, i in IDX.items() if n not in _ARMS]),
    "body": np.arange(len(MARKERS_21)),
}


def standing_height(m: np.ndarray) -> float:
    """Standing-height proxy (m) from one frame of 21 markers; NaN when a segment is missing."""

    def seg(a: str, b: str) -> float:
        return vector_length(m[IDX[a]] - m[IDX[b]])

    def pair(a: str, b: str) -> float:
        return 0.5 * (seg("R" + a, "R" + b) + seg("L" + a, "L" + b))

    trunk = pair("Hip", "Shoulder")
    head = 1.5 * seg("Neck", "Nose")
    return pair("Heel", "Ankle") + pair("Ankle", "Knee") + pair("Knee", "Hip") + trunk + head


def sorted_median(values: list[float]) -> float:
    """The median of an already sorted list, as ``np.median`` computes it (the mean of the
    two middle values of an even count) without turning the list into an array per frame."""
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2


# Per side: (sign of the lateral axis, heel, big toe, small toe rows).
_FOOT_ROWS = tuple((sign, IDX[s + "Heel"], IDX[s + "BigToe"], IDX[s + "SmallToe"])
                   for s, sign in (("R", 1.0), ("L", -1.0)))  # fmt: skip


def place_small_toes(m: np.ndarray) -> None:
    """Estimate RSmallToe/LSmallToe in place from heel, big toe and the pelvis' lateral axis."""
    lateral = m[IDX["RHip"]] - m[IDX["LHip"]]  # points to the subject's right
    for sign, heel_row, toe_row, small_toe_row in _FOOT_ROWS:
        heel, toe = m[heel_row], m[toe_row]
        foot = toe - heel
        length = np.float64(vector_length(foot))  # np.linalg.norm's value and type
        out = sign * (lateral - foot * (lateral @ foot) / max(length**2, 1e-12))
        norm = np.float64(vector_length(out))
        if not np.isfinite(norm) or norm < 1e-9 or length < 1e-6:
            m[small_toe_row] = np.nan
            continue
        m[small_toe_row] = toe - SMALL_TOE_BACK * foot + SMALL_TOE_LATERAL * length * out / norm


def mirror_missing(m: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Fill missing left/right markers from the visible side; returns which were filled.

    A limb is mirrored segment by segment, proximal to distal: the visible side's segment
    vector (parent -> marker), reflected through the mid-sagittal plane, is attached to this
    side's parent, so bone lengths stay the visible side's. Without a parent on this side
    the marker's position itself is reflected.
    """
    hip_axis = m[IDX["RHip"]] - m[IDX["LHip"]]
    norm = np.linalg.norm(hip_axis)
    filled = np.zeros(len(m), bool)
    if not np.isfinite(norm) or norm < 1e-6:
        return filled
    normal = hip_axis / norm
    centre = m[IDX["Hip"]]

    def reflect(v: np.ndarray) -> np.ndarray:
        return v - 2.0 * (v @ normal) * normal

    for part in MIRROR_ORDER:
        for side, other in (("R", "L"), ("L", "R")):
            i, j = IDX[side + part], IDX[other + part]
            if not missing[i] or not np.isfinite(m[j]).all():
                continue
            parent = SEGMENT_PARENT.get(part)
            if (
                parent
                and np.isfinite(m[IDX[side + parent]]).all()
                and np.isfinite(m[IDX[other + parent]]).all()
            ):
                m[i] = m[IDX[side + parent]] + reflect(m[j] - m[IDX[other + parent]])
            else:
                m[i] = centre + reflect(m[j] - centre)
            filled[i] = True
    return filled


def root_translation(
    skeleton: np.ndarray,
    image_xy: np.ndarray,
    weights: np.ndarray,
    K: np.ndarray,
) -> np.ndarray:
    """Camera-frame translation t minimising the reprojection error of ``skeleton + t``.

    Linear in t: fx (X + tx) - (u - cx)(Z + tz) = 0 and the same for fy, y, v (skew of K
    ignored).
    """
    fx, fy, centre = K[0, 0], K[1, 1], K[:2, 2]
    ok = np.isfinite(image_xy).all(axis=1) & np.isfinite(skeleton).all(axis=1) & (weights > 0)
    if ok.sum() < 3:
        return np.full(3, np.nan)
    x, y, z = skeleton[ok].T
    du, dv = (image_xy[ok] - centre).T
    w = np.sqrt(weights[ok])
    n = len(x)
    a = np.zeros((2 * n, 3))
    a[:n, 0] = fx
    a[:n, 2] = -du
    a[n:, 1] = fy
    a[n:, 2] = -dv
    b = np.concatenate([du * z - fx * x, dv * z - fy * y])
    ww = np.concatenate([w, w])
    t, *_ = np.linalg.lstsq(a * ww[:, None], b * ww, rcond=None)
    return t


@dataclass
class _SourceState:
    level: Levelling
    heights: list[float] = field(default_factory=list)  # sorted, for the running median
    last_relative: np.ndarray = field(default_factory=lambda: np.full((21, 3), np.nan))
    # the last two frames' scaled hip-relative joints and their times (acceleration)
    history: list[tuple[float, np.ndarray]] = field(default_factory=list)
    swap_kind: str = ""  # the swap repair of the last frame
    swap_rows: np.ndarray = field(default_factory=lambda: np.zeros(21, bool))  # changed parts
    swap_changed_s: float = -math.inf  # when the swap repair last changed


class MarkerBuilder(Stage):
    """Turns detections into 21 metric markers in the lab frame (see module docstring)."""

    name = "markers"

    def __init__(self) -> None:
        self._state: dict[str, _SourceState] = {}

    def setup(self, config: Mapping[str, Any]) -> None:
        markers = config.get("markers", {})
        self.height = float(config["subject"]["height"])
        self.visibility_min = float(markers.get("visibility_min", 0.3))
        self.force_complete = bool(markers.get("force_complete", False))
        self.estimate_missing = bool(markers.get("estimate_missing", False)) or self.force_complete
        self.camera = CameraMatrices(config)
        camera = config["camera"]
        pitch, roll = (math.nan if camera[k] == "" else float(camera[k]) for k in ("pitch", "roll"))
        self.level_settings = (pitch, roll, float(camera["level_s"]))
        self.swap_factor = float(config["confidence"]["swap_factor"])
        self.swap_hold_s = float(config["confidence"]["swap_hold_s"])
        self.confidence = MarkerConfidence.load()

    def process(self, packet: Packet) -> Packet:
        state = self._state.get(packet.source_id)
        if state is None:
            level = Levelling(self.camera.calibration, *self.level_settings)
            state = self._state[packet.source_id] = _SourceState(level)
        markers = np.full((21, 3), np.nan)
        estimated = np.zeros(21, bool)
        confidence = np.zeros(21)
        image = None
        if packet.meta.get("person", False):
            markers, image, estimated = self._markers(packet, state)
            confidence = self._confidence(packet, state, markers, estimated)
        else:
            state.history.clear()
        frame = state.level.update(
            markers if image is not None else None,
            image,
            self._scene_segments(packet),
            self.camera(packet.image_size),
            packet.media_time_s,
        )
        packet.data["markers_21"] = frame.apply(markers)
        packet.data["camera_to_lab"] = frame.matrix()
        packet.data["markers_21_estimated"] = estimated
        packet.data["markers_21_confidence"] = confidence
        return packet

    def _scene_segments(self, packet: Packet) -> np.ndarray | None:
        """The scene lines of a frame detect sampled for levelling; its image goes no further."""
        grey = packet.data.pop("scene_image", None)
        if grey is None:
            return None
        return scene_segments(grey, packet.data["landmarks_2d"], packet.image_size, self.camera)

    def _confidence(
        self, packet: Packet, state: _SourceState, markers: np.ndarray, estimated: np.ndarray
    ) -> np.ndarray:
        """``markers_21_confidence`` of a frame with a person (module docstring, step 6)."""
        time_s = packet.media_time_s
        relative = markers[JOINT_ROWS] - packet.data["root_camera"]
        acceleration = np.full(len(JOINTS), np.nan)
        if len(state.history) == 2:
            (t0, x0), (t1, x1) = state.history
            dt = 0.5 * (time_s - t0)
            if dt > 0:
                acceleration = np.linalg.norm(relative - 2 * x1 + x0, axis=1) / dt**2
        state.history = [*state.history[-1:], (time_s, relative)]
        features = joint_features(
            packet.data["visibility"][MEDIAPIPE_INDEX],
            packet.data.get("fit_residual"),
            packet.data.get("limb_confidence"),
            acceleration,
            self.height,
        )
        packet.data["confidence_features"] = features
        confidence = np.zeros(21)
        confidence[JOINT_ROWS] = self.confidence(features)
        mirrored = estimated.copy()
        mirrored[SMALL_TOE_ROWS] = False
        confidence[mirrored] = self.confidence.estimated
        for row, a, b in LEAST_SURE_OF:
            confidence[row] = min(confidence[a], confidence[b])
        kind = str(packet.meta.get("swap_repaired", ""))
        if kind != state.swap_kind:
            changed = np.zeros(21, bool)
            for k in {kind, state.swap_kind} - {""}:
                changed[SWAP_ROWS[k]] = True
            state.swap_kind, state.swap_rows, state.swap_changed_s = kind, changed, time_s
        doubtful = np.zeros(21, bool)
        if kind:
            doubtful[SWAP_ROWS[kind]] = True
        if time_s - state.swap_changed_s <= self.swap_hold_s:
            doubtful |= state.swap_rows
        confidence[doubtful] *= self.swap_factor
        confidence[~np.isfinite(markers).all(axis=1)] = 0.0
        return confidence

    def _markers(
        self, packet: Packet, state: _SourceState
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Camera-frame markers (21, 3), their pixels (21, 2) and which are estimated."""
        world = packet.data["world_3d"]
        vis = packet.data["visibility"]
        m = np.full((21, 3), np.nan)
        vis21 = np.zeros(21)
        m[LANDMARK_ROWS] = world[LANDMARK_INDEX]
        vis21[LANDMARK_ROWS] = vis[LANDMARK_INDEX]
        m[IDX["Hip"]] = 0.5 * (world[LANDMARK["LHip"]] + world[LANDMARK["RHip"]])
        vis21[IDX["Hip"]] = 1.0  # origin of MediaPipe's world frame: always known
        left, right = LANDMARK["LShoulder"], LANDMARK["RShoulder"]
        m[IDX["Neck"]] = 0.5 * (world[left] + world[right])
        vis21[IDX["Neck"]] = min(vis[left], vis[right])
        place_small_toes(m)
        for _, heel, toe, small_toe in _FOOT_ROWS:
            vis21[small_toe] = min(vis21[heel], vis21[toe])
        estimated = np.zeros(21, bool)
        estimated[SMALL_TOE_ROWS] = True

        scale = self._update_scale(state, m, vis21)
        missing = vis21 < self.visibility_min
        m[missing] = np.nan
        if self.estimate_missing:
            estimated |= mirror_missing(m, missing)
        if self.force_complete:
            held = ~np.isfinite(m).all(axis=1) & np.isfinite(state.last_relative).all(axis=1)
            m[held] = state.last_relative[held]
            estimated |= held
        seen = np.isfinite(m).all(axis=1)
        state.last_relative[seen] = m[seen]

        m *= scale
        image = np.full((21, 2), np.nan)
        image[LANDMARK_ROWS] = packet.data["landmarks_2d"][LANDMARK_INDEX]
        weights = np.where(vis21 >= self.visibility_min, vis21, 0.0)
        weights[[IDX["Hip"], IDX["Neck"], IDX["RSmallToe"], IDX["LSmallToe"]]] = 0.0
        reference = np.where(np.isfinite(m), m, 0.0)  # unmatched rows carry zero weight
        t = root_translation(reference, image, weights, self.camera(packet.image_size))
        packet.meta["scale"] = scale
        packet.data["root_camera"] = t
        return m + t, image, estimated

    def _update_scale(self, state: _SourceState, m: np.ndarray, vis21: np.ndarray) -> float:
        """Running-median height estimate over usable frames -> metric scale factor."""
        if len(state.heights) < SCALE_CALIBRATION_FRAMES and vis21[HEIGHT_ROWS].min() >= 0.5:
            h = standing_height(m)
            if np.isfinite(h) and h > 0:
                bisect.insort(state.heights, h)
        if not state.heights:
            return 1.0 if not np.isfinite(self.height) else self.height / MEDIAPIPE_BODY_HEIGHT
        return self.height / sorted_median(state.heights)

    def reset(self, source_id: str | None = None) -> None:
        if source_id is None:
            self._state.clear()
        else:
            self._state.pop(source_id, None)
