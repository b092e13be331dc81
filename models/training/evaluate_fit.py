"""Measure the kinematic fit: the lift alone against the lift + fit, without and with prior.

``uv run python -m models.training.evaluate_fit [--demo Demo_MultiPerson] [--cache F.npz]
[--held-out-batches 2] [--sigma-smooth-deg 20 ...]``

1. Held-out mocap subjects (as models/training/evaluate.held_out: fixed random cameras,
   MediaPipe-like 2D noise; the network's directions after the depth-sign fix, solved with
   the true bone lengths), 30-frame sequences fitted frame by frame.
2. Real video (a Pose2Sim demo, as models/training/evaluate.real_video_errors): the
   pipeline's lift (fused) on each camera, the joints triangulated from the other cameras
   as the reference. Demo_MultiPerson is for tuning; Demo_SinglePerson is a test set.

Per variant: mean limb-orientation error (18 limbs, camera frame, degrees), RMSE of the
3-point flexion angles of knees, hips and elbows (180 minus the angle at the joint, both
sides), and the share of frames whose fitted angles keep every joint range.
"""

from __future__ import annotations

import argparse
import json
import tomllib
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from models.features import N_FEATURES
from models.kinematic_fit import FitWeights, PersonFit
from models.kinematic_model import POSE, bounds, inverse
from models.lifter import lift_frame
from models.pof_onnx import PofOnnx, frame_step_for
from models.pof_solver import bone_lengths, correct_z_sign, solve
from models.pose_prior import PosePrior
from models.skeleton import J, limb_vectors, unit
from models.training.corruption import NoiseModel
from models.training.evaluate import angle_deg, demo_fps, run_batch
from models.training.mocap import load_clips, split
from models.training.multiview import demo_cameras, detections, reference_in_camera
from models.training.pairs import PairGenerator

MODEL = Path(__file__).resolve().parents[1] / "weights" / "pof_mlp_w9.onnx"
CONFIG = Path(__file__).resolve().parents[2] / "config.toml"  # the fit's default weights
# 3-point flexion: (proximal, joint, distal) per side.
FLEXION = {
    "knee": [("RHip", "RKnee", "RAnkle"), ("LHip", "LKnee", "LAnkle")],
    "hip": [("RShoulder", "RHip", "RKnee"), ("LShoulder", "LHip", "LKnee")],
    "elbow": [("RShoulder", "RElbow", "RWrist"), ("LShoulder", "LElbow", "LWrist")],
}
VARIANTS = ("lift", "fit", "fit_prior")


def flexion_deg(X: np.ndarray) -> dict[str, np.ndarray]:
    """(..., J, 3) joints -> per joint group, (..., 2) 3-point flexion angles (deg)."""
    out = {}
    for group, triples in FLEXION.items():
        angles = []
        for a, b, c in triples:
            u, v = unit(X[..., J[a], :] - X[..., J[b], :]), unit(X[..., J[c], :] - X[..., J[b], :])
            angles.append(180 - angle_deg(u, v))
        out[group] = np.stack(angles, -1)
    return out


def in_range(X: np.ndarray) -> bool:
    """Whether the joints' own angles (read back by the inverse kinematics) keep the ranges."""
    lo, hi = bounds()
    pose = inverse(np.ascontiguousarray(X, dtype=np.float64), lo, hi)[0][POSE]
    tol = 1e-6
    return bool(((pose >= lo[POSE] - tol) & (pose <= hi[POSE] + tol)).all())


class Scores:
    """Accumulates, per variant, limb errors, flexion errors and range checks."""

    def __init__(self) -> None:
        self.limb: dict[str, list] = {v: [] for v in VARIANTS}
        self.flex: dict[str, list] = {v: [] for v in VARIANTS}
        self.ok: dict[str, list] = {v: [] for v in VARIANTS}

    def add(self, variant: str, X: np.ndarray, truth: np.ndarray) -> None:
        self.limb[variant].append(angle_deg(unit(limb_vectors(X)), unit(limb_vectors(truth))))
        f, t = flexion_deg(X), flexion_deg(truth)
        self.flex[variant].append(np.stack([f[g] - t[g] for g in FLEXION]))
        self.ok[variant].append(in_range(X))

    def summary(self) -> dict:
        out = {}
        for v in VARIANTS:
            if not self.limb[v]:
                continue
            flex = np.stack(self.flex[v])  # (N, 3 groups, 2 sides)
            rmse = dict(zip(FLEXION, np.sqrt((flex**2).mean((0, 2))), strict=True))
            out[v] = {
                "frames": len(self.limb[v]),
                "limb_deg": round(float(np.mean(self.limb[v])), 2),
                **{f"{g}_flex_rmse_deg": round(float(e), 2) for g, e in rmse.items()},
                "in_range": round(float(np.mean(self.ok[v])), 3),
            }  # fmt: skip
        return out


def fitters(bones: np.ndarray, prior: PosePrior, w: FitWeights) -> dict[str, PersonFit]:
    return {
        "fit": PersonFit(bones, prior, replace(w, prior_weight=0.0)),
        "fit_prior": PersonFit(bones, prior, w),
    }


def held_out(prior: PosePrior, w: FitWeights, batches: int, seq_len: int = 30) -> dict:
    """The variants on the validation subjects' mocap (unfused network directions)."""
    session = ort.InferenceSession(str(MODEL), providers=["CPUExecutionProvider"])
    window = int(session.get_inputs()[0].shape[-1]) // N_FEATURES
    gen = PairGenerator(split(load_clips())[1], seq_len, NoiseModel(), False, 999, window)
    scores = Scores()
    for _ in range(batches):
        b = gen.sample(32)
        pof, prob = run_batch(session, b.features)
        for i in range(len(pof)):
            bones = np.median(np.linalg.norm(limb_vectors(b.joints_cam[i]), axis=-1), 0)
            fits = fitters(bones, prior, w)
            for t in range(b.history, b.history + seq_len):
                dirs = correct_z_sign(pof[i, t].astype(np.float64), prob[i, t])
                vis = b.vis[i, t]
                X = solve(b.uv[i, t], vis >= 0.3, b.K[i], dirs, bones)
                truth = b.joints_cam[i, t]
                scores.add("lift", X, truth)
                conf = np.abs(2 * prob[i, t].astype(np.float64) - 1)
                for name, fit in fits.items():
                    scores.add(name, fit(b.uv[i, t], vis, b.K[i], X, dirs, conf, 0.3), truth)
    return scores.summary()


def real_video(demo: str, cache: Path | None, prior: PosePrior, w: FitWeights,
               height: float = 1.70) -> dict:  # fmt: skip
    """The variants on a calibrated demo against triangulation, overall and per camera."""
    det = detections(demo, cache)
    cams = demo_cameras(demo)
    bones = bone_lengths(height)
    step = frame_step_for(demo_fps(demo))
    total, per_cam = Scores(), {}
    mirrored = 0  # frames where the fit mirrored a forearm or shank (fit_prior)
    for c, cam in enumerate(cams):
        scores = per_cam.setdefault(f"cam{c + 1:02d}", Scores())
        net = PofOnnx(MODEL, frame_step=step)
        fits = fitters(bones, prior, w)
        for f in range(det["uv"].shape[1]):
            uv, vis, world = det["uv"][c, f], det["vis"][c, f], det["world"][c, f]
            if np.isnan(uv).any():
                net.reset()
                fits = fitters(bones, prior, w)
                continue
            lifted = lift_frame(net, uv, vis, cam.K, world, bones)
            outs = {"lift": lifted.joints}
            for name, fit in fits.items():
                outs[name] = fit(uv, vis, cam.K, lifted.joints, lifted.directions,
                                 lifted.confidence, 0.3)  # fmt: skip
            mirrored += int(fits["fit_prior"].repaired.any())
            truth = reference_in_camera(cams, det, c, f)
            if truth is None:
                continue
            for name, out in outs.items():
                scores.add(name, out, truth)
                total.add(name, out, truth)
    return {
        "all": total.summary(),
        "depth_mirrored_frames": mirrored,
        **{k: s.summary() for k, s in per_cam.items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--demo", default="Demo_MultiPerson")
    ap.add_argument("--cache", type=Path, default=None, help="MediaPipe detections (.npz)")
    ap.add_argument("--held-out-batches", type=int, default=2, help="0: skip held-out mocap")
    ap.add_argument("--no-video", action="store_true", help="skip the demo video")
    defaults = tomllib.loads(CONFIG.read_text())["fit"]
    for f in fields(FitWeights):
        ap.add_argument(f"--{f.name.replace('_', '-')}", type=type(defaults[f.name]))
    args = ap.parse_args()
    given = {f.name: getattr(args, f.name) for f in fields(FitWeights)}
    weights = FitWeights.from_config(
        {**defaults, "prior": True, **{k: v for k, v in given.items() if v is not None}}
    )
    prior = PosePrior.load()
    out: dict = {"weights": weights.__dict__}
    if args.held_out_batches:
        out["held_out"] = held_out(prior, weights, args.held_out_batches)
    if not args.no_video:
        out[args.demo] = real_video(args.demo, args.cache, prior, weights)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
