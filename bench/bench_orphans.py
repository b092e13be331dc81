"""How long the live pipeline outlives a supervisor killed with SIGKILL (as by the OOM killer).

Starts ``run_live.py`` on the demo video played forth and back, waits until frames are
published, notes every descendant process (the ``mm-*`` stages, the forkserver, the
resource tracker), SIGKILLs the supervisor and reports when each one was gone. Target:
the last one within 1 s.

    uv run python -m bench.bench_orphans [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.clips import paced_clip, read_frames
from bench.proc import descendants, running
from core.demo_data import demo_video
from transports.client import PoseClient

REPO = Path(__file__).resolve().parent.parent

STARTUP_S = 180.0


def one_run(video: Path, tmp: Path, port: int) -> dict[str, float]:
    """Seconds from the SIGKILL until each process was gone, by name."""
    publish, control = f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port + 1}"
    process = subprocess.Popen(
        [sys.executable, str(REPO / "run_live.py"), "--source", str(video), "--no-viewer",
         "--publish", publish, "--control", control],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "TMPDIR": str(tmp)},
    )  # fmt: skip
    client = PoseClient(publish, control)
    deadline = time.monotonic() + STARTUP_S
    while True:
        assert process.poll() is None and time.monotonic() < deadline, "run did not start"
        try:
            if client.request("status", timeout_s=0.5)["status"]["published"] > 30:
                break
        except TimeoutError:
            pass
        time.sleep(0.2)
    children = descendants(process.pid)
    killed = time.monotonic()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    gone: dict[str, float] = {}
    while len(gone) < len(children) and time.monotonic() - killed < 30:
        for pid, (name, start) in children.items():
            if f"{name}:{pid}" not in gone and not running(pid, start):
                gone[f"{name}:{pid}"] = time.monotonic() - killed
        time.sleep(0.005)
    for pid, (name, _) in children.items():
        gone.setdefault(f"{name}:{pid}", float("inf"))  # still running
    return gone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "demo_60s.mp4"
        paced_clip(read_frames(demo_video()), 30.0, 60.0, video)
        worst = []
        for i in range(args.runs):
            gone = one_run(video, Path(tmp), 5570 + 2 * i)
            last = max(gone.values())
            worst.append(last)
            names = ", ".join(f"{k} {v:.2f}" for k, v in sorted(gone.items(), key=lambda x: x[1]))
            print(f"run {i + 1}: {len(gone)} processes, last gone {last:.2f} s after SIGKILL")
            print(f"  {names}")
        print(f"SIGKILL of the supervisor -> last process gone: max {max(worst):.2f} s "
              f"over {args.runs} runs (target < 1 s)")  # fmt: skip


if __name__ == "__main__":
    main()
