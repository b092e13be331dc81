"""Fit the per-limb fusion weights (models/fusion.py) of one network on the tuning demo and
store them in its ONNX file.

``uv run python -m models.training.fit_fusion MODEL.onnx [--cache mp_multi.npz]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx

from core.atomic import AtomicFile
from core.demo_data import TUNING_DEMO
from models.pof_onnx import METADATA_KEY
from models.skeleton import LIMB_NAMES
from models.training.evaluate import real_video_errors


def fit_weights(err_pof: np.ndarray, err_mediapipe: np.ndarray) -> np.ndarray:
    """(N, L) angular errors of each source -> (L,) inverse-variance weight of the network."""
    var_pof, var_mp = (err_pof**2).mean(0), (err_mediapipe**2).mean(0)
    return var_mp / (var_pof + var_mp)


def write_weights(model: Path, weights: np.ndarray) -> None:
    """Store the weights in the ONNX file's metadata (replacing any), atomically."""
    proto = onnx.load(str(model))
    kept = [p for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps([round(float(w), 4) for w in weights])
    with AtomicFile(model, binary=True) as f:
        f.write(proto.SerializeToString())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", type=Path)
    ap.add_argument("--cache", type=Path, default=None, help="MediaPipe detections (.npz)")
    args = ap.parse_args()
    per_cam = real_video_errors(args.model, TUNING_DEMO, args.cache, fused=False)
    pof, mp = (np.concatenate([e[k] for e in per_cam.values() if e[k]])
               for k in ("pof_deg", "mediapipe_deg"))  # fmt: skip
    weights = fit_weights(pof, mp)
    write_weights(args.model, weights)
    print(json.dumps(dict(zip([f"{a}-{b}" for a, b in LIMB_NAMES], weights.round(2).tolist(),
                              strict=True)), indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
