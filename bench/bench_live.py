"""Live-mode benchmark, all in one run on the Pose2Sim demo video (cam01, 1080x1920):

1. offline pipeline fps / MediaPipe-alone fps (as bench_offline.py);
2. live mode at the source's real rate: the demo frames played forth and back for
   ``--seconds`` at 60 fps (the demo's own rate) and the same frames paced at 30 fps.
   For each: fraction of source frames published, capture -> publish latency p50/p95/p99,
   per-stage latency, CPU (% of one core, all pipeline processes), RSS and PSS (proportional
   set size, from /proc/PID/smaps_rollup: pages shared by several processes split among
   them, so the per-process figures add up to the run's real memory) of every process of the
   run (run_live.py itself, the forkserver, the stage, capture and sink processes), each
   and in total, the maximum over the steady part of the run.

    uv run python -m bench.bench_live [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.bench_offline import mediapipe_alone_fps
from bench.clips import paced_clip, read_frames
from bench.proc import descendants
from core.demo_data import demo_video
from offline.runner import process_video
from stream.config import load_config
from stream.native_stderr import filter_native_chatter
from stream.pipeline import build_stages

REPO = Path(__file__).resolve().parent.parent


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def run_pids(root: int) -> dict[int, str]:
    """{pid: name} of ``root`` (run_live.py) and every process below it."""
    return {root: "run_live", **{pid: name for pid, (name, _) in descendants(root).items()}}


def pss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def sample(pids: dict[int, str]) -> tuple[int, int, dict[str, int]]:
    """CPU ticks and RSS of ``pids`` together, and each one's PSS by name."""
    ticks = rss = 0
    pss: dict[str, int] = {}
    for pid, name in pids.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(stat[11]) + int(stat[12])  # utime + stime
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) * 1024
            pss[f"{name}:{pid}" if name in pss else name] = pss_bytes(pid)
        except OSError:
            continue
    return ticks, rss, pss


class ResourceSampler(threading.Thread):
    """Samples CPU time, RSS and PSS of the run's processes while the run is steady."""

    def __init__(self, root: int) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.samples: list[tuple[float, int, int, dict[str, int]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            ticks, rss, pss = sample(run_pids(self.root))
            if len(pss) > 3:  # the stage processes are up
                self.samples.append((time.monotonic(), ticks, rss, pss))

    def figures(self) -> tuple[float, float, dict[str, float]]:
        """CPU % of one core, max RSS MB (all processes) and max PSS MB per process."""
        steady = self.samples[2:-1] if len(self.samples) > 4 else self.samples
        if len(steady) < 2:
            return float("nan"), float("nan"), {}
        (t0, c0, _, _), (t1, c1, _, _) = steady[0], steady[-1]
        cpu = 100.0 * (c1 - c0) / CLOCK_TICKS / (t1 - t0)
        names = {name for *_, pss in steady for name in pss}
        pss_mb = {n: max(p.get(n, 0) for *_, p in steady) / 2**20 for n in sorted(names)}
        pss_mb["total"] = max(sum(p.values()) for *_, p in steady) / 2**20
        return cpu, max(r for _, _, r, _ in steady) / 2**20, pss_mb


def live_run(video: Path, frames: int, stats_json: Path) -> dict:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "run_live.py"), "--source", str(video), "--stats-json",
         str(stats_json), "--publish", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
         "--no-viewer"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    sampler = ResourceSampler(process.pid)
    sampler.start()
    _, err = process.communicate()
    sampler.stop.set()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"run_live.py failed: {err.decode()[-2000:]}")
    result = json.loads(stats_json.read_text())
    result["source_frames"] = frames
    result["cpu_percent"], result["rss_mb"], result["pss_mb"] = sampler.figures()
    return result


def print_live(label: str, r: dict) -> None:
    e2e = r["ms"]["capture->publish"]
    print(
        f"\n{label}: {r['published']}/{r['source_frames']} frames published "
        f"({100 * r['published'] / r['source_frames']:.1f}%), {r['dropped']} dropped at capture"
    )
    print(
        f"  capture->publish ms: p50 {e2e['p50']:.1f}  p95 {e2e['p95']:.1f}  p99 {e2e['p99']:.1f}"
    )
    stages = ", ".join(f"{k} {v['p50']:.2f}" for k, v in r["ms"].items() if k != "capture->publish")
    print(f"  per-stage p50 ms: {stages}")
    print(f"  CPU {r['cpu_percent']:.0f}% of one core, RSS {r['rss_mb']:.0f} MB (all processes)")
    pss = r["pss_mb"]
    each = ", ".join(f"{name} {mb:.0f}" for name, mb in pss.items() if name != "total")
    print(f"  PSS {pss.get('total', float('nan')):.0f} MB in total; per process MB: {each}")


def main() -> None:
    filter_native_chatter()  # MediaPipe's native log lines, as in run_offline.py
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--live-only", action="store_true", help="skip the offline figures")
    args = parser.parse_args()
    video = demo_video()
    config = load_config()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if not args.live_only:
            alone = mediapipe_alone_fps(video)
            offline = process_video(video, config, out, build_stages(config), progress=False)
            print(
                f"offline pipeline (--sequential) {offline.fps:.1f} fps / MediaPipe alone "
                f"{alone:.1f} fps = {offline.fps / alone:.3f} (pipelined: bench_offline.py)"
            )
        for fps in (60.0, 30.0):
            clip = out / f"demo_{int(fps)}fps.mp4"
            n = paced_clip(read_frames(video), fps, args.seconds, clip)
            print_live(f"live at {fps:.0f} fps", live_run(clip, n, out / f"{int(fps)}.json"))


if __name__ == "__main__":
    main()
