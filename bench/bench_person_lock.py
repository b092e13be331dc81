"""Person lock: hip-centre jumps, head and hips of different people, and cost; lock off vs on.

Pose2Sim's Demo_SinglePerson and Demo_MultiPerson (4 calibrated cameras each) run through
the whole offline pipeline twice, with ``[detect] person_lock`` off and on. Per camera:

- ``jumps``: consecutive frames, both with a person, whose ``Hip`` marker moves > 0.2 m;
- ``mixed``: frames where the nose and the hip centre belong to different people. The
  reference is the person triangulated from the *other* cameras (the largest set of them
  that agrees, the best-agreeing one among sets of the same size), reprojected into this
  one: nose and
  hip centre each either lie within ``NEAR`` torso scales of it or not; mixed = one does,
  the other does not. ``checked`` counts the frames with a reference and a detection;
- the lock states of the frames, and detection's mean ms per frame (and in the frames
  where someone else was dropped: they pay for the re-detection).

Then the lock's own bookkeeping per frame (``Body.of`` + ``matches`` + ``accept``) is timed
alone: the price every frame pays; a re-detection costs a MediaPipe detection, paid only
in frames where someone other than the locked person was found.

    uv run python -m bench.bench_person_lock
"""

from __future__ import annotations

import collections
import copy
import itertools
import time
from pathlib import Path

import numpy as np

from core.demo_data import DEMO_CAMERAS, demo_video
from core.marker_sets import MARKERS_21
from models.training.multiview import Camera, demo_cameras, triangulate
from stages.capture import VideoSource
from stages.person_lock import HIPS, SHOULDERS, Body, LockSettings, PersonLock
from stream.config import load_config
from stream.native_stderr import filter_native_chatter
from stream.pipeline import build_stages, run_inline

DEMOS = ("Demo_SinglePerson", "Demo_MultiPerson")
JUMP_M = 0.2
NEAR = 0.35  # torso scales: a landmark this close to the reference belongs to it
AGREE = 0.05  # bounding-box diagonals: views this close to the triangulation agree
KEY = [0, *SHOULDERS, *HIPS]  # the landmarks triangulated for the reference
HIP = MARKERS_21.index("Hip")


def run_video(stages: list, video: Path) -> dict[str, np.ndarray]:
    """Per frame: 2D landmarks, visibility, Hip marker, lock state and detection ms."""
    rows: dict[str, list] = collections.defaultdict(list)
    source = VideoSource(video, realtime=False)
    for packet in source:
        packet = run_inline(stages, packet)
        rows["xy"].append(packet.data["landmarks_2d"])
        rows["vis"].append(packet.data["visibility"])
        rows["hip"].append(packet.data["markers_21"][HIP])
        rows["state"].append(packet.meta.get("person_lock", "-"))
        rows["detect_ms"].append(packet.stage_ms()["detect"])
    source.close()
    for stage in stages:
        stage.reset(source.source_id)
    return {k: np.array(v) for k, v in rows.items()}


def hip_jumps(hip: np.ndarray) -> int:
    step = np.linalg.norm(np.diff(hip, axis=0), axis=1)
    return int(np.sum(step > JUMP_M))  # NaN (no person in either frame) compares False


def reference(cams: list[Camera], uv: np.ndarray, target: int, f: int) -> np.ndarray | None:
    """(5, 3) nose, shoulders and hips of frame ``f`` from the cameras other than ``target``.

    The largest set of views on which each of these points reprojects within ``AGREE``
    bounding-box diagonals (the best-agreeing set among those of the same size): a view
    with the head of one person and the hips of another cannot agree with a clean one.
    """
    others = [c for c in range(len(cams)) if c != target and np.isfinite(uv[c, f]).all()]
    for k in range(len(others), 1, -1):
        best, best_err = None, AGREE
        for subset in itertools.combinations(others, k):
            X = triangulate([cams[c] for c in subset], [uv[c, f, KEY] for c in subset])
            err = max(
                np.linalg.norm(cams[c].project(X) - uv[c, f, KEY], axis=-1).max()
                / np.linalg.norm(np.ptp(uv[c, f], axis=0))
                for c in subset
            )
            if err < best_err:
                best, best_err = X, err
        if best is not None:
            return best
    return None


def mixed_frames(demo: str, runs: list[dict[str, np.ndarray]]) -> list[tuple[int, int]]:
    """(mixed, checked) per camera against the person triangulated from the others."""
    cams = demo_cameras(demo)
    uv = np.stack([r["xy"] for r in runs])
    vis = np.stack([r["vis"] for r in runs])
    out = []
    for c in range(len(cams)):
        mixed = checked = 0
        for f in range(uv.shape[1]):
            body = Body.of(uv[c, f], vis[c, f])
            X = reference(cams, uv, c, f) if body is not None else None
            if X is None:
                continue
            ref = cams[c].project(X)
            nose_near = np.linalg.norm(uv[c, f, 0] - ref[0]) < NEAR * body.scale
            hip_ref = ref[3:].mean(axis=0)
            hip_near = np.linalg.norm(body.hip - hip_ref) < NEAR * body.scale
            mixed += bool(nose_near != hip_near)
            checked += 1
        out.append((mixed, checked))
    return out


def lock_cost_us(runs: list[dict[str, np.ndarray]]) -> float:
    """Microseconds per frame of the lock's bookkeeping on real detections."""
    frames = [(xy, v) for r in runs for xy, v in zip(r["xy"], r["vis"], strict=True)]
    frames = [(xy, v) for xy, v in frames if np.isfinite(xy).all()]
    lock = PersonLock(LockSettings.from_config(load_config()["detect"]))
    start = time.perf_counter()
    for i, (xy, v) in enumerate(frames):
        body = Body.of(xy, v)
        if not lock.matches(body):
            lock.restart(body, i / 60)
        else:
            lock.accept(body, i / 60)
    return 1e6 * (time.perf_counter() - start) / len(frames)


def main() -> None:
    filter_native_chatter()  # MediaPipe's native log lines, as in run_offline.py
    base = load_config()
    every: list[dict[str, np.ndarray]] = []
    for lock in (False, True):
        config = copy.deepcopy(base)
        config["detect"]["person_lock"] = lock
        stages = build_stages(config)
        print(f"person_lock = {str(lock).lower()}")
        for demo in DEMOS:
            runs = [run_video(stages, demo_video(cam, demo)) for cam in DEMO_CAMERAS]
            every += runs
            mixed = mixed_frames(demo, runs)
            for cam, run, (n_mixed, checked) in zip(DEMO_CAMERAS, runs, mixed, strict=True):
                states = dict(collections.Counter(run["state"]))
                rejected = run["detect_ms"][run["state"] == "rejected"]
                extra = f" ({rejected.mean():.1f} ms in rejected frames)" if rejected.size else ""
                print(
                    f"  {demo} {cam}: jumps > {JUMP_M} m {hip_jumps(run['hip'])}, "
                    f"mixed {n_mixed}/{checked}, person {np.isfinite(run['hip']).all(1).sum()}"
                    f"/{len(run['hip'])}, detect {run['detect_ms'].mean():.1f} ms{extra}, {states}"
                )
        for stage in stages:
            stage.close()
    print(f"lock bookkeeping: {lock_cost_us(every):.1f} us per frame")


if __name__ == "__main__":
    main()
