"""Cost of the kinematic fit per frame (target: <= 1.5 ms), isolated from everything else.

    uv run python -m bench.bench_fit [--demo Demo_SinglePerson] [--cache F.npz] [--repeat 3]

MediaPipe runs once on the demo's four cameras (or the cache is read), the lift runs once;
then the fit (stages/fit.py's PersonFit with config.toml's [fit] weights) runs over every
lifted frame ``--repeat`` times. Reported: mean, median and 99th percentile per frame over
all runs, and the best run's mean (the least disturbed by other load on the machine).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from core.demo_data import TEST_DEMO
from models.kinematic_fit import FitWeights, PersonFit
from models.lifter import lift_frame
from models.pof_onnx import PofOnnx, frame_step_for
from models.pof_solver import bone_lengths
from models.pose_prior import PosePrior
from models.training.evaluate import demo_fps
from models.training.multiview import demo_cameras, detections
from stream.config import DEFAULT_CONFIG, load_config


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default=TEST_DEMO)
    ap.add_argument("--cache", type=Path, help="MediaPipe detections (.npz), made if missing")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    config = load_config()
    weights = FitWeights.from_config(config["fit"])
    prior = PosePrior.load()
    bones = bone_lengths(float(config["subject"]["height"]))
    det = detections(args.demo, args.cache)
    step = frame_step_for(demo_fps(args.demo))
    tracks = []  # per camera: the lifted frames the fit sees
    for c, cam in enumerate(demo_cameras(args.demo)):
        net = PofOnnx(DEFAULT_CONFIG.parent / config["lift"]["model"], frame_step=step)
        frames = []
        for f in range(det["uv"].shape[1]):
            uv, vis = det["uv"][c, f], det["vis"][c, f]
            if not np.isnan(uv).any():
                lifted = lift_frame(net, uv, vis, cam.K, det["world"][c, f], bones)
                frames.append((uv, vis, cam.K, lifted))
        tracks.append(frames)
    PersonFit(bones, prior, weights)(*_inputs(tracks[0][0]))  # compile / load numba's cache
    per_frame, runs = [], []
    for _ in range(args.repeat):
        run = []
        for frames in tracks:
            fit = PersonFit(bones, prior, weights)
            for frame in frames:
                start = time.perf_counter()
                fit(*_inputs(frame))
                run.append(time.perf_counter() - start)
        runs.append(np.mean(run))
        per_frame.extend(run)
    ms = 1000 * np.array(per_frame)
    print(f"{args.demo}: {len(per_frame) // args.repeat} frames x {args.repeat} runs, "
          f"{weights.iterations} iterations, prior weight {weights.prior_weight}")  # fmt: skip
    best = 1000 * min(runs)
    print(f"  fit per frame: mean {ms.mean():.3f} ms, median {np.median(ms):.3f} ms, "
          f"p99 {np.percentile(ms, 99):.3f} ms, best run mean {best:.3f} ms")  # fmt: skip


def _inputs(frame: tuple) -> tuple:
    uv, vis, K, lifted = frame
    return uv, vis, K, lifted.joints, lifted.directions, lifted.confidence, 0.3


if __name__ == "__main__":
    main()
