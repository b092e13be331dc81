"""Export a trained POF checkpoint to ONNX (``python -m models.training.export_onnx``).

The graph takes one frame: ``features`` (B, L, W x 11: the limb features of the last W
frames, oldest first; W = the input width / 11) and ``prior`` (B, L, 4: the previous
frame's orientations and a "has previous" flag) and returns ``pof`` (B, L, 3) and
``z_logit`` (B, L); the caller carries the prior from frame to frame (models/pof_onnx.py).
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch

from models.training.pof_net import build


def load_checkpoint(path: Path) -> torch.nn.Module:
    """The model a training checkpoint describes, with its weights, in eval mode."""
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    cfg = ckpt["config"]
    model = build(cfg["model"], cfg["dim"], cfg["layers"], cfg.get("global_context", False),
                  cfg.get("window", 1))  # fmt: skip
    model.load_state_dict(ckpt["state_dict"])
    model.window = cfg.get("window", 1)
    return model.eval()


def export(model: torch.nn.Module, out: Path, window: int = 1) -> None:
    """Write ``model`` (taking ``window`` frames) as an ONNX graph with a dynamic batch axis."""
    from models.features import N_FEATURES
    from models.skeleton import N_LIMBS
    from models.training.pof_net import PRIOR_FEATURES

    feats = torch.zeros(1, N_LIMBS, window * N_FEATURES)
    prior = torch.zeros(1, N_LIMBS, PRIOR_FEATURES)
    with warnings.catch_warnings():  # the newer dynamo exporter would need onnxscript
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            model, (feats, prior), str(out), input_names=["features", "prior"],
            output_names=["pof", "z_logit"], opset_version=17, dynamo=False,
            dynamic_axes={n: {0: "batch"} for n in ("features", "prior", "pof", "z_logit")},
        )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    model = load_checkpoint(args.checkpoint)
    export(model, args.out, model.window)


if __name__ == "__main__":
    main()
