"""Capture: rotation metadata of phone videos, and clear errors on unreadable sources."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.demo_data import demo_video
from stages.capture import SourceError, VideoSource, classify_source


def write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def set_rotation_90(path: Path) -> None:
    """Patch the track header matrix of an MP4 to a 90 degree display rotation (as phones do)."""
    data = bytearray(path.read_bytes())
    box = data.find(b"tkhd")
    assert box > 0 and data[box + 4] == 0, "expected a version-0 tkhd box"
    matrix = box + 4 + 40  # version/flags, times, track id, reserved, duration, layer, volume
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 65536, 0, -65536, 0, 0, 0, 0, 1 << 30)
    path.write_bytes(bytes(data))


def test_rotation_metadata_is_applied(tmp_path: Path) -> None:
    frame = np.zeros((32, 64, 3), np.uint8)
    frame[:, :32] = 255  # left half white
    path = write_video(tmp_path / "phone.mp4", [frame] * 5)
    set_rotation_90(path)
    packet = next(iter(VideoSource(path)))
    assert packet.image_size == (32, 64)  # portrait after rotation
    rows = packet.image[:, :, 0].mean(axis=1)
    assert rows[0] > 200 and rows[-1] < 50  # the white left half is now on top


def test_demo_video_frames_and_times() -> None:
    source = VideoSource(demo_video("cam01"))
    packets = list(source)
    assert len(packets) == 100
    assert [p.frame_index for p in packets] == list(range(100))
    assert packets[1].media_time_s == pytest.approx(1 / 60)
    assert packets[0].image_size == (1080, 1920)


@pytest.mark.parametrize(
    ("source", "kind"),
    [("0", "webcam"), (1, "webcam"), ("rtsp://cam.local/stream", "url"), ("a/b.mp4", "file")],
)
def test_classify_source(source: str | int, kind: str) -> None:
    assert classify_source(source) == kind


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="video not found"):
        VideoSource(tmp_path / "nope.mp4")


def test_not_a_video(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 100)
    with pytest.raises(SourceError, match="not a readable video"):
        VideoSource(path)


def test_truncated_video(tmp_path: Path) -> None:
    data = demo_video("cam01").read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match="truncated"):
        list(VideoSource(path, truncation_tolerance=0.01))
