"""Capture: frames from a video file, a webcam or a stream URL, as packets.

Capture is the source of the graph, not a ``Stage``: it produces packets instead of
transforming them. Files are read with their rotation metadata applied (phone videos),
frame times come from the frame index and the container frame rate so offline output is
deterministic; webcams and
streams are stamped with the time of arrival. ``realtime`` paces a file at its own frame
rate so it behaves like a camera (live mode).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2

from core.packet import Packet


class SourceError(RuntimeError):
    """The source cannot be opened or read; the message says what to do."""


def classify_source(source: str | int) -> str:
    """'webcam' for an integer index, 'url' for a network stream, 'file' otherwise."""
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return "webcam"
    if "://" in str(source):
        return "url"
    return "file"


class VideoSource:
    """Iterates over the frames of one source as ``Packet`` objects."""

    def __init__(
        self,
        source: str | int | Path,
        source_id: str | None = None,
        realtime: bool = False,
        idle: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = str(source)
        self.kind = classify_source(self.source)
        self.source_id = source_id or (
            Path(self.source).stem if self.kind == "file" else self.source
        )
        self.realtime = realtime
        self.idle = idle  # how a paced file waits for the next frame's time
        self._cap = self._open()
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or 30.0
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT))
        self.frame_count: int | None = count if self.kind == "file" and count > 0 else None
        self.frames_read = 0

    def _open(self) -> cv2.VideoCapture:
        if self.kind == "file":
            path = Path(self.source)
            if not path.exists():
                raise SourceError(f"video not found: {path} (check the path)")
            if path.is_dir():
                raise SourceError(f"{path} is a folder, not a video file")
            cap = cv2.VideoCapture(str(path))
        elif self.kind == "webcam":
            cap = cv2.VideoCapture(int(self.source))
        else:
            cap = cv2.VideoCapture(self.source, cv2.CAP_FFMPEG)
        if not cap.isOpened():
            cap.release()
            what = {
                "file": "is not a readable video (unknown format, or a truncated/corrupt file)",
                "webcam": "cannot be opened (no such camera, or it is in use by another program)",
                "url": "cannot be opened (check the URL and that the stream is running)",
            }[self.kind]
            raise SourceError(f"{self.source} {what}")
        # Apply the container's rotation tag so portrait phone videos come out upright.
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        ok, first = cap.read()
        if not ok or first is None:
            cap.release()
            raise SourceError(f"{self.source} opened but no frame could be decoded (corrupt file?)")
        self._first = first
        return cap

    def __iter__(self) -> Iterator[Packet]:
        start_wall = time.monotonic()
        frame = self._first
        index = 0
        while frame is not None:
            if self.kind == "file":
                media_time = index / self.fps
                if self.realtime:
                    delay = start_wall + media_time - time.monotonic()
                    if delay > 0:
                        self.idle(delay)
            else:
                media_time = time.monotonic() - start_wall
            height, width = frame.shape[:2]
            yield Packet(
                source_id=self.source_id,
                frame_index=index,
                timestamp_ns=time.monotonic_ns(),
                media_time_s=media_time,
                image_size=(width, height),
                image=frame,
                meta={"fps": self.fps},
            )
            index += 1
            self.frames_read = index
            ok, frame = self._cap.read()
            if not ok:
                frame = None
        self._check_complete()

    def _check_complete(self) -> None:
        """A file that stops well before its announced length is truncated: say so."""
        if self.frame_count is None:
            return
        if self.frames_read < 0.95 * self.frame_count - 1:
            raise SourceError(
                f"{self.source} ended after {self.frames_read} of {self.frame_count} frames: "
                "the file is truncated or corrupt (re-export or re-copy it)"
            )

    def close(self) -> None:
        self._cap.release()
