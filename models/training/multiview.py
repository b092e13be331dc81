"""Multi-view reference on Pose2Sim's calibrated 4-camera demos: the truth real video is
measured against.

MediaPipe runs on every camera (``detections``, cached as .npz); for a held-out camera, each
frame is triangulated (DLT) from the *other* cameras (``triangulate_others``), so the
reference never sees the view under test. Two people are in Demo_MultiPerson and MediaPipe
tracks one per camera, so only views that agree on the person are used: the triangulating
views must reproject consistently (``CONSISTENT``), and callers check the held-out view's
residual (``SAME_PERSON``). Used by the noise fit, the landmark offsets, the fusion
weights and the evaluation.
"""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from core.demo_data import DEMO_CAMERAS, demo_calibration, demo_video
from core.intrinsics import qca_camera_elements, qca_intrinsics
from models.skeleton import FLIP_JOINTS, JOINTS, MEDIAPIPE_INDEX

VIS_OK = 0.5  # a view joins the triangulation above this visibility
CONSISTENT = 0.03  # max median reprojection error among the triangulating views (x diag)
SAME_PERSON = 0.08  # the held-out view's median residual must be under this (x diag)


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
    for cam in qca_camera_elements(ET.parse(path).getroot()):
        intr = qca_intrinsics(cam, dist_scale)
        cams.append(Camera(intr.R, intr.t, intr.K, intr.dist, intr.size))
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
    cams: list[Camera],
    uv: np.ndarray,
    vis: np.ndarray,
    target: int,
    f: int,
    relabel: bool = False,
) -> np.ndarray | None:
    """(J, 3) world joints of frame ``f`` from the largest consistent set of other cameras.

    MediaPipe sometimes exchanges left and right in one view; that view then spoils the
    three-view set, and two views cannot catch it (one residual direction per joint: a pair
    with one swapped view can still look consistent). With ``relabel`` the three views are
    also tried with the labels of one view exchanged (the other two outvote it), and of
    several consistent pairs the one the remaining view supports best is taken, whichever
    way that view labels left and right.
    """
    others = [c for c in range(len(cams)) if c != target
              and not np.isnan(uv[c, f]).any() and np.median(vis[c, f]) >= VIS_OK]  # fmt: skip
    for k in (3, 2):
        found = []
        for subset in itertools.combinations(others, k):
            for flips in label_choices(k, relabel):
                views = [uv[c, f][FLIP_JOINTS] if flip else uv[c, f]
                         for c, flip in zip(subset, flips, strict=True)]  # fmt: skip
                X = triangulate([cams[c] for c in subset], views)
                errs = [np.median(np.linalg.norm(cams[c].project(X) - p, axis=-1))
                        / bbox_diagonal(p) for c, p in zip(subset, views, strict=True)]  # fmt: skip
                if max(errs) < CONSISTENT:
                    found.append((subset, X))
                    break
            if found and not relabel:
                return X
        if found:
            rest = [[c for c in others if c not in subset] for subset, _ in found]
            support = [max((unlabelled_residual(cams[c], X, uv[c, f]) for c in r), default=0.0)
                       for r, (_, X) in zip(rest, found, strict=True)]  # fmt: skip
            return found[int(np.argmin(support))][1]
    return None


def reference_in_camera(
    cams: list[Camera], det: dict[str, np.ndarray], target: int, f: int
) -> np.ndarray | None:
    """(J, 3) joints of frame ``f`` triangulated from the other cameras, in camera
    ``target``'s frame; None without a reference or where that camera tracks someone else
    (its median residual over ``SAME_PERSON`` x its bounding-box diagonal)."""
    X = triangulate_others(cams, det["uv"], det["vis"], target, f)
    if X is None:
        return None
    cam, uv = cams[target], det["uv"][target, f]
    if np.median(np.linalg.norm(cam.project(X) - uv, axis=-1)) > SAME_PERSON * bbox_diagonal(uv):
        return None
    return X @ cam.R.T + cam.t


def label_choices(k: int, relabel: bool) -> list[tuple[bool, ...]]:
    """Which of ``k`` views get their left/right labels exchanged: none first, then (with
    ``relabel`` and three or more views, where the others outvote it) each single view."""
    none = (False,) * k
    if not relabel or k < 3:
        return [none]
    return [none] + [tuple(i == j for j in range(k)) for i in range(k)]


def label_residuals(cam: Camera, X: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Median reprojection error of ``X`` against the (J, 2) pixels ``p``, as a fraction of
    their bounding box: with ``p``'s left/right labels as given, and exchanged."""
    projected = cam.project(X)
    diag = bbox_diagonal(p)
    as_given, exchanged = (float(np.median(np.linalg.norm(projected[order] - p, axis=-1))) / diag
                           for order in (np.arange(len(p)), FLIP_JOINTS))  # fmt: skip
    return as_given, exchanged


def unlabelled_residual(cam: Camera, X: np.ndarray, p: np.ndarray) -> float:
    """``label_residuals``, the better of the two: whoever ``p`` is, labelled either way."""
    return min(label_residuals(cam, X, p))


def bbox_diagonal(p: np.ndarray) -> float:
    """The 2D bounding-box diagonal of (J, 2) pixels: the scale residuals are measured in."""
    return float(np.linalg.norm(p.max(0) - p.min(0)))


def detections(demo: str, cache: Path | None) -> dict[str, np.ndarray]:
    """MediaPipe on every camera of a Pose2Sim demo: uv (C, T, 17, 2), vis, world."""
    if cache and cache.exists():
        return dict(np.load(cache))
    runs = [run_mediapipe(demo_video(camera, demo)) for camera in DEMO_CAMERAS]
    out = {k: np.stack([r[i] for r in runs]) for i, k in enumerate(("uv", "vis", "world"))}
    if cache:
        np.savez(cache, **out)
    return out


def demo_cameras(demo: str, dist_scale: float = 1 / 64) -> list[Camera]:
    """The demo's calibrated cameras (Pose2Sim's distortion convention by default)."""
    return read_qca(demo_calibration(demo), dist_scale)
