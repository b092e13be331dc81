"""The lifter's joint set and limb graph.

Joints are the 17 body points MediaPipe Pose observes that the 21 Pose2Sim markers need
(COCO-17 without eyes and ears, plus heels and big toes): the lifter's 2D input is exactly
what the detector gives. Small toes, mid-hip and neck are derived later (stages/markers.py).
Limbs are directed parent -> child; they are the graph nodes of the POF network and the
orientation constraints of the least-squares solver.
"""

from __future__ import annotations

import numpy as np

from core.landmarks import LANDMARK
from models.arrays import Array, clip_min, norm

JOINTS: tuple[str, ...] = (
    "Nose", "LShoulder", "RShoulder", "LElbow", "RElbow", "LWrist", "RWrist",
    "LHip", "RHip", "LKnee", "RKnee", "LAnkle", "RAnkle", "LHeel", "RHeel", "LBigToe", "RBigToe",
)  # fmt: skip
J = {name: i for i, name in enumerate(JOINTS)}
N_JOINTS = len(JOINTS)
HIPS = [J["LHip"], J["RHip"]]  # their midpoint is the root, as in MediaPipe's world frame

# MediaPipe Pose landmark index of each joint.
MEDIAPIPE_INDEX = np.array([LANDMARK[name] for name in JOINTS])

# The 14 COCO-style limbs (head as two shoulder->nose segments), then 4 foot segments.
LIMB_NAMES: tuple[tuple[str, str], ...] = (
    ("LHip", "RHip"), ("LHip", "LShoulder"), ("RHip", "RShoulder"), ("LShoulder", "RShoulder"),
    ("LShoulder", "LElbow"), ("LElbow", "LWrist"), ("RShoulder", "RElbow"), ("RElbow", "RWrist"),
    ("LHip", "LKnee"), ("LKnee", "LAnkle"), ("RHip", "RKnee"), ("RKnee", "RAnkle"),
    ("LShoulder", "Nose"), ("RShoulder", "Nose"),
    ("LAnkle", "LHeel"), ("LAnkle", "LBigToe"), ("RAnkle", "RHeel"), ("RAnkle", "RBigToe"),
)  # fmt: skip
LIMBS = np.array([(J[a], J[b]) for a, b in LIMB_NAMES], dtype=np.int64)
N_LIMBS = len(LIMBS)


def _limb_index(a: str, b: str) -> int:
    return LIMB_NAMES.index((a, b))


def _mirror(name: str) -> str:
    return {"L": "R", "R": "L"}.get(name[0], "") + name[1:] if name[0] in "LR" else name


# Joint permutation of a left/right mirror (also the label swap MediaPipe sometimes makes).
FLIP_JOINTS = np.array([J[_mirror(n)] for n in JOINTS])
SYMMETRIC_LIMBS = np.array(
    sorted({tuple(sorted((i, _limb_index(_mirror(a), _mirror(b)))))
            for i, (a, b) in enumerate(LIMB_NAMES)
            if (_mirror(a), _mirror(b)) in LIMB_NAMES and (_mirror(a), _mirror(b)) != (a, b)})
)  # fmt: skip


def adjacency() -> dict[str, np.ndarray]:
    """The three limb-graph edge types (symmetric 0/1 matrices, no self loops).

    ``share``: limbs with a common joint; ``kinematic``: parent limb -> child limb (the
    child limb starts where the parent ends), kept directed so the GCN can tell up from
    down the chain; ``symmetry``: left/right counterparts.
    """
    n = N_LIMBS
    share = np.zeros((n, n), np.float32)
    kin = np.zeros((n, n), np.float32)
    sym = np.zeros((n, n), np.float32)
    for i, (a, b) in enumerate(LIMBS):
        for k, (c, d) in enumerate(LIMBS):
            if i != k and len({a, b} & {c, d}):
                share[i, k] = 1
            if i != k and b == c:
                kin[k, i] = 1  # row = receiver: the child gathers from its parent
    for i, k in SYMMETRIC_LIMBS:
        sym[i, k] = sym[k, i] = 1
    return {"share": share, "kinematic": kin, "symmetry": sym}


def limb_vectors(joints: Array) -> Array:
    """Child minus parent for every limb: (..., J, 3) -> (..., L, 3)."""
    return joints[..., LIMBS[:, 1], :] - joints[..., LIMBS[:, 0], :]


def mid_hip(joints: np.ndarray) -> np.ndarray:
    """The root of one frame's (J, 3) joints: ``joints[HIPS].mean(0)``, the same sum of the
    two rows halved, without ``mean``'s ~3 us of set-up (numpy, per frame)."""
    return (joints[HIPS[0]] + joints[HIPS[1]]) / 2


def unit(v: Array, eps: float = 1e-9) -> Array:
    """Vectors scaled to unit length along the last axis (zero vectors stay zero); numpy or
    torch (models/arrays.py)."""
    return v / clip_min(norm(v, keepdims=True), eps)
