"""The true vertical on Pose2Sim's calibrated demos: today's Y axis vs the levelled one.

Per camera of both demos (the same four cameras; tune on Demo_MultiPerson, report
Demo_SinglePerson), the angle between the output's Y axis and the true vertical (from the
calibration): for a camera taken as level (the old lab frame), and for the levelled frame
without calibration, at the last frame and averaged over the frames with a person. With
the calibration (its world frame): the lowest foot marker's height against a multi-view
triangulation of the same landmark by the other three cameras, in the frames where a foot
is still. ``--cache DIR`` keeps the detections (with the scene-line images) between runs;
``--body-only`` drops the scene lines, leaving the body's axis and still feet.

    uv run python -m bench.bench_levelling [--cache DIR] [--demo Demo_MultiPerson] [--body-only]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from core.demo_data import DEMO_CAMERAS, TEST_DEMO, TUNING_DEMO, demo_calibration, demo_video
from core.packet import Packet
from models.skeleton import MEDIAPIPE_INDEX
from models.training.multiview import demo_cameras, triangulate_others
from stages.capture import VideoSource
from stages.detect import MediaPipeDetector
from stages.levelling import FOOT, STILL_SPEED
from stages.lift import PofLift
from stages.markers import MarkerBuilder
from stream.config import load_config, with_overrides
from stream.pipeline import run_inline

KEYS = ("landmarks_2d", "landmarks_z", "visibility", "world_3d")


def detections(demo: str, camera: str, cache: Path | None) -> list[Packet]:
    """The detect stage's packets of one demo video (from ``cache`` when there)."""
    path = cache / f"bench_levelling_detect_{demo}_{camera}.npz" if cache else None
    if path and path.exists():
        d = np.load(path)
        packets = []
        for f in range(len(d["time"])):
            p = Packet(camera, f, 0, float(d["time"][f]), tuple(d["size"]))
            p.data = {k: d[k][f] for k in KEYS}
            p.meta = {"person": bool(d["person"][f]), "fps": float(d["fps"])}
            if f"scene_{f}" in d:
                p.data["scene_image"] = d[f"scene_{f}"]
            packets.append(p)
        return packets
    detect = MediaPipeDetector()
    detect.setup(load_config())
    source = VideoSource(demo_video(camera, demo))
    packets = [run_inline([detect], p) for p in source]
    detect.close()
    if path:
        lines = {f"scene_{p.frame_index}": p.data["scene_image"] for p in packets
                 if "scene_image" in p.data}  # fmt: skip
        np.savez(path, time=[p.media_time_s for p in packets], size=packets[0].image_size,
                 person=[p.meta["person"] for p in packets], fps=source.fps, **lines,
                 **{k: np.stack([p.data[k] for p in packets]) for k in KEYS})  # fmt: skip
    return packets


def run_markers(packets: list[Packet], config: dict) -> list[Packet]:
    """Lift + markers on fresh copies of the detect packets."""
    stages = [PofLift(), MarkerBuilder()]
    for stage in stages:
        stage.setup(config)
    out = []
    for p in packets:
        q = Packet(p.source_id, p.frame_index, 0, p.media_time_s, p.image_size)
        q.data, q.meta = dict(p.data), dict(p.meta)
        out.append(run_inline(stages, q))
    return out


def angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def vertical_errors(packets: list[Packet], up: np.ndarray) -> tuple[float, float]:
    """(last frame, mean over frames with a person) angle of the output's Y to ``up``."""
    errors = [angle_deg(p.data["camera_to_lab"][1, :3], up) for p in packets if p.meta["person"]]
    return errors[-1], float(np.mean(errors))


def still_foot_heights(packets: list[Packet], truth: np.ndarray) -> np.ndarray:
    """Output minus triangulated height (m) of each still foot marker (image speed)."""
    diffs = []
    for prev, p, world in zip(packets, packets[1:], truth[1:], strict=False):
        if not p.meta["person"] or world is None:
            continue
        m = p.data["markers_21"]
        xy = p.data["landmarks_2d"]
        idx = [FOOT_LANDMARKS[k] for k in range(len(FOOT))]
        speed = np.linalg.norm(xy[idx] - prev.data["landmarks_2d"][idx], axis=1)
        torso = np.linalg.norm(xy[11] + xy[12] - xy[23] - xy[24]) / 2
        speed *= p.meta["fps"] / torso
        for k in np.flatnonzero(speed < STILL_SPEED):
            diffs.append(m[FOOT[k], 1] - world[k, 2])
    return np.array(diffs)


FOOT_LANDMARKS = (30, 29, 32, 31)  # MediaPipe: right heel, left heel, right/left foot index


def triangulated_feet(demo: str, camera: int, packets_by_cam: list[list[Packet]]) -> list:
    cams = demo_cameras(demo)
    uv = np.stack([[p.data["landmarks_2d"][MEDIAPIPE_INDEX] for p in ps] for ps in packets_by_cam])
    vis = np.stack([[p.data["visibility"][MEDIAPIPE_INDEX] for p in ps] for ps in packets_by_cam])
    index = {int(k): i for i, k in enumerate(MEDIAPIPE_INDEX)}
    out = []
    for f in range(uv.shape[1]):
        X = triangulate_others(cams, uv, vis, camera, f)
        out.append(None if X is None else X[[index[k] for k in FOOT_LANDMARKS]])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="folder for the detections (.npz)")
    parser.add_argument("--demo", action="append", help="one demo (default: both)")
    parser.add_argument("--body-only", action="store_true", help="level without scene lines")
    args = parser.parse_args()
    base = load_config()
    for demo in args.demo or (TUNING_DEMO, TEST_DEMO):
        packets = [detections(demo, camera, args.cache) for camera in DEMO_CAMERAS]
        for p in (p for video in packets for p in video if args.body_only):
            p.data.pop("scene_image", None)
        cams = demo_cameras(demo)
        print(f"{demo}: vertical error (deg): level camera | levelled last frame, mean | "
              "calibrated: still-foot height - triangulated (m), median [p10, p90]")  # fmt: skip
        for c, camera in enumerate(DEMO_CAMERAS):
            up = cams[c].R[:, 2]
            level = angle_deg(np.array([0.0, -1.0, 0.0]), up)
            last, mean = vertical_errors(run_markers(packets[c], base), up)
            calibrated = with_overrides(base, {"camera.calibration": str(demo_calibration(demo)),
                                               "camera.camera": camera})  # fmt: skip
            posed = run_markers(packets[c], calibrated)
            d = still_foot_heights(posed, triangulated_feet(demo, c, packets))
            p10, p50, p90 = np.percentile(d, [10, 50, 90]) if len(d) else (np.nan,) * 3
            print(
                f"  {camera}: {level:5.1f} | {last:5.1f} {mean:5.1f} | "
                f"{p50:+.3f} [{p10:+.3f}, {p90:+.3f}] ({len(d)} foot-frames)"
            )


if __name__ == "__main__":
    main()
