"""Learn the kinematic fit's joint-angle prior from real motion capture.

``uv run python -m models.training.fit_pose_prior [--components 8] [--out PATH]``

Every training-subject frame (models/training/mocap.split; every ``--stride``-th frame, and
its left/right mirror image) is read back into the fit's own parameters
(models/kinematic_model.inverse); a Gaussian mixture (EM, full covariances) is fitted to
the 26 joint angles, and the median heel-ankle-toe angle gives the foot's shape. The
held-out subjects report the mean log density next to the training subjects' and the
share of their frames the joint ranges hold (every angle inside core/joint_limits.py).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from models.kinematic_model import LIMITED, PARAM_NAMES, POSE, bounds, inverse
from models.pose_prior import PRIOR_PATH, PosePrior
from models.skeleton import FLIP_JOINTS, J
from models.training.mocap import Clip, load_clips, split
from models.training.pairs import MIRROR_X, pose_balance_weights

REG = 1e-3  # rad^2 added to each covariance's diagonal (about 2 degrees)
FREE_VARIANCE = 1e6  # rad^2: an angle left out of the prior (its marginal is what remains)


def leave_out(covs: np.ndarray, free: list[int]) -> np.ndarray:
    """Covariances whose ``free`` angles are independent and unbounded: the precision of
    the others is then that of their marginal, so the prior no longer speaks of ``free``."""
    out = covs.copy()
    out[:, free, :] = 0.0
    out[:, :, free] = 0.0
    out[:, free, free] = FREE_VARIANCE
    return out


def clip_frames(clips: list[Clip], stride: int, mirror: bool) -> np.ndarray:
    """(N, J, 3) every ``stride``-th frame (and its mirror image)."""
    out = []
    for clip in clips:
        frames = clip.joints[::stride].astype(np.float64)
        out.append(frames)
        if mirror:  # x -> -x and left <-> right labels: the same motion done mirrored
            out.append(frames[:, FLIP_JOINTS] * MIRROR_X)
    return np.concatenate(out)


def clip_poses(frames: np.ndarray) -> np.ndarray:
    """(N, J, 3) frames -> (N, 26) joint angles of the fit's skeleton."""
    lo, hi = bounds()
    return np.array([inverse(np.ascontiguousarray(X), lo, hi)[0][POSE] for X in frames])


def foot_angle(clips: list[Clip]) -> float:
    """Median heel-ankle-toe angle (rad) over both feet of every frame."""
    angles = []
    for clip in clips:
        for side in "LR":
            a = clip.joints[:, J[side + "Ankle"]]
            h, t = clip.joints[:, J[side + "Heel"]] - a, clip.joints[:, J[side + "BigToe"]] - a
            cos = (h * t).sum(-1) / np.linalg.norm(h, axis=-1) / np.linalg.norm(t, axis=-1)
            angles.append(np.arccos(np.clip(cos, -1, 1)))
    return float(np.median(np.concatenate(angles)))


def fit_mixture(
    x: np.ndarray, k: int, iterations: int, seed: int = 0, sample_w: np.ndarray | None = None
) -> tuple:
    """EM for a full-covariance Gaussian mixture: (weights, means, covariances); each row
    of ``x`` counts ``sample_w`` times (default once)."""
    rng = np.random.default_rng(seed)
    n, d = x.shape
    sample_w = np.ones(n) if sample_w is None else sample_w * n / sample_w.sum()
    means = x[rng.choice(n, k, replace=False)]
    covs = np.repeat(np.cov(x.T)[None], k, 0)
    weights = np.full(k, 1 / k)
    for _ in range(iterations):
        prior = PosePrior.from_mixture(weights, means, covs, 0.0)
        diff = np.einsum("kij,nkj->nki", prior.chols, x[:, None] - means)
        log_r = prior.log_norm - 0.5 * (diff**2).sum(-1)
        log_r -= log_r.max(1, keepdims=True)
        resp = np.exp(log_r)
        resp /= resp.sum(1, keepdims=True)
        resp *= sample_w[:, None]
        mass = resp.sum(0) + 1e-9
        weights = mass / n
        means = (resp.T @ x) / mass[:, None]
        for c in range(k):
            centred = x - means[c]
            covs[c] = (resp[:, c, None] * centred).T @ centred / mass[c] + REG * np.eye(d)
    return weights, means, covs


def within_limits(poses: np.ndarray) -> float:
    """Share of poses with every limited angle inside its range."""
    lo, hi = bounds()
    lo, hi = lo[POSE], hi[POSE]
    tol = 1e-9
    return float(((poses >= lo - tol) & (poses <= hi + tol)).all(1).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--components", type=int, default=8)
    ap.add_argument("--iterations", type=int, default=60)
    ap.add_argument("--stride", type=int, default=3, help="use every n-th mocap frame")
    ap.add_argument("--out", type=Path, default=PRIOR_PATH)
    ap.add_argument(
        "--free",
        nargs="*",
        default=["ankle", "head"],
        help="angle-name prefixes the prior leaves out (mocap feet, head differ from MediaPipe's)",
    )
    ap.add_argument(
        "--pose-balance",
        action="store_true",
        help="weigh frames to flatten knee and elbow angles (models/training/pairs.py)",
    )
    args = ap.parse_args()
    train, val = split(load_clips())
    frames = clip_frames(train, args.stride, mirror=True)
    x = clip_poses(frames)
    x_val = clip_poses(clip_frames(val, args.stride, mirror=False))
    sample_w = pose_balance_weights(frames) if args.pose_balance else None
    free = [i for i, n in enumerate(PARAM_NAMES[POSE]) if n.startswith(tuple(args.free))]
    weights, means, covs = fit_mixture(np.delete(x, free, 1), args.components, args.iterations,
                                       sample_w=sample_w)  # fmt: skip
    kept = [i for i in range(x.shape[1]) if i not in free]
    full_means = np.zeros((len(weights), x.shape[1]))
    full_means[:, kept] = means
    full_covs = np.zeros((len(weights), x.shape[1], x.shape[1]))
    full_covs[:, np.ix_(kept, kept)[0], np.ix_(kept, kept)[1]] = covs
    full_covs = leave_out(full_covs, free)
    modelled = PosePrior.from_mixture(weights, means, covs, 0.0)  # the kept angles alone
    prior = PosePrior.from_mixture(weights, full_means, full_covs, foot_angle(train))
    prior.save(args.out)
    lo, hi = bounds()
    outside = {
        name: round(float(((x[:, i - 6] < lo[i]) | (x[:, i - 6] > hi[i])).mean()), 4)
        for i, name in enumerate(PARAM_NAMES) if name in LIMITED
    }  # fmt: skip
    report = {
        "train_frames": len(x), "val_frames": len(x_val),
        "foot_angle_deg": round(float(np.degrees(prior.foot_angle)), 2),
        "modelled_angles": len(kept),
        "log_density_train": round(float(modelled.log_density(x[:, kept]).mean()), 2),
        "log_density_val": round(float(modelled.log_density(x_val[:, kept]).mean()), 2),
        "val_within_limits": round(within_limits(x_val), 4),
        "train_outside_limits_per_angle": {k: v for k, v in outside.items() if v > 0},
    }  # fmt: skip
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
