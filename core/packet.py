"""The per-frame packet every stage reads and extends.

One packet per video frame. Stages add named numpy arrays to ``data`` and scalar facts to
``meta``; only capture and detect touch ``image``, everything later moves a few kB. Packets
must stay plain (numpy arrays, str, int, float, bool, None) so a codec can ship them between
processes without pickle.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Packet:
    """One frame of one source on its way through the pipeline."""

    source_id: str
    frame_index: int
    timestamp_ns: int  # capture time, time.monotonic_ns() of the capturing process
    media_time_s: float  # position in the source (video PTS or seconds since start)
    image_size: tuple[int, int]  # (width, height) in pixels, after rotation
    image: np.ndarray | None = None  # BGR uint8 (H, W, 3); dropped once detection is done
    data: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)
    timings: list[tuple[str, int, int]] = field(default_factory=list)  # (stage, enter, leave) ns

    def freeze(self) -> None:
        """Make the image and every array read-only, as the socket codec delivers them, so a
        stage that writes to its input fails offline too, not only live."""
        for array in (self.image, *self.data.values()):
            if isinstance(array, np.ndarray):
                array.flags.writeable = False

    def stamp(self, stage_name: str, enter_ns: int) -> None:
        """Record that ``stage_name`` handled this packet from ``enter_ns`` until now."""
        self.timings.append((stage_name, enter_ns, time.monotonic_ns()))

    def stage_ms(self) -> dict[str, float]:
        """Milliseconds spent in each stage, for latency accounting."""
        return {name: (leave - enter) / 1e6 for name, enter, leave in self.timings}
