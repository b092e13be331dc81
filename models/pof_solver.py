"""3D joints from 2D keypoints + predicted limb orientations + bone lengths (least squares).

Monocular-Total-Capture style, made linear: every visible joint X_j should lie on its
camera ray q_j = K^-1 (u, v, 1) (residual: X_j minus its projection onto the ray, metres),
and every limb should equal its bone length times its predicted unit orientation
(X_b - X_a - l d). Both terms are linear in X, so one 3J x 3J solve gives the joints;
orientations fix the shape, rays fix where it sits, bone lengths fix metric scale. A joint
without a 2D observation is held by its limbs alone.

Bone lengths come from the subject's standing height times ``BONE_RATIOS``: medians over
the real CMU actor skeletons (tier A subjects 001, 002; head-top-to-floor as height), with
hips and shoulders moved to MediaPipe's landmark positions (models/training/landmark_offsets.py):
hip width, trunk sides and thighs are scaled by the median length ratio after / before.
With those hips the trunk (mid-hip to mid-shoulder) is height / 2.85; at the joint centres
it is height / 3.2, not the height / 3.4 an earlier seed assumed. Forearms end at
MediaPipe's wrist landmark, ``FOREARM_PER_UPPER_ARM`` x the upper arm (the training data's
wrists are moved there too, models/training/landmark_offsets.py; CMU's radius is 0.68 x
the upper arm).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from models.arrays import nan_to_num
from models.skeleton import LIMBS, N_JOINTS

# MediaPipe's elbow->wrist / shoulder->elbow on Demo_MultiPerson (median, multi-view
# triangulated; models/training/fit_landmark_offsets.py measures it).
FOREARM_PER_UPPER_ARM = 0.834
UPPER_ARM = 0.1783
FOREARM = round(FOREARM_PER_UPPER_ARM * UPPER_ARM, 4)
BONE_RATIOS = np.array([
    0.1408, 0.3522, 0.3522, 0.2333, UPPER_ARM, FOREARM, UPPER_ARM, FOREARM, 0.2292, 0.2621,
    0.2292, 0.2621, 0.1751, 0.1751, 0.0559, 0.1204, 0.0559, 0.1204,
])  # fmt: skip
LIMB_WEIGHT = 1.0
LIMB_WEIGHTS = np.full(len(LIMBS), LIMB_WEIGHT)  # the default: built once, never written
DAMPING = 1e-9  # keeps the system solvable when too few rays are seen


def bone_lengths(height: float) -> np.ndarray:
    """Per-limb lengths (m) for a subject of this standing height."""
    return BONE_RATIOS * height


def rays(uv: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(J, 2) pixels -> (J, 3) unit camera rays."""
    q = np.ones((len(uv), 3))  # filled in place: column_stack's copies cost more than the maths
    q[:, 0] = (uv[:, 0] - K[0, 2]) / K[0, 0]
    q[:, 1] = (uv[:, 1] - K[1, 2]) / K[1, 1]
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def correct_z_sign(pof: np.ndarray, z_prob: np.ndarray, margin: float = 0.3) -> np.ndarray:
    """Flip a limb's depth component where the sign head confidently disagrees with it."""
    out = pof.copy()
    flip = (np.abs(z_prob - 0.5) > margin) & ((z_prob > 0.5) != (pof[:, 2] > 0))
    if flip.any():  # most frames flip nothing
        out[flip, 2] *= -1
    return out


@njit(cache=True)
def _solve(q: np.ndarray, w: np.ndarray, limbs: np.ndarray, target: np.ndarray,
           limb_w: np.ndarray) -> np.ndarray:  # fmt: skip
    n = q.shape[0]
    H = np.zeros((3 * n, 3 * n))
    g = np.zeros(3 * n)
    for j in range(n):
        for r in range(3):
            for c in range(3):
                P = (1.0 if r == c else 0.0) - q[j, r] * q[j, c]
                H[3 * j + r, 3 * j + c] += w[j] * P
            H[3 * j + r, 3 * j + r] += DAMPING
    for k in range(limbs.shape[0]):
        a, b, lw = limbs[k, 0], limbs[k, 1], limb_w[k]
        for r in range(3):
            H[3 * a + r, 3 * a + r] += lw
            H[3 * b + r, 3 * b + r] += lw
            H[3 * a + r, 3 * b + r] -= lw
            H[3 * b + r, 3 * a + r] -= lw
            g[3 * b + r] += lw * target[k, r]
            g[3 * a + r] -= lw * target[k, r]
    return np.linalg.solve(H, g).reshape(n, 3)


def solve(uv: np.ndarray, visible: np.ndarray, K: np.ndarray, pof: np.ndarray,
          lengths: np.ndarray, limb_weight: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Camera-frame (J, 3) joints from (J, 2) pixels, (J,) visibility flags, intrinsics,
    (L, 3) unit limb orientations and (L,) bone lengths (m)."""
    q = rays(nan_to_num(uv), K)
    lw = LIMB_WEIGHTS if limb_weight is None else np.asarray(limb_weight, np.float64)
    target = pof * lengths[:, None]
    return _solve(q, visible.astype(np.float64), LIMBS, target, lw)


def solve_reference(uv: np.ndarray, visible: np.ndarray, K: np.ndarray, pof: np.ndarray,
                    lengths: np.ndarray) -> np.ndarray:  # fmt: skip
    """Plain numpy version of ``solve`` (stacked residual rows, lstsq) for the tests."""
    q = rays(nan_to_num(uv), K)
    rows, rhs = [], []
    for j in range(N_JOINTS):
        if visible[j]:
            row = np.zeros((3, 3 * N_JOINTS))
            row[:, 3 * j : 3 * j + 3] = np.eye(3) - np.outer(q[j], q[j])
            rows.append(row)
            rhs.append(np.zeros(3))
    for (a, b), d, length in zip(LIMBS, pof, lengths, strict=True):
        row = np.zeros((3, 3 * N_JOINTS))
        row[:, 3 * b : 3 * b + 3] = np.eye(3)
        row[:, 3 * a : 3 * a + 3] = -np.eye(3)
        rows.append(row)
        rhs.append(length * d)
    rows.append(np.sqrt(DAMPING) * np.eye(3 * N_JOINTS))
    rhs.append(np.zeros(3 * N_JOINTS))
    x, *_ = np.linalg.lstsq(np.concatenate(rows), np.concatenate(rhs), rcond=None)
    return x.reshape(N_JOINTS, 3)
