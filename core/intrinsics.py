"""The camera for the stages: a calibration file's K, distortion and pose, or a fov pinhole.

Without a calibration the camera is a pinhole of ``fov_deg`` across the longer image side,
centred on the image, with no distortion and no known pose. With one (``[camera]
calibration`` / ``--calibration``), a Pose2Sim TOML (``Calib_*.toml``) or a Qualisys
``.qca.txt`` file gives K (scaled when the video was resized), the lens distortion (the
detect stage undistorts the 2D keypoints with it, ``undistort``) and, where the file has
them, the extrinsics: the world->camera rotation R and translation t (OpenCV convention,
metres), which put the markers in the calibration's world frame (stages/levelling.py).
"""

from __future__ import annotations

import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

# Per-axis scales that differ by less than this are one resize: codecs pad 1080 lines to
# 1088, so a calibration of the sensor's 1088 x 1920 fits a 1080 x 1920 video.
ASPECT_TOLERANCE = 0.01
UNDISTORT_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-10)


@dataclass
class Intrinsics:
    """One calibrated camera: K (3 x 3, px), the image size it holds for, distortion and,
    where the file has them, the extrinsics (world -> camera: x_cam = R @ x_world + t)."""

    K: np.ndarray
    size: tuple[int, int]  # (width, height) in pixels
    dist: np.ndarray  # OpenCV order (k1, k2, p1, p2[, k3])
    R: np.ndarray | None = None  # (3, 3) world -> camera rotation
    t: np.ndarray | None = None  # (3,) world -> camera translation, metres


def focal_length_px(image_size: tuple[int, int], fov_deg: float) -> float:
    """Pinhole focal length for a field of view measured across the longer image side."""
    return 0.5 * max(image_size) / np.tan(np.radians(fov_deg) / 2)


def camera_matrix(
    image_size: tuple[int, int], fov_deg: float, calibration: Intrinsics | None
) -> np.ndarray:
    """K for frames of ``image_size`` (width, height): the calibration's or the fov pinhole.

    A calibration made at another resolution of the same aspect ratio is scaled by the
    ratio of the longer sides (so codec padding of the shorter side leaves K unchanged).
    A rotated frame or another aspect ratio is refused: K cannot be trusted for it.
    Distortion does not scale: it acts on normalised coordinates (``undistort``).
    """
    w, h = image_size
    if calibration is None:
        f = focal_length_px(image_size, fov_deg)
        return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]])
    cw, ch = calibration.size
    if (w, h) == (cw, ch):
        return calibration.K.copy()
    if abs((w / cw) / (h / ch) - 1) > ASPECT_TOLERANCE:
        rotated = abs((w / ch) / (h / cw) - 1) <= ASPECT_TOLERANCE
        problem = "is rotated by 90 degrees from" if rotated else "has another aspect ratio than"
        raise ValueError(
            f"the video ({w} x {h} px) {problem} the calibration ({cw} x {ch} px): "
            "calibrate the camera as it films, or leave out --calibration to use --fov"
        )
    scale = max(w, h) / max(cw, ch)
    return np.diag([scale, scale, 1.0]) @ calibration.K


def read_calibration(path: Path, camera: str | None) -> Intrinsics:
    """One camera's calibration from a Pose2Sim ``.toml`` or Qualisys ``.qca.txt`` file.

    ``camera`` is a TOML table name or its ``name``, or a qca camera ``serial``; None
    picks the only camera of a one-camera file. Every problem is a one-line ValueError.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"calibration file not found: {path} (check --calibration)")
    name = path.name.lower()
    if name.endswith(".toml"):
        cameras, parse = _toml_cameras(path), _toml_intrinsics
    elif name.endswith((".qca.txt", ".qca")):
        cameras, parse = _qca_cameras(path), qca_intrinsics
    else:
        raise ValueError(
            f"unsupported calibration file {path}: give a Pose2Sim .toml or a Qualisys .qca.txt"
        )
    if not cameras:
        raise ValueError(f"{path} holds no camera: check the file")
    listed = ", ".join(names[-1] for names, _ in cameras)
    if camera:
        found = [c for c in cameras if camera in c[0]]
        if not found:
            raise ValueError(
                f"camera {camera!r} is not in {path} (it has {listed}): "
                "pass one of these to --calibration-camera"
            )
        names, entry = found[0]
    elif len(cameras) == 1:
        names, entry = cameras[0]
    else:
        raise ValueError(
            f"{path} has {len(cameras)} cameras ({listed}): pass --calibration-camera NAME"
        )
    try:
        return parse(entry)
    except (KeyError, TypeError, ValueError) as exc:
        problem = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(
            f"camera {names[-1]!r} in {path} has no usable intrinsics ({problem}): check the file"
        ) from None


def _toml_cameras(path: Path) -> list[tuple[tuple[str, ...], dict[str, Any]]]:
    """Pose2Sim's calibration TOML: one table per camera (answering to its key and its
    ``name``), plus a ``[metadata]`` table."""
    try:
        with open(path, "rb") as f:
            tables = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path} is not valid TOML: {exc}") from None
    return [
        ((key, str(table.get("name", key))), table)
        for key, table in tables.items()
        if isinstance(table, dict) and key != "metadata"
    ]


def _toml_intrinsics(table: Mapping[str, Any]) -> Intrinsics:
    K = np.array(table["matrix"], float)
    width, height = (int(round(float(v))) for v in table["size"])
    dist = np.array(table.get("distortions", [0.0, 0.0, 0.0, 0.0]), float)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError("matrix is not a 3 x 3 camera matrix")
    if width <= 0 or height <= 0:
        raise ValueError("size is not positive")
    R = t = None
    if "rotation" in table and "translation" in table:  # Rodrigues vector, metres
        R = cv2.Rodrigues(np.array(table["rotation"], float).reshape(3, 1))[0]
        t = np.array(table["translation"], float).reshape(3)
    return Intrinsics(K, (width, height), dist, R, t)


def _qca_cameras(path: Path) -> list[tuple[tuple[str, ...], ET.Element]]:
    """Qualisys calibration XML (as in Pose2Sim's demos): ``<camera serial=...>`` elements."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise ValueError(f"{path} is not valid qca XML: {exc}") from None
    return [((str(cam.get("serial")),), cam) for cam in qca_camera_elements(root)]


def qca_camera_elements(root: ET.Element) -> list[ET.Element]:
    """The ``<camera>`` elements of a qca file, sorted by serial (cam01, cam02, ...)."""
    return sorted(root.iter("camera"), key=lambda c: str(c.get("serial")))


def qca_intrinsics(cam: ET.Element, dist_scale: float = 1 / 64) -> Intrinsics:
    """Intrinsics and extrinsics of one qca ``<camera>``, as Pose2Sim's calib_qca_fun reads them.

    Focal lengths and centre are stored in 1/64 px of the sensor and the centre is offset
    by the video window's left/top; Pose2Sim also divides distortion by 64 (``dist_scale``).
    """
    fov, it = cam.find("fov_video"), cam.find("intrinsic")
    if fov is None or it is None:
        raise KeyError("fov_video or intrinsic")
    left, top = float(fov.get("left")), float(fov.get("top"))
    size = (int(float(fov.get("right")) - left + 1), int(float(fov.get("bottom")) - top + 1))
    names = ("focalLengthU", "focalLengthV", "centerPointU", "centerPointV")
    fu, fv, cu, cv = (float(it.get(k)) / 64 for k in names)
    K = np.array([[fu, 0, cu - left], [0, fv, cv - top], [0, 0, 1]])
    keys = ("radialDistortion1", "radialDistortion2", "tangentalDistortion1",
            "tangentalDistortion2")  # fmt: skip
    dist = np.array([float(it.get(k)) for k in keys]) * dist_scale
    R, t = qca_extrinsics(cam)
    return Intrinsics(K, size, dist, R, t)


def qca_extrinsics(cam: ET.Element) -> tuple[np.ndarray, np.ndarray]:
    """World -> camera R, t (m) of one qca ``<camera>``, as Pose2Sim's calib_qca_fun reads it.

    The ``<transform>`` holds the camera's orientation matrix and its position (mm) in the
    world; Qualisys' camera looks along its -z, so Pose2Sim turns it by pi about x.
    """
    tr = cam.find("transform")
    if tr is None:
        raise KeyError("transform")
    M = np.array([[float(tr.get(f"r{i}{j}")) for j in (1, 2, 3)] for i in (1, 2, 3)])
    position = np.array([float(tr.get(k)) for k in "xyz"]) / 1000
    R = np.diag([1.0, -1.0, -1.0]) @ M
    return R, -R @ position


def undistort(xy: np.ndarray, K: np.ndarray, dist: np.ndarray) -> np.ndarray:
    """(N, 2) distorted pixels -> the pixels an ideal pinhole of the same K would see.

    NaN rows (missing keypoints) stay NaN. More iterations than cv2.undistortPoints' five,
    which leave 0.4 px near the border of a strongly distorted lens.
    """
    out = np.full_like(xy, np.nan, dtype=float)
    ok = np.isfinite(xy).all(axis=1)
    if ok.any():
        pts = np.ascontiguousarray(xy[ok], dtype=float).reshape(-1, 1, 2)
        out[ok] = cv2.undistortPointsIter(pts, K, dist, None, K, UNDISTORT_CRITERIA).reshape(-1, 2)
    return out


def calibration_from_config(config: Mapping[str, Any]) -> Intrinsics | None:
    """The calibration named by ``[camera]`` in the config, or None for the fov pinhole."""
    camera = config.get("camera", {})
    path = camera.get("calibration") or ""
    return read_calibration(Path(path), camera.get("camera") or None) if path else None


class CameraMatrices:
    """K per image size for one pipeline's camera: read the calibration once, cache K.

    ``calibration`` (None without one) also gives the stages its distortion and pose."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.fov_deg = float(config.get("markers", {}).get("fov_deg", 60.0))
        self.calibration = calibration_from_config(config)
        self._cache: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, image_size: tuple[int, int]) -> np.ndarray:
        size = (int(image_size[0]), int(image_size[1]))
        if size not in self._cache:
            self._cache[size] = camera_matrix(size, self.fov_deg, self.calibration)
        return self._cache[size]

    @property
    def distorted(self) -> bool:
        """The calibration has lens distortion: pixels need ``undistort`` to fit K."""
        return self.calibration is not None and bool(np.any(self.calibration.dist != 0))
