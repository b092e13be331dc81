"""TRC marker files in the layout OpenSim and Pose2Sim read (metres, tab-separated).

The header needs the frame count, known only at the end of a live recording, so rows are
streamed into a temporary body file and the final file is assembled atomically on
``finish``. Missing markers are written as ``NaN``, which OpenSim treats as gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from offline.atomic import AtomicFile


def trc_header(name: str, markers: Sequence[str], rate: float, n_frames: int) -> str:
    """The five header lines of a TRC file (plus the blank line OpenSim expects)."""
    names = "\t".join(f"{m}\t\t" for m in markers)
    axes = "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, len(markers) + 1))
    return (
        f"PathFileType\t4\t(X/Y/Z)\t{name}\n"
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\t"
        "OrigDataStartFrame\tOrigNumFrames\n"
        f"{rate:.2f}\t{rate:.2f}\t{n_frames}\t{len(markers)}\tm\t{rate:.2f}\t1\t{n_frames}\n"
        f"Frame#\tTime\t{names}\n"
        f"\t\t{axes}\n"
        "\n"
    )


class TrcWriter:
    """Streams frames of markers into a TRC file that appears only when complete."""

    def __init__(self, path: Path, markers: Sequence[str], rate: float) -> None:
        self.path = Path(path)
        self.markers = tuple(markers)
        self.rate = rate
        self.n_frames = 0
        self._body = AtomicFile(self.path.with_name(self.path.name + ".rows"))

    def add(self, time_s: float, xyz: np.ndarray) -> None:
        """Append one frame: ``xyz`` is (n_markers, 3) in metres, NaN for missing."""
        if xyz.shape != (len(self.markers), 3):
            raise ValueError(f"expected {(len(self.markers), 3)} markers, got {xyz.shape}")
        self.n_frames += 1
        values = "\t".join(f"{v:.6f}" if np.isfinite(v) else "NaN" for v in xyz.ravel())
        self._body.handle.write(f"{self.n_frames}\t{time_s:.6f}\t{values}\n")

    def finish(self) -> Path:
        """Write the header with the final frame count and move the file into place."""
        self._body.handle.flush()
        self._body.handle.close()
        try:
            with AtomicFile(self.path) as out:
                out.write(trc_header(self.path.name, self.markers, self.rate, self.n_frames))
                with open(self._body.tmp_path, encoding="utf-8") as rows:
                    for line in rows:
                        out.write(line)
        finally:
            self._body.discard()
        return self.path

    def discard(self) -> None:
        self._body.discard()
