"""Per-stage cost after detection, isolated from MediaPipe: ms per frame for each stage.

Detections of the demo video are computed once; then each post-detection stage is run
over the whole sequence ``--repeat`` times and the best run is reported (the least
disturbed by other load on the machine).

    uv run python -m bench.bench_stages [--repeat 5] [--video PATH] [--lift pof|mediapipe]

The lift stage (ONNX network + least-squares solve) is timed as config.toml's [lift] method
says (target: <= 1 ms per frame); ``--lift mediapipe`` makes it a pass-through.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

from core.demo_data import demo_video
from stages.capture import VideoSource
from stream.config import load_config, with_overrides
from stream.native_stderr import filter_native_chatter
from stream.pipeline import build_stages


def main() -> None:
    filter_native_chatter()  # MediaPipe's native log lines, as in run_offline.py
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--video", type=Path)
    parser.add_argument("--lift", choices=("pof", "mediapipe"), help="default: config.toml")
    parser.add_argument("--pof-model", type=Path, help="ONNX lifter")
    args = parser.parse_args()
    video = args.video or demo_video()
    config = with_overrides(
        load_config(),
        {"lift.method": args.lift, "lift.model": args.pof_model and str(args.pof_model.resolve())},
    )
    stages = build_stages(config)
    detect, later = stages[0], stages[1:]
    detected = [detect(p) for p in VideoSource(video)]
    print(f"video: {video.name}, {len(detected)} frames, best of {args.repeat} runs")
    packets = detected
    for stage in later:
        best = float("inf")
        for _ in range(args.repeat):
            stage.reset()
            inputs = [copy.deepcopy(p) for p in packets]
            start = time.perf_counter()
            outputs = [stage.process(p) for p in inputs]
            best = min(best, time.perf_counter() - start)
        print(f"  {stage.name:8s} {1000 * best / len(packets):7.3f} ms per frame")
        packets = outputs


if __name__ == "__main__":
    main()
