"""Detect: MediaPipe Pose (0.10.21 ``solutions.pose``, full model, with tracking).

Per frame it adds the 33 landmarks in image pixels, MediaPipe's metric hip-centred world
landmarks and the per-landmark visibility. Frames with nobody in view get NaN arrays and
``meta["person"] = False`` so later stages can keep running. The image is dropped from the
packet once used: nothing downstream needs pixels except the viewer, which asks for them.
With ``[detect] preview`` on (the live viewer), a small JPEG of the frame travels instead as
``data["preview_jpeg"]`` (uint8 bytes, ~20 kB at 480 px; ~0.5 ms per 1080p frame, a few
percent of detection), with its size in ``meta["preview_size"]``.

With ``[detect] person_lock`` on (the default) detection stays on one person
(``stages.person_lock``): a detection that is not the locked person is not passed on.
Instead MediaPipe restarts on the frame with everything outside the locked person's last
box greyed out; if that finds the person again, that detection is used, otherwise the
frame has no person. Only after ``lock_timeout_s`` without the locked person may another
one be locked: that frame carries ``meta["track_reset"] = True`` so stateful stages start
afresh (``core.stage.Stage``). ``meta["person_lock"]`` says what happened in each frame
(``LOCK_STATES``) and ``meta["person_switches"]`` counts the new locks of the source.

With a calibration that has lens distortion (``[camera] calibration``), the 2D landmarks
are undistorted (core/intrinsics.py ``undistort``) before they leave this stage: every
later stage and the raw-landmarks CSV see the pixels of an ideal pinhole of the same K.
During the first ``[camera] level_s`` seconds without a calibrated pose, sampled frames
with a person also carry ``data["scene_image"]``, a small grey copy of the frame in which
the markers stage finds the scene's lines for levelling (stages/scene_lines.py).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import cv2
import numpy as np

from core.intrinsics import CameraMatrices, undistort
from core.packet import Packet
from core.stage import Stage
from stages.person_lock import Body, LockSettings, PersonLock
from stages.scene_lines import LINE_INTERVAL_S, line_image

N_LANDMARKS = 33
LOCK_STATES = {
    "unlocked": "a detection passed on before any was confident enough to lock onto",
    "locked": "the first confident detection: the lock starts on this person",
    "held": "the locked person, as MediaPipe tracked it",
    "reacquired": "the locked person, found again by re-detection around its last box",
    "rejected": "someone else was detected and dropped: no person in this frame",
    "lost": "nobody was detected",
    "switched": "another person is locked from this frame on (stateful stages reset)",
}
REDETECT_GREY = 128  # fill of the image outside the re-detection region


class Landmarks(NamedTuple):
    """One detection: image pixels (33, 2), depth (33,) px, visibility (33,), world (33, 3) m."""

    xy: np.ndarray
    z: np.ndarray
    visibility: np.ndarray
    world: np.ndarray


def pose_solution() -> ModuleType:
    """MediaPipe's ``solutions.pose`` module, imported only when a tracker is made: the
    supervisor and the offline parent import this module for the stage's name and
    constants, and need none of MediaPipe.

    The ``__init__`` of the ``mediapipe`` and ``mediapipe.python.solutions`` packages import
    every solution, the tasks API and, for the drawing helpers, matplotlib: 400 modules and
    ~40 MB of the detect process that detection never uses. So unless the whole package is
    already imported (by another tool in the same process), both packages are entered as
    empty modules that only know where their files are: their submodules import as usual.
    """
    if "mediapipe" not in sys.modules:
        from importlib.metadata import version  # here: it imports email, zipfile, csv, ...

        top = importlib.util.find_spec("mediapipe")
        if top is None or top.origin is None:
            raise ImportError("mediapipe is not installed (uv sync installs it)")
        folder = Path(top.origin).parent / "python" / "solutions"
        package = importlib.util.module_from_spec(top)
        package.__version__ = version("mediapipe")
        solutions = importlib.util.spec_from_file_location(
            "mediapipe.python.solutions",
            folder / "__init__.py",
            submodule_search_locations=[str(folder)],
        )
        assert solutions is not None
        sys.modules["mediapipe"] = package
        sys.modules["mediapipe.python.solutions"] = importlib.util.module_from_spec(solutions)
    return importlib.import_module("mediapipe.python.solutions.pose")


def pose_settings(detect: Mapping[str, Any]) -> dict[str, Any]:
    """MediaPipe Pose's arguments for ``[detect]``: video mode (tracking), smoothing."""
    return {
        "static_image_mode": False,
        "model_complexity": int(detect.get("model_complexity", 1)),
        "smooth_landmarks": True,
        "enable_segmentation": False,
        "min_detection_confidence": float(detect.get("min_detection_confidence", 0.5)),
        "min_tracking_confidence": float(detect.get("min_tracking_confidence", 0.5)),
    }


def landmarks_of(result: Any, width: int, height: int) -> Landmarks | None:
    """MediaPipe's result in pixels and metres; None when nobody was detected."""
    if result.pose_landmarks is None:
        return None
    lms = result.pose_landmarks.landmark
    return Landmarks(
        np.array([[lm.x * width, lm.y * height] for lm in lms]),
        np.array([lm.z * width for lm in lms]),
        np.array([lm.visibility for lm in lms]),
        np.array([[lm.x, lm.y, lm.z] for lm in result.pose_world_landmarks.landmark]),
    )


RGB_KEY = "image_rgb"  # packet.data: the frame made ahead by ``prepare``, popped by process


def rgb_of(image: np.ndarray) -> np.ndarray:
    """A BGR frame (OpenCV's order) in the RGB order MediaPipe takes."""
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


WARM_UP_SIZE = 64  # px: the blank image of the first inference (the models resize anyway)


def warmed(tracker: Any) -> Any:
    """``tracker`` after one inference on a blank image: TensorFlow Lite prepares its
    interpreters on the first one (~66 ms), which would otherwise hold up a source's first
    frame and queue the next ones behind it. A frame without a person leaves the tracker as
    it was: the next frame runs the person detector, as on a fresh one, and the solution's
    clock only moves on by one frame, so every later output is unchanged."""
    tracker.process(np.zeros((WARM_UP_SIZE, WARM_UP_SIZE, 3), np.uint8))
    return tracker


class MediaPipeDetector(Stage):
    """Runs one MediaPipe Pose tracker per source (its tracking state is per video)."""

    name = "detect"

    def __init__(self) -> None:
        self.preview_size = 0  # longer side of the preview in px; 0: no preview
        self.preview_quality = 70
        self._settings: dict[str, Any] = {}
        self._trackers: dict[str, Any] = {}
        self._spare: Any = None
        self._lock_settings: LockSettings | None = None
        self._locks: dict[str, PersonLock] = {}
        self._lines: dict[str, tuple[float, float]] = {}  # per source: first, next sample (s)

    def setup(self, config: Mapping[str, Any]) -> None:
        detect = config.get("detect", {})
        self._settings = pose_settings(detect)
        if detect.get("preview", False):
            self.preview_size = int(detect.get("preview_size", 480))
            self.preview_quality = int(detect.get("preview_quality", 70))
        if detect["person_lock"]:
            self._lock_settings = LockSettings.from_config(detect)
        self.camera = CameraMatrices(config)
        self.undistort = self.camera.distorted
        calibration = self.camera.calibration
        posed = calibration is not None and calibration.R is not None
        self.line_seconds = 0.0 if posed else float(config["camera"]["level_s"])
        self._spare = warmed(self._new_tracker())  # now, not on the first frame

    def _new_tracker(self) -> Any:
        """A MediaPipe Pose solution with the detect stage's settings."""
        return pose_solution().Pose(**self._settings)

    def _tracker(self, source_id: str) -> Any:
        tracker = self._trackers.get(source_id)
        if tracker is None:
            tracker, self._spare = self._spare or self._new_tracker(), None
            self._trackers[source_id] = tracker
        return tracker

    def prepare(self, packet: Packet) -> None:
        """The frame in MediaPipe's colour order, made by the reader thread of the pipelined
        offline mode while MediaPipe works on the previous frame."""
        if packet.image is not None:
            packet.data[RGB_KEY] = rgb_of(packet.image)

    def process(self, packet: Packet) -> Packet:
        if packet.image is None:
            raise ValueError("detect needs the image: capture must run before detect")
        rgb = packet.data.pop(RGB_KEY, None)
        if rgb is None:
            rgb = rgb_of(packet.image)
        width, height = packet.image_size
        found = landmarks_of(self._tracker(packet.source_id).process(rgb), width, height)
        if self._lock_settings is not None:
            found = self._hold(packet, rgb, found)
        if found and self.undistort:
            K = self.camera(packet.image_size)
            found = found._replace(xy=undistort(found.xy, K, self.camera.calibration.dist))
        self._sample_lines(packet, found)
        packet.data["landmarks_2d"] = found.xy if found else np.full((N_LANDMARKS, 2), np.nan)
        packet.data["landmarks_z"] = found.z if found else np.full(N_LANDMARKS, np.nan)
        packet.data["visibility"] = found.visibility if found else np.zeros(N_LANDMARKS)
        packet.data["world_3d"] = found.world if found else np.full((N_LANDMARKS, 3), np.nan)
        packet.meta["person"] = found is not None
        if self.preview_size > 0:
            jpeg, size = encode_preview(packet.image, self.preview_size, self.preview_quality)
            packet.data["preview_jpeg"] = jpeg
            packet.meta["preview_size"] = size
        packet.image = None  # no stage after detection needs pixels
        return packet

    def _sample_lines(self, packet: Packet, found: Landmarks | None) -> None:
        """The line image of one frame per ``LINE_INTERVAL_S`` in the levelling seconds."""
        if self.line_seconds <= 0:
            return
        time_s = packet.media_time_s
        if packet.meta.get("track_reset", False):
            self._lines.pop(packet.source_id, None)  # levelling starts afresh too
        first, due = self._lines.setdefault(packet.source_id, (time_s, time_s))
        if time_s < due or time_s - first > self.line_seconds:
            return
        self._lines[packet.source_id] = (first, time_s + LINE_INTERVAL_S)
        if found is not None:  # no person, no lines (scene_segments)
            packet.data["scene_image"] = line_image(packet.image)

    def _hold(self, packet: Packet, rgb: np.ndarray, found: Landmarks | None) -> Landmarks | None:
        """Keep ``found`` only if it is the locked person (policy in the module docstring)."""
        lock = self._locks.get(packet.source_id)
        if lock is None:
            lock = self._locks[packet.source_id] = PersonLock(self._lock_settings)
        body = Body.of(found.xy, found.visibility) if found else None
        time_s = packet.media_time_s
        if body is None:
            state = "lost"
        elif not lock.locked:
            state = "locked" if lock.confident(body) else "unlocked"
        elif lock.matches(body):
            state = "held"
        elif lock.expired(time_s) and lock.confident(body):
            state = "switched"
        else:
            found = self._redetect(packet, rgb, lock.search_box(*packet.image_size))
            body = Body.of(found.xy, found.visibility) if found else None
            state = "reacquired" if body and lock.matches(body, fresh=True) else "rejected"
        if state in ("locked", "switched"):
            lock.restart(body, time_s)
        elif state in ("held", "reacquired"):
            lock.accept(body, time_s, fresh=state == "reacquired")
        elif state != "unlocked":
            lock.miss()
            found = None
        packet.meta["person_lock"] = state
        packet.meta["person_switches"] = lock.switches
        packet.meta["track_reset"] = state == "switched"
        return found

    def _redetect(
        self, packet: Packet, rgb: np.ndarray, box: tuple[int, int, int, int]
    ) -> Landmarks | None:
        """Restart MediaPipe on ``rgb`` greyed outside ``box``, so it can find only who is inside.

        The tracker then follows whoever it found here, from the next frame on.
        """
        x0, y0, x1, y1 = box
        masked = np.full_like(rgb, REDETECT_GREY)
        masked[y0:y1, x0:x1] = rgb[y0:y1, x0:x1]
        tracker = self._tracker(packet.source_id)
        tracker.reset()
        return landmarks_of(tracker.process(masked), *packet.image_size)

    def reset(self, source_id: str | None = None) -> None:
        """Forget the source's tracking. Its tracker becomes the next source's spare,
        restarted and warmed now: a source ends where nobody waits (the end of a video, a
        live source that stopped), while a new tracker would hold up the next source's first
        frame by ~150 ms (loading the graph, then TensorFlow Lite's first inference), which
        is a tenth of a short video in a batch."""
        for tracker in self._forget(source_id):
            if self._spare is None:
                tracker.reset()  # the graph restarts as new, with its models kept (~2 ms)
                self._spare = warmed(tracker)
            else:
                tracker.close()

    def close(self) -> None:
        for tracker in [*self._forget(None), self._spare]:
            if tracker is not None:
                tracker.close()
        self._spare = None

    def _forget(self, source_id: str | None) -> list[Any]:
        """Drop the per-source state of one source (None: all); their trackers."""
        ids = list(self._trackers) if source_id is None else [source_id]
        for sid in ids:
            self._locks.pop(sid, None)
            self._lines.pop(sid, None)
        return [t for sid in ids if (t := self._trackers.pop(sid, None)) is not None]


def encode_preview(
    image: np.ndarray, longer_side: int, quality: int
) -> tuple[np.ndarray, list[int]]:
    """The image downscaled to ``longer_side`` px as JPEG bytes (uint8), and its [w, h].

    Bilinear: INTER_AREA looks smoother but costs up to 10x more at these ratios.
    """
    height, width = image.shape[:2]
    scale = min(1.0, longer_side / max(width, height))
    size = [max(1, round(width * scale)), max(1, round(height * scale))]
    small = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"JPEG encoding failed for a {width}x{height} image")
    return jpeg.reshape(-1), size
