"""OpenSim IK on the demo cameras: marker error, coordinate ranges, time at model limits.

Runs ``run_offline.py --ik`` (default pipeline) on the given cameras of Demo_SinglePerson
unless their files already exist under ``--output``, then reports per camera: the median
IK marker RMS error, the range of the knee, hip and ankle coordinates, and the share of
frames where a coordinate sits at its range limit in the scaled model (within 0.5 deg), and
the IK cost per frame (alone, re-solving the final markers with the scaled model), and
the ISB angles of ``stages/angles.py`` against the matching coordinates (mean difference,
coordinate minus angle, and correlation).

    uv run python -m bench.bench_ik [--output data/output/bench-ik]
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
# OpenSim coordinate -> the ISB angle column with the same positive direction.
ISB = {
    "hip_flexion_r": "hip_r_flex_deg",
    "hip_flexion_l": "hip_l_flex_deg",
    "hip_adduction_r": "hip_r_abd_deg",  # opposite sign: compared negated
    "hip_adduction_l": "hip_l_abd_deg",
    "knee_angle_r": "knee_r_flex_deg",
    "knee_angle_l": "knee_l_flex_deg",
    "ankle_angle_r": "ankle_r_flex_deg",
    "ankle_angle_l": "ankle_l_flex_deg",
    "elbow_flex_r": "elbow_r_flex_deg",
    "elbow_flex_l": "elbow_l_flex_deg",
}


def run(cameras: list[str], output: Path) -> None:
    missing = [c for c in cameras if not (output / c / f"{c}_ik.mot").is_file()]
    if missing:
        videos = [str(demo_video(c)) for c in missing]
        cmd = [sys.executable, "run_offline.py", *videos, "--ik", "--compute-all-joint-angles"]
        cmd += ["--quiet", "--output"]
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
    isb_names, isb = read_mot(folder / "joint_angles" / f"{camera}_angles.mot")
    for name, column in ISB.items():
        sign = -1.0 if "adduction" in name else 1.0
        a, b = values[:, names.index(name)], sign * isb[:, isb_names.index(column)]
        ok = np.isfinite(a) & np.isfinite(b)
        r = np.corrcoef(a[ok], b[ok])[0, 1]
        print(f"  {name:16s} - {column:16s} mean {np.mean(a[ok] - b[ok]):6.1f} deg, r {r:5.2f}")
    trc = read_trc(folder / f"{camera}_final.trc")
    start = time.perf_counter()
    _, _, _, ms = solve_trial(model, config["opensim"], trc.times, trc.xyz, trc.names)
    print(f"  IK alone: {ms:.1f} ms per frame ({time.perf_counter() - start:.1f} s)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--output", type=Path, default=Path("data/output/bench-ik"))
    p.add_argument("--cameras", nargs="+", default=["cam01", "cam02", "cam03", "cam04"])
    args = p.parse_args()
    run(args.cameras, args.output)
    config = load_config()
    for camera in args.cameras:
        report(camera, args.output, config)


if __name__ == "__main__":
    main()
