"""Accuracy figures of one clip of 3D joints against a reference, and their bootstrap intervals.

The pipeline's output lives in its own lab frame (Y up only as far as the camera is level,
heading arbitrary), the reference in the calibration's world frame. So every orientation
figure is taken after ONE rotation per clip (``kabsch`` of all the clip's
limb directions onto the reference's), which removes the heading but not a per-frame error.
The vertical error is the angle between the output's Y axis, carried into the world by the
transform the pipeline reports (its camera -> lab matrix and the camera's calibrated pose),
and the true up; without that transform, where the clip rotation carries the Y axis (which
then also holds the pose's own errors). Joint flexion
angles need no rotation. Joints are (T, 17, 3) in ``models.skeleton.JOINTS`` order, NaN
where missing. Used by ``measure_accuracy.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.skeleton import FLIP_JOINTS, JOINTS, LIMB_NAMES, LIMBS, J, unit

COCO_LIMBS = LIMBS[:14]  # the 14 COCO limbs: trunk, shoulders, arms, legs, head (no feet)
LIMB_GROUPS = {  # limbs whose fit decides each kind of swap, as rows of COCO_LIMBS
    "body": np.arange(14),
    "arms": np.array([LIMB_NAMES.index(p) for p in LIMB_NAMES[:14] if "Elbow" in "".join(p)]),
    "legs": np.array([LIMB_NAMES.index(p) for p in LIMB_NAMES[:14] if "Knee" in "".join(p)]),
}
SWAPPED_PARTS = {  # a limb pair's joints below its root (the whole body: every L/R joint)
    "arms": ("Elbow", "Wrist"),
    "legs": ("Knee", "Ankle", "Heel", "BigToe"),
}
# Three-point angles, left and right: knee (hip-knee-ankle), hip (shoulder-hip-knee),
# elbow (shoulder-elbow-wrist).
FLEXIONS = {
    "knee": ("Hip", "Knee", "Ankle"),
    "hip": ("Shoulder", "Hip", "Knee"),
    "elbow": ("Shoulder", "Elbow", "Wrist"),
}
OUTPUT_UP = np.array([0.0, 1.0, 0.0])  # the pipeline's lab frame is Y up


def relabelled(part: str) -> np.ndarray:
    """Joint permutation that exchanges left and right labels of ``part`` (body, arms, legs)."""
    if part == "body":
        return FLIP_JOINTS.copy()
    perm = np.arange(len(JOINTS))
    for name in SWAPPED_PARTS[part]:
        perm[J["L" + name]], perm[J["R" + name]] = J["R" + name], J["L" + name]
    return perm


def limb_units(joints: np.ndarray) -> np.ndarray:
    """(T, 17, 3) joints -> (T, 14, 3) unit COCO limb directions (NaN where a joint is)."""
    return unit(joints[..., COCO_LIMBS[:, 1], :] - joints[..., COCO_LIMBS[:, 0], :])


def kabsch(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation R (3 x 3, det +1) minimising sum |R a_i - b_i|^2 over the finite rows."""
    a, b = a.reshape(-1, 3), b.reshape(-1, 3)
    ok = np.isfinite(a).all(1) & np.isfinite(b).all(1)
    u, _, vt = np.linalg.svd(a[ok].T @ b[ok])
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between unit vectors along the last axis, degrees (NaN propagates)."""
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1.0, 1.0)))


def limb_errors(out_units: np.ndarray, true_units: np.ndarray, R: np.ndarray) -> np.ndarray:
    """(T, 14) angle between each rotated output limb and the reference's, degrees."""
    return angle_deg(out_units @ R.T, true_units)


def flexion(joints: np.ndarray, name: str) -> np.ndarray:
    """(T, 2) three-point angle of ``name`` (FLEXIONS), left then right, degrees."""
    a, b, c = FLEXIONS[name]
    sides = []
    for s in "LR":
        pa, pb, pc = (joints[..., J[s + n], :] for n in (a, b, c))
        sides.append(angle_deg(unit(pa - pb), unit(pc - pb)))
    return np.stack(sides, -1)


def vertical_error(R: np.ndarray, world_up: np.ndarray) -> float:
    """Angle between the output's up axis carried into the world by ``R`` and the true up."""
    return float(angle_deg(R @ OUTPUT_UP, unit(world_up)))


def swapped(out_joints: np.ndarray, true_units: np.ndarray, R: np.ndarray, part: str) -> np.ndarray:
    """(T,) frames whose left/right labels of ``part`` fit the reference worse than the
    exchanged labels: the mean error over that part's limbs drops when they are exchanged."""
    rows = LIMB_GROUPS[part]
    as_is = limb_errors(limb_units(out_joints), true_units, R)[:, rows]
    mirror = limb_errors(limb_units(out_joints[:, relabelled(part)]), true_units, R)[:, rows]
    return np.nanmean(mirror, 1) < np.nanmean(as_is, 1)


def swap_flags(
    out_joints: np.ndarray, true_units: np.ndarray, R: np.ndarray
) -> dict[str, np.ndarray]:
    """(T,) flags of whole-body swaps, and of arm-only and leg-only swaps (frames whose body
    is not swapped as a whole): the kinds a swap repair must undo."""
    body = swapped(out_joints, true_units, R, "body")
    return {"body": body} | {
        part: swapped(out_joints, true_units, R, part) & ~body for part in ("arms", "legs")
    }


@dataclass
class Clip:
    """One clip's per-frame material: everything a figure needs for any subset of frames."""

    out_units: np.ndarray  # (T, 14, 3) output limb directions, lab frame
    true_units: np.ndarray  # (T, 14, 3) reference limb directions, world frame
    flex_diff: dict[str, np.ndarray]  # name -> (T, 2) output minus reference angle, degrees
    swaps: dict[str, np.ndarray]  # swap_flags with the whole clip's rotation
    world_up: np.ndarray
    output_up: np.ndarray | None  # (T, 3) the output's Y axis in the world, when known

    @classmethod
    def of(
        cls,
        out_joints: np.ndarray,
        true_joints: np.ndarray,
        world_up: np.ndarray,
        output_up: np.ndarray | None = None,
    ) -> Clip:
        out_units, true_units = limb_units(out_joints), limb_units(true_joints)
        R = kabsch(out_units, true_units)
        return cls(
            out_units,
            true_units,
            {n: flexion(out_joints, n) - flexion(true_joints, n) for n in FLEXIONS},
            swap_flags(out_joints, true_units, R),
            np.asarray(world_up, float),
            output_up,
        )

    def __len__(self) -> int:
        return len(self.out_units)

    def figures(self, idx: np.ndarray | None = None) -> dict[str, float]:
        """Every figure over the frames ``idx`` (all when None; repeats count again)."""
        idx = np.arange(len(self)) if idx is None else idx
        R = kabsch(self.out_units[idx], self.true_units[idx])
        out = {
            "limb_deg": float(np.nanmean(limb_errors(self.out_units[idx], self.true_units[idx], R)))
        }
        for name, diff in self.flex_diff.items():
            out[f"{name}_rmse_deg"] = float(np.sqrt(np.nanmean(diff[idx] ** 2)))
        if self.output_up is None:
            out["vertical_deg"] = vertical_error(R, self.world_up)
        else:
            out["vertical_deg"] = float(
                np.mean(angle_deg(unit(self.output_up[idx]), unit(self.world_up)))
            )
        for part, flags in self.swaps.items():
            out[f"swap_{part}_pct"] = 100.0 * float(flags[idx].mean())
        return out


def block_resamples(n: int, block: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(resamples, n) frame indices of a moving-block bootstrap: runs of ``block`` consecutive
    frames with random starts, joined and cut to ``n``, so the resamples keep the time
    correlation within a block that an i.i.d. bootstrap would break."""
    block = max(1, min(block, n))
    count = -(-n // block)
    starts = rng.integers(0, n - block + 1, size=(resamples, count))
    return (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :n]


def bootstrap(
    clips: dict[str, Clip], block: int, resamples: int, seed: int
) -> dict[str, dict[str, dict[str, float]]]:
    """Per clip and overall (the mean of the clips), each figure's value and 95% interval.

    Every resample draws each clip's frames anew (stratified by clip) and recomputes each
    figure, the clip rotation included; the interval is the 2.5-97.5 percentile range.
    """
    rng = np.random.default_rng(seed)
    names = [k for k, c in clips.items() if len(c)]
    point = {k: clips[k].figures() for k in names}
    draws: dict[str, list[dict[str, float]]] = {k: [] for k in names}
    for k in names:
        for idx in block_resamples(len(clips[k]), block, resamples, rng):
            draws[k].append(clips[k].figures(idx))
    result = {k: summarise(point[k], draws[k]) for k in names}
    if names:
        overall_point = mean_of(list(point.values()))
        overall_draws = [mean_of([draws[k][b] for k in names]) for b in range(resamples)]
        result["overall"] = summarise(overall_point, overall_draws)
    return result


def mean_of(figures: list[dict[str, float]]) -> dict[str, float]:
    """Figure-wise mean of several clips' figures."""
    return {key: float(np.mean([f[key] for f in figures])) for key in figures[0]}


def summarise(
    point: dict[str, float], draws: list[dict[str, float]]
) -> dict[str, dict[str, float]]:
    """{figure: {"mean", "lo", "hi"}} from the point value and the resampled values."""
    out = {}
    for key, value in point.items():
        lo, hi = np.percentile([d[key] for d in draws], [2.5, 97.5])
        out[key] = {"mean": value, "lo": float(lo), "hi": float(hi)}
    return out
