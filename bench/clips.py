"""Video clips made from the demo's real frames, for benchmarks and tests of live runs:
the frames played forth and back make a source as long as needed."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def read_frames(video: Path, scale: float = 1.0) -> list[np.ndarray]:
    """Every frame of ``video`` (BGR), resized by ``scale``."""
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            return frames
        frames.append(cv2.resize(frame, None, fx=scale, fy=scale) if scale != 1 else frame)


def ping_pong(frames: list[np.ndarray]) -> list[np.ndarray]:
    """The frames forwards then backwards: a loop without a jump at the seam."""
    return frames + frames[::-1]


def paced_clip(frames: list[np.ndarray], fps: float, seconds: float, out: Path) -> int:
    """``frames`` forth and back for ``seconds`` at ``fps`` into ``out``; the frame count."""
    cycle = ping_pong(frames)
    n = int(fps * seconds)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for i in range(n):
        writer.write(cycle[i % len(cycle)])
    writer.release()
    return n
