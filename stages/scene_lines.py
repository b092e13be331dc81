"""Scene lines: straight edges of the scene for levelling, found in the detect stage.

Walls, doors, shelves and furniture have vertical edges; in the image they meet at the
vertical vanishing point, which gives the camera's pitch and roll with the intrinsics
(stages/levelling.py). Only detect has the pixels, so it samples a frame every
``LINE_INTERVAL_S`` during the levelling seconds and sends the segments on: the line
segment detector (OpenCV's LSD) on a grey image of ``LINE_IMAGE_PX``, keeping long segments
that are closer to the image's vertical than to its horizontal, lie outside the person's
box (limbs are straight too) and above the person's feet: below them the floor's receding
edges (tiles, mats, platforms) look vertical in the image but meet at the horizon. A frame
without a person gives no lines. About 9 ms per sampled 1080 x 1920 frame on an idle core
(15 frames in the default 3 levelling seconds).
"""

from __future__ import annotations

import cv2
import numpy as np

LINE_INTERVAL_S = 0.2  # one frame sampled per this many seconds of video
LINE_IMAGE_PX = 480  # longer side of the image the lines are found in
LINE_MIN_LENGTH = 0.04  # segments shorter than this fraction of the image diagonal are noise
PERSON_MARGIN = 0.1  # the person's box grows by this fraction of its size on each side


def scene_segments(image: np.ndarray, person_xy: np.ndarray | None) -> np.ndarray:
    """(N, 4) segments (x0, y0, x1, y1) in full-image pixels, mostly vertical, off the person."""
    if person_xy is None or not np.isfinite(person_xy).any():
        return np.zeros((0, 4))
    height, width = image.shape[:2]
    scale = LINE_IMAGE_PX / max(height, width)
    small = cv2.resize(image, (round(width * scale), round(height * scale)), cv2.INTER_AREA)
    found = cv2.createLineSegmentDetector(cv2.LSD_REFINE_STD).detect(
        cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    )[0]
    if found is None:
        return np.zeros((0, 4))
    seg = found.reshape(-1, 4).astype(np.float64) / scale
    d = seg[:, 2:] - seg[:, :2]
    keep = (np.hypot(*d.T) > LINE_MIN_LENGTH * np.hypot(width, height)) & (
        np.abs(d[:, 1]) > np.abs(d[:, 0])
    )
    return seg[keep & off_person(seg, person_xy)]


def off_person(segments: np.ndarray, person_xy: np.ndarray) -> np.ndarray:
    """Which segments have their middle outside the person's box and above its feet."""
    low, high = np.nanmin(person_xy, axis=0), np.nanmax(person_xy, axis=0)
    margin = PERSON_MARGIN * (high - low)
    middle = 0.5 * (segments[:, :2] + segments[:, 2:])
    inside = ((middle > low - margin) & (middle < high + margin)).all(axis=1)
    return ~inside & (middle[:, 1] < high[1])
