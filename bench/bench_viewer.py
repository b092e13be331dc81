"""Published frame rate with the live viewer attached vs headless, in one run.

The Pose2Sim demo frames (cam01, 1080x1920) are played forth and back at 30 fps, like a
camera; ``run_live.py`` runs on them with and without its window, alternately (``--rounds``
of each, so machine load drifts hit both alike). For each run: frames published per second
(counted by a subscriber, after a warm-up second), capture -> publish latency p50, and the
window's CPU use (% of one core); medians over the runs. Also the detect stage's extra cost
for the preview image.
On a machine without a display, run it under ``xvfb-run -a`` (Mesa's software OpenGL draws).

    uv run python -m bench.bench_viewer [--rounds 4] [--seconds 8] [--scale 0.5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.arrivals import MarkerArrivals, free_port
from bench.clips import paced_clip, read_frames
from core.demo_data import demo_video
from stages.detect import encode_preview
from viewer.app import NO_DISPLAY, display_available

REPO = Path(__file__).resolve().parent.parent

WARM_UP_S = 1.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def viewer_cpu_s() -> float | None:
    """CPU seconds used so far by the window process (None if there is none)."""
    for entry in Path("/proc").iterdir():
        try:
            if (entry / "comm").read_text().strip() == "mm-viewer":
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        except OSError:
            continue
    return None


def one_run(video: Path, seconds: float, viewer: bool) -> dict[str, float]:
    """Published fps, latency p50 and the window's CPU % for one run of run_live.py."""
    publish, control = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    cpu: list[tuple[float, float]] = []  # (wall time, window CPU seconds)

    def sample_cpu(now: float) -> None:
        if viewer and arrivals.seen and (not cpu or now - cpu[-1][0] > 0.5):
            used = viewer_cpu_s()
            if used is not None:
                cpu.append((now, used))

    command = [sys.executable, "run_live.py", "--source", str(video), "--duration", str(seconds)]
    command += ["--publish", publish, "--control", control] + ([] if viewer else ["--no-viewer"])
    arrivals = MarkerArrivals(publish, sample_cpu)
    with arrivals:
        run = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                             timeout=seconds + 120)  # fmt: skip
    if run.returncode != 0:
        raise SystemExit(f"run_live.py failed ({run.returncode}): {run.stderr[-2000:]}")
    start = arrivals.seen[0].received_s + WARM_UP_S
    steady = [a for a in arrivals.seen if a.received_s >= start]
    result = {
        "fps": (len(steady) - 1) / (steady[-1].received_s - steady[0].received_s),
        "latency_ms": statistics.median(a.latency_ms for a in steady),
    }
    if len(cpu) >= 2:
        (t0, c0), (t1, c1) = cpu[0], cpu[-1]
        result["viewer_cpu_pct"] = 100 * (c1 - c0) / (t1 - t0)
    return result


def preview_ms(frames: list[np.ndarray]) -> float:
    """Extra detect time per frame for the preview (downscale + JPEG), median."""
    times = []
    for frame in frames:
        start = time.perf_counter()
        encode_preview(frame, 480, 70)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4, help="runs of each kind")
    parser.add_argument("--seconds", type=float, default=8.0, help="capture time per run")
    parser.add_argument("--scale", type=float, default=1.0, help="resize the demo frames")
    args = parser.parse_args()
    if not display_available():
        parser.exit(2, f"error: {NO_DISPLAY}: on a headless machine run it under xvfb-run -a\n")
    frames = read_frames(demo_video(), args.scale)
    height, width = frames[0].shape[:2]
    print(f"preview (480 px JPEG) in detect: {preview_ms(frames):.2f} ms per {width}x{height}")
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "demo30.mp4"
        paced_clip(frames, 30.0, args.seconds + 5, video)
        runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
        for _ in range(args.rounds):
            for viewer in (False, True):
                runs[viewer].append(one_run(video, args.seconds, viewer))
                print(f"  {'viewer  ' if viewer else 'headless'} {runs[viewer][-1]}", flush=True)
    # medians: on a shared machine one run now and then loses a third of its CPU to others
    fps = {v: statistics.median(r["fps"] for r in runs[v]) for v in runs}
    latency = {v: statistics.median(r["latency_ms"] for r in runs[v]) for v in runs}
    cpu = [r["viewer_cpu_pct"] for r in runs[True] if "viewer_cpu_pct" in r]
    print(f"source 30 fps, {width}x{height}, medians of {args.rounds} runs of {args.seconds:.0f} s")
    print(f"headless:    {fps[False]:5.1f} fps published, latency p50 {latency[False]:5.1f} ms")
    print(f"with viewer: {fps[True]:5.1f} fps published, latency p50 {latency[True]:5.1f} ms")
    if cpu:
        print(f"viewer process: {statistics.median(cpu):.0f} % of one core")
    print(f"ratio viewer/headless: {fps[True] / fps[False]:.3f} (target >= 0.95)")


if __name__ == "__main__":
    main()
