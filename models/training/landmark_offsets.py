"""Move mocap hips, shoulders and wrists to where MediaPipe puts those landmarks.

Mocap hips are joint centres; MediaPipe's 2D hip landmarks sit wider and lower (nearer the
greater trochanters), and each mocap layout places shoulders differently. A lifter trained
on joint centres then predicts thighs and trunk sides that MediaPipe's points do not span.
Forearms (elbow to wrist) differ by layout too: 0.68 (CMU's radius) to 1.02 of the upper arm,
against MediaPipe's 0.834 on the tuning demo; moved there, every layout shows the network
the forearm proportion it will see (the layouts together had a median of 0.839 already).
So each layout gets four offsets, in its own pelvis, shoulder and forearm frames:

- ``hip_out``: hips pushed apart by this fraction of the hip width;
- ``hip_down``: hips moved down the trunk axis by this fraction of the thigh length;
- ``shoulder_out``: shoulders pushed apart by this fraction of the shoulder width;
- ``wrist_out``: wrists moved along the forearm, away from the elbow, by this fraction of
  the forearm length,

fitted so that the layout's median hip width / thigh, trunk / thigh, trunk / shoulder
width and forearm / upper arm match MediaPipe's 2D landmarks triangulated from Pose2Sim's
calibrated ``Demo_MultiPerson`` (``TARGET``; the tuning demo, never the test demo).

``uv run python -m models.training.fit_landmark_offsets --cache mp_multi.npz`` re-measures
``TARGET`` and refits ``OFFSETS``.
"""

from __future__ import annotations

import numpy as np

from models.pof_solver import FOREARM_PER_UPPER_ARM
from models.skeleton import J, unit

# MediaPipe on Demo_MultiPerson, multi-view triangulated (400 camera-frames, medians); the
# forearm's ratio is also the runtime skeleton's (models/pof_solver.py), so it lives there.
TARGET = {"hip_thigh": 0.622, "trunk_thigh": 1.515, "trunk_shoulder": 1.505,
          "forearm_upper_arm": FOREARM_PER_UPPER_ARM}  # fmt: skip
# (hip_out, hip_down, shoulder_out, wrist_out) per mocap layout, fitted by ``fit_offsets``.
OFFSETS = {
    "cmu_asf31": (0.488, 0.1452, 0.0128, 0.2286),
    "cgspeed_daz_fixed": (0.1818, 0.1052, 0.4674, -0.0262),
    "deepmimic_humanoid_fixed": (0.3354, 0.176, 0.0029, -0.1153),
    "cc_base_fixed": (0.2561, 0.2048, 0.0714, -0.1867),
}
L_HIP, R_HIP, L_SHO, R_SHO = J["LHip"], J["RHip"], J["LShoulder"], J["RShoulder"]
Offsets = tuple[float, float, float, float]


def apply_offsets(joints: np.ndarray, offsets: Offsets) -> np.ndarray:
    """(..., 17, 3) mocap joints -> the same pose with MediaPipe-like hips, shoulders and
    wrists."""
    hip_out, hip_down, shoulder_out, wrist_out = offsets
    out = joints.copy()
    mid_hip = 0.5 * (joints[..., L_HIP, :] + joints[..., R_HIP, :])
    mid_sho = 0.5 * (joints[..., L_SHO, :] + joints[..., R_SHO, :])
    down = unit(mid_hip - mid_sho)
    for hip, knee in ((L_HIP, J["LKnee"]), (R_HIP, J["RKnee"])):
        thigh = np.linalg.norm(joints[..., knee, :] - joints[..., hip, :], axis=-1)[..., None]
        out[..., hip, :] += hip_out * (joints[..., hip, :] - mid_hip) + hip_down * thigh * down
    for sho in (L_SHO, R_SHO):
        out[..., sho, :] += shoulder_out * (joints[..., sho, :] - mid_sho)
    for elbow, wrist in ((J["LElbow"], J["LWrist"]), (J["RElbow"], J["RWrist"])):
        out[..., wrist, :] += wrist_out * (joints[..., wrist, :] - joints[..., elbow, :])
    return out


def ratios(joints: np.ndarray) -> dict[str, float]:
    """Median hip width / thigh, trunk / thigh, trunk / shoulder width and forearm / upper
    arm of (N, 17, 3)."""

    def dist(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.linalg.norm(a - b, axis=-1)

    x = {name: joints[:, i] for name, i in J.items()}
    hip_w, sho_w = dist(x["LHip"], x["RHip"]), dist(x["LShoulder"], x["RShoulder"])
    trunk = dist(0.5 * (x["LHip"] + x["RHip"]), 0.5 * (x["LShoulder"] + x["RShoulder"]))
    thigh = 0.5 * (dist(x["LHip"], x["LKnee"]) + dist(x["RHip"], x["RKnee"]))
    upper = dist(x["LShoulder"], x["LElbow"]) + dist(x["RShoulder"], x["RElbow"])
    forearm = dist(x["LElbow"], x["LWrist"]) + dist(x["RElbow"], x["RWrist"])
    return {"hip_thigh": float(np.median(hip_w / thigh)),
            "trunk_thigh": float(np.median(trunk / thigh)),
            "trunk_shoulder": float(np.median(trunk / sho_w)),
            "forearm_upper_arm": float(np.median(forearm / upper))}  # fmt: skip


def fit_offsets(joints: np.ndarray, target: dict[str, float]) -> Offsets:
    """Gauss-Newton on the four offsets so the layout's median ratios hit ``target``."""
    keys = sorted(target)
    p = np.zeros(4)

    def residual(q: np.ndarray) -> np.ndarray:
        r = ratios(apply_offsets(joints, tuple(q)))
        return np.array([r[k] / target[k] - 1 for k in keys])

    for _ in range(20):
        r = residual(p)
        jac = np.column_stack([(residual(p + h) - r) / 1e-4 for h in np.eye(4) * 1e-4])
        step = np.linalg.lstsq(jac, -r, rcond=None)[0]
        p = p + step
        if np.abs(step).max() < 1e-5:
            break
    return tuple(round(float(v), 4) for v in p)
