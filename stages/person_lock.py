"""Person lock: keep detection on the person it first locked onto.

MediaPipe Pose (``solutions.pose``) follows one person by cropping each frame around the
previous frame's landmarks. With two people overlapping in the image that crop can slide
onto the other person, or mix them (head of one, hips of the other), and nothing says so.
A ``PersonLock`` remembers the locked person's 2D hip centre, velocity, torso scale and
box, and judges each new detection against them:

- the hip centre may move from its constant-velocity prediction by at most ``max_jump``
  torso scales per frame (``SETTLE_FACTOR`` times that for the first frames of a lock:
  MediaPipe's first landmarks after a detection are coarse, 0.21 torso scales off the next
  frame's on Demo_MultiPerson cam02);
- a person found anew (MediaPipe detected it again after missed frames, or the stage's
  re-detection found it) may be anywhere within ``search_radius`` torso scales of where it
  was last seen (an unseen person is held in place: extrapolating its motion would walk
  the prediction onto a neighbour);
- the torso scale may change by at most the factor ``max_scale_change`` per accepted frame;
- the face must lie within ``max_head`` torso scales of the shoulders (a face far from its
  torso belongs to someone else).

The torso scale is the largest of torso length, shoulder width and hip width in pixels:
one of them stays long however the person turns or bends. All thresholds live in
``config.toml`` ``[detect]``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.landmarks import LANDMARK

SHOULDERS = [LANDMARK["LShoulder"], LANDMARK["RShoulder"]]
HIPS = [LANDMARK["LHip"], LANDMARK["RHip"]]
FACE = slice(0, 11)  # MediaPipe landmarks 0-10: nose, eyes, ears, mouth
SETTLE_FRAMES = 3  # frames of a new lock judged with SETTLE_FACTOR times the jump allowance
SETTLE_FACTOR = 3
BOX_MARGIN = 0.25  # of the box size on each side, for the re-detection region


@dataclass(frozen=True)
class LockSettings:
    """Thresholds of the lock (``[detect]`` keys ``lock_*``, see config.toml)."""

    max_jump: float
    max_scale_change: float
    max_head: float
    search_radius: float
    timeout_s: float
    min_visibility: float

    @classmethod
    def from_config(cls, detect: Mapping[str, Any]) -> LockSettings:
        return cls(
            max_jump=float(detect["lock_max_jump"]),
            max_scale_change=float(detect["lock_max_scale_change"]),
            max_head=float(detect["lock_max_head"]),
            search_radius=float(detect["lock_search_radius"]),
            timeout_s=float(detect["lock_timeout_s"]),
            min_visibility=float(detect["lock_min_visibility"]),
        )


@dataclass(frozen=True)
class Body:
    """The 2D geometry of one detection that the lock compares (pixels)."""

    hip: np.ndarray  # (2,) hip centre
    scale: float  # torso scale (see module docstring)
    head: float  # face centre's distance from the shoulder centre, in torso scales
    box: np.ndarray  # (4,) x0, y0, x1, y1 of all landmarks
    torso_visibility: float  # mean visibility of shoulders and hips

    @classmethod
    def of(cls, xy: np.ndarray, visibility: np.ndarray) -> Body | None:
        """The body of 33 landmarks (33, 2) px; None if the torso cannot be measured."""
        (ls, rs), (lh, rh) = xy[SHOULDERS], xy[HIPS]
        hip, shoulder = 0.5 * (lh + rh), 0.5 * (ls + rs)
        scale = max(math.hypot(*(shoulder - hip)), math.hypot(*(ls - rs)), math.hypot(*(lh - rh)))
        if not (math.isfinite(scale) and scale > 0):
            return None
        head = math.hypot(*(xy[FACE].mean(axis=0) - shoulder)) / scale
        box = np.concatenate((xy.min(axis=0), xy.max(axis=0)))
        torso_visibility = float(visibility[SHOULDERS + HIPS].mean())
        return cls(hip, scale, head, box, torso_visibility)


class PersonLock:
    """The locked person of one source: where it was, how fast it moved, how big it is."""

    def __init__(self, settings: LockSettings) -> None:
        self.settings = settings
        self.switches = 0  # new locks after the first one
        self._body: Body | None = None
        self._velocity = np.zeros(2)
        self._seen = 0  # frames accepted since this lock began
        self._missed = 0  # frames since the last accepted one
        self._last_seen_s = 0.0

    @property
    def locked(self) -> bool:
        return self._body is not None

    def confident(self, body: Body) -> bool:
        """Whether ``body`` is clear enough to start a lock on."""
        return body.torso_visibility >= self.settings.min_visibility

    def matches(self, body: Body, fresh: bool = False) -> bool:
        """Whether ``body`` is the locked person by position, size and head-torso agreement.

        ``fresh``: ``body`` comes from a new detection, not from tracking the previous frame.
        """
        last = self._body
        if last is None:
            return False
        s = self.settings
        ratio = body.scale / last.scale
        if body.head > s.max_head or not 1 / s.max_scale_change <= ratio <= s.max_scale_change:
            return False
        if fresh or self._missed > 0:  # found anew: anywhere near where it was last seen
            allowed, predicted = s.search_radius, last.hip
        else:
            settling = self._seen < SETTLE_FRAMES
            allowed = s.max_jump * (SETTLE_FACTOR if settling else 1)
            predicted = last.hip + self._velocity
        return math.hypot(*(body.hip - predicted)) <= allowed * last.scale

    def expired(self, time_s: float) -> bool:
        """Whether the locked person has been unseen for longer than the timeout."""
        return self.locked and time_s - self._last_seen_s > self.settings.timeout_s

    def accept(self, body: Body, time_s: float, fresh: bool = False) -> None:
        """``body`` is the locked person in this frame: follow it.

        ``fresh``: MediaPipe detected it anew (not tracked from the previous frame), as it
        also does after missed frames; its landmarks settle again, so the next frames get
        the settling allowance and the velocity starts from zero.
        """
        if self._body is not None and self._missed == 0 and not fresh:
            self._velocity = 0.5 * self._velocity + 0.5 * (body.hip - self._body.hip)
        else:
            self._velocity = np.zeros(2)
            self._seen = 0
        self._body = body
        self._seen += 1
        self._missed = 0
        self._last_seen_s = time_s

    def restart(self, body: Body, time_s: float) -> None:
        """Lock onto ``body`` as a new person (the first lock, or the old one expired)."""
        self.switches += self.locked
        self._body = None
        self.accept(body, time_s)

    def miss(self) -> None:
        """The locked person was not found in this frame."""
        self._missed += 1

    def search_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Pixel region where the locked person is looked for again: its last box, enlarged."""
        if self._body is None:
            return 0, 0, width, height
        x0, y0, x1, y1 = self._body.box
        dx, dy = BOX_MARGIN * (x1 - x0), BOX_MARGIN * (y1 - y0)
        return (
            int(np.clip(x0 - dx, 0, width)),
            int(np.clip(y0 - dy, 0, height)),
            int(np.clip(np.ceil(x1 + dx), 0, width)),
            int(np.clip(np.ceil(y1 + dy), 0, height)),
        )
