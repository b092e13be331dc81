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

With ``--lab-pairs N`` only this instead: live at 30 fps with ``--lsl --osc`` on and off,
N interleaved pairs (on-off, off-on, on-off, ...), an LSL inlet and an OSC server (the examples)
receiving while on: published fraction and p99 latency of each run, the medians of both
and the frames the receivers got.

    uv run python -m bench.bench_live --lab-pairs 3 --seconds 20

With ``--ik`` instead: live at 30 fps, recorded, without and with ``--ik`` (the model scaled
from the first ``[opensim] scale_s`` seconds): the share of frames solved once the model exists, the
ik stage's time, the capture -> publish latency ``--ik`` adds (``pose.ik`` goes out with
``pose.markers`` of the same frame), CPU and RSS.

    uv run python -m bench.bench_live [--seconds 15] --ik
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

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
    """{pid: name} of ``root`` (run_live.py) and every process below it (not another run's)."""
    return {root: "run_live", **{pid: name for pid, (name, _) in descendants(root).items()}}


def pss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) * 1024
    return 0


def sample(pids: dict[int, str], name: str) -> tuple[int, int, int, dict[str, int]]:
    """CPU ticks and RSS of ``pids`` together, the CPU ticks of those called ``name``, and
    each one's PSS by process name."""
    ticks = rss = named = 0
    pss: dict[str, int] = {}
    for pid, comm in pids.items():
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            used = int(stat[11]) + int(stat[12])  # utime + stime
            ticks += used
            named += used if comm == name else 0
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) * 1024
            pss[f"{comm}:{pid}" if comm in pss else comm] = pss_bytes(pid)
        except OSError:
            continue
    return ticks, rss, named, pss


class ResourceSampler(threading.Thread):
    """Samples CPU time, RSS and PSS of one run's processes while the run is steady; the
    CPU of the process called ``name`` (the lab process) also on its own."""

    def __init__(self, root: int, name: str = "mm-lab") -> None:
        super().__init__(daemon=True)
        self.root, self.name = root, name
        self.samples: list[tuple[float, int, int, int, dict[str, int]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            ticks, rss, named, pss = sample(run_pids(self.root), self.name)
            if len(pss) > 3:  # the stage processes are up
                self.samples.append((time.monotonic(), ticks, rss, named, pss))

    def figures(self) -> tuple[float, float, float, dict[str, float]]:
        """CPU % of one core (all processes, the named one), max RSS MB (all processes) and
        max PSS MB per process and in total."""
        # Only while every process runs: the CPU time of one that has ended is no longer
        # counted, which made the start and the end of a run look idle.
        full = max((len(s[4]) for s in self.samples), default=0)
        running = [s for s in self.samples if len(s[4]) == full]
        steady = running[2:-1] if len(running) > 4 else running
        if len(steady) < 2:
            return float("nan"), float("nan"), float("nan"), {}
        (t0, c0, _, n0, _), (t1, c1, _, n1, _) = steady[0], steady[-1]
        per_s = 100.0 / CLOCK_TICKS / (t1 - t0)
        names = {name for *_, pss in steady for name in pss}
        pss_mb = {n: max(p.get(n, 0) for *_, p in steady) / 2**20 for n in sorted(names)}
        pss_mb["total"] = max(sum(p.values()) for *_, p in steady) / 2**20
        rss_mb = max(s[2] for s in steady) / 2**20
        return (c1 - c0) * per_s, (n1 - n0) * per_s, rss_mb, pss_mb


def live_run(video: Path, frames: int, stats_json: Path, *extra: str) -> dict:
    process = subprocess.Popen(
        [sys.executable, str(REPO / "run_live.py"), "--source", str(video), "--stats-json",
         str(stats_json), "--publish", "tcp://127.0.0.1:*", "--control", "tcp://127.0.0.1:*",
         "--no-viewer", *extra],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    sampler = ResourceSampler(process.pid)
    sampler.start()
    _, err = process.communicate()
    sampler.stop.set()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"error: run_live.py failed ({process.returncode}): {err.strip()}")
    result = json.loads(stats_json.read_text())
    result["source_frames"] = frames
    cpu, lab_cpu, rss, pss = sampler.figures()
    result.update(cpu_percent=cpu, lab_cpu_percent=lab_cpu, rss_mb=rss, pss_mb=pss)
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


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def receiver(out: Path, *args: str) -> subprocess.Popen:
    """An example receiver (JSON lines into ``out``) for the lab-streaming runs."""
    with open(out, "w") as stdout:
        command = [sys.executable, "-m", *args, "--json"]
        return subprocess.Popen(command, cwd=REPO, stdout=stdout, stderr=subprocess.DEVNULL)


def lab_run(clip: Path, frames: int, folder: Path, on: bool, index: int) -> dict:
    """One live run at 30 fps, with ``--lsl --osc`` and both receivers when ``on``."""
    stats = folder / f"lab_{'on' if on else 'off'}_{index}.json"
    if not on:
        return live_run(clip, frames, stats)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    osc_out, lsl_out = folder / f"osc_{index}.jsonl", folder / f"lsl_{index}.jsonl"
    osc = receiver(osc_out, "examples.osc_server", "--port", str(port))
    lsl = receiver(lsl_out, "examples.lsl_inlet", "--stream", "monomocap-markers")
    try:
        ports = [f"tcp://127.0.0.1:{free_tcp_port()}" for _ in range(2)]  # --lsl needs fixed
        lab = ("--lsl", "--osc", str(port), "--publish", ports[0], "--control", ports[1])
        result = live_run(clip, frames, stats, *lab)
    finally:
        for process in (osc, lsl):
            process.terminate()
            process.wait(30)
    result["osc_frames"] = len(osc_out.read_text().splitlines()) - 1  # less the "listening"
    result["lsl_samples"] = len(lsl_out.read_text().splitlines()) - 1  # less the info line
    return result


def lab_pairs(pairs: int, seconds: float, folder: Path) -> None:
    """--lsl --osc on against off, interleaved so the machine's load hits both alike."""
    clip = folder / "demo_30fps.mp4"
    frames = paced_clip(read_frames(demo_video()), 30.0, seconds, clip)
    runs: dict[bool, list[dict]] = {True: [], False: []}
    for index in range(pairs):
        for on in (True, False) if index % 2 == 0 else (False, True):  # ABBA: no order bias
            r = lab_run(clip, frames, folder, on, index)
            runs[on].append(r)
            fraction = 100 * r["published"] / frames
            p99 = r["ms"]["capture->publish"]["p99"]
            got = (
                f" (lab process {r['lab_cpu_percent']:.1f}%), OSC {r['osc_frames']}, "
                f"LSL {r['lsl_samples']}"
                if on
                else ""
            )
            print(
                f"pair {index + 1} lab {'on ' if on else 'off'}: {r['published']}/{frames} "
                f"published ({fraction:.1f}%), p99 {p99:.1f} ms, CPU {r['cpu_percent']:.0f}%{got}",
                flush=True,
            )
    medians = {
        on: statistics.median(r["ms"]["capture->publish"]["p99"] for r in rs)
        for on, rs in runs.items()
    }
    low = {on: min(100 * r["published"] / frames for r in rs) for on, rs in runs.items()}
    print(
        f"median p99: on {medians[True]:.1f} ms, off {medians[False]:.1f} ms, difference "
        f"{medians[True] - medians[False]:+.1f} ms; lowest published fraction: on "
        f"{low[True]:.1f}%, off {low[False]:.1f}%"
    )


def ik_share(folder: Path) -> tuple[float, float, int]:
    """From a recording: (media time of the first solved frame, share of the frames with a
    person from then on that were solved, frames without a person from then on)."""
    rows = np.loadtxt(next(folder.glob("*_ik_marker_errors.csv")), delimiter=",", skiprows=1)
    person = np.loadtxt(
        next(folder.glob("*_raw_landmarks.csv")), delimiter=",", skiprows=1, usecols=2
    ).astype(bool)
    solved = np.isfinite(rows[:, 1])
    if not solved.any():
        return float("nan"), 0.0, 0
    first = int(np.argmax(solved))
    later = person[first:]
    return float(rows[first, 0]), float(solved[first:][later].mean()), int((~later).sum())


def bench_ik(video: Path, seconds: float, out: Path) -> None:
    """Live at 30 fps without, then with --ik; both recorded (the --ik run's files count the
    solved frames), so the difference is the ik stage's alone."""
    clip = out / "demo_30fps.mp4"
    n = paced_clip(read_frames(video), 30.0, seconds, clip)
    base = live_run(clip, n, out / "base.json", "--record", str(out / "base"))
    print_live("live at 30 fps --record", base)
    ik = live_run(clip, n, out / "ik.json", "--ik", "--record", str(out / "rec"))
    print_live("live at 30 fps --ik --record", ik)
    first, share, nobody = ik_share(out / "rec" / clip.stem)
    added = ik["ms"]["capture->publish"]["p50"] - base["ms"]["capture->publish"]["p50"]
    print(
        f"  model scaled at {first:.2f} s; frames with a person solved from then on "
        f"{100 * share:.1f}% ({nobody} frames without a person); restarts {ik['restarts']}; "
        f"ik stage p50 {ik['ms']['ik']['p50']:.1f} ms p95 {ik['ms']['ik']['p95']:.1f} ms; "
        f"capture->publish p50 +{added:.1f} ms over the run without --ik"
    )


def main() -> None:
    filter_native_chatter()  # MediaPipe's native log lines, as in run_offline.py
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--live-only", action="store_true", help="skip the offline figures")
    parser.add_argument("--lab-pairs", type=int, default=0, help="LSL/OSC on vs off pairs")
    parser.add_argument("--ik", action="store_true", help="30 fps without and with --ik only")
    args = parser.parse_args()
    video = demo_video()
    config = load_config()
    if args.ik:
        with tempfile.TemporaryDirectory() as tmp:
            bench_ik(video, args.seconds, Path(tmp))
        return
    if args.lab_pairs:
        with tempfile.TemporaryDirectory() as tmp:
            lab_pairs(args.lab_pairs, args.seconds, Path(tmp))
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        if not args.live_only:
            alone = mediapipe_alone_fps(video, config)
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
