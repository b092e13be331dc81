"""OpenSim IK on the demo cameras: marker error, coordinate ranges, time at model limits.

Runs ``run_offline.py --ik`` (default pipeline) on the given cameras of Demo_SinglePerson
unless their files already exist under ``--output``, then reports per camera: the median
IK marker RMS error, the range of the knee, hip and ankle coordinates, and the share of
frames where a coordinate sits at its range limit in the scaled model (within 0.5 deg), and
the IK cost per frame (alone, re-solving the final markers with the scaled model).

    uv run --no-sync python -m bench.bench_ik --output /tmp/ik_demo
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from core.angle_files import read_mot
from core.demo_data import demo_video
from core.trc import read_trc
from stages.ik import solve_trial
from stream.config import load_config

MAIN = (
    "hip_flexion_r",
    "hip_flexion_l",
    "hip_adduction_r",
    "hip_adduction_l",
    "knee_angle_r",
    "knee_angle_l",
    "ankle_angle_r",
    "ankle_angle_l",
)
AT_LIMIT_DEG = 0.5


def run(cameras: list[str], output: Path) -> None:
    missing = [c for c in cameras if not (output / c / f"{c}_ik.mot").is_file()]
    if missing:
        videos = [str(demo_video(c)) for c in missing]
        cmd = [sys.executable, "run_offline.py", *videos, "--ik", "--quiet", "--output"]
        subprocess.run([*cmd, str(output)], check=True)


def report(camera: str, output: Path, config: dict) -> None:
    from models.opensim_model import load_model

    folder = output / camera
    names, values = read_mot(folder / f"{camera}_ik.mot")
    errors = np.loadtxt(folder / f"{camera}_ik_marker_errors.csv", delimiter=",", skiprows=1)
    model = load_model(config["opensim"], path=folder / f"{camera}_scaled.osim")
    coords = model.getCoordinateSet()
    print(
        f"{camera}: {np.isfinite(errors[:, 1]).sum()}/{len(errors)} frames, median marker RMS "
        f"{100 * np.nanmedian(errors[:, 1]):.2f} cm, "
        f"median max {100 * np.nanmedian(errors[:, 2]):.2f} cm"
    )
    for name in MAIN:
        series = values[:, names.index(name)]
        c = coords.get(name)
        low, high = np.degrees(c.getRangeMin()), np.degrees(c.getRangeMax())
        at = np.mean((series <= low + AT_LIMIT_DEG) | (series >= high - AT_LIMIT_DEG))
        print(
            f"  {name:16s} {np.nanmin(series):7.1f} .. {np.nanmax(series):6.1f} deg "
            f"(model {low:.0f} .. {high:.0f}), at a limit {100 * at:.0f}% of frames"
        )
    trc = read_trc(folder / f"{camera}_final.trc")
    start = time.perf_counter()
    _, _, _, ms = solve_trial(model, config["opensim"], trc.times, trc.xyz, trc.names)
    print(f"  IK alone: {ms:.1f} ms per frame ({time.perf_counter() - start:.1f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--output", type=Path, default=Path("/tmp/ik_demo"))
    p.add_argument("--cameras", nargs="+", default=["cam01", "cam02", "cam03", "cam04"])
    args = p.parse_args()
    run(args.cameras, args.output)
    config = load_config()
    for camera in args.cameras:
        report(camera, args.output, config)


if __name__ == "__main__":
    main()
