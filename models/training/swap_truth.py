"""Which frames of a Pose2Sim demo camera MediaPipe labels left/right the wrong way round:
the truth the swap repair (``stages/swap_repair.py``) is tested and measured against.

Each frame of a held-out camera is compared with a multi-view reference triangulated from
the *other* cameras (as ``multiview.triangulate_others``), with two changes a swap needs:

- a view that is itself swapped must not spoil the reference (while cam02 of
  Demo_SinglePerson is swapped, ``triangulate_others`` finds no consistent set for cam03
  and cam04, or a consistent but mislabelled one), so every labelling of each other view
  (none, body, arms, legs) is tried and the most consistent set of views wins;
- the winner's left and right are then named anatomically, not by any detector: a body's
  left is ``up x forward``, forward being where the nose points from the shoulders (upper
  body) and where the toes point from the heels (legs); frames where that is unclear
  (``SURE``) have no truth.

The held-out view's truth is the labelling whose reprojection is best, if it is good
(``MATCH``) and clearly better than the next (``MARGIN``); otherwise the frame is unknown
(``None``), e.g. where the camera follows another person. Detections come from the
project's own detect stage (33 landmarks, person lock on), so the repair is judged on
exactly what it gets in the pipeline.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from core.demo_data import DEMO_CAMERAS, demo_video
from core.packet import Packet
from core.stage import Stage
from models.skeleton import MEDIAPIPE_INDEX, J
from models.training.multiview import (
    CONSISTENT,
    VIS_OK,
    Camera,
    bbox_diagonal,
    demo_cameras,
    triangulate,
)
from stages.capture import VideoSource
from stages.detect import MediaPipeDetector
from stages.swap_repair import KINDS, PERMUTATION
from stream.config import load_config
from stream.pipeline import run_inline

MATCH = 0.06  # the true labelling's mean reprojection error, at most (x bbox diagonal)
MARGIN = 1.5  # ... and the next labelling's error at least this many times larger
SURE = 0.3  # |cos| between a side-to-side line and the anatomical left, at least


def _joint_permutation(kind: str) -> np.ndarray:
    """The swap ``kind`` of the 33 landmarks, on the lifter's 17 joints."""
    position = {int(m): j for j, m in enumerate(MEDIAPIPE_INDEX)}
    return np.array([position[int(PERMUTATION[kind][m])] for m in MEDIAPIPE_INDEX])


JOINT_PERMUTATION = {kind: _joint_permutation(kind) for kind in KINDS}
_SWAP_ORDER = ("", "arms", "body", "legs")  # the first view is held to the first two:
# "body" and "legs" are these mirrored, which the anatomical naming decides


def demo_landmarks(demo: str, cache: Path | None = None) -> dict[str, np.ndarray]:
    """The detect stage on every camera of a demo: ``xy`` (C, T, 33, 2) px, ``visibility``
    (C, T, 33), ``world`` (C, T, 33, 3) m, ``person``, ``track_reset`` and ``time_s`` (C, T)."""
    if cache and cache.exists():
        return dict(np.load(cache))
    detect = MediaPipeDetector()
    detect.setup(load_config())
    keys = ("xy", "visibility", "world", "person", "track_reset", "time_s")
    fields: dict[str, list] = {k: [] for k in keys}
    try:
        for camera in DEMO_CAMERAS:
            packets = [run_inline([detect], p) for p in VideoSource(demo_video(camera, demo))]
            detect.reset()
            fields["xy"].append([p.data["landmarks_2d"] for p in packets])
            fields["visibility"].append([p.data["visibility"] for p in packets])
            fields["world"].append([p.data["world_3d"] for p in packets])
            fields["person"].append([p.meta["person"] for p in packets])
            fields["track_reset"].append([p.meta.get("track_reset", False) for p in packets])
            fields["time_s"].append([p.media_time_s for p in packets])
    finally:
        detect.close()
    out = {k: np.array(v) for k, v in fields.items()}
    if cache:
        np.savez(cache, **out)
    return out


def _anatomical_swap(X: np.ndarray) -> str | None:
    """The swap that names the triangulated joints (17, 3) anatomically; None if unclear."""

    def mid(a: str, b: str) -> np.ndarray:
        return (X[J[a]] + X[J[b]]) / 2

    up = mid("LShoulder", "RShoulder") - mid("LHip", "RHip")
    up /= np.linalg.norm(up)

    def across(vector: np.ndarray) -> np.ndarray:
        flat = vector - (vector @ up) * up
        return flat / np.linalg.norm(flat)

    face = across(X[J["Nose"]] - mid("LShoulder", "RShoulder"))
    feet = across(mid("LBigToe", "RBigToe") - mid("LHeel", "RHeel"))
    shoulders = across(X[J["LShoulder"]] - X[J["RShoulder"]])
    hips = across(X[J["LHip"]] - X[J["RHip"]])
    arms, legs = np.cross(up, face) @ shoulders, np.cross(up, feet) @ hips
    if shoulders @ hips > SURE:  # an untwisted trunk: one answer for both
        arms = legs = arms + legs
    if min(abs(arms), abs(legs)) < SURE:
        return None
    mirrored = {
        (False, False): "",
        (True, True): "body",
        (True, False): "arms",
        (False, True): "legs",
    }
    return mirrored[bool(arms < 0), bool(legs < 0)]


def reference(
    cams: list[Camera], uv: np.ndarray, vis: np.ndarray, target: int, f: int
) -> np.ndarray | None:
    """(17, 3) anatomically named joints of frame ``f`` from the other cameras, each view
    relabelled as is most consistent; None without a consistent set or a clear naming."""
    others = [
        c
        for c in range(len(cams))
        if c != target and not np.isnan(uv[c, f]).any() and np.median(vis[c, f]) >= VIS_OK
    ]
    best: tuple[float, np.ndarray] | None = None
    for k in (3, 2):
        for subset in itertools.combinations(others, k):
            for kinds in itertools.product(_SWAP_ORDER[:2], *[_SWAP_ORDER] * (k - 1)):
                views = [uv[c, f][JOINT_PERMUTATION[s]] for c, s in zip(subset, kinds, strict=True)]
                X = triangulate([cams[c] for c in subset], views)
                error = max(
                    np.median(np.linalg.norm(cams[c].project(X) - p, axis=-1)) / bbox_diagonal(p)
                    for c, p in zip(subset, views, strict=True)
                )
                if best is None or error < best[0]:
                    best = (error, X)
        if best is not None and best[0] < CONSISTENT:
            break
    if best is None or best[0] >= CONSISTENT:
        return None
    naming = _anatomical_swap(best[1])
    return None if naming is None else best[1][JOINT_PERMUTATION[naming]]


def true_swaps(demo: str, landmarks: dict[str, np.ndarray]) -> list[list[str | None]]:
    """Per camera and frame, how MediaPipe's labels are swapped: "" not, "body", "arms",
    "legs", or None where the multi-view truth cannot tell."""
    cams = demo_cameras(demo)
    uv = landmarks["xy"][:, :, MEDIAPIPE_INDEX]
    vis = landmarks["visibility"][:, :, MEDIAPIPE_INDEX]
    out: list[list[str | None]] = []
    for c, cam in enumerate(cams):
        labels: list[str | None] = []
        for f in range(uv.shape[1]):
            X = None if np.isnan(uv[c, f]).any() else reference(cams, uv, vis, c, f)
            labels.append(None if X is None else _held_out_swap(cam.project(X), uv[c, f]))
        out.append(labels)
    return out


def _held_out_swap(truth: np.ndarray, detected: np.ndarray) -> str | None:
    """The labelling of ``detected`` (17, 2) that matches the projected truth, if clear."""
    diag = bbox_diagonal(detected)
    errors = {
        kind: float(np.mean(np.linalg.norm(detected[JOINT_PERMUTATION[kind]] - truth, axis=-1)))
        / diag
        for kind in KINDS
    }
    first, second = sorted(errors.values())[:2]
    if first > MATCH or second < MARGIN * first:
        return None
    return min(errors, key=errors.__getitem__)


def swap_string(labels: list[str | None]) -> str:
    """One character per frame: '.' right, 'B'/'A'/'L' body/arms/legs swapped, ' ' unknown."""
    return "".join(
        " " if k is None else {"": ".", "body": "B", "arms": "A", "legs": "L"}[k] for k in labels
    )


def injected(
    landmarks: dict[str, np.ndarray], camera: int, kind: str, frames: slice
) -> dict[str, np.ndarray]:
    """One camera's detections (T, ...) with the swap ``kind`` made in ``frames``."""
    out = {k: v[camera].copy() for k, v in landmarks.items()}
    for key in ("xy", "visibility", "world"):
        out[key][frames] = out[key][frames][:, PERMUTATION[kind]]
    return out


def repaired(stage: Stage, sequence: dict[str, np.ndarray], source_id: str = "cam") -> list[Packet]:
    """One camera's detections (``injected``'s layout) through ``stage``, frame by frame, as
    the pipeline hands them over (read-only arrays)."""
    stage.reset()
    out = []
    for f, time_s in enumerate(sequence["time_s"]):
        packet = Packet(source_id, f, 0, float(time_s), (0, 0))
        packet.data = {
            "landmarks_2d": sequence["xy"][f],
            "visibility": sequence["visibility"][f],
            "world_3d": sequence["world"][f],
        }
        packet.meta["person"] = bool(sequence["person"][f])
        packet.meta["track_reset"] = bool(sequence["track_reset"][f])
        result = run_inline([stage], packet)
        assert result is not None
        out.append(result)
    return out
