"""The live page's cost to the pipeline: live at 30 fps with one headless browser on the
page vs none, interleaved pairs.

The Pose2Sim demo frames (cam01) are played forth and back at 30 fps, like a camera, and
the live session is started through ``run_web.py``'s API, as the page does. For each run a
subscriber of the public stream counts the frames published in the steady part (after a
warm-up) against the frames the source offered in that span (published fraction), and
takes capture -> receipt latency p99; with the browser, the page's own count of skeleton
frames drawn (``window.framesDrawn``) gives the frames it rendered per second. Medians over
the pairs. Needs Debian's chromium (/usr/bin/chromium).

    uv run python -m bench.bench_web [--pairs 3] [--seconds 10] [--scale 0.5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from playwright.sync_api import sync_playwright

from bench.arrivals import MarkerArrivals, free_port
from bench.clips import paced_clip, read_frames
from core.demo_data import demo_video

REPO = Path(__file__).resolve().parent.parent
WARM_UP_S = 3.0  # after the first published frame: stage processes settle
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def call(url: str, method: str = "GET", body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method=method)
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def one_run(url: str, publish: str, seconds: float, page: Any | None) -> dict[str, float]:
    """Start the live session, measure ``seconds`` of steady state, stop it."""
    with MarkerArrivals(publish) as arrivals:
        call(f"{url}/api/live", "POST", {"source": "clip.mp4"})
        deadline = time.monotonic() + 180
        while not arrivals.seen and time.monotonic() < deadline:
            time.sleep(0.1)
        if not arrivals.seen:
            raise SystemExit("error: the live session published nothing in 180 s")
        time.sleep(WARM_UP_S)
        start, drawn0 = time.monotonic(), page.evaluate("window.framesDrawn") if page else 0
        time.sleep(seconds)
        end, drawn1 = time.monotonic(), page.evaluate("window.framesDrawn") if page else 0
        call(f"{url}/api/live", "DELETE")
    steady = [(i, ms) for t, i, ms in arrivals.seen if start <= t <= end]
    indices = [i for i, _ in steady]
    result = {
        "published": len(set(indices)) / (max(indices) - min(indices) + 1),
        "latency_p99_ms": float(np.percentile([ms for _, ms in steady], 99)),
    }
    if page is not None:
        result["drawn_fps"] = (drawn1 - drawn0) / (end - start)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=3, help="runs of each kind, interleaved")
    parser.add_argument("--seconds", type=float, default=10.0, help="steady time per run")
    parser.add_argument("--scale", type=float, default=0.5, help="resize the demo frames")
    args = parser.parse_args()
    frames = read_frames(demo_video(), args.scale)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        paced_clip(frames, 30.0, 3 * (args.seconds + WARM_UP_S) + 60, data / "clip.mp4")
        publish, control, port = f"tcp://127.0.0.1:{free_port()}", free_port(), free_port()
        config = Path(tmp) / "web.toml"
        config.write_text(
            f'[web]\nlive_publish = "{publish}"\nlive_control = "tcp://127.0.0.1:{control}"\n'
        )
        server = subprocess.Popen(
            [sys.executable, "run_web.py", "--port", str(port), "--data", str(data),
             "--config", str(config)],
            cwd=REPO, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    call(f"{url}/api/health")
                    break
                except OSError:
                    time.sleep(0.2)
            runs: dict[bool, list[dict[str, float]]] = {False: [], True: []}
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch_persistent_context(
                    Path(tmp) / "profile", executable_path="/usr/bin/chromium",
                    args=CHROMIUM_FLAGS, headless=True, viewport={"width": 1280, "height": 900},
                )  # fmt: skip
                for _ in range(args.pairs):
                    for with_browser in (False, True):
                        page = browser.new_page() if with_browser else None
                        if page is not None:
                            page.goto(f"{url}/live")
                            page.wait_for_selector("#state:has-text('stopped')")
                        runs[with_browser].append(one_run(url, publish, args.seconds, page))
                        if page is not None:
                            page.close()
                        name = "browser" if with_browser else "none   "
                        print(f"  {name} {runs[with_browser][-1]}", flush=True)
                browser.close()
        finally:
            server.terminate()
            server.wait(30)
    median = {
        key: {b: statistics.median(r[key] for r in runs[b] if key in r) for b in (False, True)}
        for key in ("published", "latency_p99_ms")
    }
    drawn = statistics.median(r["drawn_fps"] for r in runs[True])
    width, height = frames[0].shape[1], frames[0].shape[0]
    print(f"source 30 fps, {width}x{height}, medians of {args.pairs} interleaved pairs of "
          f"{args.seconds:.0f} s")  # fmt: skip
    for b, name in ((False, "no browser "), (True, "one browser")):
        print(f"{name}: published {100 * median['published'][b]:5.1f} %, "
              f"latency p99 {median['latency_p99_ms'][b]:6.1f} ms")  # fmt: skip
    diff = median["latency_p99_ms"][True] - median["latency_p99_ms"][False]
    print(f"p99 difference (browser - none): {diff:+.1f} ms (target |diff| <= 5 ms)")
    print(f"page drew {drawn:.1f} skeleton frames per second (target >= 15)")


if __name__ == "__main__":
    main()
