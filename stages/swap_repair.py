"""Swap repair: undo MediaPipe's left/right label swaps, causally, right after detection.

MediaPipe Pose sometimes labels the whole body the wrong way round (it takes a back view
for a front view), or only the upper body (arms, shoulders and face) or only the legs (hips
down), for tens of frames; the landmarks stay on the body, only their left/right names
change (Pose2Sim's Demo_SinglePerson cam02 frames 41-59, then flickering to frame 74).
A swap is a jump: the body cannot turn round between two frames. So the stage follows the
*repaired* landmarks and, each frame, weighs for each part (upper body, legs) the evidence
that its left and right labels were just exchanged:

- 2D track continuity: the new left-minus-right vector ``d`` of each landmark pair
  against the last repaired frame's, ``d_last``: ``-d . d_last`` is the cost of keeping
  the labels minus the cost of swapping them, summed over both tracks of the pair (each
  landmark predicted where it was: a constant-velocity prediction missed the end of the
  demo's swap, after a frame where MediaPipe put both wrists in one place);
- 3D continuity of MediaPipe's world landmarks (the facing direction: a pair's vector
  reverses when the labels swap, it cannot in 1/30 s when the body turns);
- the trunk, in 2D and in 3D: the shoulder and hip lines point the same way in a real
  body, and a swap of one part only reverses one of them. Measured against the longer
  line, not the torso: a body seen side-on foreshortens both, yet their directions still
  tell. Where MediaPipe's own trunk is straight in both, a one-part repair is not even an
  option, only none or the whole body, whichever the evidence favours: Demo_MultiPerson
  cam03 frame 54, after 4 frames without the man, his arms' tracks said swapped, his
  foreshortened hips not, and an arms-only repair twisted the trunk for 19 frames, which
  the lift made 0.2-0.27 m hip jumps of.

Evidence is measured in squared torso lengths (the trunk's in those of its longer line). A
part's labels are exchanged only when its evidence (with the trunk's) exceeds
``threshold``, both parts' when their summed evidence does, whichever gains most; weaker
evidence keeps the current labelling, so noise cannot make the output flicker, while a
detector that really flickers between labellings is followed frame by frame. The state
(which parts are being swapped back) lives per source and starts from MediaPipe's labels on
a new person (``track_reset``) or after ``max_gap_s`` without one.

``meta["swap_repaired"]`` says what was undone in the frame: "" nothing, "body", "arms" (the
upper body: arms, shoulders and face, which MediaPipe swaps together, e.g. cam02 frame 81)
or "legs" (hips, legs and feet). Cost: about 0.1 ms per frame (``bench/bench_stages.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.landmarks import LANDMARK, MEDIAPIPE_LANDMARKS, MIRROR, N_LANDMARKS
from core.packet import Packet
from core.stage import Stage
from models.arrays import vector_length

_MIRROR = np.array(MIRROR)
_ARMS_END = MEDIAPIPE_LANDMARKS.index("left_hip")  # face and arms come before the hips
PARTS = {  # landmarks of each part that MediaPipe swaps on its own
    "arms": np.arange(1, _ARMS_END),  # eyes, ears, mouth, shoulders, arms, hands
    "legs": np.arange(_ARMS_END, N_LANDMARKS),  # hips, legs, feet
}
KINDS = ("", "body", "arms", "legs")  # what is swapped: nothing, both parts, one part


_BITS = {"": (0, 0), "body": (1, 1), "arms": (1, 0), "legs": (0, 1)}  # parts swapped
_KIND = {bits: kind for kind, bits in _BITS.items()}


def _permutation(kind: str) -> np.ndarray:
    order = np.arange(N_LANDMARKS)
    for part, swapped in zip(PARTS, _BITS[kind], strict=True):
        if swapped:
            order[PARTS[part]] = _MIRROR[PARTS[part]]
    return order


# The landmark order of each swap; also its undoing (a swap is its own inverse).
PERMUTATION = {kind: _permutation(kind) for kind in KINDS}


def _pairs(*names: str) -> tuple[np.ndarray, np.ndarray]:
    left = [MEDIAPIPE_LANDMARKS.index(f"left_{n}") for n in names]
    return np.array(left), _MIRROR[left]


# The pairs whose left-minus-right vectors carry the evidence (hands and heels follow
# their wrists and ankles, the face is too narrow to tell).
EVIDENCE = {
    "arms": _pairs("shoulder", "elbow", "wrist"),
    "legs": _pairs("hip", "knee", "ankle", "foot_index"),
}
# (left, right) landmark of the shoulder and the hip line, as plain indices: rows, not
# the (1, D) copies that index arrays give, for the four trunk checks per frame
_SHOULDERS = (LANDMARK["LShoulder"], LANDMARK["RShoulder"])
_HIPS = (LANDMARK["LHip"], LANDMARK["RHip"])
_TRUNK = np.array([LANDMARK[name] for name in ("LShoulder", "RShoulder", "LHip", "RHip")])


def compose(a: str, b: str) -> str:
    """The swap ``a`` followed by ``b`` (parts swapped twice are back in place)."""
    return _KIND[tuple(x ^ y for x, y in zip(_BITS[a], _BITS[b], strict=True))]


def torso_scale(points: np.ndarray) -> float:
    """The largest of torso length, shoulder width and hip width of (33, D) landmarks: one
    of them stays long however the body turns or bends."""
    left_shoulder, right_shoulder, left_hip, right_hip = points[_TRUNK]
    torso = (left_shoulder + right_shoulder - left_hip - right_hip) / 2
    widths = (left_shoulder - right_shoulder, left_hip - right_hip)
    return max(vector_length(v) for v in (torso, *widths))


@dataclass(frozen=True)
class SwapSettings:
    """Thresholds of the repair (``[swap_repair]`` in config.toml)."""

    enabled: bool
    threshold: float
    weight_3d: float
    trunk_weight: float
    max_gap_s: float

    @classmethod
    def from_config(cls, section: Mapping[str, Any]) -> SwapSettings:
        return cls(
            enabled=bool(section["enabled"]),
            threshold=float(section["threshold"]),
            weight_3d=float(section["weight_3d"]),
            trunk_weight=float(section["trunk_weight"]),
            max_gap_s=float(section["max_gap_s"]),
        )


@dataclass
class _Track:
    """The repaired landmarks of one source's last frame, and which swap is being undone."""

    kind: str
    time_s: float
    xy: np.ndarray  # (33, 2) px
    world: np.ndarray  # (33, 3) m


def _evidence(d: np.ndarray, d_ref: np.ndarray, weight: np.ndarray, scale: float) -> float:
    """How much better swapping than keeping the labels explains the pairs' new left-minus-
    right vectors ``d`` against their reference ``d_ref``, in squared ``scale``."""
    gain = float(-np.einsum("pk,pk,p->", d, d_ref, weight) / (scale * scale))
    return gain if np.isfinite(gain) else 0.0  # no torso (scale 0) or no 3D: no evidence


def _pair_vectors(points: np.ndarray, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    return points[pairs[0]] - points[pairs[1]]


def _twist(points: np.ndarray) -> float:
    """How opposite the shoulder and hip lines of (33, D) landmarks point, from -1 (the same
    way) to 1: their dot product over the longer one's squared length. Not their cosine: a
    line foreshortened to a few pixels next to a long one points anywhere."""
    shoulders = points[_SHOULDERS[0]] - points[_SHOULDERS[1]]
    hips = points[_HIPS[0]] - points[_HIPS[1]]
    longer = float(max(shoulders @ shoulders, hips @ hips))
    twist = -float(shoulders @ hips) / longer if longer > 0 else 0.0
    return twist if np.isfinite(twist) else 0.0  # no 3D: no evidence


class SwapRepair(Stage):
    """Permutes left/right landmarks back where MediaPipe swapped them (module docstring)."""

    name = "swap_repair"

    def __init__(self) -> None:
        self.settings: SwapSettings | None = None
        self._tracks: dict[str, _Track] = {}

    def setup(self, config: Mapping[str, Any]) -> None:
        self.settings = SwapSettings.from_config(config["swap_repair"])

    def process(self, packet: Packet) -> Packet:
        settings = self.settings
        assert settings is not None, "setup() first"
        packet.meta["swap_repaired"] = ""
        if not settings.enabled:
            return packet
        time_s = packet.media_time_s
        track = self._tracks.get(packet.source_id)
        if track is not None and time_s - track.time_s > settings.max_gap_s:
            track = None
        if not packet.meta.get("person", False):
            if track is None:
                self._tracks.pop(packet.source_id, None)
            return packet
        xy, visibility = packet.data["landmarks_2d"], packet.data["visibility"]
        world = packet.data["world_3d"]
        kind = "" if track is None else compose(track.kind, self._change(track, packet))
        order = PERMUTATION[kind]
        self._tracks[packet.source_id] = _Track(kind, time_s, xy[order], world[order])
        if kind:
            packet.data["landmarks_2d"] = xy[order]
            packet.data["visibility"] = visibility[order]
            packet.data["world_3d"] = world[order]
            packet.meta["swap_repaired"] = kind
        return packet

    def _change(self, track: _Track, packet: Packet) -> str:
        """The swap MediaPipe made since the last frame ("" none), from the evidence."""
        settings = self.settings
        assert settings is not None
        order = PERMUTATION[track.kind]
        xy = packet.data["landmarks_2d"][order]
        world = packet.data["world_3d"][order]
        visibility = packet.data["visibility"][order]
        scale_2d, scale_3d = torso_scale(track.xy), torso_scale(track.world)
        gain = {}
        for part, pairs in EVIDENCE.items():
            weight = np.minimum(visibility[pairs[0]], visibility[pairs[1]])
            gain[part] = _evidence(
                _pair_vectors(xy, pairs), _pair_vectors(track.xy, pairs), weight, scale_2d
            ) + settings.weight_3d * _evidence(
                _pair_vectors(world, pairs), _pair_vectors(track.world, pairs), weight, scale_3d
            )
        # The trunk: keeping the labels twists it by ``twist`` (> 0 when the shoulder and hip
        # lines point opposite ways); swapping one part reverses the twist.
        twist_xy, twist_world = _twist(xy), _twist(world)
        trunk = 2 * settings.trunk_weight * (twist_xy + twist_world)
        options = {
            "": 0.0,
            "arms": gain["arms"] + trunk - settings.threshold,
            "legs": gain["legs"] + trunk - settings.threshold,
            "body": gain["arms"] + gain["legs"] - settings.threshold,
        }
        if track.kind:  # else MediaPipe's own landmarks are xy and world: twists known
            twist_xy = _twist(packet.data["landmarks_2d"])
            twist_world = _twist(packet.data["world_3d"])
        if twist_xy < 0 and twist_world < 0:
            # MediaPipe's own trunk is straight in 2D and 3D: repairing one part only would
            # twist it, so the labels stay as they are or turn round whole.
            options = {c: v for c, v in options.items() if compose(track.kind, c) in ("", "body")}
        return max(options, key=options.__getitem__)

    def reset(self, source_id: str | None = None) -> None:
        if source_id is None:
            self._tracks.clear()
        else:
            self._tracks.pop(source_id, None)
