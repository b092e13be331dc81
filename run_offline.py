"""Offline mode: video file(s) -> MediaPipe -> metric markers -> LSTM augmentation -> TRC,
plus ISB joint angles (CSV, .mot, plots) on request.

Examples:
    uv run run_offline.py --demo
    uv run run_offline.py walk.mp4 --height 1.82 --mass 78 --output results/
    uv run run_offline.py walk.mp4 --compute-all-joint-angles --plot-all-joint-angles
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ log chatter
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from offline.runner import NoPersonError, process_video  # noqa: E402
from stages.capture import SourceError  # noqa: E402
from stream.config import ConfigError, load_config, with_overrides  # noqa: E402

DEMO_VIDEO = "Demo_SinglePerson/videos/cam01.mp4"


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line naming the problem, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


def demo_video() -> Path:
    """The Pose2Sim single-person demo video, from the installed package."""
    return Path(str(importlib.resources.files("Pose2Sim") / DEMO_VIDEO))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="*", type=Path, help="video files to process")
    p.add_argument("--video", action="append", type=Path, default=[], help="a video (repeatable)")
    p.add_argument("--demo", action="store_true", help="process the Pose2Sim demo video")
    p.add_argument("--height", type=float, help="subject standing height in metres")
    p.add_argument("--mass", type=float, help="subject mass in kg")
    p.add_argument("--visibility-min", type=float, help="landmarks below this are missing")
    p.add_argument(
        "--estimate-missing", action="store_true", default=None, help="mirror occluded limbs"
    )
    p.add_argument(
        "--force-complete",
        action="store_true",
        default=None,
        help="estimate every missing marker so each frame with a person is complete",
    )
    p.add_argument(
        "--compute-all-joint-angles",
        action="store_true",
        default=None,
        help="write joint_angles/<video>_<joint>.csv per group and an OpenSim .mot",
    )
    p.add_argument(
        "--plot-all-joint-angles",
        action="store_true",
        default=None,
        help="write a PNG per joint group and a summary figure",
    )
    p.add_argument("--fov", type=float, help="camera field of view across the long side (deg)")
    p.add_argument("--output", type=Path, help="output folder (default from config.toml)")
    p.add_argument("--config", type=Path, help="configuration file (default: config.toml)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def check_values(config: dict[str, Any]) -> None:
    """Reject values that would silently give nonsense."""
    checks = [
        ("--height", config["subject"]["height"], 0.5, 2.6, "m"),
        ("--mass", config["subject"]["mass"], 10.0, 300.0, "kg"),
        ("--visibility-min", config["markers"]["visibility_min"], 0.0, 1.0, ""),
        ("--fov", config["markers"]["fov_deg"], 10.0, 170.0, "deg"),
    ]
    for flag, value, low, high, unit in checks:
        if not low <= float(value) <= high:
            raise ConfigError(f"{flag} must be between {low} and {high} {unit}, got {value}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    videos = [*args.videos, *args.video] + ([demo_video()] if args.demo else [])
    if not videos:
        print("error: no video given: pass VIDEO paths or --demo (see --help)", file=sys.stderr)
        return 2
    try:
        config = with_overrides(
            load_config(args.config),
            {
                "subject.height": args.height,
                "subject.mass": args.mass,
                "markers.visibility_min": args.visibility_min,
                "markers.estimate_missing": args.estimate_missing,
                "markers.force_complete": args.force_complete,
                "markers.fov_deg": args.fov,
                "angles.compute_all": args.compute_all_joint_angles,
                "angles.plot_all": args.plot_all_joint_angles,
                "output.dir": str(args.output) if args.output else None,
            },
        )
        check_values(config)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    output_dir = Path(config["output"]["dir"])
    failures = 0
    summaries = []
    for video in videos:
        try:
            summaries.append(process_video(video, config, output_dir, progress=not args.quiet))
        except (SourceError, NoPersonError, ConfigError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            failures += 1
    for summary in summaries:
        print("\n".join(summary.lines()))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
