"""Batch throughput: 8 videos (the four demo cameras, twice) one after another
(``--workers 1``), on 2 local worker processes (``--workers 2``) and as Ray tasks on a
local Ray instance of 2 CPUs (``--ray --workers 2``). Each is one ``run_offline.py --batch``
command, timed from start to exit (start-up included, as a user waits for it).

Cluster estimate: a Ray task's own time (``seconds`` in batch_summary.csv, measured while
the node ran as many tasks as it had CPUs, so contention is in it) is what one video costs a
node's ``ray_cpus`` CPUs. A cluster of N nodes with C CPUs each runs N * C / ray_cpus tasks
at once, so it processes about 60 * N * (C / ray_cpus) / (median task seconds) videos per
minute, as long as the driver and the shared output storage keep up (a video's files are a
few MB) and each node already has the environment; Ray's own start-up is left out.

    uv run python -m bench.bench_batch [--nodes 10 --cpus-per-node 16]
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from core.demo_data import demo_video
from stream.config import load_config

PROJECT = Path(__file__).resolve().parent.parent
MODES = {
    "sequential (--workers 1)": ["--workers", "1"],
    "--workers 2": ["--workers", "2"],
    "--ray (local, 2 CPUs)": ["--ray", "--workers", "2"],
}


def run(videos: Path, out: Path, extra: list[str]) -> tuple[float, list[float]]:
    """Seconds of the whole command, and each video's own seconds from batch_summary.csv."""
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "run_offline.py", "--batch", str(videos), "--quiet", "--output",
         str(out), *extra],
        cwd=PROJECT, capture_output=True, text=True,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"error: {' '.join(extra)} failed: {result.stderr[-2000:]}")
    with open(out / "batch_summary.csv", newline="") as f:
        tasks = [float(row["seconds"]) for row in csv.DictReader(f)]
    return seconds, tasks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=10, help="cluster size to estimate")
    parser.add_argument("--cpus-per-node", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        videos = Path(tmp) / "videos"
        for copy in ("first", "second"):
            (videos / copy).mkdir(parents=True)
            for i in range(1, 5):
                shutil.copy(demo_video(f"cam0{i}"), videos / copy / f"cam0{i}.mp4")
        figures = {}
        for i, (mode, extra) in enumerate(MODES.items()):
            figures[mode] = run(videos, Path(tmp) / f"out{i}", extra)
    base = 8 / figures["sequential (--workers 1)"][0] * 60
    print("8 videos (4 demo cameras x 2, 100 frames each), wall time of the whole command:")
    for mode, (seconds, tasks) in figures.items():
        per_min = 8 / seconds * 60
        print(
            f"  {mode:26s} {seconds:6.1f} s  {per_min:5.1f} videos/min  x{per_min / base:.2f}"
            f"  (per video: median {np.median(tasks):.2f} s)"
        )
    task_s = float(np.median(figures["--ray (local, 2 CPUs)"][1]))
    slots = int(args.nodes * args.cpus_per_node / load_config()["batch"]["ray_cpus"])
    print(
        f"cluster estimate: {args.nodes} nodes x {args.cpus_per_node} CPUs = {slots} tasks at "
        f"once, {task_s:.2f} s per task -> {60 * slots / task_s:.0f} videos/min "
        "(60 * slots / median task seconds; see the module doc)"
    )


if __name__ == "__main__":
    main()
