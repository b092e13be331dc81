"""Accuracy of the real pipeline on a calibrated Pose2Sim demo: the one source of the
figures that README.md and models/MODEL_CARD.md quote.

``uv run python -m models.training.measure_accuracy --demo Demo_MultiPerson|Demo_SinglePerson
[--variants mediapipe lifter ...] [--out results.json] [--markdown table.md] [--cache DIR]``

Each camera's video runs through the stages of ``config.toml`` inline, as ``run_offline.py``
does, once per variant (``VARIANTS``: config overrides). Detection (the pipeline's own
detect stage: MediaPipe and the person lock) is the expensive stage, so it runs once per
video and fresh copies of its packets feed the later stages of every variant; ``--cache``
keeps those packets and the reference's detections between runs. The output measured is
each packet's ``markers_21`` (lab frame). The reference is each frame triangulated from the
OTHER three cameras (models/training/multiview.py); frames where the camera under test
follows the other person of Demo_MultiPerson (``SAME_PERSON``) are skipped. Figures
(models/training/accuracy.py), per camera and as the mean of the cameras: limb-orientation
error (14 COCO limbs, after one rotation per clip), 3-point flexion RMSE of knee, hip and
elbow, vertical error, share of left/right-swapped frames; each with a 95% moving-block
bootstrap interval over frames (``--block`` frames per block, ``--resamples``, fixed seed).
Per camera the JSON also holds each flexion's median, output and reference, and its mean
signed error, left and right (``flexion_deg``): whether an RMSE is a bias, and which way.
``--reference-2d`` is a diagnosis, not a figure of the pipeline: each measured frame's 2D
keypoints are replaced by its reference's reprojection before the later stages run, so what
error remains is not MediaPipe's 2D.

Demo_MultiPerson is for tuning; Demo_SinglePerson is the test set: report it, never tune.
"""

from __future__ import annotations

import copy
import hashlib
import json
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.demo_data import DEMO_CAMERAS, TEST_DEMO, TUNING_DEMO, demo_calibration, demo_video
from core.marker_sets import indices
from core.packet import Packet
from models.skeleton import JOINTS, LIMB_NAMES, MEDIAPIPE_INDEX, J, unit
from models.training.accuracy import (
    FLEXIONS,
    LIMB_GROUPS,
    Clip,
    angle_deg,
    bootstrap,
    flexion,
    kabsch,
    limb_errors,
)
from models.training.multiview import (
    SAME_PERSON,
    Camera,
    demo_cameras,
    detections,
    triangulate_others,
    unlabelled_residual,
)
from stages.capture import VideoSource
from stream.cli import OneLineParser
from stream.config import ConfigError, load_config, with_overrides
from stream.config_schema import validate
from stream.native_stderr import filter_native_chatter
from stream.pipeline import build_stages, load_stage_class, run_inline

# The variants measured, in order: name -> config overrides ("section.key": value) applied
# to config.toml. Each component of issue #13 is added to the previous variant in turn
# (swap repair, levelling, fit, fit + prior) as its keys land; every variant names the
# state of every component it depends on, so a changed default in config.toml never
# changes what a variant means. A key the schema does not know stops the run.
# Levelling: a level camera assumed (pitch = roll = 0), or the vertical estimated ("").
_LEVEL = {"camera.pitch": 0.0, "camera.roll": 0.0}
_ESTIMATED = {"camera.pitch": "", "camera.roll": ""}
_POF, _SWAP = {"lift.method": "pof"}, {"swap_repair.enabled": True}
_NO_FIT = {"fit.enabled": False}
VARIANTS: dict[str, dict[str, Any]] = {
    # MediaPipe's world landmarks through the same marker stage
    "mediapipe": {"lift.method": "mediapipe", "swap_repair.enabled": False, **_LEVEL, **_NO_FIT},
    "lifter": {**_POF, "swap_repair.enabled": False, **_LEVEL, **_NO_FIT},  # the lift alone
    "swap_repair": {**_POF, **_SWAP, **_LEVEL, **_NO_FIT},
    "levelling": {**_POF, **_SWAP, **_ESTIMATED, **_NO_FIT},
    "fit": {**_POF, **_SWAP, **_ESTIMATED, "fit.enabled": True, "fit.prior": False},
    "fit_prior": {**_POF, **_SWAP, **_ESTIMATED, "fit.enabled": True, "fit.prior": True},
}

WORLD_UP = np.array([0.0, 0.0, 1.0])  # the demos' Qualisys world is Z up (checked per run)
# Bootstrap blocks: errors stay correlated over many frames (a swap, a bent pose), so frames
# are drawn in runs. 10 frames = 1/6 s at the demos' 60 fps: on Demo_MultiPerson the limb
# error's interval widens 2.8x from single frames to 10-frame blocks and only 1.1x more to
# 25 (the elbow's 2.2x, then 1.2x); longer blocks leave too few per 100-frame clip.
BLOCK_FRAMES = 10
RESAMPLES = 1000
SEED = 0
OUTPUT_JOINTS = indices(JOINTS)  # rows of markers_21 in models.skeleton.JOINTS order


class MeasureError(RuntimeError):
    """A run cannot be measured; the message says why and what to do."""


def variant_configs(
    names: Sequence[str], base: Mapping[str, Any] | None = None
) -> dict[str, dict[str, Any]]:
    """The validated config of each named variant (``base`` overrides apply to all)."""
    configs = {}
    for name in names:
        if name not in VARIANTS:
            raise MeasureError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}")
        config = with_overrides(load_config(), {**(base or {}), **VARIANTS[name]})
        try:
            validate(config, f"variant {name!r} of measure_accuracy.VARIANTS")
        except ConfigError as exc:
            raise MeasureError(str(exc)) from None
        configs[name] = config
    return configs


def split_stages(config: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``[pipeline] stages`` cut after the detect stage: (detection, everything after)."""
    specs = list(config["pipeline"]["stages"])
    names = [load_stage_class(spec).name for spec in specs]
    if "detect" not in names:
        raise MeasureError("[pipeline] stages has no detect stage: nothing to measure")
    cut = names.index("detect") + 1
    return specs[:cut], specs[cut:]


def with_stages(config: Mapping[str, Any], specs: list[str]) -> dict[str, Any]:
    """``config`` running only ``specs``."""
    out = copy.deepcopy(dict(config))
    out["pipeline"]["stages"] = specs
    return out


def run_stages(config: Mapping[str, Any], packets: Iterable[Packet]) -> list[Packet]:
    """The packets that come out of the config's stages, fed ``packets`` one by one."""
    stages = build_stages(config)
    out = []
    try:
        for packet in packets:
            result = run_inline(stages, packet)
            if result is not None:
                out.append(result)
    finally:
        for stage in stages:
            stage.close()
    return out


def detect_key(config: Mapping[str, Any], video: Path) -> str:
    """What decides the detected packets: the video, the stages up to detection and the
    sections they read (detect, camera)."""
    import mediapipe

    facts = [str(video), mediapipe.__version__, split_stages(config)[0],
             config["detect"], config["camera"]]  # fmt: skip
    return hashlib.sha1(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:12]


def detected_packets(config: Mapping[str, Any], video: Path, cache: Path | None) -> list[Packet]:
    """The packets leaving the detect stage for ``video`` (from ``cache`` when there)."""
    name = f"detect_{video.parent.parent.name}_{video.stem}_{detect_key(config, video)}.npz"
    path = cache / name if cache else None
    if path and path.exists():
        return load_packets(path)
    source = VideoSource(video, source_id=video.stem)
    try:
        packets = run_stages(with_stages(config, split_stages(config)[0]), source)
    finally:
        source.close()
    if path:
        save_packets(path, packets)
    return packets


def save_packets(path: Path, packets: list[Packet]) -> None:
    """Packets -> one .npz (each packet's arrays under its own keys: some, like the scene
    lines of the levelling frames, exist in a few packets only), written whole or not at all."""
    arrays = {f"{i}/{k}": v for i, p in enumerate(packets) for k, v in p.data.items()}
    head = [[p.source_id, p.frame_index, p.media_time_s, list(p.image_size), p.meta]
            for p in packets]  # fmt: skip
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, head=np.array(json.dumps(head)), **arrays)
    tmp.replace(path)


def load_packets(path: Path) -> list[Packet]:
    """The packets ``save_packets`` wrote."""
    with np.load(path) as f:
        head = json.loads(str(f["head"]))
        data: list[dict[str, np.ndarray]] = [{} for _ in head]
        for name in f.files:
            if name != "head":
                i, key = name.split("/", 1)
                data[int(i)][key] = f[name]
    return [
        Packet(sid, index, 0, t, tuple(size), None, data[i], meta)
        for i, (sid, index, t, size, meta) in enumerate(head)
    ]


def camera_overrides(camera: str, calibrated: bool, demo: str) -> dict[str, Any]:
    """The demo's calibration intrinsics for ``camera`` (``--calibrated``), else none."""
    if not calibrated:
        return {}
    return {"camera.calibration": str(demo_calibration(demo)), "camera.camera": camera}


def reference(
    cams: list[Camera], det: Mapping[str, np.ndarray], c: int, packets: list[Packet]
) -> tuple[list[int], np.ndarray, dict[str, int]]:
    """Frames of camera ``c`` to measure, their triangulated joints (world) and the counts
    of frames skipped and why."""
    frames, truth = [], []
    skipped = {"no_person": 0, "no_reference": 0, "other_person": 0}
    for packet in packets:
        f = packet.frame_index
        if not packet.meta.get("person", False):
            skipped["no_person"] += 1
            continue
        X = triangulate_others(cams, det["uv"], det["vis"], c, f, relabel=True)
        if X is None:
            skipped["no_reference"] += 1
            continue
        uv = packet.data["landmarks_2d"][MEDIAPIPE_INDEX]
        if unlabelled_residual(cams[c], X, uv) > SAME_PERSON:  # a swapped view still counts
            skipped["other_person"] += 1  # this camera tracks the other person
            continue
        frames.append(f)
        truth.append(X)
    return frames, np.array(truth).reshape(-1, len(JOINTS), 3), skipped


def replace_2d_by_reference(
    cams: list[Camera], det: Mapping[str, np.ndarray], c: int, packets: list[Packet]
) -> None:
    """Camera ``c``'s 2D keypoints, in every frame it is measured on, become the reprojection
    of that frame's reference (lens distortion included, as MediaPipe sees the image)."""
    frames, truth, _ = reference(cams, det, c, packets)
    by_frame = {p.frame_index: p for p in packets}
    for f, X in zip(frames, truth, strict=True):
        landmarks = by_frame[f].data["landmarks_2d"].copy()
        landmarks[MEDIAPIPE_INDEX] = cams[c].project(X)
        by_frame[f].data["landmarks_2d"] = landmarks


def check_world_up(truth: np.ndarray) -> None:
    """Refuse a reference whose head is not above its ankles along ``WORLD_UP``."""
    ankles = 0.5 * (truth[:, J["LAnkle"]] + truth[:, J["RAnkle"]])
    along = np.median(unit(truth[:, J["Nose"]] - ankles) @ WORLD_UP)
    if not along > 0.7:
        raise MeasureError(
            f"the reference's head is not above its ankles along WORLD_UP {WORLD_UP} "
            f"(median cosine {along:.2f}): check the calibration's up axis"
        )


def camera_tilt_deg(cam: Camera) -> float:
    """Angle between the camera's image-up axis and the world's up: the vertical error of
    an output that takes the camera as level."""
    return float(angle_deg(cam.R.T @ np.array([0.0, -1.0, 0.0]), WORLD_UP))


def frame_runs(frames: list[int]) -> str:
    """'3-7, 12' for frames [3, 4, 5, 6, 7, 12]."""
    runs: list[list[int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1][1] = f
        else:
            runs.append([f, f])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)


def measure(
    demo: str,
    variants: Sequence[str],
    cache: Path | None,
    calibrated: bool = False,
    block: int = BLOCK_FRAMES,
    resamples: int = RESAMPLES,
    seed: int = SEED,
    reference_2d: bool = False,
) -> dict[str, Any]:
    """Every figure of every variant on every camera of ``demo`` (the JSON of ``main``)."""
    start = time.perf_counter()
    cams = demo_cameras(demo)
    det = detections(demo, cache / f"multiview_{demo}.npz" if cache else None)
    result: dict[str, Any] = {
        "demo": demo,
        "variants": {},
        "overrides": {name: VARIANTS[name] for name in variants},
        "calibrated": calibrated,
        "reference_2d": reference_2d,
        "bootstrap": {"block_frames": block, "resamples": resamples, "seed": seed,
                      "interval": "2.5-97.5 percentiles, cameras resampled independently"},
        "world_up": WORLD_UP.tolist(),
        "camera_tilt_deg": {cam: round(camera_tilt_deg(c), 2)
                            for cam, c in zip(DEMO_CAMERAS, cams, strict=True)},
        "seconds": {},
    }  # fmt: skip
    detected: dict[tuple[str, str], list[Packet]] = {}
    per_variant: dict[str, dict[str, Any]] = {}
    for name in variants:
        t0 = time.perf_counter()
        clips: dict[str, Clip] = {}
        info: dict[str, Any] = {
            "frames": {},
            "swap_frames": {},
            "meta_flags": {},
            "per_limb_deg": {},
            "flexion_deg": {},
        }
        for c, camera in enumerate(DEMO_CAMERAS):
            config = variant_configs([name], camera_overrides(camera, calibrated, demo))[name]
            video = demo_video(camera, demo)
            key = (camera, detect_key(config, video))
            if key not in detected:
                t1 = time.perf_counter()
                detected[key] = detected_packets(config, video, cache)
                result["seconds"][f"detect {camera}"] = round(time.perf_counter() - t1, 1)
            packets = copy.deepcopy(detected[key])
            if reference_2d:
                replace_2d_by_reference(cams, det, c, packets)
            packets = run_stages(with_stages(config, split_stages(config)[1]), packets)
            clip = camera_clip(cams, det, c, packets, info)
            if clip is not None:
                clips[camera] = clip
        info["figures"] = bootstrap(clips, block, resamples, seed)
        per_variant[name] = info
        result["seconds"][name] = round(time.perf_counter() - t0, 1)
        print(f"{demo} {name}: {summary_line(info['figures'].get('overall', {}))}", file=sys.stderr)
    result["variants"] = per_variant
    result["seconds"]["total"] = round(time.perf_counter() - start, 1)
    return result


def camera_clip(
    cams: list[Camera],
    det: Mapping[str, np.ndarray],
    c: int,
    packets: list[Packet],
    info: dict[str, Any],
) -> Clip | None:
    """Camera ``c``'s output packets against the reference, as a ``Clip`` (None: no frame
    to measure); its frame counts, flags, swapped frames and per-limb errors go to ``info``."""
    camera = DEMO_CAMERAS[c]
    frames, truth, skipped = reference(cams, det, c, packets)
    info["frames"][camera] = {"measured": len(frames), **skipped}
    info["meta_flags"][camera] = meta_flags(packets)
    if not frames:
        return None
    check_world_up(truth)
    by_frame = {p.frame_index: p for p in packets}
    out = np.array([by_frame[f].data["markers_21"][OUTPUT_JOINTS] for f in frames])
    # The lab's Y axis in the camera frame is row 1 of the camera -> lab rotation.
    up_camera = np.array([by_frame[f].data["camera_to_lab"][1, :3] for f in frames])
    clip = Clip.of(out, truth, WORLD_UP, up_camera @ cams[c].R)
    info["swap_frames"][camera] = {
        part: [f for f, s in zip(frames, clip.swaps[part], strict=True) if s]
        for part in LIMB_GROUPS
    }
    info["per_limb_deg"][camera] = per_limb(clip)
    info["flexion_deg"][camera] = flexion_sides(out, truth)
    return clip


def meta_flags(packets: list[Packet]) -> dict[str, int]:
    """How many packets carry each boolean meta flag as true (e.g. a repaired swap)."""
    counts: dict[str, int] = {}
    for p in packets:
        for k, v in p.meta.items():
            if isinstance(v, bool):
                counts[k] = counts.get(k, 0) + int(v)
    return counts


def per_limb(clip: Clip) -> dict[str, float]:
    """Mean error of each COCO limb after the clip rotation, degrees."""
    errors = limb_errors(clip.out_units, clip.true_units, kabsch(clip.out_units, clip.true_units))
    return {f"{a}-{b}": round(float(e), 1)
            for (a, b), e in zip(LIMB_NAMES[:14], np.nanmean(errors, 0), strict=True)}  # fmt: skip


def flexion_sides(out: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, list[float]]]:
    """Per 3-point flexion, left and right: the output's and the reference's median angle and
    the mean signed difference (output - reference), degrees. An RMSE alone cannot tell a
    bias from noise, nor a joint pulled toward common angles from one that is offset."""
    out_flex = {name: flexion(out, name) for name in FLEXIONS}
    true_flex = {name: flexion(truth, name) for name in FLEXIONS}

    def rounded(x: np.ndarray) -> list[float]:
        return [round(float(v), 1) for v in x]

    return {name: {"output_median": rounded(np.nanmedian(out_flex[name], 0)),
                   "reference_median": rounded(np.nanmedian(true_flex[name], 0)),
                   "bias": rounded(np.nanmean(out_flex[name] - true_flex[name], 0))}
            for name in FLEXIONS}  # fmt: skip


FIGURES = {  # JSON key -> markdown column
    "limb_deg": "limb orientation (deg)",
    "knee_rmse_deg": "knee RMSE (deg)",
    "hip_rmse_deg": "hip RMSE (deg)",
    "elbow_rmse_deg": "elbow RMSE (deg)",
    "vertical_deg": "vertical (deg)",
    "swap_body_pct": "swapped: whole body (% frames)",
    "swap_arms_pct": "arms only (%)",
    "swap_legs_pct": "legs only (%)",
}


def cell(figure: Mapping[str, float]) -> str:
    return f"{figure['mean']:.1f} [{figure['lo']:.1f}, {figure['hi']:.1f}]"


def summary_line(figures: Mapping[str, Mapping[str, float]]) -> str:
    return ", ".join(f"{k} {cell(v)}" for k, v in figures.items()) or "no frame measured"


def markdown(result: Mapping[str, Any], command: str) -> str:
    """Tables ready for README.md / models/MODEL_CARD.md: overall, then per camera."""
    boot = result["bootstrap"]
    head = "| variant | " + " | ".join(FIGURES.values()) + " |"
    rule = "|---" * (len(FIGURES) + 1) + "|"
    lines = [
        f"**{result['demo']}**, against the triangulation of the other three cameras; "
        f"mean [95% interval] (moving-block bootstrap over frames, blocks of "
        f"{boot['block_frames']} frames, {boot['resamples']} resamples, seed {boot['seed']}). "
        f"`{command}`",
        *(
            ["", "Diagnosis: the 2D keypoints were replaced by the reference's reprojection."]
            if result.get("reference_2d")
            else []
        ),
        "",
        "Mean of the cameras:",
        "",
        head,
        rule,
    ]
    for name, info in result["variants"].items():
        overall = info["figures"].get("overall")
        if overall:
            lines.append(f"| {name} | " + " | ".join(cell(overall[k]) for k in FIGURES) + " |")
    lines += ["", "Per camera (frames measured; tilt = the camera's angle from level):", "",
              "| variant | camera | " + " | ".join(FIGURES.values()) + " |",
              "|---" * (len(FIGURES) + 2) + "|"]  # fmt: skip
    for name, info in result["variants"].items():
        for camera, figures in info["figures"].items():
            if camera == "overall":
                continue
            n = info["frames"][camera]["measured"]
            tilt = result["camera_tilt_deg"][camera]
            label = f"{camera} ({n} fr., tilt {tilt:.0f})"
            lines.append(
                f"| {name} | {label} | " + " | ".join(cell(figures[k]) for k in FIGURES) + " |"
            )
    first = next(iter(result["variants"].values()), {"frames": {}})  # detection decides them
    skipped = []
    for camera, counts in first["frames"].items():
        why = [f"{n} {k.replace('_', ' ')}" for k, n in counts.items() if k != "measured" and n]
        if why:
            skipped.append(f"{camera} {', '.join(why)}")
    lines += ["", "Frames not measured: " + ("; ".join(skipped) or "none")]
    lines += ["", "Swapped frames (whole body; arms only; legs only):", ""]
    for name, info in result["variants"].items():
        for camera, parts in info["swap_frames"].items():
            listed = "; ".join(f"{p} {frame_runs(f)}" for p, f in parts.items() if f)
            lines.append(f"- {name} {camera}: {listed or 'none'}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", required=True, choices=(TUNING_DEMO, TEST_DEMO))
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), help="default: all, in order")
    ap.add_argument("--out", type=Path, help="write every figure as JSON here")
    ap.add_argument("--markdown", type=Path, help="write the tables as markdown here")
    ap.add_argument("--cache", type=Path, help="folder for detections (never commit it)")
    ap.add_argument(
        "--calibrated",
        action="store_true",
        help="give the pipeline the demo's calibration (default: --fov, as a user would)",
    )
    ap.add_argument(
        "--reference-2d",
        action="store_true",
        help="diagnosis: replace the 2D keypoints by the reference's reprojection",
    )
    ap.add_argument("--block", type=int, default=BLOCK_FRAMES, help="bootstrap block (frames)")
    ap.add_argument("--resamples", type=int, default=RESAMPLES)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--verbose", action="store_true", help="show MediaPipe's native log lines")
    args = ap.parse_args(argv)
    if not args.verbose:
        filter_native_chatter()
    try:
        variant_configs(args.variants)  # fail on a bad variant before any detection
        if args.cache:
            args.cache.mkdir(parents=True, exist_ok=True)
        result = measure(args.demo, args.variants, args.cache, args.calibrated, args.block,
                         args.resamples, args.seed, args.reference_2d)  # fmt: skip
    except (MeasureError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    command = "uv run python -m models.training.measure_accuracy " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    result["command"] = command
    text = json.dumps(result, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    if args.markdown:
        args.markdown.write_text(markdown(result, command))
    if not args.out:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
