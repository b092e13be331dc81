"""Per-stage cost after detection, isolated from MediaPipe: ms per frame for each stage.

Detections of the demo video are computed once; then each post-detection stage is run
over the whole sequence ``--repeat`` times and the best run is reported (the least
disturbed by other load on the machine).

    uv run python -m bench.bench_stages [--repeat 5] [--video PATH] [--camera-pof]

``--camera-pof`` adds the learned lift stage (ONNX network + least-squares solve) after
detection, as the pipeline runs it (target: <= 1 ms per frame).
"""

from __future__ import annotations

import argparse
import copy
import importlib.resources
import time
from pathlib import Path

from stages.capture import VideoSource
from stream.cli import choose_lift
from stream.config import load_config
from stream.pipeline import build_stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--video", type=Path)
    parser.add_argument("--camera-pof", action="store_true", help="include the lift stage")
    parser.add_argument("--pof-model", type=Path, help="ONNX lifter (implies --camera-pof)")
    args = parser.parse_args()
    video = args.video or Path(
        str(importlib.resources.files("Pose2Sim") / "Demo_SinglePerson/videos/cam01.mp4")
    )
    config = load_config()
    if args.camera_pof or args.pof_model:
        choose_lift(config, "pof", args.pof_model)
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
