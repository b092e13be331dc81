"""Refit the mocap layouts' landmark offsets (models/training/landmark_offsets.py) to
MediaPipe's proportions on the tuning demo, triangulated from the other cameras.

``uv run python -m models.training.fit_landmark_offsets --cache mp_multi.npz`` prints the new
``TARGET`` and ``OFFSETS`` to paste into landmark_offsets.py (the forearm's target into
``FOREARM_PER_UPPER_ARM`` of models/pof_solver.py, which the runtime skeleton shares).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from core.demo_data import TUNING_DEMO
from models.training.landmark_offsets import OFFSETS, fit_offsets, ratios
from models.training.mocap import load_clips
from models.training.multiview import demo_cameras, detections, triangulate_others


def measure_target(cache: Path | None) -> dict[str, float]:
    """MediaPipe's ratios on Demo_MultiPerson, from the other cameras' triangulation."""
    det = detections(TUNING_DEMO, cache)
    cams = demo_cameras(TUNING_DEMO)
    points = [
        x
        for f in range(det["uv"].shape[1])
        for c in range(len(cams))
        if (x := triangulate_others(cams, det["uv"], det["vis"], c, f)) is not None
    ]
    return {k: round(v, 3) for k, v in ratios(np.array(points)).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, default=None, help="MediaPipe detections (.npz)")
    args = ap.parse_args()
    target = measure_target(args.cache)
    clips = load_clips(adapt=False)
    offsets = {}
    for layout in OFFSETS:
        joints = np.concatenate([c.joints for c in clips if c.skeleton == layout])[::5]
        offsets[layout] = fit_offsets(joints.astype(np.float64), target)
    print(json.dumps({"TARGET": target, "OFFSETS": offsets}, indent=1))


if __name__ == "__main__":
    main()
