"""Per-limb fusion of the POF network's orientations with MediaPipe's own 3D.

The two err differently: MediaPipe's world landmarks get feet and forearms wrong (depth of
limbs pointing at the camera) but hold thighs well; the network is the other way round
(models/MODEL_CARD.md). Their errors are largely independent, so a per-limb weighted mean
of the two unit vectors beats both. The weight of the network on limb l is the inverse-
variance weight ``e_mp^2 / (e_pof^2 + e_mp^2)`` from the mean squared angular errors of
each source against multi-view triangulation on Pose2Sim's ``Demo_MultiPerson`` (the
tuning demo; Demo_SinglePerson stays the test set). The weights belong to one network, so
they are stored in its ONNX file (metadata ``pof_weight``) and read by models/pof_onnx.py.

``uv run python -m models.fusion MODEL.onnx [--cache mp_multi.npz]``
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from models.pof_onnx import METADATA_KEY
from models.skeleton import LIMB_NAMES, unit

TUNING_DEMO = "Demo_MultiPerson"


def fuse(pof: np.ndarray, mediapipe: np.ndarray, pof_weight: np.ndarray) -> np.ndarray:
    """(L, 3) network and MediaPipe unit limb vectors -> their per-limb weighted direction."""
    return unit(pof_weight[:, None] * pof + (1 - pof_weight[:, None]) * mediapipe)


def fit_weights(err_pof: np.ndarray, err_mediapipe: np.ndarray) -> np.ndarray:
    """(N, L) angular errors of each source -> (L,) inverse-variance weight of the network."""
    var_pof, var_mp = (err_pof**2).mean(0), (err_mediapipe**2).mean(0)
    return var_mp / (var_pof + var_mp)


def write_weights(model: Path, weights: np.ndarray) -> None:
    """Store the weights in the ONNX file's metadata (replacing any), atomically."""
    import onnx

    proto = onnx.load(str(model))
    kept = [p for p in proto.metadata_props if p.key != METADATA_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps([round(float(w), 4) for w in weights])
    fd, tmp = tempfile.mkstemp(dir=model.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        onnx.save(proto, tmp)
        os.replace(tmp, model)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main() -> None:
    from models.evaluate import real_video_errors

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
