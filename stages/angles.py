"""Angles: ISB joint angles of 12 joint groups from the 64 augmented markers.

Segment frames (ISB axes: X anterior, Y superior, Z right) are built from the markers; each
joint is the rotation of a child frame relative to its parent (the pelvis relative to the
lab), split into Cardan angles and reported in degrees with the signs of
docs/joint_angles.md. Every angle stays in its anatomical range (core/joint_limits.py): of
the two equivalent Cardan solutions each frame takes the one inside the ranges, each angle
as its value in the 360-degree window centred on its range; an angle outside its range
even so is NaN. Past frames of the same source (never future ones, so live and offline
runs give the same numbers) only break ties, damp the first angle near gimbal lock so
marker noise cannot flip the solution, and count the whole turns of the one unbounded
angle, the pelvis heading, from slow motion only.

Each angle's confidence (``angles_confidence``, models/confidence.py) is that of the least
sure marker the segment frames it compares are built from (``ANGLE_MARKERS``), 0 where the
angle is NaN.

One numba kernel does a whole frame in a few microseconds; it is compiled in ``setup`` and
cached on disk. Everything it runs lives in this file and every table that depends on
another module (marker order) is passed as an argument, because numba's on-disk cache only
notices changes to the file of the cached function.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np
from numba import njit

from core.angle_set import ANGLE_COLUMNS, ANGLE_GROUPS, CARDAN_GROUPS, HINGE_GROUPS
from core.joint_limits import JOINT_RANGES
from core.marker_sets import MARKERS_64
from core.packet import Packet
from core.stage import Stage

AX_X, AX_Y, AX_Z = 0, 1, 2
ZXY = (AX_Z, AX_X, AX_Y)  # ISB joint coordinate system: flexion, floating axis, long axis
YXZ = (AX_Y, AX_X, AX_Z)  # pelvis in the lab: rotation, obliquity, tilt (Baker 2001)

# A segment whose axes are shorter than this or closer than this to parallel is not built.
MIN_AXIS_M = 0.01  # below 1 cm an axis direction is dominated by marker noise
MIN_AXIS_SIN = math.sin(math.radians(30.0))  # anatomical axis pairs are ~90 deg apart


class FrameDef(NamedTuple):
    """A segment frame: an exact axis and a hint axis (made perpendicular to it), each
    running from one point to another, a point being one marker or the midpoint of two."""

    segment: str
    exact_axis: int
    exact_from: tuple[str, ...]
    exact_to: tuple[str, ...]
    hint_axis: int
    hint_from: tuple[str, ...]
    hint_to: tuple[str, ...]


FRAME_DEFS: tuple[FrameDef, ...] = (
    # Wu 2002: Z along the ASIS, X toward the mid-ASIS from the mid-PSIS.
    FrameDef("pelvis", AX_Z, ("L.ASIS_study",), ("r.ASIS_study",),
             AX_X, ("r.PSIS_study", "L.PSIS_study"), ("r.ASIS_study", "L.ASIS_study")),
    # Hip-to-shoulder trunk: Y from the mid hip centres to the mid acromia, Z along acromia.
    FrameDef("trunk", AX_Y, ("RHJC_study", "LHJC_study"), ("r_shoulder_study", "L_shoulder_study"),
             AX_Z, ("L_shoulder_study",), ("r_shoulder_study",)),
    # Wu 2002: Y from the mid epicondyles to the hip centre, Z along the epicondyles.
    FrameDef("femur_r", AX_Y, ("r_knee_study", "r_mknee_study"), ("RHJC_study",),
             AX_Z, ("r_mknee_study",), ("r_knee_study",)),
    FrameDef("femur_l", AX_Y, ("L_knee_study", "L_mknee_study"), ("LHJC_study",),
             AX_Z, ("L_knee_study",), ("L_mknee_study",)),
    # Wu 2002: Z along the malleoli, Y toward the mid femoral epicondyles.
    FrameDef("tibia_r", AX_Z, ("r_mankle_study",), ("r_ankle_study",),
             AX_Y, ("r_ankle_study", "r_mankle_study"), ("r_knee_study", "r_mknee_study")),
    FrameDef("tibia_l", AX_Z, ("L_ankle_study",), ("L_mankle_study",),
             AX_Y, ("L_ankle_study", "L_mankle_study"), ("L_knee_study", "L_mknee_study")),
    # Foot: X from heel to toe, Z toward the right (the 5th metatarsal head on the right).
    FrameDef("foot_r", AX_X, ("r_calc_study",), ("r_toe_study",),
             AX_Z, ("r_toe_study",), ("r_5meta_study",)),
    FrameDef("foot_l", AX_X, ("L_calc_study",), ("L_toe_study",),
             AX_Z, ("L_5meta_study",), ("L_toe_study",)),
    # Wu 2005 option 1: Y from the mid epicondyles to the glenohumeral centre (video keypoint).
    FrameDef("humerus_r", AX_Y, ("r_lelbow_study", "r_melbow_study"), ("RShoulder",),
             AX_Z, ("r_melbow_study",), ("r_lelbow_study",)),
    FrameDef("humerus_l", AX_Y, ("L_lelbow_study", "L_melbow_study"), ("LShoulder",),
             AX_Z, ("L_lelbow_study",), ("L_melbow_study",)),
)  # fmt: skip
SEGMENTS: tuple[str, ...] = tuple(d.segment for d in FRAME_DEFS)
PELVIS, TRUNK, FEMUR_R, FEMUR_L, TIBIA_R, TIBIA_L, FOOT_R, FOOT_L, HUMERUS_R, HUMERUS_L = range(
    len(SEGMENTS)
)
LAB = -1  # parent of the pelvis


class CardanJoint(NamedTuple):
    """A 3-DOF joint: child frame relative to parent, its sequence and column signs."""

    name: str
    parent: int  # index in SEGMENTS, or LAB
    child: int
    sequence: tuple[int, int, int]  # intrinsic (body-fixed) rotation axes, in order
    signs: tuple[int, int, int]  # multiply the Z, X, Y angles into flex, abd, rot


_CARDAN_SPECS = {  # parent, child, sequence, signs per group of core/angle_set.py
    "pelvis": (LAB, PELVIS, YXZ, (-1, 1, 1)),
    "trunk": (PELVIS, TRUNK, ZXY, (-1, 1, 1)),
    "hip_r": (PELVIS, FEMUR_R, ZXY, (1, -1, 1)),
    "hip_l": (PELVIS, FEMUR_L, ZXY, (1, 1, -1)),
    "knee_r": (FEMUR_R, TIBIA_R, ZXY, (-1, -1, 1)),
    "knee_l": (FEMUR_L, TIBIA_L, ZXY, (-1, 1, -1)),
    "ankle_r": (TIBIA_R, FOOT_R, ZXY, (1, -1, 1)),
    "ankle_l": (TIBIA_L, FOOT_L, ZXY, (1, 1, -1)),
    "shoulder_r": (TRUNK, HUMERUS_R, ZXY, (1, -1, 1)),
    "shoulder_l": (TRUNK, HUMERUS_L, ZXY, (1, 1, -1)),
}
CARDAN_JOINTS: tuple[CardanJoint, ...] = tuple(
    CardanJoint(name, *_CARDAN_SPECS[name]) for name in CARDAN_GROUPS
)


class ElbowJoint(NamedTuple):
    """Elbow flexion: the forearm long axis (Wu 2005: mid styloids -> mid epicondyles)
    in the humerus frame."""

    name: str
    humerus: int
    styloids: tuple[str, str]
    epicondyles: tuple[str, str]


_ELBOW_SPECS = {  # humerus, styloids, epicondyles per group of core/angle_set.py
    "elbow_r": (HUMERUS_R, ("r_lwrist_study", "r_mwrist_study"),
                ("r_lelbow_study", "r_melbow_study")),
    "elbow_l": (HUMERUS_L, ("L_lwrist_study", "L_mwrist_study"),
                ("L_lelbow_study", "L_melbow_study")),
}  # fmt: skip
ELBOWS: tuple[ElbowJoint, ...] = tuple(ElbowJoint(n, *_ELBOW_SPECS[n]) for n in HINGE_GROUPS)

# Lab frame of a subject standing in the anatomical pose facing the camera: anterior = lab +Z
# (toward the camera), superior = lab +Y, right = lab -X (the image's left).
LAB_REFERENCE = np.column_stack(([0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]))

# Gimbal lock: the middle angle at +-90 degrees, where the first and last axes coincide.
GIMBAL_EPS = 1e-12  # cos(middle angle) below this: exactly in the lock
LOCK_SOFTNESS = math.sin(math.radians(2.0))  # half-weight distance of the first angle's update
NEAR_LOCK_COS = 3.0 * LOCK_SOFTNESS  # within ~6 degrees of the lock: damped first angle
# An unbounded angle (the pelvis heading) counts whole turns only from slow motion: a step
# faster than MAX_TURN_RATE is a jump (a swap, a re-detection: MediaPipe's flips turn the
# heading by ~180 deg within a few frames), and turns count again only after SETTLE_S
# without one, since jumps come in bursts. A dancer's pirouette turns about 720 deg/s.
MAX_TURN_RATE = math.radians(720.0)  # per second of media time
SETTLE_S = 2.0
_COLUMN_OF_AXIS = np.array([1, 2, 0])  # X -> abd, Y -> rot, Z -> flex


def _angle_markers() -> np.ndarray:
    """(len(ANGLE_COLUMNS), k) rows of MARKERS_64 each angle's segment frames are built
    from (a shorter list padded with its first row)."""
    frame_markers = {
        i: {*d.exact_from, *d.exact_to, *d.hint_from, *d.hint_to} for i, d in enumerate(FRAME_DEFS)
    }
    per_group = {
        j.name: frame_markers[j.child] | (frame_markers[j.parent] if j.parent != LAB else set())
        for j in CARDAN_JOINTS
    } | {e.name: frame_markers[e.humerus] | set(e.styloids) | set(e.epicondyles) for e in ELBOWS}
    rows = [
        sorted(MARKERS_64.index(m) for m in per_group[group])
        for group, columns in ANGLE_GROUPS.items()
        for _ in columns
    ]
    width = max(map(len, rows))
    return np.array([r + r[:1] * (width - len(r)) for r in rows])


ANGLE_MARKERS = _angle_markers()


def _point(names: tuple[str, ...]) -> tuple[int, int]:
    """Marker indices whose midpoint is the point (one marker: the same index twice)."""
    return MARKERS_64.index(names[0]), MARKERS_64.index(names[-1])


def _kernel_tables() -> tuple[np.ndarray, ...]:
    """The frame and joint definitions as arrays, in the order ``angles_kernel`` takes."""
    return (
        np.array(
            [
                [_point(p) for p in (d.exact_from, d.exact_to, d.hint_from, d.hint_to)]
                for d in FRAME_DEFS
            ]
        ),
        np.array([(d.exact_axis, d.hint_axis) for d in FRAME_DEFS]),
        np.array([j.parent for j in CARDAN_JOINTS]),
        np.array([j.child for j in CARDAN_JOINTS]),
        np.array([j.sequence for j in CARDAN_JOINTS]),
        np.array([j.signs for j in CARDAN_JOINTS], dtype=np.float64),
        np.array([e.humerus for e in ELBOWS]),
        np.array([[_point(e.styloids), _point(e.epicondyles)] for e in ELBOWS]),
        LAB_REFERENCE,
        np.array(
            [
                [
                    _raw_range(ANGLE_GROUPS[j.name][col], j.signs[col])
                    for col in _COLUMN_OF_AXIS[list(j.sequence)]
                ]
                for j in CARDAN_JOINTS
            ]
        ),
        np.array([_raw_range(ANGLE_GROUPS[e.name][0], 1) for e in ELBOWS]),
    )


def _raw_range(column: str, sign: int) -> tuple[float, float]:
    """The column's anatomical range (core/joint_limits.py) in radians of the right-hand
    angle, of which the column is ``sign`` times; (-inf, inf) where it is unbounded."""
    bounds = JOINT_RANGES[column]
    if bounds is None:
        return -math.inf, math.inf
    low, high = math.radians(bounds[0]), math.radians(bounds[1])
    return (low, high) if sign > 0 else (-high, -low)


@njit(cache=True)
def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    out = np.empty(3)
    out[0] = a[1] * b[2] - a[2] * b[1]
    out[1] = a[2] * b[0] - a[0] * b[2]
    out[2] = a[0] * b[1] - a[1] * b[0]
    return out


@njit(cache=True)
def _norm(a: np.ndarray) -> float:
    return math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2])


@njit(cache=True)
def _vector(m: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """From the midpoint of markers ``start`` to the midpoint of markers ``end``."""
    return 0.5 * (m[end[0]] + m[end[1]] - m[start[0]] - m[start[1]])


@njit(cache=True)
def build_frame(
    exact: np.ndarray, hint: np.ndarray, e_axis: int, h_axis: int, out: np.ndarray
) -> None:
    """Fill ``out`` (columns = axes) with the frame whose ``e_axis`` is along ``exact`` and
    whose ``h_axis`` lies in the plane of ``exact`` and ``hint``, on the side of ``hint``;
    all NaN if a vector is missing, too short, or too close to parallel to the other."""
    out[:] = np.nan
    le = _norm(exact)
    lh = _norm(hint)
    if not (le >= MIN_AXIS_M and lh >= MIN_AXIS_M):  # also rejects NaN
        return
    hint_is_next = h_axis == (e_axis + 1) % 3
    third = _cross(exact, hint) if hint_is_next else _cross(hint, exact)
    lt = _norm(third)
    if not (lt >= MIN_AXIS_SIN * le * lh):
        return
    e = exact / le
    t = third / lt
    out[:, e_axis] = e
    out[:, h_axis] = _cross(t, e) if hint_is_next else _cross(e, t)
    out[:, 3 - e_axis - h_axis] = t


@njit(cache=True)
def _wrap(x: float) -> float:
    """``x`` in [-pi, pi)."""
    return x - 2.0 * math.pi * math.floor((x + math.pi) / (2.0 * math.pi))


@njit(cache=True)
def _rel(parent: np.ndarray, child: np.ndarray) -> np.ndarray:
    """``parent.T @ child`` without BLAS."""
    out = np.zeros((3, 3))
    for r in range(3):
        for c in range(3):
            for k in range(3):
                out[r, c] += parent[k, r] * child[k, c]
    return out


@njit(cache=True)
def _axis_rotation(axis: int, angle: float) -> np.ndarray:
    out = np.eye(3)
    a1 = (axis + 1) % 3
    a2 = (axis + 2) % 3
    c = math.cos(angle)
    s = math.sin(angle)
    out[a1, a1] = c
    out[a2, a2] = c
    out[a2, a1] = s
    out[a1, a2] = -s
    return out


@njit(cache=True)
def _in_window(x: float, low: float, high: float) -> float:
    """``x`` moved by whole turns into the turn centred on its range ``[low, high]``: there an
    angle has one value, inside the range if it can be at all. Unbounded: ``x`` unchanged."""
    if math.isinf(low):
        return x
    mid = 0.5 * (low + high)
    return mid + _wrap(x - mid)


@njit(cache=True)
def _anatomical_branch(
    a: float, b: float, c: float, ranges: np.ndarray, ref: np.ndarray, out: np.ndarray
) -> None:
    """Of (a, b, c) and (a + pi, pi - b, c + pi), each angle in its window, the one that lies
    least outside ``ranges`` (radians summed over the angles); of two that do equally well
    (both inside: only a shoulder raised past 90 or turned near its limits), the one
    closest to ``ref``."""
    best_outside = np.inf
    best_distance = np.inf
    cand = np.empty(3)
    for flip in range(2):
        cand[0], cand[1], cand[2] = (a, b, c) if flip == 0 else (a + np.pi, np.pi - b, c + np.pi)
        outside = 0.0
        distance = 0.0
        for n in range(3):
            cand[n] = _in_window(cand[n], ranges[n, 0], ranges[n, 1])
            outside += max(ranges[n, 0] - cand[n], cand[n] - ranges[n, 1], 0.0)
            distance += _wrap(cand[n] - ref[n]) ** 2
        if outside < best_outside or (outside == best_outside and distance < best_distance):
            best_outside = outside
            best_distance = distance
            out[:] = cand


@njit(cache=True)
def _solve_given_first(rot: np.ndarray, seq: np.ndarray, a: float, out: np.ndarray) -> None:
    """Middle and last angles for a chosen first angle ``a``: the middle angle is taken on
    the full circle, so it runs on past 90 degrees, no flip."""
    i, j, k = seq[0], seq[1], seq[2]
    held = _rel(_axis_rotation(i, a), rot)
    j1 = (j + 1) % 3
    j2 = (j + 2) % 3
    if k == j1:
        b = math.atan2(held[j2, k], held[j1, k])
    else:
        b = math.atan2(-held[j1, k], held[j2, k])
    rest = _rel(_axis_rotation(j, b), held)
    k1 = (k + 1) % 3
    k2 = (k + 2) % 3
    out[0] = a
    out[1] = b
    out[2] = math.atan2(rest[k2, k1], rest[k1, k1])


@njit(cache=True)
def cardan_anatomical(
    rot: np.ndarray,
    seq: np.ndarray,
    ranges: np.ndarray,
    prev: np.ndarray,
    has_prev: bool,
    out: np.ndarray,
) -> None:
    """Angles (a, b, c) in radians with ``rot = R_i(a) R_j(b) R_k(c)``, each in the window of
    its range (``ranges``: (3, 2), radians; -inf, inf for an unbounded angle).

    Far from gimbal lock: the anatomical solution (``_anatomical_branch``), continuity with
    ``prev`` (the neutral pose without one) only breaking ties. Near gimbal lock only a +- c
    is well defined: the first angle follows its new value with a weight that falls to zero
    at the lock and the other two are solved for it, so noise there cannot throw the
    angles onto the other solution.
    """
    i, j, k = seq[0], seq[1], seq[2]
    e = 1.0 if j == (i + 1) % 3 else -1.0  # +1 for cyclic sequences (XYZ, YZX, ZXY)
    ref = prev if has_prev else np.zeros(3)
    cos_b = math.hypot(rot[k, k], rot[j, k])
    a_target = ref[0]
    if cos_b > GIMBAL_EPS:
        a = math.atan2(-e * rot[j, k], rot[k, k])
        b = math.atan2(e * rot[i, k], cos_b)
        c = math.atan2(-e * rot[i, j], rot[i, i])
        _anatomical_branch(a, b, c, ranges, ref, out)
        if cos_b >= NEAR_LOCK_COS or not has_prev:
            return
        a_target = out[0]
    weight = cos_b**2 / (cos_b**2 + LOCK_SOFTNESS**2)
    _solve_given_first(rot, seq, ref[0] + weight * _wrap(a_target - ref[0]), out)
    for n in range(3):
        out[n] = _in_window(out[n], ranges[n, 0], ranges[n, 1])


@njit(cache=True)
def _unwrap(
    x: float, prev: float, turns: np.ndarray, has_prev: bool, jumped: bool, dt: float
) -> float:
    """An unbounded angle ``x``, ``dt`` seconds after the value ``prev``, in whole turns.
    ``turns`` holds the angle counted from slow motion only (``turns[0]``) and the seconds
    since the last jump (``turns[1]``); both are updated. A slow step (up to
    ``MAX_TURN_RATE * dt``, not ``jumped``: a swap repair began or ended) at least
    ``SETTLE_S`` after the last jump is motion, counted; otherwise the angle takes its
    value nearest the counted one, so a jump and its return cancel instead of adding a
    turn."""
    if not has_prev:
        turns[0] = _wrap(x)
        turns[1] = SETTLE_S
        return turns[0]
    step = _wrap(x - prev)
    slow = abs(step) <= MAX_TURN_RATE * dt and not jumped
    turns[1] = turns[1] + dt if slow else 0.0
    if slow and turns[1] >= SETTLE_S:
        turns[0] += step
        return prev + step
    return turns[0] + _wrap(x - turns[0])


@njit(cache=True)
def angles_kernel(
    markers: np.ndarray,
    tables: tuple,
    state: np.ndarray,
    turns: np.ndarray,
    valid: np.ndarray,
    reanchor: np.ndarray,
    times: np.ndarray,
    time_s: float,
    out: np.ndarray,
) -> None:
    """Fill ``out`` (ANGLE_COLUMNS, degrees) from ``markers`` (64, 3): NaN per joint that
    cannot be built and per angle outside its range. Per Cardan joint, ``state`` holds the
    last angles (radians, in their windows; unbounded ones unwrapped), ``turns`` what
    ``_unwrap`` keeps of the unbounded ones, ``valid`` whether these exist, ``reanchor``
    whether the next frame must ignore them (cleared here) and ``times`` the media time of
    their frame (``time_s`` is this frame's). ``tables`` comes from ``_kernel_tables``."""
    frame_points, frame_axes, parents, children, sequences, signs = tables[:6]
    elbow_humerus, elbow_points, lab, ranges, elbow_ranges = tables[6:]
    frames = np.empty((frame_points.shape[0], 3, 3))
    for s in range(frame_points.shape[0]):
        pts = frame_points[s]
        exact = _vector(markers, pts[0], pts[1])
        hint = _vector(markers, pts[2], pts[3])
        build_frame(exact, hint, frame_axes[s, 0], frame_axes[s, 1], frames[s])
    out[:] = np.nan
    angles = np.empty(3)
    for jt in range(parents.shape[0]):
        parent = lab if parents[jt] < 0 else frames[parents[jt]]
        child = frames[children[jt]]
        if np.isnan(parent[0, 0]) or np.isnan(child[0, 0]):
            continue
        continuous = valid[jt] and not reanchor[jt]
        cardan_anatomical(
            _rel(parent, child), sequences[jt], ranges[jt], state[jt], continuous, angles
        )
        for n in range(3):
            low, high = ranges[jt, n, 0], ranges[jt, n, 1]
            if math.isinf(low):
                angles[n] = _unwrap(
                    angles[n],
                    state[jt, n],
                    turns[jt, n],
                    valid[jt],
                    reanchor[jt],
                    time_s - times[jt],
                )
            col = _COLUMN_OF_AXIS[sequences[jt, n]]
            if low <= angles[n] <= high:
                out[3 * jt + col] = signs[jt, col] * math.degrees(angles[n])
        state[jt, :] = angles
        valid[jt] = True
        reanchor[jt] = False
        times[jt] = time_s
    n_cardan = parents.shape[0]
    for el in range(elbow_humerus.shape[0]):
        hum = frames[elbow_humerus[el]]
        y = _vector(markers, elbow_points[el, 0], elbow_points[el, 1])
        length = _norm(y)
        if np.isnan(hum[0, 0]) or not length >= MIN_AXIS_M:
            continue
        # Flexion about the humerus Z axis = the first angle of ZXY; it depends on the
        # forearm's long axis only, so pronation and the carrying angle do not leak into it.
        # A hinge has one anatomical value per direction: no memory of past frames.
        ax = (y[0] * hum[0, 0] + y[1] * hum[1, 0] + y[2] * hum[2, 0]) / length
        ay = (y[0] * hum[0, 1] + y[1] * hum[1, 1] + y[2] * hum[2, 1]) / length
        if math.hypot(ax, ay) < MIN_AXIS_SIN:  # forearm along the epicondyle axis
            continue
        low, high = elbow_ranges[el, 0], elbow_ranges[el, 1]
        flexion = _in_window(math.atan2(-ax, ay), low, high)
        if low <= flexion <= high:
            out[3 * n_cardan + el] = math.degrees(flexion)


class _SourceState:
    """Memory of one source, per Cardan joint: last angles, turns of the unbounded ones
    (``_unwrap``), whether they exist, whether to ignore them once, their media time;
    and the swap repair of the last frame."""

    def __init__(self) -> None:
        n = len(CARDAN_JOINTS)
        self.angles = np.zeros((n, 3))
        self.turns = np.zeros((n, 3, 2))
        self.valid = np.zeros(n, dtype=np.bool_)
        self.reanchor = np.zeros(n, dtype=np.bool_)
        self.times = np.zeros(n)
        self.swap_repaired = ""

    def kernel_args(self) -> tuple[np.ndarray, ...]:
        return self.angles, self.turns, self.valid, self.reanchor, self.times


class JointAngles(Stage):
    """Adds ``data["angles"]``: float64 (len(ANGLE_COLUMNS),) degrees, NaN where a joint's
    segments cannot be built in this frame or an angle lies outside its anatomical range.
    Continuity state is kept per source across NaN gaps, ignored once after the swap
    repair (``meta["swap_repaired"]``) changes and dropped by ``reset``."""

    name = "angles"

    def __init__(self) -> None:
        self._tables = _kernel_tables()
        self._states: dict[str, _SourceState] = {}

    def setup(self, config: Mapping[str, Any]) -> None:
        # Compile (or load from numba's cache) now, so no frame pays for it.
        state = _SourceState()
        markers = np.full((len(MARKERS_64), 3), np.nan)
        out = np.empty(len(ANGLE_COLUMNS))
        angles_kernel(markers, self._tables, *state.kernel_args(), 0.0, out)

    def process(self, packet: Packet) -> Packet:
        markers = packet.data.get("markers_64")
        if markers is None:
            raise ValueError("angles needs data['markers_64']: augment must run before angles")
        if markers.shape != (len(MARKERS_64), 3):
            raise ValueError(f"markers_64 must be (64, 3), got {markers.shape}")
        state = self._states.get(packet.source_id)
        if state is None:
            state = self._states[packet.source_id] = _SourceState()
        swap = packet.meta.get("swap_repaired", "")
        if swap != state.swap_repaired:  # labels just changed: the past must not hold a flip
            state.reanchor[:] = True
            state.swap_repaired = swap
        out = np.empty(len(ANGLE_COLUMNS))
        # A writable copy: arrays decoded from a socket are read-only, and numba would
        # compile a second kernel for read-only input.
        markers = np.array(markers, dtype=np.float64, order="C")
        time_s = float(packet.media_time_s)
        angles_kernel(markers, self._tables, *state.kernel_args(), time_s, out)
        packet.data["angles"] = out
        confidence = np.zeros(len(ANGLE_COLUMNS))
        if "markers_64_confidence" in packet.data:
            confidence = packet.data["markers_64_confidence"][ANGLE_MARKERS].min(axis=1)
        confidence[np.isnan(out)] = 0.0
        packet.data["angles_confidence"] = confidence
        return packet

    def reset(self, source_id: str | None = None) -> None:
        if source_id is None:
            self._states.clear()
        else:
            self._states.pop(source_id, None)
