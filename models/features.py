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

from models.arrays import Array, arange, astype, clip_min, contiguous, namespace, norm, zeros
from models.skeleton import HIPS, LIMBS

N_FEATURES = 11


def limb_features(uv: Array, vis: Array, K: Array, vis_min: float = 0.3) -> Array:
    """(..., J, 2) pixels, (..., J) visibility, (..., 3, 3) intrinsics -> (..., L, 11) float32.

    ``K`` broadcasts against the keypoints' leading axes (e.g. (B, 1, 3, 3) for (B, T, J, 2)).
    numpy arrays or torch tensors (the GPU pair generator), one definition (models/arrays.py).
    """
    xp = namespace(uv)
    f = xp.stack([K[..., 0, 0], K[..., 1, 1]], -1)[..., None, :]
    c = K[..., :2, 2][..., None, :]
    ray = (uv - c) / f
    ok = vis >= vis_min
    w = astype(ok[..., None], "float64")
    hip_w = w[..., HIPS, :]
    hips_seen = hip_w.sum(-2)
    root = xp.where(
        hips_seen > 0,
        (ray[..., HIPS, :] * hip_w).sum(-2) / clip_min(hips_seen, 1),
        (ray * w).sum(-2) / clip_min(w.sum(-2), 1),
    )
    big = 1e6
    lo = xp.amin(xp.where(ok[..., None], ray, big), -2)
    hi = xp.amax(xp.where(ok[..., None], ray, -big), -2)
    scale = xp.where(ok.any(-1), norm(hi - lo), 1.0)
    scale = clip_min(scale, 1e-3)
    p = (ray - root[..., None, :]) / scale[..., None, None] * w
    a, b = LIMBS[:, 0], LIMBS[:, 1]
    v = vis * ok
    n_limbs = len(LIMBS)
    shape = tuple(p.shape[:-2]) + (n_limbs,)
    pa, pb = p[..., a, :], p[..., b, :]
    feats = xp.concatenate(
        [
            pa,
            pb,
            (pb - pa) * (ok[..., a] & ok[..., b])[..., None],
            v[..., a, None],
            v[..., b, None],
            xp.broadcast_to(root[..., None, :], shape + (2,)),
            xp.broadcast_to(xp.log(scale)[..., None, None], shape + (1,)),
        ],
        -1,
    )
    return astype(feats, "float32")


def window_features(feats: Array, window: int, first: Array | None = None) -> Array:
    """(B, T, L, F) per-frame features -> (B, T, L, window x F), oldest frame first.

    ``first`` (B,) is each sequence's first tracked frame: earlier window slots repeat it.
    """
    b, t, n, f = feats.shape
    first = zeros(b, "int64", feats) if first is None else first
    idx = arange(t, feats)[:, None] + (arange(window, feats) + 1 - window)[None]  # (T, W)
    idx = namespace(feats).maximum(idx[None], first[:, None, None])  # (B, T, W)
    out = feats[arange(b, feats)[:, None, None], idx]  # (B, T, W, L, F)
    return contiguous(namespace(feats).moveaxis(out, 2, 3).reshape(b, t, n, window * f))
