"""Scene lines: straight edges of the scene for levelling.

Walls, doors, shelves and furniture have vertical edges; in the image they meet at the
vertical vanishing point, which gives the camera's pitch and roll with the intrinsics
(stages/levelling.py). Only detect has the pixels, so it samples a frame every
``LINE_INTERVAL_S`` during the levelling seconds and sends a small grey copy of it on
(``line_image``: ``LINE_IMAGE_PX`` on the longer side, ~1 ms per 1080 x 1920 frame); the
segments are found where they are used, in the markers stage (``scene_segments``), so the
line search (~9 ms per sampled frame) stays off the detection process, which sets the pace
of the whole pipeline. The search is OpenCV's line segment detector (LSD), keeping long
segments that are closer to the image's vertical than to its horizontal, lie outside the
person's box (limbs are straight too) and above the person's feet: below them the floor's
receding edges (tiles, mats, platforms) look vertical in the image but meet at the horizon.
A frame without a person gives no lines (15 frames in the default 3 levelling seconds).
"""

from __future__ import annotations

import cv2
import numpy as np

from core.intrinsics import CameraMatrices, undistort

LINE_INTERVAL_S = 0.2  # one frame sampled per this many seconds of video
LINE_IMAGE_PX = 480  # longer side of the image the lines are found in
LINE_MIN_LENGTH = 0.04  # segments shorter than this fraction of the image diagonal are noise
PERSON_MARGIN = 0.1  # the person's box grows by this fraction of its size on each side


def line_image(image: np.ndarray) -> np.ndarray:
    """The grey image (uint8) the lines of a BGR frame are searched in: ``LINE_IMAGE_PX`` on
    its longer side, bilinear as the search always had it (an earlier call passed INTER_AREA
    where OpenCV takes the output array; area averaging would cost 2.4 times as much)."""
    height, width = image.shape[:2]
    scale = LINE_IMAGE_PX / max(height, width)
    small = cv2.resize(image, (round(width * scale), round(height * scale)))
    return cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)


def scene_segments(
    grey: np.ndarray,
    person_xy: np.ndarray | None,
    image_size: tuple[int, int],
    camera: CameraMatrices,
) -> np.ndarray:
    """(N, 4) segments (x0, y0, x1, y1) in full-image pixels of ``image_size`` (width,
    height), undistorted where ``camera`` has lens distortion, mostly vertical, off the person
    (``person_xy``: the 2D landmarks, undistorted). ``grey``: the frame's ``line_image``."""
    if person_xy is None or not np.isfinite(person_xy).any():
        return np.zeros((0, 4))
    width, height = image_size
    scale = LINE_IMAGE_PX / max(height, width)
    found = cv2.createLineSegmentDetector(cv2.LSD_REFINE_STD).detect(grey)[0]
    if found is None:
        return np.zeros((0, 4))
    seg = found.reshape(-1, 4).astype(np.float64) / scale
    d = seg[:, 2:] - seg[:, :2]
    keep = (np.hypot(*d.T) > LINE_MIN_LENGTH * np.hypot(width, height)) & (
        np.abs(d[:, 1]) > np.abs(d[:, 0])
    )
    seg = seg[keep & off_person(seg, person_xy)]
    if camera.distorted and len(seg):
        K, dist = camera(image_size), camera.calibration.dist
        seg = undistort(seg.reshape(-1, 2), K, dist).reshape(-1, 4)
    return seg


def off_person(segments: np.ndarray, person_xy: np.ndarray) -> np.ndarray:
    """Which segments have their middle outside the person's box and above its feet."""
    low, high = np.nanmin(person_xy, axis=0), np.nanmax(person_xy, axis=0)
    margin = PERSON_MARGIN * (high - low)
    middle = 0.5 * (segments[:, :2] + segments[:, 2:])
    inside = ((middle > low - margin) & (middle < high + margin)).all(axis=1)
    return ~inside & (middle[:, 1] < high[1])
