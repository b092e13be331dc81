"""TRC marker files in the layout OpenSim and Pose2Sim read (metres, tab-separated).

The header needs the frame count, known only at the end of a live recording, so rows are
streamed into a temporary body file and the final file is assembled atomically on
``finish``. Missing markers are written as ``NaN``, which OpenSim treats as gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.atomic import AtomicFile
from core.number_text import number_row
from core.provenance import software_label


def trc_header(name: str, markers: Sequence[str], rate: float, n_frames: int) -> str:
    """The five header lines of a TRC file (plus the blank line OpenSim expects); the first
    line, which readers skip, also names the software that wrote it."""
    names = "\t".join(f"{m}\t\t" for m in markers)
    axes = "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, len(markers) + 1))
    return (
        f"PathFileType\t4\t(X/Y/Z)\t{name}\t{software_label()}\n"
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
        self._body = AtomicFile(self.path)  # the rows only: never committed, read back

    def add(self, time_s: float, xyz: np.ndarray) -> None:
        """Append one frame: ``xyz`` is (n_markers, 3) in metres, NaN for missing."""
        if xyz.shape != (len(self.markers), 3):
            raise ValueError(f"expected {(len(self.markers), 3)} markers, got {xyz.shape}")
        self.n_frames += 1
        values = number_row(xyz, ".6f", "\t", "NaN")
        self._body.write(f"{self.n_frames}\t{time_s:.6f}\t{values}\n")

    def finish(self) -> Path:
        """Write the header with the final frame count and move the file into place."""
        try:
            self._body.close()
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


class TrcError(ValueError):
    """The file is not a TRC file this project can read; the message says why."""


@dataclass(frozen=True)
class TrcData:
    """The contents of a TRC file: marker names, frame times (s) and positions (T, N, 3)."""

    names: tuple[str, ...]
    times: np.ndarray
    xyz: np.ndarray
    rate: float


def read_trc(path: Path) -> TrcData:
    """Read a TRC file written by :class:`TrcWriter` or by Pose2Sim/OpenSim tools."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise TrcError(f"cannot read {path}: {exc}") from None
    if len(lines) < 5 or not lines[0].startswith("PathFileType"):
        raise TrcError(f"{path} is not a TRC file (no PathFileType header)")
    header = dict(zip(lines[1].split("\t"), lines[2].split("\t"), strict=False))
    names = tuple(n for n in lines[3].split("\t")[2:] if n.strip())
    rows = [line.split("\t") for line in lines[5:] if line.strip()]
    width = 2 + 3 * len(names)  # Frame#, Time, then X Y Z per marker
    if not names or any(len(row) < width for row in rows):
        raise TrcError(f"{path}: rows do not hold 3 values for each of {len(names)} markers")
    try:
        rate = float(header.get("DataRate", "nan"))
        values = np.array([[float(v) for v in row[1:width]] for row in rows]).reshape(-1, width - 1)
    except ValueError as exc:
        raise TrcError(f"{path}: bad number in the TRC data: {exc}") from None
    return TrcData(names, values[:, 0], values[:, 1:].reshape(len(rows), len(names), 3), rate)
