"""Evaluate an exported POF model: held-out mocap subjects and real multi-camera video.

``uv run python -m models.training.evaluate MODEL.onnx [--demo Demo_MultiPerson]
[--against CURRENT.onnx]``

1. Held-out mocap (validation subjects, fixed random cameras, MediaPipe-like noise): mean,
   median and per-limb orientation error against the naive baseline (2D direction, zero
   depth); the depth-sign head's accuracy next to that of the orientations' own depth sign,
   and the error after the head's correction (a limb's depth flipped where the head
   confidently disagrees, as the pipeline does); the root-relative joint error (MPJPE, and
   PA-MPJPE after a similarity alignment) after the least-squares solve with the true bone
   lengths; and, by the true 3-point knee and elbow angle, the mean signed error of the
   angle between the network's two limb directions (``flexion_bias_by_true_deg``): where 2D
   leaves depth open, a network pulls joints toward the angles it was trained on most.
2. Real video (a Pose2Sim demo): MediaPipe on each camera; the reference is the joints
   triangulated from the other cameras (models/training/measure_noise.py), turned into that
   camera's frame. Compared: MediaPipe's own world landmarks, the POF model, naive.
   Demo_MultiPerson is for tuning; Demo_SinglePerson is a test set: report it, never tune.

``--against`` evaluates further models the same way (e.g. the shipped one), side by side.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from core.demo_data import demo_video
from models.features import N_FEATURES
from models.lifter import lift_frame
from models.pof_onnx import PofOnnx, frame_step_for
from models.pof_solver import bone_lengths, correct_z_sign, solve
from models.skeleton import HIPS, LIMB_NAMES, limb_vectors, unit
from models.training.accuracy import FLEXIONS
from models.training.corruption import NoiseModel
from models.training.mocap import load_clips, split
from models.training.multiview import demo_cameras, detections, reference_in_camera
from models.training.pairs import PairGenerator


def angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between unit vectors along the last axis, degrees."""
    return np.degrees(np.arccos(np.clip((a * b).sum(-1), -1, 1)))


def naive_pof(uv: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Each limb's 2D direction on the normalized image plane, zero depth."""
    ray = (uv - K[..., None, :2, 2]) / np.stack([K[..., 0, 0], K[..., 1, 1]], -1)[..., None, :]
    d = limb_vectors(np.concatenate([ray, np.zeros_like(ray[..., :1])], -1))
    return unit(d)


def run_batch(session: ort.InferenceSession, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(B, T, L, F) -> orientations (B, T, L, 3) and P(depth > 0), carrying the prior."""
    b, t, n, _ = feats.shape
    prior = np.zeros((b, n, 4), np.float32)
    names = {i.name for i in session.get_inputs()}
    pofs, probs = [], []
    for k in range(t):
        feed = {"features": feats[:, k], "prior": prior}
        pof, z = session.run(None, {key: v for key, v in feed.items() if key in names})
        prior = np.concatenate([pof, np.ones((b, n, 1), np.float32)], -1)
        pofs.append(pof)
        probs.append(1 / (1 + np.exp(-z)))
    return np.stack(pofs, 1), np.stack(probs, 1)


def procrustes_aligned(X: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """``X`` after the similarity transform that best maps it onto ``truth`` (PA-MPJPE)."""
    a, b = X - X.mean(0), truth - truth.mean(0)
    u, sv, vt = np.linalg.svd(a.T @ b)
    d = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, d])
    R = u @ fix @ vt
    scale = (sv * np.diag(fix)).sum() / (a**2).sum()
    return scale * a @ R + truth.mean(0)


# 3-point angles (models/training/accuracy.py's FLEXIONS) from two limb directions: 180 deg
# minus the angle between proximal and distal limb. Not the hip: its trunk side is no limb
# of the network pointing away from the hip.
DIRECTION_FLEXIONS = ("knee", "elbow")
TRUE_ANGLE_EDGES = (60, 90, 120, 150, 165, 181)  # degrees: the bins of the bias breakdown


def direction_flexion(pof: np.ndarray, name: str) -> np.ndarray:
    """(..., L, 3) unit limb directions -> (..., 2) 3-point angle of ``name``, left then
    right, degrees."""
    a, b, c = FLEXIONS[name]
    sides = []
    for s in "LR":
        proximal, distal = LIMB_NAMES.index((s + a, s + b)), LIMB_NAMES.index((s + b, s + c))
        sides.append(180 - angle_deg(pof[..., proximal, :], pof[..., distal, :]))
    return np.stack(sides, -1)


def flexion_bias(pof: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, list]]:
    """Per flexion and true-angle bin: mean signed error (deg) and how many angles."""
    out: dict[str, dict[str, list]] = {}
    for name in DIRECTION_FLEXIONS:
        got, want = direction_flexion(pof, name).ravel(), direction_flexion(truth, name).ravel()
        out[name] = {}
        for lo, hi in zip(TRUE_ANGLE_EDGES[:-1], TRUE_ANGLE_EDGES[1:], strict=True):
            m = (want >= lo) & (want < hi)
            if m.any():
                out[name][f"{lo}-{min(hi, 180)}"] = [round(float(np.mean(got[m] - want[m])), 1),
                                                     int(m.sum())]  # fmt: skip
    return out


def held_out(model: Path, batches: int, seq_len: int) -> dict:
    """Orientation and joint errors on the validation subjects (frames after the history)."""
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    window = int(session.get_inputs()[0].shape[-1]) // N_FEATURES
    gen = PairGenerator(split(load_clips())[1], seq_len, NoiseModel(), False, 999, window)
    err, err_z, naive, sign, pof_sign, mpjpe, mpjpe_z, pa = [], [], [], [], [], [], [], []
    outputs, targets = [], []
    for _ in range(batches):
        b = gen.sample(128)
        pof, prob = run_batch(session, b.features)
        h = b.history
        truth_pof = b.pof[:, h:]
        outputs.append(pof[:, h:].astype(np.float64))
        targets.append(truth_pof.astype(np.float64))
        err.append(angle_deg(pof[:, h:], truth_pof))
        fixed = correct_z_sign(pof[:, h:].reshape(-1, 3), prob[:, h:].reshape(-1))
        err_z.append(angle_deg(fixed.reshape(truth_pof.shape), truth_pof))
        naive.append(angle_deg(naive_pof(b.uv[:, h:], b.K[:, None]), truth_pof))
        sign.append((prob[:, h:] > 0.5) == (truth_pof[..., 2] > 0))
        pof_sign.append((pof[:, h:, :, 2] > 0) == (truth_pof[..., 2] > 0))
        lengths = np.linalg.norm(limb_vectors(b.joints_cam), axis=-1)
        for i in range(len(pof)):
            for t in range(h, h + seq_len, 4):
                vis = b.vis[i, t] >= 0.3
                truth = b.joints_cam[i, t] - b.joints_cam[i, t, HIPS].mean(0)
                for out, p in (
                    (mpjpe, pof[i, t]),
                    (mpjpe_z, correct_z_sign(pof[i, t], prob[i, t])),
                ):
                    X = solve(b.uv[i, t], vis, b.K[i], p.astype(np.float64), lengths[i, t])
                    X -= X[HIPS].mean(0)
                    out.append(np.linalg.norm(X - truth, axis=-1).mean())
                pa.append(np.linalg.norm(procrustes_aligned(X, truth) - truth, axis=-1).mean())
    err_all = np.concatenate(err)
    per_limb = err_all.reshape(-1, len(LIMB_NAMES)).mean(0)
    return {
        "limb_deg": float(err_all.mean()), "limb_deg_median": float(np.median(err_all)),
        "limb_deg_zfix": float(np.mean(np.concatenate(err_z))),
        "zsign_acc": float(np.mean(np.concatenate(sign))),
        "zsign_acc_pof": float(np.mean(np.concatenate(pof_sign))),
        "naive_limb_deg": float(np.mean(naive)),
        "mpjpe_mm": 1000 * float(np.mean(mpjpe)), "mpjpe_zfix_mm": 1000 * float(np.mean(mpjpe_z)),
        "pa_mpjpe_mm": 1000 * float(np.mean(pa)),
        "per_limb_deg": {f"{a}-{b}": round(float(v), 1)
                         for (a, b), v in zip(LIMB_NAMES, per_limb, strict=True)},
        "flexion_bias_by_true_deg": flexion_bias(np.concatenate(outputs), np.concatenate(targets)),
    }  # fmt: skip


def demo_fps(demo: str) -> float:
    """Frame rate of a Pose2Sim demo's videos (all cameras share it)."""
    video = demo_video("cam01", demo)
    return float(cv2.VideoCapture(str(video)).get(cv2.CAP_PROP_FPS))


SOURCES = ("mediapipe_deg", "naive_deg", "pof_deg", "pof_solved_deg", "pipeline_deg")


def real_video_errors(
    model: Path, demo: str, cache: Path | None, height: float = 1.70, fused: bool = True
) -> dict[str, dict[str, list]]:
    """Per camera and source, (L,) angular errors per usable frame against triangulation.

    Sources: MediaPipe's world landmarks, the naive baseline, the network (after the
    depth-sign fix), the network through the solve, and the pipeline's output (with the
    model's fusion weights when ``fused`` and the model has them).
    """
    det = detections(demo, cache)
    cams = demo_cameras(demo)
    bones = bone_lengths(height)
    step = frame_step_for(demo_fps(demo))
    per_cam: dict[str, dict[str, list]] = {}
    for c, cam in enumerate(cams):
        errs = per_cam.setdefault(f"cam{c + 1:02d}", {k: [] for k in SOURCES})
        net, plain = PofOnnx(model, frame_step=step), PofOnnx(model, frame_step=step)
        plain.pof_weight = None
        if not fused:
            net.pof_weight = None
        for f in range(det["uv"].shape[1]):
            uv, vis, world = det["uv"][c, f], det["vis"][c, f], det["world"][c, f]
            if np.isnan(uv).any():
                net.reset()
                plain.reset()
                continue
            out = lift_frame(net, uv, vis, cam.K, world, bones)
            unfused = lift_frame(plain, uv, vis, cam.K, world, bones)
            reference = reference_in_camera(cams, det, c, f)
            if reference is None:
                continue
            truth = unit(limb_vectors(reference))
            errs["mediapipe_deg"].append(angle_deg(unit(limb_vectors(world)), truth))
            errs["naive_deg"].append(angle_deg(naive_pof(uv, cam.K), truth))
            errs["pof_deg"].append(angle_deg(out.network, truth))
            errs["pof_solved_deg"].append(angle_deg(unit(limb_vectors(unfused.joints)), truth))
            errs["pipeline_deg"].append(angle_deg(unit(limb_vectors(out.joints)), truth))
    return per_cam


def real_video(model: Path, demo: str, cache: Path | None, height: float) -> dict:
    """Mean limb-orientation errors on a calibrated demo: overall, per camera, per limb."""
    per_cam = real_video_errors(model, demo, cache, height)
    every = {k: np.concatenate([np.array(e[k]) for e in per_cam.values() if e[k]]) for k in SOURCES}
    out: dict = {k: round(float(v.mean()), 2) for k, v in every.items()}
    out["frames"] = len(every["pof_deg"])
    out["per_camera"] = {
        cam: {"frames": len(e["pof_deg"]),
              **{k: round(float(np.mean(e[k])), 2) for k in SOURCES if e[k]}}
        for cam, e in per_cam.items()
    }  # fmt: skip
    mp, pipe = every["mediapipe_deg"].mean(0), every["pipeline_deg"].mean(0)
    out["per_limb_mediapipe_pipeline"] = {
        f"{a}-{b}": (round(float(m), 1), round(float(p), 1))
        for (a, b), m, p in zip(LIMB_NAMES, mp, pipe, strict=True)
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--demo", default="Demo_MultiPerson")
    ap.add_argument("--cache", type=Path, default=None, help="MediaPipe detections (.npz)")
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=8)
    ap.add_argument("--height", type=float, default=1.70, help="demo subject height (m)")
    ap.add_argument(
        "--against",
        type=Path,
        nargs="*",
        default=[],
        help="further models to evaluate the same way (e.g. the shipped one)",
    )
    ap.add_argument("--held-out-only", action="store_true", help="skip the real video")
    args = ap.parse_args()
    models = [args.model, *args.against]
    for model in models:
        if not model.is_file():
            raise SystemExit(f"error: no model at {model}; pass an exported .onnx file")
    results = {}
    for model in models:  # keyed by path, in the order given
        results[str(model)] = {"held_out": held_out(model, args.batches, args.seq_len)}
        if not args.held_out_only:
            results[str(model)][args.demo] = real_video(model, args.demo, args.cache, args.height)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
