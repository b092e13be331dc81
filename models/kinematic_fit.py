"""Per-frame kinematic fit: the skeleton of models/kinematic_model.py fitted to one frame.

Least squares over the 32 parameters, solved by a few Levenberg-Marquardt iterations
(numba, finite-difference Jacobian), warm-started from the previous frame. Residuals:

- 2D: each joint's projection against its keypoint (normalized image coordinates divided
  by the person's 2D box diagonal), weighted by visibility;
- directions: each limb's unit vector against the lifter's, weighted by its confidence;
- smoothness: every parameter against the previous frame's;
- prior: the Mahalanobis distance of the joint angles to the most likely component of the
  learned mixture (models/pose_prior.py), SMPLify-style;

and the joint ranges of core/joint_limits.py as hard bounds (every step is projected into
them), so no output breaks a limit. Before the solve, a forearm or shank whose lifted
direction bends its chain out of range while the depth-mirrored direction does not is
mirrored (``repair_depth_signs``): the 2D keypoints cannot tell the two apart.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numba import njit

from models.arrays import nan_to_num, vector_length
from models.kinematic_model import (
    J_HIP_SIDE,
    J_SH_SIDE,
    N_PARAMS,
    N_POSE,
    _frame,
    _unit,
    bounds,
    chain,
    forward,
    geometry,
    inverse,
    joint_jacobian,
    kinematics,
    mm,
    rot_x,
    rot_y,
)
from models.pose_prior import PosePrior
from models.skeleton import LIMB_NAMES, LIMBS, N_JOINTS, N_LIMBS, limb_vectors

N_RESIDUALS = 2 * N_JOINTS + 3 * N_LIMBS + N_PARAMS + N_POSE
# The hinge chains whose lower limb may be depth-mirrored: (upper limb, lower limb) indices.
HINGE_LIMBS = np.array(
    [(LIMB_NAMES.index(a), LIMB_NAMES.index(b)) for a, b in (
        (("RShoulder", "RElbow"), ("RElbow", "RWrist")),
        (("LShoulder", "LElbow"), ("LElbow", "LWrist")),
        (("RHip", "RKnee"), ("RKnee", "RAnkle")),
        (("LHip", "LKnee"), ("LKnee", "LAnkle")),
    )]
)  # fmt: skip


@njit(cache=True)
def residuals(
    X: np.ndarray, p: np.ndarray, xn: np.ndarray, w2: np.ndarray, dirs: np.ndarray,
    wd: np.ndarray, prev: np.ndarray, ws: np.ndarray, mean: np.ndarray, chol: np.ndarray,
    wp: float, r: np.ndarray,
) -> None:  # fmt: skip
    """Fill ``r`` (N_RESIDUALS,) for joints ``X`` of parameters ``p``; weights are square
    roots of the term weights."""
    n = 0
    for j in range(N_JOINTS):
        z = max(X[j, 2], 1e-3)
        r[n] = w2[j] * (X[j, 0] / z - xn[j, 0])
        r[n + 1] = w2[j] * (X[j, 1] / z - xn[j, 1])
        n += 2
    for k in range(N_LIMBS):  # _unit(X[b] - X[a]) per coordinate: no arrays per limb
        a, b = LIMBS[k, 0], LIMBS[k, 1]
        v0, v1, v2 = X[b, 0] - X[a, 0], X[b, 1] - X[a, 1], X[b, 2] - X[a, 2]
        length = max(np.sqrt(v0**2 + v1**2 + v2**2), 1e-12)
        r[n] = wd[k] * (v0 / length - dirs[k, 0])
        r[n + 1] = wd[k] * (v1 / length - dirs[k, 1])
        r[n + 2] = wd[k] * (v2 / length - dirs[k, 2])
        n += 3
    for i in range(N_PARAMS):
        r[n + i] = ws[i] * (p[i] - prev[i])
    n += N_PARAMS
    for i in range(N_POSE):  # chol: upper-triangular factor of the component's precision
        acc = 0.0
        for m in range(i, N_POSE):
            acc += chol[i, m] * (p[6 + m] - mean[m])
        r[n + i] = wp * acc


@njit(cache=True)
def jacobian(
    X: np.ndarray, JX: np.ndarray, w2: np.ndarray, wd: np.ndarray, ws: np.ndarray,
    chol: np.ndarray, wp: float, Jac: np.ndarray,
) -> None:  # fmt: skip
    """Fill ``Jac`` (N_RESIDUALS, N_PARAMS), the derivative of ``residuals``, from the joint
    Jacobian ``JX`` (models/kinematic_model.joint_jacobian)."""
    Jac[:] = 0.0
    n = 0
    for j in range(N_JOINTS):
        z = max(X[j, 2], 1e-3)
        for i in range(N_PARAMS):
            if JX[j, 0, i] != 0.0 or JX[j, 1, i] != 0.0 or JX[j, 2, i] != 0.0:
                Jac[n, i] = w2[j] * (JX[j, 0, i] - X[j, 0] / z * JX[j, 2, i]) / z
                Jac[n + 1, i] = w2[j] * (JX[j, 1, i] - X[j, 1] / z * JX[j, 2, i]) / z
        n += 2
    v = np.empty(3)
    u = np.empty(3)
    dv = np.empty(3)
    for k in range(N_LIMBS):  # three buffers, no array per (limb, parameter); the same dots
        a, b = LIMBS[k, 0], LIMBS[k, 1]
        for c in range(3):
            v[c] = X[b, c] - X[a, c]
        length = max(np.sqrt(v @ v), 1e-12)
        for c in range(3):
            u[c] = v[c] / length
        for i in range(N_PARAMS):
            for c in range(3):
                dv[c] = JX[b, c, i] - JX[a, c, i]
            if dv[0] != 0.0 or dv[1] != 0.0 or dv[2] != 0.0:
                s = u @ dv
                for c in range(3):
                    Jac[n + c, i] = wd[k] * ((dv[c] - s * u[c]) / length)
        n += 3
    for i in range(N_PARAMS):
        Jac[n + i, i] = ws[i]
    n += N_PARAMS
    for i in range(N_POSE):
        for m in range(i, N_POSE):
            Jac[n + i, 6 + m] = wp * chol[i, m]


@njit(cache=True)
def best_component(pose: np.ndarray, means: np.ndarray, chols: np.ndarray,
                   log_norm: np.ndarray) -> int:  # fmt: skip
    """The mixture component with the highest weighted density at ``pose``."""
    best, best_k = -np.inf, 0
    diff = np.empty(pose.shape[0])  # buffers: no two arrays per component
    d = np.empty(pose.shape[0])
    for k in range(means.shape[0]):
        for m in range(pose.shape[0]):
            diff[m] = pose[m] - means[k, m]
        np.dot(chols[k], diff, d)
        score = log_norm[k] - 0.5 * (d @ d)
        if score > best:
            best, best_k = score, k
    return best_k


@njit(cache=True)
def levenberg_marquardt(
    p0: np.ndarray, g: np.ndarray, R_base: np.ndarray, xn: np.ndarray, w2: np.ndarray,
    dirs: np.ndarray, wd: np.ndarray, prev: np.ndarray, ws: np.ndarray, means: np.ndarray,
    chols: np.ndarray, log_norm: np.ndarray, wp: float, lo: np.ndarray, hi: np.ndarray,
    iterations: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Bounded LM from ``p0`` (pelvis increment zero): at most ``iterations`` linearizations,
    each step clipped into [lo, hi]. Returns the parameters (increment zero again) and the
    pelvis rotation, re-based after every accepted step so the pelvis axes stay exact."""
    p = np.minimum(np.maximum(p0, lo), hi)
    R = R_base.copy()
    prev = prev.copy()
    r = np.empty(N_RESIDUALS)
    rt = np.empty(N_RESIDUALS)
    Jac = np.empty((N_RESIDUALS, N_PARAMS))
    lam = 1e-3
    for _ in range(iterations):
        k = best_component(p[6:], means, chols, log_norm)
        X, _, axes, centers = kinematics(p, g, R)
        residuals(X, p, xn, w2, dirs, wd, prev, ws, means[k], chols[k], wp, r)
        cost = r @ r
        jacobian(X, joint_jacobian(X, axes, centers), w2, wd, ws, chols[k], wp, Jac)
        A = Jac.T @ Jac
        b = Jac.T @ r
        improved = False
        for _attempt in range(4):
            Ad = A.copy()
            for i in range(N_PARAMS):
                Ad[i, i] += lam * A[i, i] + 1e-9
            q = np.minimum(np.maximum(p - np.linalg.solve(Ad, b), lo), hi)
            Xq, Rq = forward(q, g, R)
            residuals(Xq, q, xn, w2, dirs, wd, prev, ws, means[k], chols[k], wp, rt)
            if rt @ rt < cost:
                prev[3:6] -= q[3:6]  # the rotation so far stays in the smoothness term
                q[3:6] = 0.0
                p, R, improved = q, Rq, True
                lam = max(lam / 3, 1e-7)
                break
            lam *= 8
        if not improved:
            break
    return p, R


@njit(cache=True)
def repair_depth_signs(X: np.ndarray, dirs: np.ndarray, lo: np.ndarray,
                       hi: np.ndarray) -> np.ndarray:  # fmt: skip
    """(4,) flags of the hinge chains (HINGE_LIMBS order) whose lower limb direction,
    mirrored in depth, brings the chain's angles within the bounds: given (17, 3) joints
    for the parent frames and (L, 3) limb directions."""
    flips = np.zeros(4, np.bool_)
    z = _unit(X[J_HIP_SIDE[0]] - X[J_HIP_SIDE[1]])
    axis = 0.5 * (X[J_SH_SIDE[0]] + X[J_SH_SIDE[1]] - X[J_HIP_SIDE[0]] - X[J_HIP_SIDE[1]])
    y = _unit(axis - (axis @ z) * z)
    Rp = _frame(np.cross(y, z), y)
    yt = _unit(axis)
    line = X[J_SH_SIDE[0]] - X[J_SH_SIDE[1]]
    Rt = _frame(np.cross(yt, _unit(line - (line @ yt) * yt)), yt)
    origin = np.zeros(3)
    for c in range(4):
        k = c % 2
        sign = 1.0 - 2.0 * k
        leg = c >= 2
        R = Rp if leg else Rt
        first = 10 + 7 * k if leg else 24 + 4 * k
        hinge = -1.0 if leg else 1.0
        hint = R[:, 0].copy()
        up = dirs[HINGE_LIMBS[c, 0]]
        low = dirs[HINGE_LIMBS[c, 1]].copy()
        mid = origin + up
        ex = chain(R, origin, mid, mid + low, hint, sign, hinge, lo, hi, first)[3]
        low[2] = -low[2]
        ex_flip = chain(R, origin, mid, mid + low, hint, sign, hinge, lo, hi, first)[3]
        flips[c] = ex > 1e-6 and ex_flip < ex
    return flips


@njit(cache=True)
def reseed_chains(p: np.ndarray, g: np.ndarray, R_base: np.ndarray, dirs: np.ndarray,
                  flags: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:  # fmt: skip
    """``p`` with the ball and hinge angles of the flagged chains (HINGE_LIMBS order) set
    from the directions: the fit starts on the mirrored side instead of having to swing the
    limb through the image plane against the 2D keypoints."""
    q = p.copy()
    _, Rp = forward(p, g, R_base)
    Rt = mm(mm(Rp, rot_x(p[6])), rot_y(p[7]))
    origin = np.zeros(3)
    for c in range(4):
        if not flags[c]:
            continue
        k = c % 2
        leg = c >= 2
        R = Rp if leg else Rt
        first = 10 + 7 * k if leg else 24 + 4 * k
        up = dirs[HINGE_LIMBS[c, 0]]
        mid = origin + up
        ball, f, _, _ = chain(R, origin, mid, mid + dirs[HINGE_LIMBS[c, 1]], R[:, 0].copy(),
                              1.0 - 2.0 * k, -1.0 if leg else 1.0, lo, hi, first)  # fmt: skip
        q[first : first + 3] = ball
        q[first + 3] = f
    return q


@njit(cache=True)
def fit_frame(
    joints: np.ndarray, dirs: np.ndarray, p: np.ndarray, R_base: np.ndarray, g: np.ndarray,
    xn: np.ndarray, w2: np.ndarray, wd: np.ndarray, ws: np.ndarray, means: np.ndarray,
    chols: np.ndarray, log_norm: np.ndarray, wp: float, lo: np.ndarray, hi: np.ndarray,
    iterations: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """One frame's compiled part, in one call rather than four: the depth-sign repair, the
    limb directions with the flagged lower limbs mirrored in depth, the reseeded start and
    the LM solve from the previous parameters ``p``. Returns the fitted (17, 3) joints, the
    parameters, the pelvis rotation and the repair's flags."""
    flips = repair_depth_signs(joints, dirs, lo, hi)
    target = dirs.copy()
    for c in range(len(flips)):
        if flips[c]:
            target[HINGE_LIMBS[c, 1], 2] *= -1
    start = reseed_chains(p, g, R_base, target, flips, lo, hi)
    p, R = levenberg_marquardt(start, g, R_base, xn, w2, target, wd, p, ws, means, chols,
                               log_norm, wp, lo, hi, iterations)  # fmt: skip
    return forward(p, g, R)[0], p, R, flips


@dataclass(frozen=True)
class FitWeights:
    """The fit's term weights, as standard deviations (defaults: [fit] in config.toml)."""

    sigma_2d: float  # keypoint error, fraction of the person's 2D box diagonal
    sigma_direction_deg: float  # limb-direction error of a fully confident limb
    confidence_floor: float  # weight share of a limb whose depth sign is a coin toss
    sigma_smooth_deg: float  # joint-angle change per frame
    sigma_smooth_m: float  # root movement per frame
    prior_weight: float  # multiplies the prior's Mahalanobis term (0: off)
    iterations: int

    @classmethod
    def from_config(cls, fit: dict) -> FitWeights:
        """From a ``[fit]`` config section (the prior's weight is 0 with ``prior`` off)."""
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in fit.items() if k in names}
        if not fit["prior"]:
            values["prior_weight"] = 0.0
        return cls(**values)


BONE_FRAMES = 300  # lifted frames whose median bone lengths the skeleton takes, then frozen
MIN_BONE_FRAMES = 10  # before this many, bone lengths come from the height alone


class PersonFit:
    """The fit of one tracked person: bone lengths and the previous frame's parameters."""

    def __init__(self, height_bones: np.ndarray, prior: PosePrior, weights: FitWeights) -> None:
        self.height_bones = height_bones
        self.prior = prior
        self.w = weights
        self.lo, self.hi = bounds()
        self.lengths = np.empty((BONE_FRAMES, N_LIMBS))  # per lifted frame, the first rows
        self.n_lengths = 0  # rows filled: a median over an array, not a list, per frame
        self.geometry = geometry(height_bones, prior.foot_angle)
        self.params: np.ndarray | None = None
        self.R_base = np.eye(3)
        self.repaired = np.zeros(len(HINGE_LIMBS), bool)  # last frame's mirrored chains
        # the smoothness weights (none on a first frame) and the direction and prior
        # weights' constant factors, once per person rather than per frame
        self.smooth = np.full(N_PARAMS, 1 / np.radians(weights.sigma_smooth_deg))
        self.smooth[:3] = 1 / weights.sigma_smooth_m
        self.no_smooth = np.zeros(N_PARAMS)
        self.direction_scale = np.radians(weights.sigma_direction_deg)
        self.prior_scale = np.sqrt(weights.prior_weight)

    def _update_bones(self, joints: np.ndarray) -> None:
        if self.n_lengths >= BONE_FRAMES:
            return
        self.lengths[self.n_lengths] = np.linalg.norm(limb_vectors(joints), axis=-1)
        self.n_lengths += 1
        if self.n_lengths >= MIN_BONE_FRAMES:
            bones = np.median(self.lengths[: self.n_lengths], axis=0)
            self.geometry = geometry(bones, self.prior.foot_angle)

    def __call__(
        self, uv: np.ndarray, vis: np.ndarray, K: np.ndarray, joints: np.ndarray,
        dirs: np.ndarray, confidence: np.ndarray, vis_min: float,
    ) -> np.ndarray:  # fmt: skip
        """(J, 3) fitted camera-frame joints from (J, 2) pixels, (J,) visibility, intrinsics,
        the lifted (J, 3) camera-frame joints, (L, 3) limb directions and (L,) confidences.
        A frame with non-finite lifted input passes through and the next one starts afresh."""
        if not all(np.isfinite(a).all() for a in (joints, dirs, confidence)):
            self.params = None
            return joints
        self._update_bones(joints)
        if self.params is None:
            self.params, self.R_base = inverse(joints, self.lo, self.hi)
            smooth = self.no_smooth
        else:
            smooth = self.smooth
        seen = np.isfinite(uv).all(1) & (vis >= vis_min)
        xn = np.empty((len(uv), 2))  # normalized image coordinates, filled in place
        xn[:, 0] = (uv[:, 0] - K[0, 2]) / K[0, 0]
        xn[:, 1] = (uv[:, 1] - K[1, 2]) / K[1, 1]
        xn = nan_to_num(xn)
        diag = 1.0
        if seen.sum() > 1:  # np.linalg.norm's value and type, without its checks
            box = xn[seen]
            diag = np.float64(vector_length(box.max(0) - box.min(0)))
        w2 = np.where(seen, np.sqrt(np.clip(vis, 0, 1)), 0.0) / (self.w.sigma_2d * diag)
        floor = self.w.confidence_floor
        wd = np.sqrt(floor + (1 - floor) * confidence) / self.direction_scale
        fitted, self.params, self.R_base, self.repaired = fit_frame(
            joints, dirs, self.params, self.R_base, self.geometry, xn, w2, wd, smooth,
            self.prior.means, self.prior.chols, self.prior.log_norm,
            self.prior_scale, self.lo, self.hi, self.w.iterations,
        )  # fmt: skip
        return fitted
