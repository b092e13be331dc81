"""Soak: does any live process grow in a long run?

The Pose2Sim demo (cam01, 1080x1920) played forth and back without end at 60 fps by a
local MJPEG-over-HTTP server (an IP camera, as far as the pipeline can tell) feeds
``run_live.py --no-viewer`` for ``--minutes``. The RSS of every process of the run (the
supervisor, capture, each stage, the sink) is sampled every few seconds; after the
warm-up, the slope of a least-squares line through each process' samples is its growth
(target: < 0.1 MB/min each); the range of each process' RSS after the warm-up tells a
trend from the few-MB steps of the allocator, which dominate slopes over short runs.
Capture -> publish latency percentiles come from ``--stats-json``.

    uv run python -m bench.bench_soak [--minutes 15] [--warmup-minutes 2] [--samples-json F]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.clips import ping_pong, read_frames
from bench.mjpeg_server import MjpegServer
from bench.proc import comm, descendants
from core.demo_data import demo_video

REPO = Path(__file__).resolve().parent.parent

SAMPLE_S = 5.0
TARGET_MB_PER_MIN = 0.1


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares growth of (seconds, MB) samples, in MB per minute."""
    t, mb = np.array(samples).T
    return float(np.polyfit(t / 60.0, mb, 1)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=15.0, help="length of the live run")
    parser.add_argument("--warmup-minutes", type=float, default=2.0, help="left out of slopes")
    parser.add_argument("--fps", type=float, default=60.0)
    parser.add_argument("--samples-json", type=Path, help="write every RSS sample here")
    args = parser.parse_args()
    server = MjpegServer(ping_pong(read_frames(demo_video())), fps=args.fps, quality=85).serve()
    samples: dict[str, list[tuple[float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        stats_json = Path(tmp) / "stats.json"
        run = subprocess.Popen(
            [sys.executable, str(REPO / "run_live.py"), "--source", server.url, "--no-viewer",
             "--duration", str(args.minutes * 60), "--stats-json", str(stats_json),
             "--publish", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        started = None
        while run.poll() is None:
            children = descendants(run.pid)
            if started is None and any(name == "mm-capture" for name, _ in children.values()):
                started = time.monotonic()  # models loaded, frames flowing
            if started is not None:
                now = time.monotonic() - started
                for pid in [run.pid, *children]:
                    name = "supervisor" if pid == run.pid else comm(pid)
                    mb = rss_mb(pid)
                    if mb is not None and name.startswith(("mm-", "supervisor")):
                        samples.setdefault(name, []).append((now, mb))
            time.sleep(SAMPLE_S if started is not None else 0.5)
        err = run.stderr.read()
        server.drop()
        if run.returncode != 0:
            sys.exit(f"run_live.py failed ({run.returncode}):\n{err}")
        result = json.loads(stats_json.read_text())
    if args.samples_json is not None:
        args.samples_json.write_text(json.dumps(samples))
    warmup = args.warmup_minutes * 60
    print(
        f"soak: {args.minutes:g} min live at {args.fps:g} fps input (MJPEG over HTTP), "
        f"slopes after a {args.warmup_minutes:g} min warm-up, one RSS sample per {SAMPLE_S:g} s"
    )
    print(f"{'process':12s} {'RSS MB':>8s} {'MB/min':>8s} {'min..max after warm-up':>24s}")
    worst = 0.0
    for name, series in sorted(samples.items()):
        steady = [(t, mb) for t, mb in series if t >= warmup]
        if len(steady) < 3:
            print(f"{name:12s} {series[-1][1]:8.1f} {'(too few samples after warm-up)':>8s}")
            continue
        slope = slope_mb_per_min(steady)
        worst = max(worst, slope)
        flag = "" if slope < TARGET_MB_PER_MIN else f"  over the {TARGET_MB_PER_MIN} target"
        low, high = min(mb for _, mb in steady), max(mb for _, mb in steady)
        span = f"{low:.1f}..{high:.1f}"
        print(f"{name:12s} {steady[-1][1]:8.1f} {slope:8.3f} {span:>24s}{flag}")
    e2e = result["ms"]["capture->publish"]
    share = 100 * result["published"] / max(server.sent, 1)
    print(
        f"published {result['published']} of {server.sent} frames sent ({share:.1f}%), "
        f"dropped {result['dropped']}, restarts {result['restarts']}"
    )
    print(f"capture->publish ms: p50 {e2e['p50']:.1f}  p95 {e2e['p95']:.1f}  p99 {e2e['p99']:.1f}")
    print(f"largest RSS slope {worst:.3f} MB/min (target < {TARGET_MB_PER_MIN})")


if __name__ == "__main__":
    main()
