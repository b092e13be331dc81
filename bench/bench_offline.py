"""Offline throughput: MediaPipe alone vs the whole offline pipeline, side by side.

Both runs decode the same demo video; rounds alternate so machine noise hits both alike.
Prints fps of each, their ratio, and per-stage milliseconds per frame.

    uv run python -m bench.bench_offline [--rounds 3] [--video PATH]
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
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--video", type=Path)
    args = parser.parse_args()
    video = args.video or demo_video()
    config = load_config()
    stages = build_stages(config)
    alone, pipeline, per_stage = [], [], []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):
            alone.append(mediapipe_alone_fps(video))
            summary = process_video(video, config, Path(out), stages=stages, progress=False)
            pipeline.append(summary.fps)
            per_stage.append(summary.stage_ms)
    mp_fps, pipe_fps = float(np.median(alone)), float(np.median(pipeline))
    print(f"video: {video.name}, rounds: {args.rounds}")
    print(f"MediaPipe alone : {mp_fps:6.1f} fps")
    print(f"offline pipeline: {pipe_fps:6.1f} fps")
    print(f"ratio pipeline / MediaPipe alone: {pipe_fps / mp_fps:.3f}")
    print("per-stage ms per frame (median over rounds):")
    for name in per_stage[0]:
        print(f"  {name:8s} {np.median([r[name] for r in per_stage]):7.3f}")


if __name__ == "__main__":
    main()
