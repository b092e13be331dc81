"""Live mode: webcam, video file or stream URL -> the pipeline, one process per stage ->
markers and angles on screen (3D skeleton, camera image, joint angles), published over
ZeroMQ, and recorded with --record. In the window: space pauses, r records a TRC, q quits.

Examples:
    uv run run_live.py --source 0                           # webcam 0, until Ctrl-C
    uv run run_live.py --source walk.mp4 --stats            # a file played at its frame rate
    uv run run_live.py --source walk.mp4 --record out/ --lossless --no-viewer
    uv run python -m examples.subscriber          # in another terminal
    uv run run_live.py --source 0 --publish tcp://0.0.0.0:5555 --curve-keys keys/  # network
    uv run run_live.py --source 0 --lsl --osc 9000        # LSL outlets + OSC to 127.0.0.1:9000
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from core.provenance import Invocation
from stages import lab_stream
from stages.capture import classify_source
from stages.static import StaticError, static_scaled
from stream.cli import OneLineParser, add_pipeline_flags, check_public_endpoints, config_from_args
from stream.config import ConfigError
from stream.graph import add_live_stages
from stream.native_stderr import filter_native_chatter
from stream.supervisor import LiveOptions, PipelineError, run_live
from viewer.app import NO_DISPLAY, display_available


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = OneLineParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", default="0", help="webcam index, video file or stream URL")
    pace = p.add_mutually_exclusive_group()
    pace.add_argument(
        "--realtime",
        dest="realtime",
        action="store_true",
        default=None,
        help="play a video file at its own frame rate, like a camera (default for files)",
    )
    pace.add_argument(
        "--as-fast-as-possible", dest="realtime", action="store_false", help="do not pace files"
    )
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--lossless", action="store_true", help="never drop a frame (blocks capture)")
    p.add_argument("--no-viewer", action="store_true", help="headless: no window")
    p.add_argument("--publish", help="public stream endpoint (default tcp://127.0.0.1:5555)")
    p.add_argument("--control", help="control socket endpoint (default tcp://127.0.0.1:5556)")
    p.add_argument(
        "--curve-keys",
        type=Path,
        metavar="DIR",
        help="encrypt the stream and control socket and admit only the client keys in "
        "DIR/clients (CURVE; create with: uv run python -m transports.keys generate DIR)",
    )
    p.add_argument(
        "--insecure",
        action="store_true",
        help="allow --publish/--control on a non-loopback address without --curve-keys",
    )
    p.add_argument(
        "--lsl",
        action="store_true",
        default=None,
        help="LSL outlets monomocap-markers and monomocap-angles, for LabRecorder (LSL streams"
        " are visible to every host on the local network)",
    )
    p.add_argument(
        "--osc",
        metavar="HOST:PORT",
        help="send one OSC bundle per frame over UDP to HOST:PORT (a bare PORT: 127.0.0.1)",
    )
    p.add_argument(
        "--osc-max-rate", type=float, metavar="HZ", help="at most this many OSC bundles a second"
    )
    p.add_argument("--record", type=Path, help="write TRC/CSV files into this folder")
    p.add_argument("--stats", action="store_true", help="print latency percentiles at the end")
    p.add_argument("--stats-json", type=Path, help="write the run's latency figures as JSON")
    add_pipeline_flags(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    invocation = Invocation()  # the command line and start time, for run.json
    args = parse_args(argv)
    if not args.verbose:
        filter_native_chatter()
    if args.duration is not None and args.duration <= 0:
        print("error: --duration must be positive (seconds)", file=sys.stderr)
        return 2
    try:
        config = config_from_args(args, {} if args.no_viewer else {"detect.preview": True})
        warnings = check_public_endpoints(config, args.insecure)
        if lab_stream.wanted(config):
            lab_stream.check(config)  # a bad --osc target fails now, not in the lab process
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for warning in warnings:
        print(warning, file=sys.stderr)
    if not args.no_viewer and not display_available():
        print(f"error: {NO_DISPLAY}: run with --no-viewer", file=sys.stderr)
        return 2
    is_file = classify_source(args.source) == "file"
    if is_file and not Path(args.source).exists():
        print(f"error: video not found: {args.source} (check the path)", file=sys.stderr)
        return 2
    options = LiveOptions(
        source=args.source,
        realtime=is_file if args.realtime is None else args.realtime,
        lossless=args.lossless,
        duration_s=args.duration,
        record_dir=args.record,
        invocation=invocation,
        print_stats=args.stats,
        stats_path=args.stats_json,
        viewer=not args.no_viewer,
        lab=lab_stream.wanted(config),
    )
    # One BLAS thread per process: each stage's matrices are tiny, and on a saturated machine
    # OpenBLAS's extra threads only fight the other stages (bench/bench_live.py). The
    # processes inherit this before they import numpy.
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    add_live_stages(config)  # with --ik, the ik stage after the others
    try:
        with static_scaled(config):
            return run_live(config, options)
    except (PipelineError, ConfigError, StaticError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
