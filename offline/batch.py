"""Batch processing: many videos, each as a single run would process it, on local worker
processes or on Ray (``offline/ray_batch.py``), resumable, with a summary table and CSV.

A video is a job: its output folder (laid out as for a single run of all the inputs), its
effective settings (the run's configuration, with the subject's height and mass from
``--subjects``) and their hash. A job is done when its folder holds a ``run.json`` (written
last, the folder appears whole) for the same input path and the same settings hash; a rerun
skips it unless ``--overwrite``. Every job returns a ``VideoResult``, failed or not, so one
bad video never stops the others.
"""

from __future__ import annotations

import csv
import glob
import json
import multiprocessing
import os
import queue
import signal
from collections.abc import Callable, Iterator, Mapping, Sequence
from copy import deepcopy
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core.atomic import AtomicFile, OutputError
from core.provenance import RUN_JSON, Invocation, settings_sha256
from core.stage import Stage
from models.opensim_model import IkError
from offline.pipelined import DetectionProcess
from offline.runner import NoPersonError, RunSummary, output_dirs, process_video
from stages.capture import SourceError
from stages.record import file_stem
from stream.config import ConfigError
from stream.config_schema import validate
from stream.pipeline import StageError, build_stages

SUMMARY_CSV = "batch_summary.csv"
CSV_COLUMNS = (
    "video", "status", "frames", "person_pct", "markers_complete_pct", "fps", "seconds", "error"
)  # fmt: skip
RUN_ERRORS = (SourceError, NoPersonError, ConfigError, StageError, OutputError, IkError)


class BatchError(ValueError):
    """The batch cannot start (no video found, a bad subjects file); nothing has run."""


@dataclass
class Job:
    """One video to process."""

    video: Path
    output_dir: Path  # the folder its ``<video>/`` goes into
    config: dict[str, Any]
    key: str  # settings_sha256(config)

    @property
    def folder(self) -> Path:
        return self.output_dir / file_stem(self.video.stem)


@dataclass
class VideoResult:
    """How one video went: a row of the summary (plain values: it crosses processes)."""

    video: str
    status: str  # "done", "skipped" (complete outputs existed) or "failed"
    frames: int = 0
    person_pct: float | None = None
    markers_complete_pct: float | None = None
    fps: float | None = None
    seconds: float | None = None
    error: str = ""
    lines: list[str] = field(default_factory=list)  # the single run's summary lines
    files: dict[str, bytes] | None = None  # with --collect: relative path -> contents

    @classmethod
    def of(cls, video: Path, summary: RunSummary) -> VideoResult:
        share = (lambda n: round(100.0 * n / summary.frames, 1)) if summary.frames else None
        return cls(
            video=str(video),
            status="done",
            frames=summary.frames,
            person_pct=share(summary.detected) if share else None,
            markers_complete_pct=share(summary.complete_64) if share else None,
            fps=round(summary.fps, 1),
            seconds=round(summary.seconds, 2),
            lines=summary.lines(),
        )

    def row(self) -> dict[str, Any]:
        values = asdict(self)
        return {k: "" if values[k] is None else values[k] for k in CSV_COLUMNS}


# -- finding the videos and their settings ----------------------------------------------


def find_videos(patterns: Sequence[str | Path], extensions: Sequence[str]) -> list[Path]:
    """Every video named by ``patterns``: a file as it is, a folder searched recursively
    for files with one of ``extensions`` (any case), a glob (``**`` recursive) for both;
    in order, each once."""
    suffixes = {e.lower() for e in extensions}
    found: list[Path] = []
    for pattern in map(str, patterns):
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else []
        paths = [Path(m) for m in matches] or [Path(pattern)]
        for path in paths:
            if path.is_dir():
                found += sorted(p for p in path.rglob("*") if p.suffix.lower() in suffixes)
            elif path.exists() or not glob.has_magic(pattern):
                found.append(path)  # a missing file fails as its own job, like a single run
    unique = list(dict.fromkeys(Path(os.path.abspath(p)) for p in found))
    if not unique:
        raise BatchError(
            f"no video found in {' '.join(map(str, patterns))} "
            f"(extensions: {' '.join(extensions)}; [batch] extensions in config.toml)"
        )
    return unique


def read_subjects(path: Path, videos: Sequence[Path]) -> dict[Path, dict[str, float]]:
    """Height and mass per video from a CSV with columns ``video,height,mass``. ``video``:
    a path (relative to the CSV's folder) or a file name; every row must match a video."""
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise BatchError(f"--subjects: cannot read {path}: {exc.strerror}") from None
    if not rows or not {"video", "height", "mass"} <= set(rows[0]):
        raise BatchError(f"--subjects: {path} needs a header line video,height,mass")
    subjects: dict[Path, dict[str, float]] = {}
    for number, row in enumerate(rows, start=2):
        where = f"--subjects {path} line {number}"
        name = (row["video"] or "").strip()
        as_path = Path(os.path.abspath(path.parent / name))
        matched = [v for v in videos if v == as_path] or [v for v in videos if v.name == name]
        if not matched:
            raise BatchError(f"{where}: no video of the batch is {name!r}")
        try:
            subject = {"height": float(row["height"]), "mass": float(row["mass"])}
        except (TypeError, ValueError):
            raise BatchError(f"{where}: height and mass must be numbers") from None
        try:
            validate({"subject": subject}, where, partial=True)
        except ConfigError as exc:
            raise BatchError(str(exc)) from None
        for video in matched:
            subjects[video] = subject
    return subjects


def plan_jobs(
    videos: Sequence[Path], config: Mapping[str, Any], subjects: Mapping[Path, Mapping]
) -> list[Job]:
    """A job per video: folders as a single run of them all would lay them out (raises
    ``OutputLayoutError`` for clashes) and each video's own settings."""
    folders = output_dirs(videos, Path(config["output"]["dir"]))
    jobs = []
    for video, folder in zip(videos, folders, strict=True):
        own = deepcopy(dict(config))
        own["subject"] = {**own["subject"], **subjects.get(video, {})}
        jobs.append(Job(video, folder, own, settings_sha256(own)))
    return jobs


def is_done(job: Job) -> bool:
    """Complete outputs of this input with these settings exist (see the module doc)."""
    try:
        record = json.loads((job.folder / RUN_JSON).read_text())
        return (
            record["input"]["path"] == str(job.video.resolve())
            and settings_sha256(record["config"]) == job.key
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


# -- running one job ----------------------------------------------------------------------


class JobRunner:
    """Runs jobs one after another in this process: a detection process kept for all of
    them, and the stages after detection kept while the settings stay the same."""

    def __init__(
        self, config: Mapping[str, Any], invocation: Invocation, quiet: bool, sequential: bool
    ) -> None:
        """``quiet``: MediaPipe's native log lines dropped; ``sequential``: no detection
        process, every stage here (``--sequential``)."""
        self.detection = None if sequential else DetectionProcess(config, quiet=quiet)
        self.invocation = invocation
        self._stages: tuple[str, list[Stage]] | None = None

    def _stages_for(self, job: Job) -> list[Stage]:
        if self._stages is None or self._stages[0] != job.key:
            self._close_stages()
            start = 0 if self.detection is None else 1
            self._stages = (job.key, build_stages(job.config, start=start))
        return self._stages[1]

    def run(self, job: Job, output_dir: Path | None = None) -> VideoResult:
        """Process ``job`` (into ``output_dir`` instead of its own folder, if given); a
        failure is a result, not an exception (except a stop signal)."""
        try:
            summary = process_video(
                job.video,
                job.config,
                output_dir or job.output_dir,
                stages=self._stages_for(job),
                progress=False,
                invocation=self.invocation,
                detection=self.detection,
            )
        except RUN_ERRORS as exc:
            return VideoResult(str(job.video), "failed", error=str(exc))
        except Exception as exc:  # a bug must not stop the other videos either
            return VideoResult(str(job.video), "failed", error=f"{type(exc).__name__}: {exc}")
        return VideoResult.of(job.video, summary)

    def _close_stages(self) -> None:
        if self._stages is not None:
            for stage in self._stages[1]:
                stage.close()
            self._stages = None

    def close(self) -> None:
        self._close_stages()
        if self.detection is not None:
            self.detection.close()


# -- local worker processes ---------------------------------------------------------------


def run_local(
    jobs: Sequence[Job], workers: int, config: Mapping[str, Any], invocation: Invocation,
    quiet: bool, sequential: bool = False,
) -> Iterator[VideoResult]:  # fmt: skip
    """The results of ``jobs`` as they finish, from ``workers`` processes (this one for 1).
    A worker that dies (a native crash) fails its video and is replaced."""
    if not jobs:
        return
    if workers <= 1 or len(jobs) <= 1:
        runner = JobRunner(config, invocation, quiet, sequential)
        try:
            for job in jobs:
                yield runner.run(job)
        finally:
            runner.close()
        return
    context = multiprocessing.get_context("spawn")
    todo, results = context.Queue(), context.Queue()
    for index, job in enumerate(jobs):
        todo.put((index, job))
    pool: dict[int, Any] = {}  # worker number -> process
    busy: dict[int, int] = {}  # worker number -> index of its job
    start = lambda n: _start_worker(  # noqa: E731
        context, n, todo, results, config, invocation, quiet, sequential
    )
    for number in range(min(workers, len(jobs))):
        pool[number] = start(number)
    unfinished = set(range(len(jobs)))
    try:
        while unfinished:
            try:
                kind, number, index, payload = results.get(timeout=0.5)
            except queue.Empty:
                yield from _look_after(pool, busy, unfinished, jobs, start)
                continue
            if kind == "start":
                busy[number] = index
            else:
                busy.pop(number, None)
                unfinished.discard(index)
                yield payload
    finally:
        for _ in pool:
            todo.put(None)
        for process in pool.values():
            if process.is_alive() and unfinished:
                os.kill(process.pid, signal.SIGTERM)  # stopped: discard its video
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()


def _look_after(
    pool: dict[int, Any], busy: dict[int, int], unfinished: set[int], jobs: Sequence[Job],
    start: Callable[[int], Any],
) -> Iterator[VideoResult]:  # fmt: skip
    """A worker that died on a video (a native crash) fails that video and is replaced;
    one that died before taking any (its start failed) is not: when none is left, every
    unfinished video fails with its exit status."""
    for number, process in list(pool.items()):
        if process.is_alive():
            continue
        if number in busy:
            index = busy.pop(number)
            unfinished.discard(index)
            error = f"worker process died (exit status {process.exitcode})"
            yield VideoResult(str(jobs[index].video), "failed", error=error)
            pool[number] = start(number)
        elif not any(p.is_alive() for p in pool.values()):
            error = f"no worker process could start (exit status {process.exitcode})"
            for index in sorted(unfinished):
                yield VideoResult(str(jobs[index].video), "failed", error=error)
            unfinished.clear()
            return


def _start_worker(context: Any, number: int, *args: Any) -> Any:
    process = context.Process(
        target=_worker_main, args=(number, os.getpid(), *args), name=f"mm-batch-{number}"
    )  # not a daemon: it starts a detection process of its own
    process.start()
    return process


def _worker_main(
    number: int, parent: int, todo: Any, results: Any, config: dict, invocation: Invocation,
    quiet: bool, sequential: bool,
) -> None:  # fmt: skip
    """A worker: take jobs until told to stop or its parent is gone; SIGTERM or Ctrl-C
    unwinds the video in progress (its files are discarded) and ends the worker."""
    signal.signal(signal.SIGTERM, _raise_exit)
    if quiet:
        from stream.native_stderr import filter_child_chatter

        filter_child_chatter()
    runner = JobRunner(config, invocation, quiet, sequential)
    try:
        while (item := _next_job(todo, parent)) is not None:
            index, job = item
            results.put(("start", number, index, None))
            results.put(("result", number, index, runner.run(job)))
    except KeyboardInterrupt:
        pass
    finally:
        runner.close()


def _next_job(todo: Any, parent: int) -> tuple[int, Job] | None:
    """The next job; None when told to stop or when the parent has died."""
    while os.getppid() == parent:
        try:
            return todo.get(timeout=1.0)
        except queue.Empty:
            pass
    return None


def _raise_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


# -- the report ---------------------------------------------------------------------------


def result_line(result: VideoResult) -> str:
    """One line per finished video, for the progress output."""
    name = Path(result.video).name
    if result.status == "done":
        return f"done    {name}: {result.frames} frames, {result.fps} fps, {result.seconds} s"
    if result.status == "skipped":
        return f"skipped {name}: complete outputs with these settings exist (--overwrite redoes)"
    return f"FAILED  {name}: {result.error}"


def summary_table(results: Sequence[VideoResult]) -> list[str]:
    """The end-of-batch table: one row per video, in input order."""
    header = ("video", "status", "frames", "person %", "markers %", "fps", "s")
    rows = [
        (Path(r.video).name, r.status, str(r.frames or ""), *(
            "" if v is None else f"{v:g}"
            for v in (r.person_pct, r.markers_complete_pct, r.fps, r.seconds)
        ))
        for r in results
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    fmt = lambda row: "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))  # noqa: E731
    failed = [f"  {Path(r.video).name}: {r.error}" for r in results if r.status == "failed"]
    done = sum(r.status == "done" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    return [
        fmt(header),
        *map(fmt, rows),
        f"{done} done, {skipped} skipped, {len(failed)} failed of {len(results)} videos",
        *(["failed:", *failed] if failed else []),
    ]


def write_summary_csv(path: Path, results: Sequence[VideoResult]) -> Path:
    """``batch_summary.csv``: the columns of ``CSV_COLUMNS``, one row per video."""
    with AtomicFile(path) as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(r.row() for r in results)
    return path


def run_batch(
    jobs: Sequence[Job],
    execute: Callable[[Sequence[Job]], Iterator[VideoResult]],
    overwrite: bool,
    report: Callable[[VideoResult, int, int], None],
) -> list[VideoResult]:
    """Skip the done jobs (unless ``overwrite``), run the others with ``execute`` (local
    workers or Ray), call ``report`` as each finishes; the results in input order."""
    results: dict[str, VideoResult] = {}
    todo = []
    for job in jobs:
        if not overwrite and is_done(job):
            results[str(job.video)] = VideoResult(str(job.video), "skipped")
            report(results[str(job.video)], len(results), len(jobs))
        else:
            todo.append(job)
    for result in execute(todo):
        results[result.video] = result
        report(result, len(results), len(jobs))
    return [results[str(job.video)] for job in jobs]
