"""What the viewer draws between points: bones of the marker set and of MediaPipe's 33
landmarks, and which side of the body each point is on (left and right get their own
colour so a mirrored or swapped limb is obvious at a glance).

Bones are listed by marker name, so the same table draws the 21 video markers of an
initial TRC, the 64 of a final TRC or the live stream, whatever order they come in.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

Colour = tuple[float, float, float, float]
LEFT: Colour = (0.2, 0.55, 1.0, 1.0)  # blue
RIGHT: Colour = (1.0, 0.3, 0.15, 1.0)  # orange-red
CENTRE: Colour = (0.85, 0.85, 0.85, 1.0)

MARKER_BONES: tuple[tuple[str, str], ...] = (
    # video markers (Pose2Sim names)
    ("Hip", "RHip"), ("Hip", "LHip"), ("Hip", "Neck"), ("Neck", "Nose"),
    ("Neck", "RShoulder"), ("RShoulder", "RElbow"), ("RElbow", "RWrist"),
    ("Neck", "LShoulder"), ("LShoulder", "LElbow"), ("LElbow", "LWrist"),
    ("RHip", "RKnee"), ("RKnee", "RAnkle"), ("RAnkle", "RHeel"), ("RAnkle", "RBigToe"),
    ("RHeel", "RBigToe"), ("RBigToe", "RSmallToe"),
    ("LHip", "LKnee"), ("LKnee", "LAnkle"), ("LAnkle", "LHeel"), ("LAnkle", "LBigToe"),
    ("LHeel", "LBigToe"), ("LBigToe", "LSmallToe"),
    # anatomical markers of the LSTM augmenter
    ("r.ASIS_study", "L.ASIS_study"), ("r.PSIS_study", "L.PSIS_study"),
    ("r.ASIS_study", "r.PSIS_study"), ("L.ASIS_study", "L.PSIS_study"),
    ("r_knee_study", "r_mknee_study"), ("L_knee_study", "L_mknee_study"),
    ("r_ankle_study", "r_mankle_study"), ("L_ankle_study", "L_mankle_study"),
    ("r_calc_study", "r_toe_study"), ("r_toe_study", "r_5meta_study"),
    ("r_5meta_study", "r_calc_study"),
    ("L_calc_study", "L_toe_study"), ("L_toe_study", "L_5meta_study"),
    ("L_5meta_study", "L_calc_study"),
    ("r_shoulder_study", "C7_study"), ("L_shoulder_study", "C7_study"),
    ("r_lelbow_study", "r_melbow_study"), ("L_lelbow_study", "L_melbow_study"),
    ("r_lwrist_study", "r_mwrist_study"), ("L_lwrist_study", "L_mwrist_study"),
)  # fmt: skip

# MediaPipe Pose landmark pairs (the person's left has odd indices from 11 on).
LANDMARK_BONES: tuple[tuple[int, int], ...] = (
    (0, 2), (0, 5), (2, 7), (5, 8), (9, 10),
    (11, 12), (11, 13), (13, 15), (15, 19), (12, 14), (14, 16), (16, 20),
    (11, 23), (12, 24), (23, 24), (23, 25), (25, 27), (27, 29), (29, 31), (27, 31),
    (24, 26), (26, 28), (28, 30), (30, 32), (28, 32),
)  # fmt: skip
_LANDMARK_LEFT_FACE = (1, 2, 3, 7, 9)
_LANDMARK_RIGHT_FACE = (4, 5, 6, 8, 10)


def marker_side(name: str) -> int:
    """-1 for the person's left (``L...``), +1 for the right (``R...``/``r...``), 0 midline."""
    return {"L": -1, "R": 1}.get(name[:1].upper(), 0)


def landmark_side(index: int) -> int:
    """-1 left, +1 right, 0 midline for a MediaPipe landmark index."""
    if index in _LANDMARK_LEFT_FACE:
        return -1
    if index in _LANDMARK_RIGHT_FACE:
        return 1
    if index >= 11:
        return -1 if index % 2 else 1
    return 0


def side_colours(sides: Sequence[int]) -> np.ndarray:
    """(N, 4) RGBA for sides -1/0/+1."""
    palette = {-1: LEFT, 0: CENTRE, 1: RIGHT}
    return np.array([palette[int(np.sign(s))] for s in sides], dtype=np.float32)


def marker_bones(names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (K, 2) of the bones whose two ends are in ``names``, and their sides."""
    where = {name: i for i, name in enumerate(names)}
    pairs = [(where[a], where[b]) for a, b in MARKER_BONES if a in where and b in where]
    sides = [marker_side(names[a]) + marker_side(names[b]) for a, b in pairs]
    return np.array(pairs, dtype=np.int64).reshape(-1, 2), np.sign(sides).astype(int)


def landmark_bones() -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (K, 2) of MediaPipe's skeleton and their sides."""
    pairs = np.array(LANDMARK_BONES, dtype=np.int64)
    sides = [landmark_side(a) + landmark_side(b) for a, b in LANDMARK_BONES]
    return pairs, np.sign(sides).astype(int)
