"""Capture: frames from a video file, a webcam or a stream URL, as packets.

Capture is the source of the graph, not a ``Stage``: it produces packets instead of
transforming them. Files are read with their rotation metadata applied (phone videos),
frame times come from the frame index and the container frame rate so offline output is
deterministic; webcams and
streams are stamped with the time of arrival. ``realtime`` paces a file at its own frame
rate so it behaves like a camera (live mode).

A network stream (``url``) that closes or stalls (no frame for ``read_timeout_s``) is
reopened with back-off for up to ``reconnect_s``; ``on_state`` hears "reconnecting" and
"ok", and a stream that never comes back raises ``SourceError``. A file can start at
``start_frame`` (a restarted capture resumes where the killed one stopped).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np

from core.packet import Packet

BACKOFF_S = (0.25, 4.0)  # first and longest wait between two attempts to reopen a stream


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
        reconnect_s: float = 0.0,
        read_timeout_s: float | None = None,
        start_frame: int = 0,
        origin_ns: int | None = None,
        on_state: Callable[[str], None] = lambda state: None,
        truncation_tolerance: float | None = None,
    ) -> None:
        """``reconnect_s``, ``read_timeout_s``, ``truncation_tolerance``: see ``[capture]`` in
        config.toml (None: FFmpeg's own timeouts; no truncation check); ``origin_ns``:
        CLOCK_MONOTONIC time of media time 0 for cameras and streams (default: when the first
        frame is read)."""
        self.source = str(source)
        self.kind = classify_source(self.source)
        self.source_id = source_id or (
            Path(self.source).stem if self.kind == "file" else self.source
        )
        self.realtime = realtime
        self.idle = idle  # how a paced file waits for the next frame's time
        self.reconnect_s = reconnect_s
        self.read_timeout_s = read_timeout_s
        self.start_frame = start_frame
        self.truncation_tolerance = truncation_tolerance
        self.origin_ns = origin_ns
        self.on_state = on_state
        self.reconnects = 0
        self._cap = self._open()
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or 30.0
        count = self._count(self._cap)
        self._announced = count if count > 0 else None  # live streams announce no length
        self.frame_count = self._announced if self.kind == "file" else None
        self.frames_read = start_frame

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
        elif self.read_timeout_s is None:
            cap = cv2.VideoCapture(self.source, cv2.CAP_FFMPEG)
        else:
            ms = int(self.read_timeout_s * 1000)
            timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
            cap = cv2.VideoCapture(self.source, cv2.CAP_FFMPEG, timeouts)
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
        if self.kind == "file" and self.start_frame:
            cap.set(cv2.CAP_PROP_POS_FRAMES, self.start_frame)
        ok, first = cap.read()
        if not ok and self.kind == "file" and 0 < self._count(cap) <= self.start_frame:
            first = None  # resumed after the last frame: nothing left to read
        elif not ok or first is None:
            cap.release()
            raise SourceError(f"{self.source} opened but no frame could be decoded (corrupt file?)")
        self._first = first
        return cap

    @staticmethod
    def _count(cap: cv2.VideoCapture) -> int:
        """Frames the container announces; 0 or less when it does not know."""
        return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))

    def __iter__(self) -> Iterator[Packet]:
        start_wall = time.monotonic() - self.start_frame / self.fps  # files: frame 0's time
        origin_ns = time.monotonic_ns() if self.origin_ns is None else self.origin_ns
        frame = self._first
        index = self.start_frame
        while frame is not None:
            if self.kind == "file":
                media_time = index / self.fps
                if self.realtime:
                    delay = start_wall + media_time - time.monotonic()
                    if delay > 0:
                        self.idle(delay)
            else:
                media_time = (time.monotonic_ns() - origin_ns) / 1e9
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
                frame = self._reconnect() if self._stream_lost() else None
        self._check_complete()

    def _stream_lost(self) -> bool:
        """A stream that ends before its announced length (live streams announce none)."""
        return self.kind == "url" and (
            self._announced is None or self.frames_read < self._announced
        )

    def _reconnect(self) -> np.ndarray:
        """Reopen a dropped stream with back-off; its first frame, or SourceError."""
        self._cap.release()
        self.on_state("reconnecting")
        deadline = time.monotonic() + self.reconnect_s
        wait = BACKOFF_S[0]
        while True:
            try:
                self._cap = self._open()
                break
            except SourceError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise SourceError(
                        f"{self.source}: the stream dropped and did not come back within "
                        f"{self.reconnect_s:g} s (check the camera and the network; [capture] "
                        "reconnect_s in config.toml sets how long to retry)"
                    ) from None
                time.sleep(min(wait, left))
                wait = min(2 * wait, BACKOFF_S[1])
        self.reconnects += 1
        self.on_state("ok")
        return self._first

    def _check_complete(self) -> None:
        """A file that ends more than ``truncation_tolerance`` (a fraction) before the frame
        count of its header is truncated: say so. A little is allowed for variable-frame-rate
        (phone) videos, whose header count is an estimate."""
        announced, read, tolerance = self.frame_count, self.frames_read, self.truncation_tolerance
        if announced is None or tolerance is None or read >= announced * (1.0 - tolerance):
            return
        raise SourceError(
            f"{self.source} ended after {read} of the {announced} frames its header announces "
            f"({1 - read / announced:.1%} missing, more than [capture] truncation_tolerance = "
            f"{tolerance:g}): the file is truncated or corrupt (re-export or re-copy it)"
        )

    def close(self) -> None:
        self._cap.release()
