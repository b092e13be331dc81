"""Measure MediaPipe's 2D error on a calibrated multi-camera demo and fit ``NoiseModel``.

Pose2Sim's Demo_MultiPerson (4 calibrated cameras, 60 fps; Demo_SinglePerson is a test set
and is never used here). For each camera, each frame is
triangulated from the *other* cameras (models/training/multiview.py), reprojected into it,
and MediaPipe's pixels there are compared with the reprojection. Residuals are in units of
the person's 2D bounding-box diagonal, as in models/training/corruption.py.
The triangulated point carries the other cameras' errors too, so the jitter is an upper
bound. Rates measured at 60 fps are converted to the 30 fps the mocap is sampled at.

``uv run python -m models.training.measure_noise [--out fit.json]``
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import cv2
import numpy as np

from core.demo_data import TUNING_DEMO, demo_video
from models.skeleton import FLIP_JOINTS, JOINTS
from models.training.corruption import SWAP_GROUPS
from models.training.multiview import (
    SAME_PERSON,
    Camera,
    bbox_diagonal,
    demo_cameras,
    detections,
    triangulate_others,
)

OUTLIER = 5.0  # residual over this many robust sigmas = outlier


def residuals(cams: list[Camera], uv: np.ndarray, vis: np.ndarray) -> dict[str, np.ndarray]:
    """Per (camera, frame): normalized residuals (J, 2), visibility, in-image mask, swaps."""
    out: dict[str, list] = {"res": [], "vis": [], "inside": [], "key": [], "swap": []}
    skipped = 0
    for c, f in itertools.product(range(len(cams)), range(uv.shape[1])):
        X = triangulate_others(cams, uv, vis, c, f)
        if X is None or np.isnan(uv[c, f]).any():
            skipped += 1
            continue
        ref = cams[c].project(X)
        d = bbox_diagonal(ref)
        r = (uv[c, f] - ref) / d
        if np.median(np.linalg.norm(r, axis=-1)) > SAME_PERSON:
            skipped += 1
            continue
        swaps = []
        for g in SWAP_GROUPS.values():
            straight = np.linalg.norm(r[g], axis=-1).sum()
            crossed = np.linalg.norm((uv[c, f][FLIP_JOINTS[g]] - ref[g]) / d, axis=-1).sum()
            swaps.append(crossed < 0.5 * straight)
        out["res"].append(r)
        out["vis"].append(vis[c, f])
        out["inside"].append(((ref >= 0) & (ref <= cams[c].size)).all(-1))
        out["key"].append((c, f))
        out["swap"].append(swaps)
    arrays = {k: np.array(v) for k, v in out.items()}
    arrays["skipped"] = np.array(skipped)
    return arrays


def fit(r: dict[str, np.ndarray], fps: float) -> dict:
    """NoiseModel parameters (30 fps) from the residuals."""
    res, vis, key, swap = r["res"], r["vis"], r["key"], r["swap"].any(1)
    keep = ~swap
    comp = res[keep]  # (N, J, 2)
    sigma = 1.4826 * np.median(np.abs(comp - np.median(comp, 0)), axis=(0, 2))
    norm = np.linalg.norm(comp, axis=-1) / sigma
    outlier = norm > OUTLIER * np.sqrt(2)
    out_res = comp[outlier]
    inl = comp / sigma[:, None] * (~outlier)[..., None]
    # lag-1 autocorrelation over consecutive frames of the same camera
    k = key[keep]
    nxt = (k[1:, 0] == k[:-1, 0]) & (k[1:, 1] == k[:-1, 1] + 1)
    a, b = inl[:-1][nxt].ravel(), inl[1:][nxt].ravel()
    rho60 = float(np.corrcoef(a, b)[0, 1])
    step = round(fps / 30)
    good_vis = vis[keep][~outlier]
    missing = (vis < 0.3) & r["inside"]
    return {
        "frames_used": int(len(res)), "frames_skipped": int(r["skipped"]),
        "sigma": dict(zip(JOINTS, np.round(sigma, 5).tolist(), strict=True)),
        "rho_30fps": round(rho60**step, 3), "rho_measured": round(rho60, 3),
        "outlier_p": round(float(outlier.mean()), 4),
        "outlier_sigma": round(float(np.sqrt(np.mean(out_res**2))) if len(out_res) else 0.0, 4),
        "swap_p": round(float(swap.mean()), 4),
        "swap_p_by_group": dict(zip(SWAP_GROUPS, r["swap"].mean(0).round(4).tolist(), strict=True)),
        "dropout_p": round(float(missing.mean()), 4),
        "vis_good": (round(float(good_vis.mean()), 3), round(float(good_vis.std()), 3)),
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="write the fit as JSON here")
    ap.add_argument("--cache", type=Path, default=None, help="MediaPipe detections (.npz)")
    args = ap.parse_args()
    fps = cv2.VideoCapture(str(demo_video("cam01", TUNING_DEMO))).get(cv2.CAP_PROP_FPS)
    det = detections(TUNING_DEMO, args.cache)
    best = None
    for scale in (1 / 64, 1.0):  # Pose2Sim divides distortion by 64; check which fits better
        r = residuals(demo_cameras(TUNING_DEMO, scale), det["uv"], det["vis"])
        score = np.median(np.linalg.norm(r["res"], axis=-1)) if len(r["res"]) else np.inf
        if best is None or score < best[0]:
            best = (score, scale, r)
    result = {"distortion_scale": best[1], "median_residual": float(best[0]),
              **fit(best[2], fps)}  # fmt: skip
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
