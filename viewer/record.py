"""The viewer's own recorder: ``r`` in the window writes the markers it receives to a TRC.

It records what the window was sent, so it needs no access to the pipeline: frames the
window missed while busy are simply absent (the time column keeps each frame's media
time, which OpenSim reads). The file appears only when recording stops (``TrcWriter`` is
atomic); a recording cut short by a crash leaves no partial file under the final name.
Beside it, ``<same name>.run.json`` says what made it: the recording (source, frames,
times), this viewer's software, and the pipeline's provenance from the control socket's
``run`` reply (its command, configuration, models and input with their hashes).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.atomic import AtomicFile
from core.provenance import UNKNOWN, plain, software, utc_now
from core.trc import TrcWriter


class ViewerRecorder:
    """Start, feed and stop one TRC recording at a time."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._writer: TrcWriter | None = None
        self._first_s: float | None = None
        self._last_s = 0.0
        self._started = ""
        self._source_id = ""

    @property
    def recording(self) -> bool:
        return self._writer is not None

    def start(self, source_id: str, names: Sequence[str]) -> Path:
        """Open ``<folder>/<source>_<date-time>.trc``; the rate is fixed when it stops."""
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in source_id) or "live"
        path = self.folder / f"{safe}_{time.strftime('%Y%m%d-%H%M%S')}.trc"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._writer = TrcWriter(path, names, rate=0.0)
        self._first_s = None
        self._started, self._source_id = utc_now(), source_id
        return path

    def add(self, message: dict[str, Any]) -> None:
        """One ``pose.markers`` message; times start at 0 with the first recorded frame."""
        if self._writer is None:
            return
        media_s = float(message["media_time_s"])
        if self._first_s is None:
            self._first_s = media_s
        self._last_s = media_s
        self._writer.add(media_s - self._first_s, np.asarray(message["markers"]))

    def stop(self, run: Mapping[str, Any] | None = None) -> Path | None:
        """Finish the file (rate = frames recorded per second of media) and its ``run.json``
        (``run``: the control socket's provenance, None if it never answered); the TRC's
        path or None."""
        writer, self._writer = self._writer, None
        if writer is None:
            return None
        if writer.n_frames < 2 or self._first_s is None:
            writer.discard()
            return None
        span = max(self._last_s - self._first_s, 1e-6)
        writer.rate = (writer.n_frames - 1) / span
        record = {
            "recording": {
                "file": writer.path.name,
                "source_id": self._source_id,
                "frames": writer.n_frames,
                "rate_hz": writer.rate,
                "media_time_s": [self._first_s, self._last_s],
                "started": self._started,
                "ended": utc_now(),
                "recorded_by": "viewer (the frames the window received)",
            },
            "viewer": software(),
            "pipeline": dict(run) if run is not None else UNKNOWN,
        }
        path = writer.finish()
        with AtomicFile(path.with_suffix(".run.json")) as f:
            f.write(json.dumps(plain(record), indent=2, allow_nan=False) + "\n")
        return path
