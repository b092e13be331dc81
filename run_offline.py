"""Offline mode: video file(s) -> MediaPipe -> metric markers -> LSTM augmentation -> TRC,
plus ISB joint angles (CSV, .mot, plots) on request.

Examples:
    uv run run_offline.py --demo
    uv run run_offline.py walk.mp4 --height 1.82 --mass 78 --output results/
    uv run run_offline.py walk.mp4 --compute-all-joint-angles --plot-all-joint-angles
    uv run run_offline.py walk.mp4 --ik      # + OpenSim scaled model and IK (.osim, .mot)
    uv run run_offline.py --view results/walk/walk_final.trc   # replay a TRC in 3D
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from core.atomic import OutputError
from core.demo_data import demo_video
from core.provenance import Invocation
from models.opensim_model import IkError
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
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    invocation = Invocation()  # the command line and start time, for run.json
    args = parse_args(argv)
    if not args.verbose:
        filter_native_chatter()
    if args.view is not None:
        return replay_trc(args.view)
    videos = [*args.videos, *args.video] + ([demo_video()] if args.demo else [])
    if not videos:
        print("error: no video given: pass VIDEO paths or --demo (see --help)", file=sys.stderr)
        return 2
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        folders = output_dirs(videos, Path(config["output"]["dir"]))
    except OutputLayoutError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with static_scaled(config):
            return process_all(videos, folders, config, args.quiet, invocation)
    except StaticError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def process_all(
    videos: list[Path],
    folders: list[Path],
    config: dict,
    quiet: bool,
    invocation: Invocation,
) -> int:
    """Each video in turn; a failed one is reported and the next goes on. Exit status."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _stop)
    failed: list[str] = []
    summaries = []
    status = 0
    for video, folder in zip(videos, folders, strict=True):
        try:
            summaries.append(
                process_video(video, config, folder, progress=not quiet, invocation=invocation)
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
    for summary in summaries:
        print("\n".join(summary.lines()))
    if failed:
        print("\n".join(failed))
    return status or (1 if failed else 0)


if __name__ == "__main__":
    sys.exit(main())
