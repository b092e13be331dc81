"""Measure MediaPipe's 2D error on a calibrated multi-camera demo and fit ``NoiseModel``.

Pose2Sim's Demo_MultiPerson (4 calibrated cameras, 60 fps; Demo_SinglePerson is a test set
and is never used here). MediaPipe runs on every camera; for each camera, each frame is
triangulated (DLT) from the *other* cameras, reprojected into it, and MediaPipe's pixels
there are compared with the reprojection. Two people are in view and MediaPipe tracks one
per camera, so only views that agree on the person are used: the other cameras must
triangulate consistently, and the held-out camera's median residual must be small.
Residuals are in units of the person's 2D bounding-box diagonal, as in models/corruption.py.
The triangulated point carries the other cameras' errors too, so the jitter is an upper
bound. Rates measured at 60 fps are converted to the 30 fps the mocap is sampled at.

``uv run python -m models.measure_noise [--out fit.json]``
"""

from __future__ import annotations

import argparse
import importlib.resources
import itertools
import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.intrinsics import qca_camera_elements, qca_intrinsics
from models.corruption import SWAP_GROUPS
from models.skeleton import FLIP_JOINTS, JOINTS, MEDIAPIPE_INDEX

DEMO = "Demo_MultiPerson"
VIS_OK = 0.5  # a view joins the triangulation above this visibility
CONSISTENT = 0.03  # max median reprojection error among the triangulating views (x diag)
SAME_PERSON = 0.08  # the held-out view's median residual must be under this (x diag)
OUTLIER = 5.0  # residual over this many robust sigmas = outlier


@dataclass
class Camera:
    """OpenCV camera: world->camera R, t (m), intrinsics, distortion, image size."""

    R: np.ndarray
    t: np.ndarray
    K: np.ndarray
    dist: np.ndarray
    size: tuple[int, int]

    def project(self, X: np.ndarray) -> np.ndarray:
        uv, _ = cv2.projectPoints(
            X.reshape(-1, 3), cv2.Rodrigues(self.R)[0], self.t, self.K, self.dist
        )
        return uv.reshape(X.shape[:-1] + (2,))


def read_qca(path: Path, dist_scale: float) -> list[Camera]:
    """Qualisys .qca.txt -> cameras, following Pose2Sim's calib_qca_fun conventions."""
    cams = []
    flip = np.diag([1.0, -1.0, -1.0])  # Pose2Sim's pi turn about the camera x axis
    for cam in qca_camera_elements(ET.parse(path).getroot()):
        intr, tr = qca_intrinsics(cam, dist_scale), cam.find("transform")
        M = np.array([[float(tr.get(f"r{i}{j}")) for j in (1, 2, 3)] for i in (1, 2, 3)])
        pos = np.array([float(tr.get(k)) for k in "xyz"]) / 1000
        R = flip @ M
        cams.append(Camera(R, -R @ pos, intr.K, intr.dist, intr.size))
    return cams


def run_mediapipe(video: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(T, 17, 2) pixels, (T, 17) visibility, (T, 17, 3) world landmarks; NaN: nobody found."""
    from mediapipe.python.solutions import pose as mp_pose

    cap = cv2.VideoCapture(str(video))
    uv, vis, world = [], [], []
    with mp_pose.Pose(model_complexity=1, smooth_landmarks=True) as pose:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            h, w = frame.shape[:2]
            res = pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            if res.pose_landmarks is None:
                uv.append(np.full((len(JOINTS), 2), np.nan))
                vis.append(np.zeros(len(JOINTS)))
                world.append(np.full((len(JOINTS), 3), np.nan))
                continue
            lm = res.pose_landmarks.landmark
            wl = res.pose_world_landmarks.landmark
            uv.append([(lm[i].x * w, lm[i].y * h) for i in MEDIAPIPE_INDEX])
            vis.append([lm[i].visibility for i in MEDIAPIPE_INDEX])
            world.append([(wl[i].x, wl[i].y, wl[i].z) for i in MEDIAPIPE_INDEX])
    return np.array(uv), np.array(vis), np.array(world)


def triangulate(cams: list[Camera], uv: list[np.ndarray]) -> np.ndarray:
    """DLT of (J, 2) pixels seen by several cameras -> (J, 3) world points."""
    rows = []
    for cam, p in zip(cams, uv, strict=True):
        n = cv2.undistortPoints(p.reshape(-1, 1, 2), cam.K, cam.dist).reshape(-1, 2)
        P = np.hstack([cam.R, cam.t[:, None]])
        rows.append(np.stack([n[:, :1] * P[2] - P[0], n[:, 1:] * P[2] - P[1]], 1))
    A = np.concatenate(rows, 1)  # (J, 2 * views, 4)
    X = np.linalg.svd(A)[2][:, -1]
    return X[:, :3] / X[:, 3:]


def triangulate_others(
    cams: list[Camera], uv: np.ndarray, vis: np.ndarray, target: int, f: int
) -> np.ndarray | None:
    """(J, 3) world joints of frame ``f`` from the largest consistent set of other cameras."""
    others = [c for c in range(len(cams)) if c != target]
    for k in (3, 2):
        for subset in itertools.combinations(others, k):
            if any(np.isnan(uv[c, f]).any() or np.median(vis[c, f]) < VIS_OK for c in subset):
                continue
            X = triangulate([cams[c] for c in subset], [uv[c, f] for c in subset])
            errs = [np.median(np.linalg.norm(cams[c].project(X) - uv[c, f], axis=-1))
                    / _diag(uv[c, f]) for c in subset]  # fmt: skip
            if max(errs) < CONSISTENT:
                return X
    return None


def _diag(p: np.ndarray) -> float:
    return float(np.linalg.norm(p.max(0) - p.min(0)))


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
        d = _diag(ref)
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


def detections(demo: str, cache: Path | None) -> dict[str, np.ndarray]:
    """MediaPipe on every camera of a Pose2Sim demo: uv (C, T, 17, 2), vis, world."""
    if cache and cache.exists():
        return dict(np.load(cache))
    folder = importlib.resources.files("Pose2Sim") / demo / "videos"
    runs = [run_mediapipe(Path(str(v))) for v in sorted(folder.iterdir(), key=lambda p: p.name)]
    out = {k: np.stack([r[i] for r in runs]) for i, k in enumerate(("uv", "vis", "world"))}
    if cache:
        np.savez(cache, **out)
    return out


def demo_cameras(demo: str, dist_scale: float = 1 / 64) -> list[Camera]:
    """The demo's calibrated cameras (Pose2Sim's distortion convention by default)."""
    path = importlib.resources.files("Pose2Sim") / demo / "calibration" / "Calib.qca.txt"
    return read_qca(Path(str(path)), dist_scale)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="write the fit as JSON here")
    ap.add_argument("--cache", type=Path, default=None, help="MediaPipe detections (.npz)")
    args = ap.parse_args()
    video = importlib.resources.files("Pose2Sim") / DEMO / "videos" / "cam01.mp4"
    fps = cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS)
    det = detections(DEMO, args.cache)
    best = None
    for scale in (1 / 64, 1.0):  # Pose2Sim divides distortion by 64; check which fits better
        r = residuals(demo_cameras(DEMO, scale), det["uv"], det["vis"])
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
