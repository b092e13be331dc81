"""Batch runner: video files -> the configured stages, inline and lossless -> output files."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from core.provenance import Invocation
from core.stage import Stage
from offline.pipelined import DetectionProcess
from stages.capture import VideoSource
from stages.ik import IkReport
from stages.record import Recorder, file_stem
from stream.pipeline import build_stages, run_inline


class NoPersonError(RuntimeError):
    """Nobody was detected in a whole video."""


class OutputLayoutError(ValueError):
    """Two inputs would write into the same output folder."""


def output_dirs(videos: Sequence[Path], output_dir: Path) -> list[Path]:
    """The folder each video's recorder writes ``<video>/`` into.

    Each video's path relative to the common parent of all inputs is mirrored under
    ``output_dir``: videos of one folder (or a single video) give ``<out>/<video>/``,
    same-named videos of different folders ``<out>/<their folders>/<video>/``; the same
    inputs always give the same folders, so a batch can be run again. Raise
    ``OutputLayoutError`` when two inputs would still share or nest a folder (the same
    video twice, or ``a.mp4`` next to ``a.mov``).
    """
    absolute = [Path(os.path.abspath(v)) for v in videos]
    common = Path(os.path.commonpath([p.parent for p in absolute])) if absolute else Path()
    dirs = [Path(output_dir) / p.parent.relative_to(common) for p in absolute]
    finals = [d / file_stem(p.stem) for d, p in zip(dirs, absolute, strict=True)]
    for i, (video, final) in enumerate(zip(videos, finals, strict=True)):
        for other, other_final in zip(videos[:i], finals[:i], strict=True):
            if final == other_final or other_final in final.parents or final in other_final.parents:
                raise OutputLayoutError(
                    f"{other} and {video} would both write into {other_final}: "
                    "give each video once, and rename one of two videos that differ only "
                    "in their extension"
                )
    return dirs


@dataclass
class RunSummary:
    """What one video produced, for the end-of-run report."""

    video: Path
    frames: int = 0
    announced: int | None = None  # frame count in the file's header
    detected: int = 0
    complete_64: int = 0
    rejected: int = 0  # frames where detection found someone other than the locked person
    switches: int = 0  # times the person lock moved to another person
    seconds: float = 0.0
    stage_ms: dict[str, float] = field(default_factory=dict)  # mean ms per frame
    files: list[Path] = field(default_factory=list)
    ik: IkReport | None = None  # with --ik

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def lines(self) -> list[str]:
        pct = (lambda n: 100.0 * n / self.frames) if self.frames else (lambda n: 0.0)
        stages = ", ".join(f"{k} {v:.2f}" for k, v in self.stage_ms.items())
        header = (
            f" (header: {self.announced})"
            if self.announced is not None and self.announced != self.frames
            else ""
        )
        return [
            f"{self.video.name}: {self.frames} frames{header} in {self.seconds:.1f} s "
            f"({self.fps:.1f} fps)",
            f"  person detected in {pct(self.detected):.1f}% of frames, "
            f"64 markers complete in {pct(self.complete_64):.1f}%",
            *(
                [
                    f"  person lock: {self.rejected} frames of another person dropped, "
                    f"{self.switches} switches to another person (stages reset)"
                ]
                if self.rejected or self.switches
                else []
            ),
            f"  ms per frame: {stages}",
            *([self._ik_line(self.ik)] if self.ik is not None else []),
            *(f"  -> {p}" for p in self.files if p.parent.name != "joint_angles"),
            *(
                f"  -> {folder}/ ({n} joint-angle files)"
                for folder, n in Counter(
                    p.parent for p in self.files if p.parent.name == "joint_angles"
                ).items()
            ),
        ]

    @staticmethod
    def _ik_line(ik: IkReport) -> str:
        return (
            f"  OpenSim IK: {ik.solved}/{ik.frames} frames solved, median marker RMS error "
            f"{100 * ik.median_rms_m:.1f} cm, {ik.ms_per_frame:.1f} ms per frame"
        )


def process_video(
    video: Path,
    config: Mapping[str, Any],
    output_dir: Path,
    stages: list[Stage] | None = None,
    progress: bool = True,
    invocation: Invocation | None = None,
    on_frame: Callable[[int, int | None], None] | None = None,
    detection: DetectionProcess | None = None,
) -> RunSummary:
    """Run one video through the pipeline and write its files into ``output_dir/<video>/``;
    raise and leave nothing on error. ``invocation``: the command for ``run.json``;
    ``on_frame(frames read, frames in the header)``: progress for a caller without a
    terminal (the web app's job worker).

    ``detection``: pipelined, decoding and the first stage run in that process and
    ``stages`` are the ones after it; None: sequential, every stage here in turn."""
    if stages is None:
        stages = build_stages(config, start=0 if detection is None else 1)
    recorder = Recorder(output_dir, invocation, str(video))
    recorder.setup(config)
    tolerance = float(config["capture"]["truncation_tolerance"])
    if detection is None:
        source = VideoSource(video, realtime=False, truncation_tolerance=tolerance)
        packets: Iterator[Any] = iter(source)
        source_id, frame_count, close = source.source_id, source.frame_count, source.close
    else:
        packets = detection.frames(Path(video), tolerance)
        source_id, frame_count = next(packets)
        close = packets.close  # type: ignore[attr-defined]
    summary = RunSummary(video=Path(video), announced=frame_count)
    totals: dict[str, float] = {}
    start = time.perf_counter()
    bar = tqdm(total=frame_count, desc=source_id, unit="frame", disable=not progress)
    try:
        for read, packet in enumerate(packets, 1):
            packet = run_inline(stages, packet)
            bar.update(1)
            if on_frame is not None:
                on_frame(read, frame_count)
            if packet is None:
                continue
            recorder(packet)  # outside run_inline: a write error is an OutputError, not a stage's
            summary.frames += 1
            summary.detected += bool(packet.meta.get("person"))
            summary.rejected += packet.meta.get("person_lock") == "rejected"
            summary.switches = int(packet.meta.get("person_switches", 0))
            summary.complete_64 += bool(np.isfinite(packet.data["markers_64"]).all())
            for name, ms in packet.stage_ms().items():
                totals[name] = totals.get(name, 0.0) + ms
        if summary.detected == 0:
            raise NoPersonError(
                f"nobody was detected in {video}: make sure one whole person is in view"
            )
        recorder.finish(source_id)
    except BaseException:
        recorder.discard(source_id)
        raise
    finally:
        bar.close()
        close()
        for stage in stages:
            stage.reset(source_id)
    summary.seconds = time.perf_counter() - start
    summary.stage_ms = {k: v / max(summary.frames, 1) for k, v in totals.items()}
    summary.files = recorder.written[source_id]
    summary.ik = recorder.ik.get(source_id)
    return summary
