"""Network input from 2D keypoints: one feature row per limb (graph node).

Shared by training (models/training/pairs.py) and inference (models/pof_onnx.py) so both see the
same numbers. Pixels become normalized camera rays (K^-1), because a limb's camera-frame
orientation depends on where it sits in the field of view, not on the image size. Rays
are centred on the mid-hip and divided by the person's ray-space size; the mid-hip ray
and the log size are kept as inputs (perspective and distance cues). Missing joints
(visibility under ``vis_min``) are zeroed and flagged by their visibility.

Temporal models see a causal window: each limb's row is its features in the last
``window`` frames, oldest first (``window_features``). Depth is ambiguous in one frame but
much less so in motion; the window's frames before a track's first repeat that first frame,
exactly what the inference wrapper does after a reset.
"""

from __future__ import annotations

import numpy as np

from models.skeleton import HIPS, LIMBS

N_FEATURES = 11


def limb_features(
    uv: np.ndarray, vis: np.ndarray, K: np.ndarray, vis_min: float = 0.3
) -> np.ndarray:
    """(..., J, 2) pixels, (..., J) visibility, (..., 3, 3) intrinsics -> (..., L, 11) float32.

    ``K`` broadcasts against the keypoints' leading axes (e.g. (B, 1, 3, 3) for (B, T, J, 2)).
    """
    f = np.stack([K[..., 0, 0], K[..., 1, 1]], -1)[..., None, :]
    c = K[..., :2, 2][..., None, :]
    ray = (uv - c) / f
    ok = vis >= vis_min
    w = ok[..., None].astype(np.float64)
    hip_w = w[..., HIPS, :]
    root = np.where(
        hip_w.sum(-2) > 0,
        (ray[..., HIPS, :] * hip_w).sum(-2) / np.maximum(hip_w.sum(-2), 1),
        (ray * w).sum(-2) / np.maximum(w.sum(-2), 1),
    )
    big = 1e6
    lo = np.where(ok[..., None], ray, big).min(-2)
    hi = np.where(ok[..., None], ray, -big).max(-2)
    scale = np.where(ok.any(-1), np.linalg.norm(hi - lo, axis=-1), 1.0)
    scale = np.maximum(scale, 1e-3)
    p = (ray - root[..., None, :]) / scale[..., None, None] * w
    a, b = LIMBS[:, 0], LIMBS[:, 1]
    v = vis * ok
    n_limbs = len(LIMBS)
    shape = p.shape[:-2] + (n_limbs,)
    feats = np.concatenate(
        [
            p[..., a, :],
            p[..., b, :],
            (p[..., b, :] - p[..., a, :]) * (ok[..., a] & ok[..., b])[..., None],
            v[..., a, None],
            v[..., b, None],
            np.broadcast_to(root[..., None, :], shape + (2,)),
            np.broadcast_to(np.log(scale)[..., None, None], shape + (1,)),
        ],
        -1,
    )
    return feats.astype(np.float32)


def window_features(feats: np.ndarray, window: int, first: np.ndarray | None = None) -> np.ndarray:
    """(B, T, L, F) per-frame features -> (B, T, L, window x F), oldest frame first.

    ``first`` (B,) is each sequence's first tracked frame: earlier window slots repeat it.
    """
    b, t, n, f = feats.shape
    first = np.zeros(b, np.int64) if first is None else first
    idx = np.arange(t)[:, None] + np.arange(1 - window, 1)[None]  # (T, W)
    idx = np.maximum(idx[None], first[:, None, None])  # (B, T, W)
    out = feats[np.arange(b)[:, None, None], idx]  # (B, T, W, L, F)
    return np.ascontiguousarray(out.transpose(0, 1, 3, 2, 4).reshape(b, t, n, window * f))
