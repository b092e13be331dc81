"""Levelling: the camera -> lab transform that makes Y the true vertical, floor at Y = 0.

The markers stage has each frame's skeleton in the camera frame (x right, y down, z
forward, metres); this module says where that frame sits in the lab, one of three ways:

1. A calibration with extrinsics (``--calibration``): the calibration's world, turned from
   Z up (Pose2Sim, Qualisys) to Y up by ``WORLD_TO_LAB`` (-90 deg about X: lab X = world X,
   lab Y = world Z, lab Z = -world Y); its floor Z = 0 becomes Y = 0. The distance of the
   monocular skeleton from the camera is only as good as ``--height``; the known floor
   fixes it: the camera-frame skeleton is scaled about the camera (which keeps its
   reprojection) so that its lowest foot markers rest on the floor (running median over the
   first ``level_s`` seconds, then frozen).
2. Without extrinsics the lab frame is: origin on the floor below the camera, Y up, X the
   camera's right projected on the floor, Z = X x Y (toward the camera for a level one: a
   person facing the camera faces +Z). Up in the camera frame comes from ``[camera]
   pitch`` / ``roll`` (``pitch_roll_up``) where given, else it is estimated causally from
   the first ``level_s`` seconds of video and then frozen (``UpEstimate``). The floor, and
   so the camera height, is the median level of the lowest foot markers over those seconds.

Pitch: the optical axis' angle below the horizon (+ looking down). Roll: the true up's
angle from the image's up, + when it leans to the image's right (the camera turned
counter-clockwise, seen from behind it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from core.intrinsics import Intrinsics
from core.marker_sets import MARKERS_21

IDX = {name: i for i, name in enumerate(MARKERS_21)}
FOOT = np.array([IDX[n] for n in ("RHeel", "LHeel", "RBigToe", "LBigToe")])
WORLD_TO_LAB = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
CAMERA_UP_LEVEL = np.array([0.0, -1.0, 0.0])  # up in the frame of a level camera

# Scene lines (vertical edges of walls, doors, furniture) meet at the vertical vanishing
# point; the body's axis picks it among the other vanishing points (the floor's lines).
SCENE_PRIOR_DEG = 25.0  # the scene's vertical is searched this close to the body's axis
SCENE_INLIER_DEG = 1.0  # a line is vertical when its plane holds the vertical this well
SCENE_SUPPORT = 0.3  # inlier length per line-sampled frame (image diagonals) to be trusted
SCENE_CANDIDATES = 20  # hypotheses from pairs of a frame's longest lines
SCENE_POOL = 1000  # lines kept at most (the newest)
# The body's axis (mid-ankle -> mid-shoulder) leans a few degrees on average; the floor
# through the still feet pins the directions it spans (walking: along the path).
BODY_AXIS_SD = math.radians(5.0)
FLOOR_SD = 0.03  # m, scatter of still-foot markers about the floor plane
STILL_SPEED = 0.5  # torso lengths per second in the image: a foot this slow is on the floor


def pitch_roll_up(pitch_deg: float, roll_deg: float) -> np.ndarray:
    """Up in the camera frame of a camera with this pitch and roll (module docstring)."""
    p, r = math.radians(pitch_deg), math.radians(roll_deg)
    return np.array([math.cos(p) * math.sin(r), -math.cos(p) * math.cos(r), -math.sin(p)])


def up_pitch_roll(up: np.ndarray) -> tuple[float, float]:
    """The inverse of ``pitch_roll_up``: (pitch, roll) in degrees."""
    return (
        math.degrees(math.asin(float(np.clip(-up[2], -1.0, 1.0)))),
        math.degrees(math.atan2(float(up[0]), float(-up[1]))),
    )


def append_row(buffer: np.ndarray, n: int, row: np.ndarray) -> np.ndarray:
    """``buffer`` (its first ``n`` rows used) with ``row`` written after them, doubled first
    if full. The levelling's histories grow per frame and are read whole per frame: kept as
    lists, each read would first stack hundreds of small arrays."""
    if n == len(buffer):
        buffer = np.concatenate([buffer, np.empty_like(buffer)])
    buffer[n] = row
    return buffer


def lab_rotation(up: np.ndarray) -> np.ndarray:
    """Camera -> lab rotation (rows: lab X, Y, Z in camera coordinates) for this up vector."""
    y = up / np.linalg.norm(up)
    x = np.array([1.0, 0.0, 0.0]) - y[0] * y  # the camera's right on the floor
    x /= np.linalg.norm(x)
    # x cross y, the products and differences np.cross takes, without its ~8 us of set-up
    z = [x[1] * y[2] - x[2] * y[1], x[2] * y[0] - x[0] * y[2], x[0] * y[1] - x[1] * y[0]]
    return np.stack([x, y, np.array(z)])


def segment_normals(segments: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) pixel segments -> unit normals of their planes through the camera centre and
    their lengths in image diagonals (K's principal point x 2 stands in for the size)."""
    rays = np.ones((len(segments), 2, 3))  # through each end (skew of K ignored)
    rays[..., :2] = (segments.reshape(-1, 2, 2) - K[:2, 2]) / K[[0, 1], [0, 1]]
    n = np.cross(rays[:, 0], rays[:, 1])
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    length = np.linalg.norm(segments[:, 2:] - segments[:, :2], axis=1)
    return n, length / (2.0 * np.linalg.norm(K[:2, 2]))


def scene_vertical(
    normals: np.ndarray, weights: np.ndarray, new: int, prior: np.ndarray
) -> tuple[np.ndarray, float]:
    """The vertical vanishing direction of the lines near ``prior``, and its support.

    Hypotheses are ``prior`` and the intersections of pairs of the newest frame's longest
    lines (its last ``new`` rows) that could be vertical (their plane within
    ``SCENE_PRIOR_DEG`` of ``prior``); the one whose inlier lines, over all frames, are
    longest wins, refined by least squares over its inliers. Deterministic.
    """
    latest = np.arange(len(normals) - new, len(normals))
    near = latest[np.abs(normals[latest] @ prior) < math.sin(math.radians(SCENE_PRIOR_DEG))]
    top = near[np.argsort(-weights[near], kind="stable")[:SCENE_CANDIDATES]]
    i, j = np.triu_indices(len(top), 1)
    u = np.cross(normals[top[i]], normals[top[j]])
    norm = np.linalg.norm(u, axis=1)
    keep = norm > 1e-6
    u = np.vstack([prior, u[keep] / norm[keep, None]])
    u *= np.sign(u @ prior)[:, None]
    u = u[u @ prior > math.cos(math.radians(SCENE_PRIOR_DEG))]
    inliers = np.abs(normals @ u.T) < math.sin(math.radians(SCENE_INLIER_DEG))
    support = weights @ inliers
    best = inliers[:, int(np.argmax(support))]
    if not best.any():
        return prior, 0.0
    n = normals[best]
    vertical = np.linalg.eigh((n * weights[best, None]).T @ n)[1][:, 0]
    return vertical * np.sign(vertical @ prior), float(support.max())


@dataclass
class UpEstimate:
    """Causal estimate of up in the camera frame from the video itself (module docstring).

    Cues: the scene's vertical lines (from the detect stage), else the body's mean axis
    combined with the plane of the still feet (``up``).
    """

    axis_sum: np.ndarray = field(default_factory=lambda: np.zeros(3))
    # still-foot markers (camera frame): the first ``n_floor`` rows (``append_row``)
    floor: np.ndarray = field(default_factory=lambda: np.empty((64, 3)))
    n_floor: int = 0
    normals: list[np.ndarray] = field(default_factory=list)
    weights: list[np.ndarray] = field(default_factory=list)
    line_frames: int = 0
    scene: np.ndarray | None = None  # the scene's vertical, once well supported

    def add_body(self, markers: np.ndarray, still: np.ndarray) -> None:
        """One frame's camera-frame markers (21, 3) and which foot markers are still."""
        ankles = 0.5 * (markers[IDX["RAnkle"]] + markers[IDX["LAnkle"]])
        axis = ankles - markers[IDX["Neck"]]  # y points down: the neck is above the ankles
        norm = np.linalg.norm(axis)
        if np.isfinite(norm) and norm > 1e-6:
            self.axis_sum += -axis / norm
        for k in np.flatnonzero(still & np.isfinite(markers[FOOT]).all(axis=1)):
            self.floor = append_row(self.floor, self.n_floor, markers[FOOT[k]])
            self.n_floor += 1

    def body_up(self) -> np.ndarray:
        """The body's cue: its mean axis, corrected by the floor plane where the still feet
        span it (least squares on the unit sphere, each cue weighted by its scatter)."""
        norm = np.linalg.norm(self.axis_sum)
        if norm < 1e-9:
            return CAMERA_UP_LEVEL
        axis = self.axis_sum / norm
        q = (np.eye(3) - np.outer(axis, axis)) / BODY_AXIS_SD**2
        if self.n_floor >= 3:
            floor = self.floor[: self.n_floor]
            p = floor - floor.mean(axis=0)
            q += p.T @ p / len(p) / FLOOR_SD**2
        up = np.linalg.eigh(q)[1][:, 0]
        return up * np.sign(up @ axis)

    def add_lines(self, segments: np.ndarray, K: np.ndarray) -> None:
        """One frame's scene segments: re-estimate the scene's vertical around the previous
        one, or around the body's cue until the scene has one (the body's mean axis leans
        while the subject lunges, the room does not)."""
        self.line_frames += 1
        n, w = segment_normals(segments, K)
        self.normals.append(n)
        self.weights.append(w)
        normals, weights = np.concatenate(self.normals), np.concatenate(self.weights)
        if len(normals) > SCENE_POOL:
            normals, weights = normals[-SCENE_POOL:], weights[-SCENE_POOL:]
            self.normals, self.weights = [normals], [weights]
        if len(normals) >= 2 and np.linalg.norm(self.axis_sum) > 0:
            prior = self.scene if self.scene is not None else self.body_up()
            vertical, support = scene_vertical(normals, weights, len(n), prior)
            self.scene = vertical if support >= SCENE_SUPPORT * self.line_frames else None

    def up(self) -> np.ndarray:
        return self.scene if self.scene is not None else self.body_up()


@dataclass
class LabFrame:
    """Camera -> lab: ``x_lab = rotation @ (scale * x_cam) + offset``."""

    rotation: np.ndarray
    offset: np.ndarray
    scale: float = 1.0

    def apply(self, points: np.ndarray) -> np.ndarray:
        return (self.scale * points) @ self.rotation.T + self.offset

    def matrix(self) -> np.ndarray:
        """(3, 4): [scale * rotation | offset]."""
        return np.hstack([self.scale * self.rotation, self.offset[:, None]])


class Levelling:
    """One source's camera -> lab transform, refined over its first ``level_s`` seconds (of
    the run, or since a track reset: the markers stage starts a new one)."""

    def __init__(
        self,
        calibration: Intrinsics | None,
        pitch_deg: float = math.nan,
        roll_deg: float = math.nan,
        level_s: float = 3.0,
    ) -> None:
        self.level_s = level_s
        self.estimate = UpEstimate()
        self.fixed_up: np.ndarray | None = None
        self.world: tuple[np.ndarray, np.ndarray] | None = None
        if calibration is not None and calibration.R is not None:
            self.world = (calibration.R, calibration.t)
        elif math.isfinite(pitch_deg) and math.isfinite(roll_deg):
            self.fixed_up = pitch_roll_up(pitch_deg, roll_deg)
        self.pitch_deg, self.roll_deg = pitch_deg, roll_deg
        # each frame's foot markers (camera frame): the first ``n_lowest`` rows (``append_row``)
        self.lowest = np.empty((64, len(FOOT), 3))
        self.n_lowest = 0
        self.frame = LabFrame(lab_rotation(CAMERA_UP_LEVEL), np.zeros(3))
        self._still = _StillFeet()
        self.start_s: float | None = None

    def up(self) -> np.ndarray:
        """The current up vector in the camera frame (a given pitch or roll overrides its
        part of the estimate)."""
        if self.world is not None:
            return self.world[0][:, 2]
        if self.fixed_up is not None:
            return self.fixed_up
        pitch, roll = up_pitch_roll(self.estimate.up())
        if math.isfinite(self.pitch_deg):
            pitch = self.pitch_deg
        if math.isfinite(self.roll_deg):
            roll = self.roll_deg
        return pitch_roll_up(pitch, roll)

    def update(
        self,
        markers: np.ndarray | None,
        image_xy: np.ndarray | None,
        segments: np.ndarray | None,
        K: np.ndarray,
        time_s: float,
    ) -> LabFrame:
        """Take one frame's evidence (camera-frame markers, their pixels, scene segments)
        while within ``level_s`` seconds of the first frame; return the frame to use."""
        if self.start_s is None:
            self.start_s = time_s
        if time_s - self.start_s > self.level_s:
            return self.frame
        if markers is not None:
            still = self._still.update(image_xy, time_s)
            self.estimate.add_body(markers, still)
            feet = markers[FOOT]
            if np.isfinite(feet).all():
                self.lowest = append_row(self.lowest, self.n_lowest, feet)
                self.n_lowest += 1
        if segments is not None and len(segments):
            self.estimate.add_lines(segments, K)
        self.frame = self._frame()
        return self.frame

    def _frame(self) -> LabFrame:
        up = self.up()
        below = None  # the camera's height above the lowest foot markers, median
        if self.n_lowest:
            lowest = self.lowest[: self.n_lowest]
            below = -float(np.median(np.min(lowest @ up, axis=1)))
        if self.world is not None:
            R, t = self.world
            camera_height = float(-(R.T @ t)[2])
            scale = camera_height / below if below and below > 0 else 1.0
            rotation = WORLD_TO_LAB @ R.T
            return LabFrame(rotation, -rotation @ t, scale)
        height = below if below and below > 0 else 0.0
        return LabFrame(lab_rotation(up), np.array([0.0, height, 0.0]))


@dataclass
class _StillFeet:
    """Which foot markers (``FOOT``) barely move in the image: those rest on the floor."""

    last: np.ndarray | None = None
    last_time: float = 0.0

    def update(self, image_xy: np.ndarray | None, time_s: float) -> np.ndarray:
        still = np.zeros(len(FOOT), bool)
        if image_xy is None:
            self.last = None
            return still
        feet = image_xy[FOOT]
        shoulders = image_xy[[IDX["RShoulder"], IDX["LShoulder"]]].mean(axis=0)
        torso = np.linalg.norm(shoulders - image_xy[[IDX["RHip"], IDX["LHip"]]].mean(axis=0))
        if self.last is not None and time_s > self.last_time and torso > 0:
            speed = np.linalg.norm(feet - self.last, axis=1) / (time_s - self.last_time) / torso
            still = speed < STILL_SPEED
        self.last, self.last_time = feet, time_s
        return still
