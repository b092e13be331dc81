"""Recorder sink: the per-source output files of a run (offline, or live ``--record``).

For each source it writes ``<dir>/<source>/<source>_initial.trc`` (21 markers),
``<source>_final.trc`` (64 markers) and ``<source>_raw_landmarks.csv``; with
``[angles] compute_all`` / ``plot_all`` also the joint-angle CSV/.mot files and plots
under ``<source>/joint_angles/``. Files are streamed
into temporary files and appear under their final names only on ``finish``; ``discard``
removes everything of a failed run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from offline.angle_files import write_angle_outputs
from offline.landmarks_csv import LandmarksCsvWriter
from offline.trc import TrcWriter
from stages.marker_sets import MARKERS_21, MARKERS_64
from stream.packet import Packet
from stream.stage import Sink


@dataclass
class _SourceFiles:
    initial: TrcWriter
    final: TrcWriter
    landmarks: LandmarksCsvWriter
    folder: Path
    times: list[float] = field(default_factory=list)
    angles: list[np.ndarray] = field(default_factory=list)

    def writers(self) -> tuple[Any, ...]:
        return (self.initial, self.final, self.landmarks)


class Recorder(Sink):
    """Writes TRC and landmark CSV files per source."""

    name = "record"

    def __init__(self, output_dir: Path | None = None) -> None:
        self.output_dir = output_dir
        self.angle_csv = False
        self.angle_plots = False
        self._files: dict[str, _SourceFiles] = {}
        self.written: dict[str, list[Path]] = {}

    def setup(self, config: Mapping[str, Any]) -> None:
        if self.output_dir is None:
            self.output_dir = Path(config.get("output", {}).get("dir", "data/output/pose-3d"))
        angles = config.get("angles", {})
        self.angle_csv = bool(angles.get("compute_all", False))
        self.angle_plots = bool(angles.get("plot_all", False))

    def _open(self, packet: Packet) -> _SourceFiles:
        sid = packet.source_id
        folder = Path(self.output_dir) / sid
        rate = float(packet.meta.get("fps", 30.0))
        files = _SourceFiles(
            initial=TrcWriter(folder / f"{sid}_initial.trc", MARKERS_21, rate),
            final=TrcWriter(folder / f"{sid}_final.trc", MARKERS_64, rate),
            landmarks=LandmarksCsvWriter(folder / f"{sid}_raw_landmarks.csv"),
            folder=folder,
        )
        self._files[sid] = files
        return files

    def process(self, packet: Packet) -> Packet:
        files = self._files.get(packet.source_id) or self._open(packet)
        d = packet.data
        files.initial.add(packet.media_time_s, d["markers_21"])
        files.final.add(packet.media_time_s, d["markers_64"])
        files.landmarks.add(
            packet.frame_index,
            packet.media_time_s,
            bool(packet.meta.get("person", False)),
            d["landmarks_2d"],
            d["landmarks_z"],
            d["visibility"],
            d["world_3d"],
        )
        if "angles" in d and (self.angle_csv or self.angle_plots):
            files.times.append(packet.media_time_s)
            files.angles.append(d["angles"])
        return packet

    def finish(self, source_id: str) -> None:
        files = self._files.pop(source_id, None)
        if files is None:
            return
        written = [w.finish() for w in files.writers()]
        if files.angles:
            written += write_angle_outputs(
                files.folder,
                source_id,
                np.array(files.times),
                np.array(files.angles),
                csv=self.angle_csv,
                plots=self.angle_plots,
            )
        self.written[source_id] = written

    def open_sources(self) -> list[str]:
        """Sources with files still being written."""
        return list(self._files)

    def discard(self, source_id: str) -> None:
        """Drop everything written for a failed source."""
        files = self._files.pop(source_id, None)
        if files is not None:
            for writer in files.writers():
                writer.discard()

    def close(self) -> None:
        """Finalize what is open (e.g. a live recording stopped by Ctrl-C) into valid files."""
        for source_id in list(self._files):
            self.finish(source_id)
