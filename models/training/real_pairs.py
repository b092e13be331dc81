"""Real MediaPipe 2D paired with multi-view 3D: network windows from a calibrated demo.

The synthetic pairs (models/training/pairs.py) put mocap joints through virtual cameras and
a noise model; MediaPipe's real landmarks differ from both in ways no hand-made offset
captures (where it puts a knee or a hip in a given view, how its errors move together over
time). On the tuning demo each camera's own MediaPipe 2D is paired with the other cameras'
triangulation in that camera's frame (models/training/multiview.py), so a fine-tune sees the
detector the pipeline runs. Only ``TUNING_DEMO``: the test demo is never trained on.

Frames are kept where the reference exists, the camera follows the same person and labels
left and right as the reference does (a swapped view would teach the swap). Each kept frame
gives the window the runtime would feed (models/pof_onnx.py: ``window`` frames, every
``frame_step``-th, earlier slots repeating the first frame of the run) and, mirrored (image
flipped about the principal point, labels exchanged), a second pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.demo_data import TUNING_DEMO, demo_video
from models.features import limb_features
from models.pof_onnx import frame_step_for
from models.skeleton import FLIP_JOINTS, limb_vectors, unit
from models.training.multiview import (
    SAME_PERSON,
    Camera,
    demo_cameras,
    detections,
    label_residuals,
    triangulate_others,
)
from models.training.pairs import MIRROR_X  # camera-frame x flips with the image


@dataclass
class RealPairs:
    """Windows of real detections and their multi-view targets."""

    features: np.ndarray  # (N, L, window x 11) float32
    pof: np.ndarray  # (N, L, 3) float32 unit limb vectors, camera frame
    camera: np.ndarray  # (N,) index of the camera each pair comes from


def same_labels(cam: Camera, X: np.ndarray, uv: np.ndarray) -> bool:
    """The view follows the reference's person and labels left and right as it does."""
    as_given, exchanged = label_residuals(cam, X, uv)
    return as_given <= SAME_PERSON and as_given <= exchanged


def camera_pairs(
    cams: list[Camera], det: dict[str, np.ndarray], c: int, window: int, step: int, vis_min: float
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Camera ``c``'s windows and targets, original and mirrored."""
    cam, uv, vis = cams[c], det["uv"][c], det["vis"][c]
    n = uv.shape[0]
    ok = ~np.isnan(uv).any((1, 2))
    feats = np.zeros((n,) + limb_features(uv[:1], vis[:1], cam.K[None], vis_min).shape[1:],
                     np.float32)  # fmt: skip
    mirrored_uv = uv[:, FLIP_JOINTS].copy()
    mirrored_uv[..., 0] = 2 * cam.K[0, 2] - mirrored_uv[..., 0]
    mirrored = np.zeros_like(feats)
    feats[ok] = limb_features(uv[ok], vis[ok], cam.K[None], vis_min)
    mirrored[ok] = limb_features(mirrored_uv[ok], vis[ok][:, FLIP_JOINTS], cam.K[None], vis_min)
    run_start = np.zeros(n, np.int64)  # first frame of each frame's run of detections
    for f in range(1, n):
        run_start[f] = run_start[f - 1] if ok[f] and ok[f - 1] else f
    windows, targets = [], []
    for f in np.flatnonzero(ok):
        X = triangulate_others(cams, det["uv"], det["vis"], c, f, relabel=True)
        if X is None or not same_labels(cam, X, uv[f]):
            continue
        slots = np.maximum(f - step * np.arange(window - 1, -1, -1), run_start[f])
        joints = X @ cam.R.T + cam.t
        pof = unit(limb_vectors(joints)).astype(np.float32)
        pof_mirrored = unit(limb_vectors(joints[FLIP_JOINTS] * MIRROR_X)).astype(np.float32)
        for source, target in ((feats, pof), (mirrored, pof_mirrored)):
            windows.append(source[slots].transpose(1, 0, 2).reshape(len(pof), -1))
            targets.append(target)
    return windows, targets


def real_pairs(
    window: int,
    cache: Path | None = None,
    cameras: list[int] | None = None,
    demo: str = TUNING_DEMO,
    vis_min: float = 0.3,
) -> RealPairs:
    """Every usable window of ``demo``'s cameras (all, or the indices in ``cameras``)."""
    import cv2

    cams = demo_cameras(demo)
    det = detections(demo, cache)
    fps = cv2.VideoCapture(str(demo_video("cam01", demo))).get(cv2.CAP_PROP_FPS)
    step = frame_step_for(fps)
    feats, pofs, which = [], [], []
    for c in cameras if cameras is not None else range(len(cams)):
        w, t = camera_pairs(cams, det, c, window, step, vis_min)
        feats += w
        pofs += t
        which += [c] * len(w)
    return RealPairs(np.array(feats, np.float32), np.array(pofs, np.float32), np.array(which))
