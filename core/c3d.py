"""C3D files (c3d.org) for Visual3D, Vicon Nexus, Mokka and OpenSim: markers and angles.

Written here, not through a library, so that every byte goes through ``core.atomic`` (a
full disk is an ``OutputError``, never a silently short file) and the same frames always
give the same bytes (live ``--record`` equals offline). Layout: Intel processor, 32-bit
float data (``POINT:SCALE`` = -1), no analog channels. Frames stream as float32 rows into
a temporary body file, and ``finish`` writes header and parameters (which need the frame
count) in front of them, like ``core.trc``.

Points: every marker in millimetres, then one ``ANGLES``-type point per joint group
(x = flexion, y = abduction, z = rotation, degrees; a hinge group has y = z = 0). A point
that is missing in a frame (a NaN coordinate) is written as 0, 0, 0 with residual -1, the
C3D mark of an invalid point; a valid one has residual 0.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from core.angle_set import ANGLE_GROUPS
from core.atomic import AtomicFile

BLOCK = 512
INTEL = 84  # parameter-section processor type: Intel, little-endian IEEE floats
_CHAR, _INT16, _FLOAT = -1, 2, 4
# The angle points: label -> its columns of ANGLE_COLUMNS (x flexion, y abduction, z rotation)
ANGLE_POINTS: dict[str, tuple[str, ...]] = {f"{g}_angles": c for g, c in ANGLE_GROUPS.items()}


def _param(
    group_id: int, name: str, kind: int, dims: Sequence[int], data: bytes, desc: str
) -> bytes:
    """One parameter record; its 'next' offset points just past it."""
    raw, text = name.encode("ascii"), desc.encode("ascii")[:255]
    body = struct.pack("<bB", kind, len(dims)) + bytes(dims) + data + bytes([len(text)]) + text
    return struct.pack("<bb", len(raw), group_id) + raw + struct.pack("<h", 2 + len(body)) + body


def _group(group_id: int, name: str, desc: str) -> bytes:
    raw, text = name.encode("ascii"), desc.encode("ascii")[:255]
    return (
        struct.pack("<bb", len(raw), -group_id)
        + raw
        + struct.pack("<hB", 3 + len(text), len(text))
        + text
    )


def _strings(group_id: int, name: str, values: Sequence[str], desc: str) -> bytes:
    """A 2D character parameter: ``values`` padded with spaces to one width."""
    width = max([1, *(len(v) for v in values)])
    if width > 255 or len(values) > 255:
        raise ValueError(f"C3D parameter {name}: at most 255 strings of 255 characters")
    data = b"".join(v.encode("ascii").ljust(width) for v in values)
    return _param(group_id, name, _CHAR, (width, len(values)), data, desc)


def _text(group_id: int, name: str, value: str, desc: str) -> bytes:
    raw = value.encode("ascii")
    return _param(group_id, name, _CHAR, (len(raw),), raw, desc)


def _ints(group_id: int, name: str, values: Sequence[int], desc: str, scalar: bool = True) -> bytes:
    dims = () if scalar and len(values) == 1 else (len(values),)
    data = np.asarray(values, dtype=np.int64).astype("<u2").tobytes()  # words, as C3D stores
    return _param(group_id, name, _INT16, dims, data, desc)


def _float(group_id: int, name: str, value: float, desc: str) -> bytes:
    return _param(group_id, name, _FLOAT, (), struct.pack("<f", value), desc)


def c3d_parameters(
    labels: Sequence[str],
    angle_labels: Sequence[str],
    descriptions: Sequence[str],
    rate: float,
    n_frames: int,
    data_start: int,
    software: tuple[str, str],
) -> bytes:
    """The parameter section (without its 4-byte header), its last record ending the list."""
    points = [*labels, *angle_labels]
    records = [
        _group(1, "POINT", "3D point parameters"),
        _ints(1, "USED", [len(points)], "number of points"),
        _ints(1, "FRAMES", [min(n_frames, 0xFFFF)], "frames (unsigned; TRIAL holds more)"),
        _float(1, "SCALE", -1.0, "negative: 32-bit float data"),
        _float(1, "RATE", rate, "frames per second"),
        _ints(1, "DATA_START", [data_start], "first block of the data"),
        _strings(1, "LABELS", points, "point labels"),
        _strings(1, "DESCRIPTIONS", descriptions, "point descriptions"),
        _text(1, "UNITS", "mm", "marker units"),
        _strings(1, "ANGLES", angle_labels, "points of the angle type"),
        _text(1, "ANGLE_UNITS", "deg", "angle units"),
        _strings(1, "TYPE_GROUPS", ["Angles", "ANGLES"], "point type: name, parameter"),
        _group(2, "ANALOG", "analog parameters"),
        _ints(2, "USED", [0], "number of analog channels"),
        _float(2, "RATE", rate, "analog rate"),
        _group(3, "TRIAL", "trial parameters"),
        _ints(3, "ACTUAL_START_FIELD", [1, 0], "first frame (low, high word)", scalar=False),
        _ints(
            3,
            "ACTUAL_END_FIELD",
            [n_frames & 0xFFFF, n_frames >> 16],
            "last frame (low, high word)",
            scalar=False,
        ),
        _group(4, "MANUFACTURER", "who wrote the file"),
        _text(4, "COMPANY", software[0], "software project"),
        _text(4, "SOFTWARE", software[0], "software"),
        _text(4, "VERSION_LABEL", software[1], "software version"),
    ]
    last = bytearray(records[-1])
    name_length = last[0]
    struct.pack_into("<h", last, 2 + name_length, 0)  # a 'next' offset of 0 ends the list
    records[-1] = bytes(last)
    return b"".join(records)


def c3d_header(n_points: int, n_frames: int, rate: float, param_blocks: int) -> bytes:
    """The 512-byte header block (words are 1-based in the C3D manual)."""
    words = np.zeros(256, dtype="<u2")
    words[0] = 0x5002  # parameters start at block 2; 0x50 marks a C3D file
    words[1] = n_points
    words[3] = 1  # first frame
    words[4] = min(n_frames, 0xFFFF)  # last frame (TRIAL:ACTUAL_END_FIELD holds more)
    words[8] = 2 + param_blocks  # first data block
    header = bytearray(words.tobytes())
    struct.pack_into("<f", header, 12, -1.0)  # words 7-8: scale, negative for floats
    struct.pack_into("<f", header, 20, rate)  # words 11-12: frame rate
    return bytes(header)


class C3dWriter:
    """Streams frames of markers (metres) and angles (degrees) into a C3D file that
    appears only when complete."""

    def __init__(
        self,
        path: Path,
        markers: Sequence[str],
        angle_groups: dict[str, tuple[str, ...]],
        rate: float,
        software: tuple[str, str],
    ) -> None:
        """``angle_groups``: point label -> its angle columns (flexion, abduction, rotation;
        fewer for a hinge), in the column order of the angle rows given to ``add``."""
        self.path = Path(path)
        self.markers = tuple(markers)
        self.angle_groups = dict(angle_groups)
        self.rate = rate
        self.software = software
        self.n_frames = 0
        self._columns = [c for cols in self.angle_groups.values() for c in cols]
        self._body = AtomicFile(self.path, binary=True)  # the frames only: read back

    def _angle_points(self, angles: np.ndarray) -> np.ndarray:
        points = np.zeros((len(self.angle_groups), 3))
        start = 0
        for i, columns in enumerate(self.angle_groups.values()):
            points[i, : len(columns)] = angles[start : start + len(columns)]
            start += len(columns)
        return points

    def add(self, xyz: np.ndarray, angles: np.ndarray | None) -> None:
        """Append one frame: ``xyz`` (n_markers, 3) metres, ``angles`` (n_columns,) degrees
        (None: no angles in this frame), NaN for missing."""
        if xyz.shape != (len(self.markers), 3):
            raise ValueError(f"expected {(len(self.markers), 3)} markers, got {xyz.shape}")
        if angles is None:
            angles = np.full(len(self._columns), np.nan)
        points = np.vstack([np.asarray(xyz, np.float64) * 1000.0, self._angle_points(angles)])
        valid = np.isfinite(points).all(axis=1)
        rows = np.zeros((len(points), 4), dtype="<f4")
        rows[valid, :3] = points[valid]
        rows[~valid, 3] = -1.0  # residual -1: invalid point
        self._body.write(rows.tobytes())
        self.n_frames += 1

    def finish(self) -> Path:
        """Write header and parameters with the final frame count and move into place."""
        labels = (*self.markers, *self.angle_groups)
        descriptions = [f"marker {m}" for m in self.markers]
        descriptions += [_describe(cols) for cols in self.angle_groups.values()]
        try:
            self._body.close()

            def params(data_start: int) -> bytes:
                return c3d_parameters(
                    self.markers, list(self.angle_groups), descriptions, self.rate,
                    self.n_frames, data_start, self.software,
                )  # fmt: skip

            blocks = -(-(4 + len(params(0))) // BLOCK)  # DATA_START's value has a fixed size
            section = struct.pack("<BBBB", 1, 0x50, blocks, INTEL) + params(2 + blocks)
            with AtomicFile(self.path, binary=True) as out:
                out.write(c3d_header(len(labels), self.n_frames, self.rate, blocks))
                out.write(section.ljust(blocks * BLOCK, b"\0"))
                with open(self._body.tmp_path, "rb") as rows:
                    while chunk := rows.read(1 << 20):
                        out.write(chunk)
        finally:
            self._body.discard()
        return self.path

    def discard(self) -> None:
        self._body.discard()


def _describe(columns: Sequence[str]) -> str:
    """'x hip_r_flex_deg, y hip_r_abd_deg, z hip_r_rot_deg' (degrees)."""
    return ", ".join(f"{axis} {c}" for axis, c in zip("xyz", columns, strict=False))
