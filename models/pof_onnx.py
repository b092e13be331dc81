"""ONNX Runtime inference of the POF network, one frame at a time, per tracked person.

Carries the previous frame's predicted orientations into the next call (the temporal
prior the network was trained with); ``reset`` when the track is lost.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort

from models.features import limb_features
from models.skeleton import N_LIMBS


class PofOnnx:
    """2D keypoints -> unit limb orientations (camera frame) and depth-sign probabilities."""

    def __init__(self, path: Path, vis_min: float = 0.3) -> None:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.vis_min = vis_min
        self.inputs = {
            i.name for i in self.session.get_inputs()
        }  # single-frame models lack "prior"
        self.prior = np.zeros((1, N_LIMBS, 4), np.float32)

    def reset(self) -> None:
        """Forget the previous frame (new track)."""
        self.prior[:] = 0

    def __call__(
        self, uv: np.ndarray, vis: np.ndarray, K: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(J, 2) pixels, (J,) visibility, (3, 3) -> ((L, 3) orientations, (L,) P(depth > 0))."""
        feats = limb_features(uv[None], vis[None], K[None], self.vis_min)
        feed = {"features": feats, "prior": self.prior}
        pof, z = self.session.run(None, {k: v for k, v in feed.items() if k in self.inputs})
        self.prior = np.concatenate([pof, np.ones((1, N_LIMBS, 1), np.float32)], -1)
        return pof[0], 1 / (1 + np.exp(-z[0]))
