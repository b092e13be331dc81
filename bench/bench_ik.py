"""OpenSim IK on the demo cameras: marker error, coordinate ranges, time at model limits.

Runs ``run_offline.py --ik`` (default pipeline) on the given cameras of Demo_SinglePerson
unless their files already exist under ``--output``, then reports per camera: the median
IK marker RMS error, the range of the knee, hip and ankle coordinates, and the share of
frames where a coordinate sits at its range limit in the scaled model (within 0.5 deg), and
the IK cost per frame (alone, re-solving the final markers with the scaled model), and
the ISB angles of ``stages/angles.py`` against the matching coordinates (mean difference,
coordinate minus angle, and correlation).

Accuracy, as OpenCap measures it: the reference of each camera is the same scaling and IK
run on the other three calibrated cameras' view of each frame: their 2D landmarks (the
``_raw_landmarks.csv`` of their own runs, left/right as the swap repair left them)
triangulated, made into the 21 input markers as the markers stage does (mid-hip, neck,
small toes), turned to the lab's Y up, and augmented by the same LSTM stage. Reported per
camera: the mean absolute difference of each joint coordinate from the reference, and the
share of frames where any coordinate of the model sits at its limit (clamped ones only).

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


def raw_landmarks(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(T, 33, 2) pixels and (T, 33) visibility of a ``_raw_landmarks.csv`` (NaN: none)."""
    rows = np.genfromtxt(path, delimiter=",", skip_header=1, usecols=range(4, 4 + 33 * 7))
    per = rows.reshape(len(rows), 33, 7)
    return per[:, :, :2], np.nan_to_num(per[:, :, 3])


def lab_rotation(camera_R: np.ndarray) -> np.ndarray:
    """World (the demo's Z up) -> the lab frame the pipeline gives this camera's video with
    a perfect levelling: Y the true up, X the camera's right on the floor, Z = X x Y. The
    pelvis angles about the lab's X and Z axes depend on the heading, so the reference
    must share it."""
    up = np.array([0.0, 0.0, 1.0])
    right = camera_R[0] - (camera_R[0] @ up) * up
    x = right / np.linalg.norm(right)
    return np.stack([x, up, np.cross(x, up)])


def triangulated_markers(
    others: list[tuple[object, np.ndarray, np.ndarray]], to_lab: np.ndarray
) -> np.ndarray:
    """(T, 21, 3) input markers in the lab frame (``to_lab`` @ world) from the other
    cameras' landmarks: each point triangulated from the views that see it (visibility >=
    0.5, two at least)."""
    from core.landmarks import LANDMARK
    from core.marker_sets import MARKERS_21
    from models.training.multiview import VIS_OK, triangulate
    from stages.markers import IDX, place_small_toes

    frames = len(others[0][1])
    out = np.full((frames, len(MARKERS_21), 3), np.nan)
    for f in range(frames):
        m = np.full((len(MARKERS_21), 3), np.nan)
        for name, k in LANDMARK.items():
            views = [(cam, uv[f, k]) for cam, uv, vis in others
                     if vis[f, k] >= VIS_OK and np.isfinite(uv[f, k]).all()]  # fmt: skip
            if len(views) >= 2:
                cams, points = zip(*views, strict=True)
                m[IDX[name]] = triangulate(list(cams), [p[None] for p in points])[0]
        m[IDX["Hip"]] = 0.5 * (m[IDX["LHip"]] + m[IDX["RHip"]])
        m[IDX["Neck"]] = 0.5 * (m[IDX["LShoulder"]] + m[IDX["RShoulder"]])
        place_small_toes(m)
        out[f] = m
    return out @ to_lab.T


def reference_ik(camera: str, output: Path, config: dict) -> tuple[list[str], np.ndarray]:
    """Scaling and IK of the other cameras' triangulated, augmented markers: the reference
    coordinates (T, C) of ``camera``'s frames."""
    import tempfile

    from core.demo_data import DEMO_CAMERAS
    from core.marker_sets import MARKERS_64
    from core.packet import Packet
    from models.training.multiview import demo_cameras
    from stages.augment import Augment
    from stages.ik import save_model, scale_to_markers

    cams = demo_cameras("Demo_SinglePerson")
    others = [
        (cams[i], *raw_landmarks(output / name / f"{name}_raw_landmarks.csv"))
        for i, name in enumerate(DEMO_CAMERAS)
        if name != camera
    ]
    markers21 = triangulated_markers(others, lab_rotation(cams[DEMO_CAMERAS.index(camera)].R))
    augment = Augment()
    augment.setup(config)
    times = read_trc(output / camera / f"{camera}_final.trc").times
    xyz = []
    for f, m in enumerate(markers21):
        packet = Packet("reference", f, 0, float(times[f]), (1, 1), data={"markers_21": m})
        xyz.append(np.array(augment(packet).data["markers_64"]))
    xyz = np.array(xyz)
    usable = np.isfinite(xyz).all(axis=(1, 2))
    opensim = config["opensim"]
    model, _ = scale_to_markers(opensim, xyz, MARKERS_64, usable, float(config["subject"]["mass"]))
    with tempfile.TemporaryDirectory() as tmp:
        model, _ = save_model(model, opensim, Path(tmp), "reference")
    ik, values, _, _ = solve_trial(model, opensim, times, xyz, MARKERS_64)
    return list(ik.coordinates), values


# Joint coordinates compared with the reference (the pelvis' heading and position depend
# on each lab frame's origin and heading, not on the pose).
COMPARED = (
    "pelvis_tilt", "pelvis_list", *MAIN, "hip_rotation_r", "hip_rotation_l",
    "L5_S1_Flex_Ext", "L5_S1_Lat_Bending", "L5_S1_axial_rotation",
    "arm_flex_r", "arm_add_r", "arm_flex_l", "arm_add_l", "elbow_flex_r", "elbow_flex_l",
)  # fmt: skip


def accuracy(camera: str, output: Path, config: dict) -> dict[str, float]:
    """Mean absolute difference (deg) of each compared coordinate from the reference, and
    the share of frames (%) with some coordinate at its limit, under ``"at_limit"``."""
    from models.opensim_model import load_model, opensim_module

    rotational = opensim_module().Coordinate.Rotational
    names, values = read_mot(output / camera / f"{camera}_ik.mot")
    ref_names, reference = reference_ik(camera, output, config)
    out = {}
    for name in COMPARED:
        a, b = values[:, names.index(name)], reference[:, ref_names.index(name)]
        ok = np.isfinite(a) & np.isfinite(b)
        out[name] = float(np.mean(np.abs(a[ok] - b[ok])))
    model = load_model(config["opensim"], path=output / camera / f"{camera}_scaled.osim")
    coords = model.getCoordinateSet()
    for key, table, columns in (
        ("at_limit", values, names),
        ("ref_at_limit", reference, ref_names),
    ):
        at = np.zeros(len(table), bool)
        for i in range(coords.getSize()):  # the ranges of a scaled model are the generic's
            c = coords.get(i)
            if c.getDefaultClamped() and c.getMotionType() == rotational:
                low, high = np.degrees(c.getRangeMin()), np.degrees(c.getRangeMax())
                series = table[:, columns.index(c.getName())]
                here = (series <= low + AT_LIMIT_DEG) | (series >= high - AT_LIMIT_DEG)
                if here.any():
                    print(f"  {camera} {key} {c.getName()} ({low:.0f} .. {high:.0f}): "
                          f"{100 * here.mean():.0f}% of frames")  # fmt: skip
                at |= here
        out[key] = 100.0 * float(at.mean())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--output", type=Path, default=Path("data/output/bench-ik"))
    p.add_argument("--cameras", nargs="+", default=["cam01", "cam02", "cam03", "cam04"])
    args = p.parse_args()
    run(args.cameras, args.output)
    config = load_config()
    for camera in args.cameras:
        report(camera, args.output, config)
    figures = {camera: accuracy(camera, args.output, config) for camera in args.cameras}
    print("\nmean absolute difference from the other cameras' reference (deg):")
    print(f"{'coordinate':22s}" + "".join(f"{c:>8s}" for c in args.cameras) + "    mean")
    labels = {"at_limit": "frames at a limit (%)", "ref_at_limit": "reference: at a limit"}
    for name in (*COMPARED, *labels):
        row = [figures[c][name] for c in args.cameras]
        label = labels.get(name, name)
        print(f"{label:22s}" + "".join(f"{v:8.1f}" for v in row) + f"{np.mean(row):8.1f}")


if __name__ == "__main__":
    main()
