"""Recorder sink: the per-source output files of a run (offline, or live ``--record``).

For each source it writes ``<dir>/<source>/<source>_initial.trc`` (21 markers),
``<source>_final.trc`` (64 markers), ``<source>_raw_landmarks.csv`` and ``run.json`` (the
run's provenance); with ``[output] c3d`` also ``<source>.c3d`` (the final markers and the
angles); with ``[angles] compute_all`` / ``plot_all`` the joint-angle CSV/.mot files and
plots under ``<source>/joint_angles/``. All files of a source are written into a temporary folder
next to ``<dir>/<source>/`` that takes its place on ``finish``, so the folder holds one
complete set or nothing; ``discard`` removes everything of a failed run. A write error is
an ``OutputError`` naming the final file. With ``[opensim] enabled`` (``--ik``) ``finish``
also scales the OpenSim model and runs IK over the source's final markers (``stages/ik.py``);
live, where the ``ik`` stage has solved every frame already (``stages/live_ik.py``), the same
files are written from its rows and its model instead.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.angle_files import write_angle_outputs
from core.atomic import AtomicFile, AtomicFolder, OutputError
from core.c3d import ANGLE_POINTS, C3dWriter
from core.landmarks_csv import LandmarksCsvWriter
from core.marker_sets import MARKERS_21, MARKERS_64
from core.packet import Packet
from core.provenance import SOFTWARE, Invocation, RunRecord, software_version
from core.stage import Sink
from core.trc import TrcWriter
from models.opensim_model import coordinate_names, setup_file
from stages.ik import (
    IkReport,
    check_setup,
    ik_report,
    inside_image,
    write_ik_files,
    write_ik_results,
)
from stages.run_info import models_used


def file_stem(source_id: str) -> str:
    """The name of a source's folder and files: its id, minus what a path cannot hold."""
    return source_id.replace("/", "_").replace("\0", "").strip(".") or "source"


@dataclass
class _SourceFiles:
    folder: AtomicFolder
    initial: TrcWriter
    final: TrcWriter
    landmarks: LandmarksCsvWriter
    c3d: C3dWriter | None
    run: RunRecord
    times: list[float] = field(default_factory=list)
    angles: list[np.ndarray] = field(default_factory=list)
    angle_confidence: list[np.ndarray] = field(default_factory=list)
    ik_times: list[float] = field(default_factory=list)  # for IK
    markers: list[np.ndarray] = field(default_factory=list)
    inside: list[bool] = field(default_factory=list)  # person well inside the image
    ik_values: list[np.ndarray] = field(default_factory=list)  # the live ik stage's rows
    ik_errors: list[np.ndarray] = field(default_factory=list)
    ik_model: str | None = None  # the text of the live ik stage's model file

    def writers(self) -> tuple[Any, ...]:
        return (self.initial, self.final, self.landmarks, *([self.c3d] if self.c3d else []))

    def discard(self) -> None:
        for writer in self.writers():
            writer.discard()
        self.folder.discard()


class Recorder(Sink):
    """Writes TRC, C3D, landmark CSV and run.json files per source."""

    name = "record"
    solves_ik = True  # with --ik, IK of the whole trial at its end (offline)

    def __init__(
        self,
        output_dir: Path | None = None,
        invocation: Invocation | None = None,
        source: str | None = None,
    ) -> None:
        """``invocation``: the program's command line and start (default: this process's);
        ``source``: the video file or camera the run reads (default: the source id)."""
        self.output_dir = output_dir
        self.invocation = invocation or Invocation()
        self.source = source
        self.config: Mapping[str, Any] = {}
        self.angle_csv = False
        self.angle_plots = False
        self.c3d = False
        self.ik_config: Mapping[str, Any] | None = None  # the whole config, with --ik
        self._files: dict[str, _SourceFiles] = {}
        self.written: dict[str, list[Path]] = {}
        self.ik: dict[str, IkReport] = {}

    def setup(self, config: Mapping[str, Any]) -> None:
        if self.output_dir is None:
            self.output_dir = Path(config.get("output", {}).get("dir", "data/output/pose-3d"))
        self.config = config
        angles = config.get("angles", {})
        self.angle_csv = bool(angles.get("compute_all", False))
        self.angle_plots = bool(angles.get("plot_all", False))
        self.c3d = bool(config.get("output", {}).get("c3d", False))
        enabled = config.get("opensim", {}).get("enabled", False)
        self.ik_config = config if enabled and self.solves_ik else None
        if self.ik_config is not None:
            check_setup(self.ik_config["opensim"], MARKERS_64)

    def folder(self, source_id: str) -> Path:
        """Where the files of a source end up."""
        return Path(self.output_dir or ".") / file_stem(source_id)

    def _open(self, packet: Packet) -> _SourceFiles:
        stem = file_stem(packet.source_id)
        folder = AtomicFolder(self.folder(packet.source_id))
        staged = folder.tmp_path
        rate = float(packet.meta.get("fps", 30.0))
        try:
            with folder.final_names():
                files = _SourceFiles(
                    folder=folder,
                    initial=TrcWriter(staged / f"{stem}_initial.trc", MARKERS_21, rate),
                    final=TrcWriter(staged / f"{stem}_final.trc", MARKERS_64, rate),
                    landmarks=LandmarksCsvWriter(staged / f"{stem}_raw_landmarks.csv"),
                    c3d=C3dWriter(
                        staged / f"{stem}.c3d",
                        MARKERS_64,
                        ANGLE_POINTS,
                        rate,
                        (SOFTWARE, software_version()),
                    )
                    if self.c3d
                    else None,
                    run=RunRecord(
                        self.invocation,
                        self.config,
                        self.source or packet.source_id,
                        models_used(self.config) if self.config else [],
                    ),
                )
        except BaseException:
            folder.discard()  # with the temporaries of the writers made so far
            raise
        self._files[packet.source_id] = files
        return files

    def process(self, packet: Packet) -> Packet:
        files = self._files.get(packet.source_id) or self._open(packet)
        d = packet.data
        with files.folder.final_names():
            files.initial.add(packet.media_time_s, d["markers_21"])
            files.final.add(packet.media_time_s, d["markers_64"])
            files.landmarks.add(
                packet.frame_index,
                packet.media_time_s,
                bool(packet.meta.get("person", False)),
                str(packet.meta.get("swap_repaired", "")),
                d["landmarks_2d"],
                d["landmarks_z"],
                d["visibility"],
                d["world_3d"],
            )
            if files.c3d is not None:
                files.c3d.add(d["markers_64"], d.get("angles"))
        if "angles" in d and (self.angle_csv or self.angle_plots):
            files.times.append(packet.media_time_s)
            files.angles.append(d["angles"])
            files.angle_confidence.append(d["angles_confidence"])
        if "ik" in d:
            files.ik_times.append(packet.media_time_s)
            files.ik_values.append(np.array(d["ik"], dtype=np.float64))
            files.ik_errors.append(np.array(d["ik_errors"], dtype=np.float64))
            files.ik_model = packet.meta.get("ik_model", files.ik_model)
        elif self.ik_config is not None:
            files.ik_times.append(packet.media_time_s)
            files.markers.append(np.array(d["markers_64"], dtype=np.float64))
            files.inside.append(
                inside_image(packet, float(self.ik_config["opensim"]["image_margin"]))
            )
        return packet

    def finish(self, source_id: str) -> None:
        """Complete the files of a source and put its folder in place (or leave nothing)."""
        files = self._files.pop(source_id, None)
        if files is None:
            return
        try:
            with files.folder.final_names():
                written = [w.finish() for w in files.writers()]
                if files.angles:
                    written += write_angle_outputs(
                        files.folder.tmp_path,
                        file_stem(source_id),
                        np.array(files.times),
                        np.array(files.angles),
                        csv=self.angle_csv,
                        plots=self.angle_plots,
                        confidence=np.array(files.angle_confidence),
                    )
                if files.ik_values:
                    written += self._write_streamed_ik(files, source_id)
                elif self.ik_config is not None and files.markers:
                    markers = np.array(files.markers)
                    paths, self.ik[source_id] = write_ik_files(
                        files.folder.tmp_path,
                        file_stem(source_id),
                        self.ik_config,
                        np.array(files.ik_times),
                        markers,
                        MARKERS_64,
                        np.array(files.inside) & np.isfinite(markers).all(axis=(1, 2)),
                        plots=self.angle_plots,
                    )
                    written += paths
                written.append(files.run.write(files.folder.tmp_path))  # last: ended = now
            files.folder.commit()
        except BaseException:
            files.discard()
            raise
        self.written[source_id] = [files.folder.final_name(p) for p in written]

    def _write_streamed_ik(self, files: _SourceFiles, source_id: str) -> list[Path]:
        """The IK files of what the live ``ik`` stage solved frame by frame: the same files
        as offline (no ``_scaled.osim`` if the session ended before the model was scaled)."""
        folder, stem = files.folder.tmp_path, file_stem(source_id)
        written: list[Path] = []
        model_text = files.ik_model or setup_file(self.config["opensim"]["model"]).read_text()
        if files.ik_model is not None:
            osim = folder / f"{stem}_scaled.osim"
            with AtomicFile(osim) as f:
                f.write(files.ik_model)
            written.append(osim)
        else:  # the files are still written (every frame a NaN row): say why they are empty
            print(
                f"note: {source_id}: IK solved no frame: the recording ended before "
                f"[opensim] scale_s = {self.config['opensim']['scale_s']} s of frames with the "
                "whole person in view scaled the model; record longer, or give a model with "
                "--osim or --static",
                file=sys.stderr,
                flush=True,
            )
        errors = np.array(files.ik_errors)
        written += write_ik_results(
            folder,
            stem,
            np.array(files.ik_times),
            np.array(files.ik_values),
            errors,
            coordinate_names(model_text),
            plots=self.angle_plots,
        )
        self.ik[source_id] = ik_report(errors)
        return written

    def open_sources(self) -> list[str]:
        """Sources with files still being written."""
        return list(self._files)

    def discard(self, source_id: str) -> None:
        """Drop everything written for a failed source."""
        files = self._files.pop(source_id, None)
        if files is not None:
            files.discard()

    def close(self) -> None:
        """Finalize what is open (e.g. a live recording stopped by Ctrl-C) into valid files."""
        for source_id in list(self._files):
            self.finish(source_id)


class LiveRecorder(Recorder):
    """``--record`` in the live sink: a write error is reported in one line and stops the
    recording (its partial files are removed) while the stream goes on being published."""

    error: str | None = None  # why recording stopped (set on the instance when it does)
    solves_ik = False  # the live ik stage solves each frame; its rows are recorded

    def _guarded(self, call: Callable[[], object]) -> None:
        if self.error is not None:
            return
        try:
            call()
        except OutputError as exc:
            self.error = f"recording stopped: {exc}"
            print(f"error: {self.error}", file=sys.stderr, flush=True)
            for source_id in self.open_sources():
                self.discard(source_id)

    def process(self, packet: Packet) -> Packet:
        self._guarded(lambda: super(LiveRecorder, self).process(packet))
        return packet

    def finish(self, source_id: str) -> None:
        self._guarded(lambda: super(LiveRecorder, self).finish(source_id))
