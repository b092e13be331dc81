"""Fit and check the marker confidence (models/confidence.py) against multi-view truth.

``uv run python -m models.training.fit_confidence --cache DIR [--out report.json]
[--markdown report.md] [--no-fit]``

Each camera of a Pose2Sim demo runs through the stages of ``config.toml`` (as
models/training/measure_accuracy.py runs them, detections cached under ``--cache``); each
frame's 17 observed markers (``markers_21``) are aligned to the triangulation of the same
frame by the *other* cameras with one similarity transform (rotation, translation, scale:
the monocular output's heading, position and size are not what is judged) and each
marker's error is its distance to the reference after that alignment.

Fit (Demo_MultiPerson, the tuning demo): a logistic regression of "error within
``TOLERANCE_M``" on the markers' ``confidence_features``;
and the probability of a mirrored marker, measured by hiding each limb in turn (its
landmarks' visibility set to 0) with ``[markers] estimate_missing`` on. Written to
``models/weights/confidence.json``.

Report (Demo_SinglePerson, the test demo, never fitted on; and the tuning demo, in sample):
the published confidence (``markers_21_confidence``, swap factor and all) against the
error, by confidence decile, per camera and pooled; and the angle confidence of knee, hip
and elbow flexion (``angles_confidence``) against the error of the three-point flexion
of the same joint (models/training/accuracy.py ``flexion``: the ISB angle itself has no
multi-view reference).
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from core.angle_set import ANGLE_COLUMNS
from core.demo_data import DEMO_CAMERAS, TEST_DEMO, TUNING_DEMO, demo_video
from core.landmarks import LANDMARK
from core.packet import Packet
from models.confidence import FEATURES, WEIGHTS_PATH
from models.skeleton import JOINTS
from models.training.accuracy import FLEXIONS, flexion
from models.training.measure_accuracy import (
    OUTPUT_JOINTS,
    detected_packets,
    reference,
    run_stages,
    split_stages,
    with_stages,
)
from models.training.multiview import demo_cameras, detections
from stream.cli import OneLineParser
from stream.config import load_config, with_overrides
from stream.native_stderr import filter_native_chatter

TOLERANCE_M = 0.05  # the confidence is the probability of an error within this
RIDGE = 1e-4  # L2 penalty of the logistic fit (coefficients only, not the intercepts)
HIDDEN_LIMBS = (
    ("LElbow", "LWrist"), ("RElbow", "RWrist"),
    ("LKnee", "LAnkle", "LHeel", "LBigToe"), ("RKnee", "RAnkle", "RHeel", "RBigToe"),
)  # fmt: skip
DECILES = 10
# angle columns of the three-point flexions, in accuracy.flexion's order (left, right)
FLEXION_COLUMNS = [ANGLE_COLUMNS.index(f"{n}_{s}_flex_deg") for n in FLEXIONS for s in "lr"]


def aligned_errors(out: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(J,) distances of the (J, 3) ``out`` to ``truth`` after the similarity transform that
    best maps ``out``'s present rows onto ``truth`` (Umeyama); NaN where ``out`` is missing."""
    ok = np.isfinite(out).all(1) & np.isfinite(truth).all(1)
    a, b = out[ok], truth[ok]
    ma, mb = a.mean(0), b.mean(0)
    u, s, vt = np.linalg.svd((b - mb).T @ (a - ma))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = float((s * np.diag(d)).sum() / ((a - ma) ** 2).sum())
    return np.linalg.norm(scale * (out - ma) @ rotation.T + mb - truth, axis=1)


def camera_rows(
    demo: str,
    cache: Path,
    overrides: Mapping[str, Any] | None = None,
    hide: tuple[str, ...] = (),
) -> dict[str, dict[str, np.ndarray]]:
    """Per camera of ``demo`` with a frame to measure: the measured frames' marker errors
    (F, 17), features (F, 17, len(FEATURES)), published confidences and estimated flags
    (F, 17); ``hide``: landmarks whose visibility is set to 0 in every frame before the
    later stages."""
    cams = demo_cameras(demo)
    det = detections(demo, cache / f"multiview_{demo}.npz")
    config = with_overrides(load_config(), dict(overrides or {}))
    hidden = [LANDMARK[name] for name in hide]
    result = {}
    for c, camera in enumerate(DEMO_CAMERAS):
        packets = copy.deepcopy(detected_packets(config, demo_video(camera, demo), cache))
        for packet in packets:
            visibility = packet.data["visibility"].copy()
            visibility[hidden] = 0.0
            packet.data["visibility"] = visibility
        packets = run_stages(with_stages(config, split_stages(config)[1]), packets)
        frames, truth, _ = reference(cams, det, c, packets)
        by_frame: dict[int, Packet] = {p.frame_index: p for p in packets}
        outs = [by_frame[f].data for f in frames]
        if not outs:
            continue
        joints = np.array([d["markers_21"][OUTPUT_JOINTS] for d in outs])
        result[camera] = {
            "error": np.array([aligned_errors(j, t) for j, t in zip(joints, truth, strict=True)]),
            "features": np.array([d["confidence_features"] for d in outs]),
            "confidence": np.array([d["markers_21_confidence"][OUTPUT_JOINTS] for d in outs]),
            "estimated": np.array([d["markers_21_estimated"][OUTPUT_JOINTS] for d in outs]),
            "flexion_error": np.abs(
                np.hstack([flexion(joints, n) - flexion(truth, n) for n in FLEXIONS])
            ),
            "flexion_confidence": np.array([d["angles_confidence"][FLEXION_COLUMNS] for d in outs]),
        }
    return result


def fit_logistic(x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Intercept and coefficients (F,) of P(y) = sigmoid(b + x @ w), by Newton's method on
    the ridge-penalised log-likelihood."""
    design = np.hstack([np.ones((len(x), 1)), x])
    penalty = np.r_[0.0, np.full(x.shape[1], RIDGE * len(y))]
    theta = np.zeros(design.shape[1])
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-design @ theta))
        grad = design.T @ (p - y) + penalty * theta
        hess = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(theta[0]), theta[1:]


def samples(rows: Mapping[str, dict[str, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Features and errors of every present, observed marker of ``rows``."""
    x, e = [], []
    for r in rows.values():
        ok = np.isfinite(r["error"]) & ~r["estimated"]
        x.append(r["features"][ok])
        e.append(r["error"][ok])
    return np.concatenate(x), np.concatenate(e)


def fit(cache: Path) -> dict[str, Any]:
    """The model's JSON, fitted on the tuning demo."""
    x, error = samples(camera_rows(TUNING_DEMO, cache))
    intercept, coefficients = fit_logistic(x, (error <= TOLERANCE_M).astype(float))
    mirrored = []
    for limb in HIDDEN_LIMBS:
        hidden = camera_rows(TUNING_DEMO, cache, {"markers.estimate_missing": True}, limb)
        for r in hidden.values():
            ok = r["estimated"] & np.isfinite(r["error"])
            mirrored.append(r["error"][ok])
    mirrored_errors = np.concatenate(mirrored)
    return {
        "tolerance_m": TOLERANCE_M,
        "features": list(FEATURES),
        "intercept": round(intercept, 4),
        "coefficients": dict(zip(FEATURES, np.round(coefficients, 4).tolist(), strict=True)),
        "estimated": round(float(np.mean(mirrored_errors <= TOLERANCE_M)), 4),
        "fitted_on": {"demo": TUNING_DEMO, "markers": int(len(error)),
                      "mirrored_markers": int(len(mirrored_errors)),
                      "within_tolerance": round(float(np.mean(error <= TOLERANCE_M)), 4)},
    }  # fmt: skip


def deciles(confidence: np.ndarray, error: np.ndarray) -> list[dict[str, float]]:
    """Samples split into ``DECILES`` equal groups by confidence, lowest first: confidence
    range, mean, median error (the error's unit), share within ``TOLERANCE_M``, count."""
    order = np.argsort(confidence, kind="stable")
    out = []
    for group in np.array_split(order, DECILES):
        c, e = confidence[group], error[group]
        out.append({"lo": float(c.min()), "hi": float(c.max()), "mean": float(c.mean()),
                    "median_error": float(np.median(e)),
                    "within": float(np.mean(e <= TOLERANCE_M)), "n": int(len(group))})  # fmt: skip
    return out


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    rank = lambda v: np.argsort(np.argsort(v, kind="stable"), kind="stable")  # noqa: E731
    return float(np.corrcoef(rank(a), rank(b))[0, 1])


def report(demo: str, cache: Path) -> dict[str, Any]:
    """The published confidence against the error on ``demo``, per camera and pooled."""
    rows = camera_rows(demo, cache)
    per: dict[str, Any] = {}
    pooled_c, pooled_e = [], []
    for camera, r in rows.items():
        ok = np.isfinite(r["error"])
        c, e = r["confidence"][ok], r["error"][ok]
        pooled_c.append(c)
        pooled_e.append(e)
        per[camera] = {"deciles": deciles(c, e), "spearman": spearman(c, e)}
    c, e = np.concatenate(pooled_c), np.concatenate(pooled_e)
    per["pooled"] = {"deciles": deciles(c, e), "spearman": spearman(c, e)}
    c = np.concatenate([r["flexion_confidence"].ravel() for r in rows.values()])
    e = np.concatenate([r["flexion_error"].ravel() for r in rows.values()])
    ok = np.isfinite(e)
    angles = {"deciles": deciles(c[ok], e[ok]), "spearman": spearman(c[ok], e[ok])}
    return {"demo": demo, "tolerance_m": TOLERANCE_M, "joints": list(JOINTS), "figures": per,
            "flexion": angles}  # fmt: skip


def markdown(result: Mapping[str, Any], command: str) -> str:
    """The decile table: median error (cm) per camera and pooled, then the pooled
    confidence against the share within tolerance (calibration)."""
    figures = result["figures"]
    names = list(figures)
    lines = [
        f"**{result['demo']}**, `{command}`",
        "",
        "| confidence decile | "
        + " | ".join(f"{n} median error (cm)" for n in names)
        + " | pooled: mean confidence | pooled: within "
        f"{100 * result['tolerance_m']:.0f} cm |",
        "|---" * (len(names) + 3) + "|",
    ]
    for i in range(DECILES):
        cells = [f"{100 * figures[n]['deciles'][i]['median_error']:.1f}" for n in names]
        pooled = figures["pooled"]["deciles"][i]
        lines.append(f"| {i + 1} | " + " | ".join(cells)
                     + f" | {pooled['mean']:.2f} | {100 * pooled['within']:.0f}% |")  # fmt: skip
    lines += ["", "Spearman rank correlation of confidence and error: "
              + ", ".join(f"{n} {figures[n]['spearman']:.2f}" for n in names)]  # fmt: skip
    flex = result["flexion"]
    lines += ["", "Knee, hip and elbow flexion (left and right, pooled): three-point flexion "
              "error (deg, median) by decile of the angle's confidence: "
              + ", ".join(f"{d['median_error']:.1f}" for d in flex["deciles"])
              + f" (confidence {flex['deciles'][0]['mean']:.2f} to "
              f"{flex['deciles'][-1]['mean']:.2f}; Spearman {flex['spearman']:.2f})"]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = OneLineParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True, help="detections (never commit it)")
    ap.add_argument("--no-fit", action="store_true", help="report only, with the shipped model")
    ap.add_argument("--out", type=Path, help="write the test report as JSON here")
    ap.add_argument("--markdown", type=Path, help="write the decile table as markdown here")
    ap.add_argument("--verbose", action="store_true", help="show MediaPipe's native log lines")
    args = ap.parse_args(argv)
    if not args.verbose:
        filter_native_chatter()
    args.cache.mkdir(parents=True, exist_ok=True)
    if not args.no_fit:
        model = fit(args.cache)
        WEIGHTS_PATH.write_text(json.dumps(model, indent=1) + "\n")
        print(f"wrote {WEIGHTS_PATH}: {json.dumps(model)}", file=sys.stderr)
    results = [report(demo, args.cache) for demo in (TEST_DEMO, TUNING_DEMO)]
    command = "uv run python -m models.training.fit_confidence " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    if args.out:
        args.out.write_text(json.dumps({"command": command, "reports": results}, indent=1) + "\n")
    text = "\n".join(markdown(result, command) for result in results)
    if args.markdown:
        args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
