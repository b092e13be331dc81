"""MediaPipe-like corruption of clean 2D keypoints.

The parameters default to the fit on Pose2Sim's Demo_MultiPerson (models/training/measure_noise.py):
MediaPipe's per-joint jitter scales with the person's size in the image (the diagonal of
the keypoints' bounding box) and is temporally correlated; on top come rare large outliers,
left/right label swaps of arms or legs that last a few frames, and dropouts (occluded or
out-of-frame points, reported with low visibility) that also come in runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from models.arrays import Array, Random, asarray, namespace, norm, zeros
from models.skeleton import FLIP_JOINTS, JOINTS, J

SWAP_GROUPS = {  # joints whose left/right labels MediaPipe swaps together
    "arms": [J[s + p] for s in "LR" for p in ("Elbow", "Wrist")],
    "legs": [J[s + p] for s in "LR" for p in ("Knee", "Ankle", "Heel", "BigToe")],
}


# Fit on Demo_MultiPerson (models/training/measure_noise.py), left/right averaged: the demo's
# left/right asymmetry comes from its camera placement, not from MediaPipe.
MEASURED_SIGMA = {
    "Nose": 0.0151, "Shoulder": 0.0191, "Elbow": 0.0191, "Wrist": 0.0347, "Hip": 0.0183,
    "Knee": 0.0147, "Ankle": 0.0141, "Heel": 0.0124, "BigToe": 0.0227,
}  # fmt: skip


def _default_sigma() -> np.ndarray:
    return np.array([MEASURED_SIGMA[n.removeprefix("L").removeprefix("R")] for n in JOINTS])


@dataclass
class NoiseModel:
    """Corruption parameters; lengths are fractions of the person's 2D bounding-box diagonal."""

    sigma: np.ndarray = field(default_factory=_default_sigma)  # per-joint jitter std
    rho: float = 0.89  # lag-1 autocorrelation of the jitter at 30 fps
    outlier_p: float = 0.0063  # per joint and frame
    outlier_sigma: float = 0.16
    swap_p: float = 0.005  # none seen in the demo; MediaPipe does swap in side views
    swap_run: float = 4.0  # mean length of a swap, frames
    dropout_p: float = 0.035  # fraction of in-image joint-frames reported missing
    dropout_run: float = 6.0
    outside_dropout_p: float = 0.7  # out-of-image joints reported missing
    vis_good: tuple[float, float] = (0.89, 0.19)  # visibility mean/std of a kept joint
    vis_min: float = 0.3  # below this a joint counts as missing (as in stages/markers.py)


def markov_runs(rng: Random, shape: tuple[int, ...], p: float, run: float, like: Array) -> Array:
    """Boolean (B, T, ...) on-runs of mean length ``run`` covering a fraction ``p`` of steps
    (arrays of ``like``'s kind and device)."""
    if p <= 0:
        return zeros(shape, "bool", like)
    off = 1.0 / run
    on = min(1.0, p * off / max(1 - p, 1e-9))
    state = rng.random((shape[0],) + shape[2:]) < p
    out = []
    for _ in range(shape[1]):
        out.append(state)
        u = rng.random(state.shape)
        state = namespace(like).where(state, u >= off, u < on)
    return namespace(like).stack(out, 1)


def person_scale(uv: Array) -> Array:
    """Bounding-box diagonal of (..., J, 2) keypoints: the unit of every noise length."""
    xp = namespace(uv)
    return norm(xp.amax(uv, -2) - xp.amin(uv, -2))


def corrupt(rng: Random, uv: Array, size: Array, noise: NoiseModel) -> tuple[Array, Array]:
    """(B, T, J, 2) clean pixels, (B, 2) image sizes -> (noisy pixels, visibility).

    numpy arrays with a numpy Generator, or tensors with pairs_torch.TorchRandom."""
    xp = namespace(uv)
    b, t, n, _ = uv.shape
    scale = person_scale(uv)[..., None, None]
    sigma = asarray(noise.sigma, uv)[:, None]
    white = rng.normal(size=uv.shape)
    jitter = [white[:, 0]]
    for k in range(1, t):  # AR(1) with unit marginal variance
        jitter.append(noise.rho * jitter[-1] + math.sqrt(1 - noise.rho**2) * white[:, k])
    out = uv + xp.stack(jitter, 1) * sigma * scale
    outlier = rng.random((b, t, n)) < noise.outlier_p
    out += outlier[..., None] * rng.normal(size=uv.shape) * noise.outlier_sigma * scale
    for group in SWAP_GROUPS.values():
        swap = markov_runs(rng, (b, t), noise.swap_p, noise.swap_run, uv)
        g = np.array(group)
        out[:, :, g] = xp.where(swap[..., None, None], out[:, :, FLIP_JOINTS[g]], out[:, :, g])
    outside = ((uv < 0) | (uv > size[:, None, None])).any(-1)
    missing = markov_runs(rng, (b, t, n), noise.dropout_p, noise.dropout_run, uv)
    missing |= outside & (rng.random((b, t, n)) < noise.outside_dropout_p)
    mean, std = noise.vis_good
    vis = xp.clip(rng.normal(mean, std, (b, t, n)), noise.vis_min, 1.0)
    vis = xp.where(missing, rng.uniform(0, noise.vis_min, (b, t, n)), vis)
    out += missing[..., None] * rng.normal(size=uv.shape) * 3 * sigma * scale
    return out, vis
