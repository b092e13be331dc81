"""Offline throughput: MediaPipe alone vs the offline pipeline, pipelined (the default:
detection in its own process) and sequential (``--sequential``), side by side.

All runs decode the same demo video; rounds interleave the three so machine noise hits
them alike; the figures are medians over rounds. The demo video lasts 1.7 s, so what each
video costs once (the levelling's line search, filling and draining the pipeline) weighs
more than in a real recording: ``--seconds S`` measures a clip of S seconds made of the
demo's frames played forth and back (``bench/clips.py``, MPEG-4 at 30 fps). The models
are loaded before the rounds (MediaPipe alone's own setup is outside its timing too).
Prints fps of each, the ratios to MediaPipe alone, and per-stage milliseconds per frame
(pipelined: detect runs in parallel with the rest, so the sum exceeds the time per frame).

    uv run python -m bench.bench_offline [--rounds 5] [--video PATH | --seconds 20]
    uv run python -m bench.bench_offline --compare    # the check below, then exit

``--compare``: the four demo cameras, whole, pipelined and sequential: are their files
(TRCs, landmarks CSV, C3D, angle files; not run.json) identical byte for byte?
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.clips import paced_clip, read_frames
from core.demo_data import demo_video
from offline.pipelined import DetectionProcess
from offline.runner import process_video
from stages.capture import VideoSource
from stages.detect import pose_settings, pose_solution, rgb_of, warmed
from stream.config import load_config
from stream.native_stderr import filter_native_chatter
from stream.pipeline import build_stages

CLIP_FPS = 30.0  # --seconds: the clip's frame rate


def mediapipe_alone_fps(video: Path, config: dict) -> float:
    """The baseline: the capture stage's decoding (``VideoSource``) + MediaPipe Pose with the
    detect stage's settings, nothing else, in one thread (FFmpeg's decoding threads overlap
    MediaPipe all the same). As for the offline runs, the file is opened and the model
    loaded and warmed (``stages.detect.warmed``) before the clock starts: both sides are
    timed on their frames alone, so the ratio is what the stages after detection cost."""
    source = VideoSource(video)
    frames = 0
    with warmed(pose_solution().Pose(**pose_settings(config["detect"]))) as pose:
        start = time.perf_counter()
        for packet in source:
            pose.process(rgb_of(packet.image))
            frames += 1
        seconds = time.perf_counter() - start
    source.close()
    return frames / seconds


def compare_modes(config: dict) -> bool:
    """Process the four demo cameras both ways; print and return whether every file is equal."""
    config = {**config, "angles": {**config["angles"], "compute_all": True}}
    config["output"] = {**config["output"], "c3d": True}
    same = True
    with tempfile.TemporaryDirectory() as out, DetectionProcess(config) as detection:
        for i in range(1, 5):
            video = demo_video(f"cam0{i}")
            folders = {mode: Path(out) / mode for mode in ("pipelined", "sequential")}
            process_video(video, config, folders["pipelined"], progress=False, detection=detection)
            process_video(video, config, folders["sequential"], progress=False)
            files = sorted(
                p.relative_to(folders["pipelined"])
                for p in (folders["pipelined"] / video.stem).rglob("*")
                if p.is_file() and p.name != "run.json"
            )
            equal = [
                (folders["sequential"] / f).read_bytes() == (folders["pipelined"] / f).read_bytes()
                for f in files
            ]
            print(f"{video.name}: {sum(equal)}/{len(files)} files byte-identical")
            same = same and all(equal) and len(files) > 0
    return same


def main() -> None:
    filter_native_chatter()  # MediaPipe's native log lines, as in run_offline.py
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--video", type=Path)
    parser.add_argument("--seconds", type=float, help="a clip of the demo's frames this long")
    parser.add_argument("--compare", action="store_true", help="pipelined == sequential?")
    args = parser.parse_args()
    config = load_config()
    if args.compare:
        raise SystemExit(0 if compare_modes(config) else 1)
    with tempfile.TemporaryDirectory() as folder:
        video = args.video or demo_video()
        if args.seconds:
            video = Path(folder) / f"demo_{args.seconds:g}s.mp4"
            paced_clip(read_frames(demo_video()), CLIP_FPS, args.seconds, video)
        measure(video, config, args.rounds)


def measure(video: Path, config: dict, rounds: int) -> None:
    """Interleaved rounds of the three modes on ``video``; print the figures."""
    sequential_stages = build_stages(config)
    after_detection = build_stages(config, start=1)
    fps: dict[str, list[float]] = {"alone": [], "pipelined": [], "sequential": []}
    per_stage = []
    with tempfile.TemporaryDirectory() as out, DetectionProcess(config) as detection:
        for _ in range(rounds):
            fps["alone"].append(mediapipe_alone_fps(video, config))
            summary = process_video(
                video, config, Path(out), after_detection, progress=False, detection=detection
            )
            fps["pipelined"].append(summary.fps)
            per_stage.append(summary.stage_ms)
            summary = process_video(video, config, Path(out), sequential_stages, progress=False)
            fps["sequential"].append(summary.fps)
    median = {mode: float(np.median(values)) for mode, values in fps.items()}
    print(f"video: {video.name}, rounds: {rounds} (interleaved)")
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
