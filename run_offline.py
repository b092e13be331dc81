"""Offline mode: video file(s) -> MediaPipe -> metric markers -> LSTM augmentation -> TRC,
plus ISB joint angles (CSV, .mot, plots) on request.

Examples:
    uv run run_offline.py --demo
    uv run run_offline.py walk.mp4 --height 1.82 --mass 78 --output results/
    uv run run_offline.py walk.mp4 --compute-all-joint-angles --plot-all-joint-angles
    uv run run_offline.py walk.mp4 --ik      # + OpenSim scaled model and IK (.osim, .mot)
    uv run run_offline.py --view results/walk/walk_final.trc   # replay a TRC in 3D
    uv run run_offline.py --batch sessions/ --subjects subjects.csv --output results/
    uv run run_offline.py --batch "sessions/**/*.mp4" --ray auto    # on a Ray cluster
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

from tqdm import tqdm

from core.atomic import OutputError
from core.demo_data import demo_video
from core.provenance import Invocation
from models.opensim_model import IkError
from offline.batch import (
    SUMMARY_CSV,
    BatchError,
    VideoResult,
    find_videos,
    plan_jobs,
    read_subjects,
    result_line,
    run_batch,
    run_local,
    summary_table,
    write_summary_csv,
)
from offline.pipelined import DetectionProcess
from offline.runner import NoPersonError, OutputLayoutError, output_dirs, process_video
from stages.capture import SourceError
from stages.static import StaticError, static_scaled
from stream.cli import OneLineParser, add_pipeline_flags, config_from_args
from stream.config import ConfigError
from stream.native_stderr import filter_native_chatter
from stream.pipeline import StageError
from viewer.app import replay_trc


class Stopped(BaseException):
    """SIGTERM or SIGINT: unwinds like Ctrl-C, so the video in progress leaves no files."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, frame: FrameType | None) -> None:
    raise Stopped(signum)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="*", type=Path, help="video files to process")
    p.add_argument("--video", action="append", type=Path, default=[], help="a video (repeatable)")
    p.add_argument("--demo", action="store_true", help="process the Pose2Sim demo video")
    p.add_argument(
        "--view",
        type=Path,
        metavar="FILE.trc",
        help="replay a TRC file in the 3D viewer (space play/pause, arrow keys step)",
    )
    add_pipeline_flags(p)
    p.add_argument("--output", type=Path, help="output folder (default from config.toml)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    b = p.add_argument_group("batch (many videos: a summary table and batch_summary.csv)")
    b.add_argument(
        "--batch",
        nargs="+",
        metavar="DIR_OR_GLOB",
        help="videos: folders (searched recursively by extension), globs or files; "
        "resumable (videos with complete outputs for the same settings are skipped)",
    )
    b.add_argument("--workers", type=int, help="local worker processes (default: CPU cores)")
    b.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run each video as a Ray task: a local Ray instance, or the cluster at ADDRESS "
        "(ray://host:10001 or auto); the output folder must be shared by all nodes",
    )
    b.add_argument(
        "--collect", action="store_true", help="with --ray: tasks return files to this machine"
    )
    b.add_argument("--subjects", type=Path, help="CSV with columns video,height,mass")
    b.add_argument("--overwrite", action="store_true", help="redo videos already done")
    p.add_argument(
        "--sequential",
        action="store_true",
        help="every stage in this process, one after another (slower; for debugging)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    invocation = Invocation()  # the command line and start time, for run.json
    args = parse_args(argv)
    if not args.verbose:
        filter_native_chatter()
    if args.view is not None:
        return replay_trc(args.view)
    videos = [*args.videos, *args.video] + ([demo_video()] if args.demo else [])
    batch_only = [f for f in ("workers", "ray", "collect", "subjects", "overwrite")
                  if getattr(args, f) not in (None, False)]  # fmt: skip
    if args.batch is None and batch_only:
        print(f"error: --{batch_only[0]} needs --batch (see --help)", file=sys.stderr)
        return 2
    if args.collect and args.ray is None:
        print("error: --collect needs --ray (see --help)", file=sys.stderr)
        return 2
    if args.batch is not None:
        videos += args.batch
    if not videos:
        print("error: no video given: pass VIDEO paths or --demo (see --help)", file=sys.stderr)
        return 2
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.batch is not None:
        return batch(args, videos, config, invocation)
    try:
        folders = output_dirs(videos, Path(config["output"]["dir"]))
    except OutputLayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with static_scaled(config):
            return process_all(videos, folders, config, args, invocation)
    except StaticError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def process_all(
    videos: list[Path],
    folders: list[Path],
    config: dict,
    args: argparse.Namespace,
    invocation: Invocation,
) -> int:
    """Each video in turn (``args``: quiet, sequential, verbose); a failed one is reported
    and the next goes on. Exit status."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    failed: list[str] = []
    summaries = []
    status = 0
    detection = None if args.sequential else DetectionProcess(config, quiet=not args.verbose)
    for video, folder in zip(videos, folders, strict=True):
        try:
            summaries.append(
                process_video(
                    video,
                    config,
                    folder,
                    progress=not args.quiet,
                    invocation=invocation,
                    detection=detection,
                )
            )
        except (SourceError, NoPersonError, ConfigError, StageError, OutputError, IkError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failed.append(f"{video.name}: failed, no files written: {exc}")
        except Stopped as stop:
            name = signal.Signals(stop.signum).name
            print(f"error: stopped by {name} during {video}: no files written for it",
                  file=sys.stderr)  # fmt: skip
            failed.append(f"{video.name}: stopped by {name}, no files written")
            status = 128 + stop.signum
            break
    if detection is not None:
        detection.close()
    for summary in summaries:
        print("\n".join(summary.lines()))
    if failed:
        print("\n".join(failed))
    return status or (1 if failed else 0)


def batch(args: argparse.Namespace, inputs: list, config: dict, invocation: Invocation) -> int:
    """``--batch``: find the videos, run those not done yet, report each and the whole."""
    try:
        videos = find_videos(inputs, config["batch"]["extensions"])
        subjects = read_subjects(args.subjects, videos) if args.subjects else {}
        jobs = plan_jobs(videos, config, subjects)
    except (BatchError, OutputLayoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.ray is not None:
        if importlib.util.find_spec("ray") is None:
            print("error: --ray needs Ray: install it with `uv sync --extra ray`", file=sys.stderr)
            return 2
        from offline.ray_batch import run_ray

        def execute(todo: list) -> Iterator:
            quiet = not args.verbose
            return run_ray(
                todo, args.ray, config, invocation, args.collect, quiet, args.workers,
                args.sequential,
            )  # fmt: skip
    else:
        workers = args.workers or os.cpu_count() or 1
        if workers < 1:
            print(f"error: --workers must be at least 1, got {workers}", file=sys.stderr)
            return 2

        def execute(todo: list) -> Iterator:
            return run_local(todo, workers, config, invocation, not args.verbose, args.sequential)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    bar = tqdm(total=len(jobs), desc="videos", unit="video", disable=args.quiet)

    def report(result: VideoResult, finished: int, total: int) -> None:
        bar.update(1)
        bar.write(f"[{finished}/{total}] {result_line(result)}")

    try:
        results = run_batch(jobs, execute, args.overwrite, report)
    except Stopped as stop:
        name = signal.Signals(stop.signum).name
        print(f"error: stopped by {name}: the videos in progress left no files; run the "
              "same command again to go on", file=sys.stderr)  # fmt: skip
        return 128 + stop.signum
    except BatchError as exc:  # Ray could not start or be reached
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        bar.close()
    print("\n".join(summary_table(results)))
    try:
        csv_path = write_summary_csv(Path(config["output"]["dir"]) / SUMMARY_CSV, results)
    except OutputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"-> {csv_path}")
    return 1 if any(r.status == "failed" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
