"""Offline throughput: MediaPipe alone vs the offline pipeline, pipelined (the default:
detection in its own process) and sequential (``--sequential``), side by side.

All runs decode the same demo video; rounds interleave the three so machine noise hits
them alike; the figures are medians over rounds. The models are loaded before the rounds
(MediaPipe alone's own setup is outside its timing too). Prints fps of each, the ratios
to MediaPipe alone, and per-stage milliseconds per frame (pipelined: detect runs in
parallel with the rest, so the sum exceeds the time per frame).

    uv run python -m bench.bench_offline [--rounds 5] [--video PATH]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from mediapipe.python.solutions import pose as mp_pose

from core.demo_data import demo_video
from offline.pipelined import DetectionProcess
from offline.runner import process_video
from stream.config import load_config
from stream.native_stderr import filter_native_chatter
from stream.pipeline import build_stages


def mediapipe_alone_fps(video: Path) -> float:
    """Decode + MediaPipe Pose (same settings as the detect stage), nothing else."""
    cap = cv2.VideoCapture(str(video))
    frames = 0
    with mp_pose.Pose(model_complexity=1, smooth_landmarks=True) as pose:
        start = time.perf_counter()
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            pose.process(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            frames += 1
        seconds = time.perf_counter() - start
    cap.release()
    return frames / seconds


def main() -> None:
    filter_native_chatter()  # MediaPipe's native log lines, as in run_offline.py
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--video", type=Path)
    args = parser.parse_args()
    video = args.video or demo_video()
    config = load_config()
    sequential_stages = build_stages(config)
    after_detection = build_stages(config, start=1)
    fps: dict[str, list[float]] = {"alone": [], "pipelined": [], "sequential": []}
    per_stage = []
    with tempfile.TemporaryDirectory() as out, DetectionProcess(config) as detection:
        for _ in range(args.rounds):
            fps["alone"].append(mediapipe_alone_fps(video))
            summary = process_video(
                video, config, Path(out), after_detection, progress=False, detection=detection
            )
            fps["pipelined"].append(summary.fps)
            per_stage.append(summary.stage_ms)
            summary = process_video(video, config, Path(out), sequential_stages, progress=False)
            fps["sequential"].append(summary.fps)
    median = {mode: float(np.median(values)) for mode, values in fps.items()}
    print(f"video: {video.name}, rounds: {args.rounds} (interleaved)")
    print(f"MediaPipe alone     : {median['alone']:6.1f} fps")
    for mode in ("pipelined", "sequential"):
        ratio = median[mode] / median["alone"]
        print(f"offline {mode:12s}: {median[mode]:6.1f} fps, ratio to MediaPipe alone {ratio:.3f}")
    print("rounds (alone / pipelined / sequential fps):")
    for row in zip(*fps.values(), strict=True):
        print("  " + " / ".join(f"{v:.1f}" for v in row))
    print("per-stage ms per frame, pipelined (median over rounds):")
    for name in per_stage[0]:
        print(f"  {name:8s} {np.median([r[name] for r in per_stage]):7.3f}")


if __name__ == "__main__":
    main()
