"""The kinematic skeleton of the fit: its parameters, forward and inverse kinematics.

The 17 joints of models/skeleton.py hang on a tree of segments with constant bone lengths:

- root: the mid-hip position (camera frame, m) and the pelvis orientation. The pelvis
  frame (X anterior, Y superior, Z right, as docs/joint_angles.md) has Z along the hip line
  and Y along the trunk axis made perpendicular to it: the 17 joints have no ASIS/PSIS, so
  pelvis tilt cannot be told from trunk flexion and the trunk has no flexion of its own.
- trunk: lateral bending (about X) and axial rotation (about Y) relative to the pelvis;
  the mid-shoulder sits at the trunk length along its Y axis, the shoulders on its Z axis.
- head: the nose on a sphere around the mid-shoulder, two angles (forward, sideways).
- hips and shoulders: ball joints (Z, X, Y Cardan: flexion, abduction, rotation); knees and
  elbows: hinges about the proximal segment's Z axis; ankles: ball joints carrying a rigid
  heel-ankle-toe triangle (its angle learned from mocap, models/training/fit_pose_prior.py).

Angles use the anatomical signs of core/angle_set.py for both sides (flexion, abduction,
internal rotation positive), so left and right share one range table (core/joint_limits.py).
Parameters: 0-2 root position, 3-5 a pelvis rotation increment (rotation vector, applied
after a base rotation carried between frames), then the 26 joint angles in radians.
``inverse`` reads the parameters back from 17 joints (mocap for the prior, the lifted
joints for the fit's first frame); ``inverse(forward(p)) == p`` for bent hinges.

The compiled functions read the joint indices of models/skeleton.py as constants, and
numba's on-disk cache only notices edits to this file: after changing the joint set there,
delete the ``kinematic_*.nbi``/``.nbc`` files in ``models/__pycache__``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from core.joint_limits import JOINT_RANGES
from models.skeleton import J

N_PARAMS = 32
POSE = slice(6, N_PARAMS)  # the joint angles the prior models
N_POSE = N_PARAMS - 6
# First parameter of each limb chain: ball joint (3), hinge (1), then for legs the ankle (3).
HIP = {"r": 10, "l": 17}
SHOULDER = {"r": 24, "l": 28}
SIDES = ("r", "l")
SIDE_SIGN = {"r": 1.0, "l": -1.0}  # the right-hand X and Y angles of the left side flip

PARAM_NAMES: tuple[str, ...] = (
    "root_x", "root_y", "root_z", "pelvis_rx", "pelvis_ry", "pelvis_rz",
    "trunk_abd", "trunk_rot", "head_flex", "head_side",
    "hip_r_flex", "hip_r_abd", "hip_r_rot", "knee_r_flex",
    "ankle_r_flex", "ankle_r_abd", "ankle_r_rot",
    "hip_l_flex", "hip_l_abd", "hip_l_rot", "knee_l_flex",
    "ankle_l_flex", "ankle_l_abd", "ankle_l_rot",
    "shoulder_r_flex", "shoulder_r_abd", "shoulder_r_rot", "elbow_r_flex",
    "shoulder_l_flex", "shoulder_l_abd", "shoulder_l_rot", "elbow_l_flex",
)  # fmt: skip
# Angle parameters bounded by core/joint_limits.py (the same column names, in degrees).
# Ankles and the head stay free: the foot triangle's neutral is not the angle stage's
# foot frame, and the head has no row; the prior holds them.
LIMITED = tuple(n for n in PARAM_NAMES[6:] if not n.startswith(("ankle", "head")))
# This pelvis follows the trunk (no ASIS/PSIS), so hip flexion here also holds the trunk's
# flexion against the anatomical pelvis: the upper hip bound is widened by it (the training
# mocap reaches 195 degrees this way in deep squats and forward bends).
HIP_FLEX_WIDENING_DEG = 50.0


def bounds() -> tuple[np.ndarray, np.ndarray]:
    """(N_PARAMS,) lower and upper bounds in radians (root unbounded)."""
    lo, hi = np.full(N_PARAMS, -np.inf), np.full(N_PARAMS, np.inf)
    for name in LIMITED:
        rng = JOINT_RANGES[f"{name}_deg"]
        if rng is not None:
            i = PARAM_NAMES.index(name)
            extra = HIP_FLEX_WIDENING_DEG if name.startswith("hip") and "flex" in name else 0.0
            lo[i], hi[i] = np.radians(rng[0]), np.radians(rng[1] + extra)
    return lo, hi


# Geometry vector: every length the forward kinematics needs, from the 18 bone lengths.
G_HIP_W, G_TRUNK, G_SHOULDER_W, G_NOSE = 0, 1, 2, 3
G_UPPER = {"r": 4, "l": 5}  # upper arm
G_FORE = {"r": 6, "l": 7}
G_THIGH = {"r": 8, "l": 9}
G_SHANK = {"r": 10, "l": 11}
G_HEEL = {"r": 12, "l": 16}  # (x, y) of heel, then toe, in the foot frame
N_GEOMETRY = 20

# Joint indices (models/skeleton.py) the compiled code uses, right side first.
J_NOSE, J_RSH, J_LSH, J_RHIP, J_LHIP = (
    J["Nose"],
    J["RShoulder"],
    J["LShoulder"],
    J["RHip"],
    J["LHip"],
)
J_SH_SIDE = (J["RShoulder"], J["LShoulder"])
J_ELBOW_SIDE = (J["RElbow"], J["LElbow"])
J_WRIST_SIDE = (J["RWrist"], J["LWrist"])
J_HIP_SIDE = (J["RHip"], J["LHip"])
J_KNEE_SIDE = (J["RKnee"], J["LKnee"])
J_ANKLE_SIDE = (J["RAnkle"], J["LAnkle"])
J_HEEL_SIDE = (J["RHeel"], J["LHeel"])
J_TOE_SIDE = (J["RBigToe"], J["LBigToe"])


def geometry(lengths: np.ndarray, foot_angle: float) -> np.ndarray:
    """Geometry vector from (18,) bone lengths (models/skeleton.LIMB_NAMES order) and the
    heel-ankle-toe angle (rad)."""
    L = np.asarray(lengths, np.float64)
    g = np.zeros(N_GEOMETRY)
    g[G_HIP_W], g[G_SHOULDER_W] = L[0], L[3]
    side = 0.5 * (L[1] + L[2])
    g[G_TRUNK] = np.sqrt(max(side**2 - (0.5 * (L[3] - L[0])) ** 2, (0.5 * side) ** 2))
    nose = 0.5 * (L[12] + L[13])
    g[G_NOSE] = np.sqrt(max(nose**2 - (0.5 * L[3]) ** 2, (0.5 * nose) ** 2))
    for s, (up, fore, thigh, shank, heel, toe) in zip(
        SIDES, ((6, 7, 10, 11, 16, 17), (4, 5, 8, 9, 14, 15)), strict=True
    ):
        g[G_UPPER[s]], g[G_FORE[s]] = L[up], L[fore]
        g[G_THIGH[s]], g[G_SHANK[s]] = L[thigh], L[shank]
        g[G_HEEL[s] : G_HEEL[s] + 4] = foot_triangle(L[heel], L[toe], foot_angle)
    return g


def foot_triangle(heel: float, toe: float, angle: float) -> np.ndarray:
    """(heel x, heel y, toe x, toe y) in the foot frame: heel->toe along +X, ankle above."""
    for a in (angle, -angle):  # the orientation that puts the ankle (origin) above the sole
        h = np.array([heel, 0.0])
        t = toe * np.array([np.cos(a), np.sin(a)])
        x = (t - h) / np.linalg.norm(t - h)
        y = np.array([-x[1], x[0]])
        if h @ y < 0:
            break
    return np.array([h @ x, h @ y, t @ x, t @ y])


@njit(cache=True)
def mm(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """3 x 3 matrix product (numba's ``@`` calls BLAS: too slow at this size)."""
    out = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            out[i, j] = A[i, 0] * B[0, j] + A[i, 1] * B[1, j] + A[i, 2] * B[2, j]
    return out


@njit(cache=True)
def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


@njit(cache=True)
def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


@njit(cache=True)
def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@njit(cache=True)
def _mm_entries(A, b00, b01, b02, b10, b11, b12, b20, b21, b22):  # noqa: ANN001, ANN202
    """``mm(A, B)`` with B given by its entries, the same products and sums: no B array."""
    out = np.empty((3, 3))
    for i in range(3):
        out[i, 0] = A[i, 0] * b00 + A[i, 1] * b10 + A[i, 2] * b20
        out[i, 1] = A[i, 0] * b01 + A[i, 1] * b11 + A[i, 2] * b21
        out[i, 2] = A[i, 0] * b02 + A[i, 1] * b12 + A[i, 2] * b22
    return out


@njit(cache=True)
def turn_x(A: np.ndarray, a: float) -> np.ndarray:
    """``mm(A, rot_x(a))`` without the rotation's own array (the per-frame fit builds ~30)."""
    c, s = np.cos(a), np.sin(a)
    return _mm_entries(A, 1.0, 0.0, 0.0, 0.0, c, -s, 0.0, s, c)


@njit(cache=True)
def turn_y(A: np.ndarray, a: float) -> np.ndarray:
    """``mm(A, rot_y(a))`` without the rotation's own array."""
    c, s = np.cos(a), np.sin(a)
    return _mm_entries(A, c, 0.0, s, 0.0, 1.0, 0.0, -s, 0.0, c)


@njit(cache=True)
def turn_z(A: np.ndarray, a: float) -> np.ndarray:
    """``mm(A, rot_z(a))`` without the rotation's own array."""
    c, s = np.cos(a), np.sin(a)
    return _mm_entries(A, c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0)


@njit(cache=True)
def zxy(a: float, b: float, c: float) -> np.ndarray:
    """Intrinsic Z, X, Y Cardan rotation."""
    return mm(mm(rot_z(a), rot_x(b)), rot_y(c))


@njit(cache=True)
def exp_map(w: np.ndarray) -> np.ndarray:
    """Rotation matrix of a rotation vector (Rodrigues)."""
    th = np.sqrt(w[0] ** 2 + w[1] ** 2 + w[2] ** 2)
    K = np.array([[0.0, -w[2], w[1]], [w[2], 0.0, -w[0]], [-w[1], w[0], 0.0]])
    if th < 1e-12:
        return np.eye(3) + K
    return np.eye(3) + np.sin(th) / th * K + (1 - np.cos(th)) / th**2 * mm(K, K)


def _descendants() -> np.ndarray:
    """(N_PARAMS, 17) which joints each parameter moves."""
    d = np.zeros((N_PARAMS, 17), np.bool_)
    d[0:6] = True
    arms = [*J_SH_SIDE, *J_ELBOW_SIDE, *J_WRIST_SIDE]
    d[6:8, [J_NOSE, *arms]] = True
    d[8:10, J_NOSE] = True
    for k in range(2):
        h, a = 10 + 7 * k, 24 + 4 * k
        foot = [J_HEEL_SIDE[k], J_TOE_SIDE[k]]
        d[h : h + 3, [J_KNEE_SIDE[k], J_ANKLE_SIDE[k], *foot]] = True
        d[h + 3, [J_ANKLE_SIDE[k], *foot]] = True
        d[h + 4 : h + 7, foot] = True
        d[a : a + 3, [J_ELBOW_SIDE[k], J_WRIST_SIDE[k]]] = True
        d[a + 3, J_WRIST_SIDE[k]] = True
    return d


DESCENDANTS = _descendants()


@njit(cache=True)
def _ball_frame(R_parent, i, p, sign, center, axes, centers):  # noqa: ANN001, ANN202
    """Frame of a ball joint (parameters i..i+2) and the axes of its three angles."""
    Ra = turn_z(R_parent, p[i])
    Rb = turn_x(Ra, -sign * p[i + 1])
    for c in range(3):
        axes[i, c], axes[i + 1, c], axes[i + 2, c] = (
            R_parent[c, 2],
            -sign * Ra[c, 0],
            sign * Rb[c, 1],
        )
        centers[i, c] = centers[i + 1, c] = centers[i + 2, c] = center[c]
    return turn_y(Rb, sign * p[i + 2])


@njit(cache=True)
def kinematics(
    p: np.ndarray, g: np.ndarray, R_base: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(17, 3) camera-frame joints, the pelvis rotation, and per parameter the world axis and
    centre of its rotation (the joints it moves, DESCENDANTS, turn about them).
    Written per coordinate (``X[j, c] = a[c] + s * R[c, 1]``, the same operations as the
    vector form) so that a call builds a few arrays, not ~150: the fit calls it ~12 times
    per frame."""
    X = np.zeros((17, 3))
    axes = np.zeros((N_PARAMS, 3))
    centers = np.zeros((N_PARAMS, 3))
    Rp = mm(R_base, exp_map(p[3:6]))
    root = p[0:3].copy()
    for i in range(3):
        axes[3 + i] = R_base[:, i]  # exact at a zero increment (the fit re-bases each step)
        centers[3 + i] = root
    half_hips = 0.5 * g[G_HIP_W]
    for c in range(3):
        X[J_RHIP, c] = root[c] + half_hips * Rp[c, 2]
        X[J_LHIP, c] = root[c] - half_hips * Rp[c, 2]
    Rx = turn_x(Rp, p[6])
    Rt = turn_y(Rx, p[7])
    Rz = turn_z(Rt, p[8])
    Rn = turn_x(Rz, p[9])
    mid_sh = np.empty(3)
    half_shoulders = 0.5 * g[G_SHOULDER_W]
    for c in range(3):
        axes[6, c], axes[7, c] = Rp[c, 0], Rx[c, 1]
        centers[6, c] = centers[7, c] = root[c]
        mid_sh[c] = root[c] + g[G_TRUNK] * Rt[c, 1]
        X[J_RSH, c] = mid_sh[c] + half_shoulders * Rt[c, 2]
        X[J_LSH, c] = mid_sh[c] - half_shoulders * Rt[c, 2]
        axes[8, c], axes[9, c] = Rt[c, 2], Rz[c, 0]
        centers[8, c] = centers[9, c] = mid_sh[c]
        X[J_NOSE, c] = mid_sh[c] + g[G_NOSE] * Rn[c, 1]
    for k in range(2):  # 0 right, 1 left
        sign = 1.0 - 2.0 * k
        h = 10 + 7 * k
        hip = X[J_HIP_SIDE[k]].copy()
        Rf = _ball_frame(Rp, h, p, sign, hip, axes, centers)
        knee, ankle = X[J_KNEE_SIDE[k]], X[J_ANKLE_SIDE[k]]  # views: written in place
        for c in range(3):
            knee[c] = hip[c] - g[8 + k] * Rf[c, 1]
            axes[h + 3, c], centers[h + 3, c] = -Rf[c, 2], knee[c]
        Rs = turn_z(Rf, -p[h + 3])
        for c in range(3):
            ankle[c] = knee[c] - g[10 + k] * Rs[c, 1]
        Rfoot = _ball_frame(Rs, h + 4, p, sign, ankle, axes, centers)
        f = 12 + 4 * k
        for c in range(3):
            X[J_HEEL_SIDE[k], c] = ankle[c] + g[f] * Rfoot[c, 0] + g[f + 1] * Rfoot[c, 1]
            X[J_TOE_SIDE[k], c] = ankle[c] + g[f + 2] * Rfoot[c, 0] + g[f + 3] * Rfoot[c, 1]
        a = 24 + 4 * k
        shoulder = X[J_SH_SIDE[k]].copy()
        Rh = _ball_frame(Rt, a, p, sign, shoulder, axes, centers)
        Re = turn_z(Rh, p[a + 3])
        elbow = X[J_ELBOW_SIDE[k]]
        for c in range(3):
            elbow[c] = shoulder[c] - g[4 + k] * Rh[c, 1]
            axes[a + 3, c], centers[a + 3, c] = Rh[c, 2], elbow[c]
            X[J_WRIST_SIDE[k], c] = elbow[c] - g[6 + k] * Re[c, 1]
    return X, Rp, axes, centers


@njit(cache=True)
def forward(p: np.ndarray, g: np.ndarray, R_base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(17, 3) camera-frame joints and the pelvis rotation for parameters ``p``."""
    X, Rp, _, _ = kinematics(p, g, R_base)
    return X, Rp


@njit(cache=True)
def joint_jacobian(X: np.ndarray, axes: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """(17, 3, N_PARAMS) derivatives of the joints: the root moves every joint, each angle
    turns its descendants about its axis (pelvis increment at zero)."""
    JX = np.zeros((17, 3, N_PARAMS))
    for j in range(17):
        for c in range(3):
            JX[j, c, c] = 1.0
        for i in range(3, N_PARAMS):
            if DESCENDANTS[i, j]:  # axis x (X_j - centre), in scalars: no array per pair
                a0, a1, a2 = axes[i, 0], axes[i, 1], axes[i, 2]
                d0, d1, d2 = (
                    X[j, 0] - centers[i, 0],
                    X[j, 1] - centers[i, 1],
                    X[j, 2] - centers[i, 2],
                )
                JX[j, 0, i] = a1 * d2 - a2 * d1
                JX[j, 1, i] = a2 * d0 - a0 * d2
                JX[j, 2, i] = a0 * d1 - a1 * d0
    return JX


@njit(cache=True)
def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(np.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2), 1e-12)


@njit(cache=True)
def _frame(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Rotation with columns X, Y, Z = X x Y from orthonormal X, Y."""
    R = np.empty((3, 3))
    R[:, 0], R[:, 1], R[:, 2] = x, y, np.cross(x, y)
    return R


@njit(cache=True)
def cardan_zxy(R: np.ndarray) -> tuple[float, float, float]:
    """(a, b, c) with R = Rz(a) Rx(b) Ry(c), b within +-90 degrees."""
    b = np.arcsin(min(1.0, max(-1.0, R[2, 1])))
    return np.arctan2(-R[0, 1], R[1, 1]), b, np.arctan2(-R[2, 0], R[2, 2])


@njit(cache=True)
def _excess(v: float, lo: float, hi: float) -> float:
    return max(lo - v, 0.0) + max(v - hi, 0.0)


@njit(cache=True)
def _into_range(v: float, lo: float, hi: float) -> float:
    """``v`` shifted by whole turns to the smallest excess over [lo, hi]."""
    best = v
    for k in (-1.0, 1.0):
        w = v + k * 2 * np.pi
        if _excess(w, lo, hi) < _excess(best, lo, hi):
            best = w
    return best


@njit(cache=True)
def _ball(R_rel: np.ndarray, sign: float, lo: np.ndarray, hi: np.ndarray, i: int) -> np.ndarray:
    """Anatomical (flex, abd, rot) of a ball joint: of the two Cardan solutions, the one
    with the smallest excess over the bounds of parameters i..i+2."""
    a, b, c = cardan_zxy(R_rel)
    best = np.empty(3)
    best_ex = np.inf
    for alt in range(2):
        if alt == 1:
            a, b, c = a + np.pi, np.pi - b, c + np.pi
        v = np.array([a, -sign * b, sign * c])
        ex = 0.0
        for k in range(3):
            v[k] = _into_range(v[k], lo[i + k], hi[i + k])
            ex += _excess(v[k], lo[i + k], hi[i + k])
        if ex < best_ex - 1e-9:
            best, best_ex = v, ex
    return best


@njit(cache=True)
def chain(
    R_parent: np.ndarray, top: np.ndarray, mid: np.ndarray, end: np.ndarray, hint: np.ndarray,
    sign: float, hinge: float, lo: np.ndarray, hi: np.ndarray, i: int,
) -> tuple[np.ndarray, float, np.ndarray, float]:  # fmt: skip
    """Ball joint + hinge from three points: (flex, abd, rot), hinge angle, distal frame and
    the angles' total excess over their bounds (rad).

    ``hinge`` is +1 where flexion swings the distal segment forward (elbow), -1 backward
    (knee). Of the two readings (the proximal segment turned half a turn about its axis
    with the hinge bent the other way) the one within the bounds is kept; a straight hinge
    takes its plane from ``hint`` (a direction that points anterior)."""
    y = _unit(top - mid)
    low = _unit(end - mid)
    perp = low - (low @ y) * y
    if np.sqrt(perp @ perp) < 0.05:
        perp = hint - (hint @ y) * y
        x = _unit(perp)
    else:
        x = hinge * _unit(perp)
    best_ex = np.inf
    best_ball, best_f, best_R = np.zeros(3), 0.0, np.eye(3)
    for turn in (1.0, -1.0):
        xs = turn * x
        R = _frame(xs, y)
        ball = _ball(R_parent.T @ R, sign, lo, hi, i)
        f = np.arctan2(hinge * (low @ xs), -(low @ y))
        ex = _excess(f, lo[i + 3], hi[i + 3])
        for k in range(3):
            ex += _excess(ball[k], lo[i + k], hi[i + k])
        if ex < best_ex - 1e-9:
            best_ex, best_ball, best_f = ex, ball, f
            best_R = R @ rot_z(hinge * f)
    return best_ball, best_f, best_R, best_ex


@njit(cache=True)
def inverse(X: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Parameters (root increment zero) and the pelvis rotation that ``forward`` turns back
    into the (17, 3) joints ``X``, up to the bone lengths of the model."""
    p = np.zeros(N_PARAMS)
    mid_hip = 0.5 * (X[J_RHIP] + X[J_LHIP])
    mid_sh = 0.5 * (X[J_RSH] + X[J_LSH])
    z = _unit(X[J_RHIP] - X[J_LHIP])
    axis = mid_sh - mid_hip
    Rp = _frame(np.cross(_unit(axis - (axis @ z) * z), z), _unit(axis - (axis @ z) * z))
    p[0:3] = mid_hip
    yt = _unit(axis)
    line = X[J_RSH] - X[J_LSH]
    Rt = _frame(np.cross(yt, _unit(line - (line @ yt) * yt)), yt)
    _, p[6], p[7] = cardan_zxy(Rp.T @ Rt)
    v = Rt.T @ _unit(X[J_NOSE] - mid_sh)
    p[8], p[9] = np.arctan2(-v[0], v[1]), np.arcsin(min(1.0, max(-1.0, v[2])))
    for k in range(2):
        sign = 1.0 - 2.0 * k
        h = 10 + 7 * k
        heel, toe, ankle = X[J_HEEL_SIDE[k]], X[J_TOE_SIDE[k]], X[J_ANKLE_SIDE[k]]
        ball, f, Rs, _ = chain(Rp, X[J_HIP_SIDE[k]], X[J_KNEE_SIDE[k]], ankle, toe - heel,
                            sign, -1.0, lo, hi, h)  # fmt: skip
        p[h : h + 3], p[h + 3] = ball, f
        xf = _unit(toe - heel)
        Rfoot = _frame(xf, np.cross(_unit(np.cross(xf, ankle - heel)), xf))
        p[h + 4 : h + 7] = _ball(Rs.T @ Rfoot, sign, lo, hi, h + 4)
        a = 24 + 4 * k
        ball, f, _, _ = chain(Rt, X[J_SH_SIDE[k]], X[J_ELBOW_SIDE[k]], X[J_WRIST_SIDE[k]],
                              Rt[:, 0].copy(), sign, 1.0, lo, hi, a)  # fmt: skip
        p[a : a + 3], p[a + 3] = ball, f
    return p, Rp
