"""ONNX Runtime inference of the POF network, one frame at a time, per tracked person.

Carries the previous frame's predicted orientations into the next call (the temporal
prior the network was trained with) and the last W frames' limb features (the model's
input window, W read from the graph's input width); ``reset`` when the track is lost: the
next frame then fills the whole window, as in training. The network learned windows of
30 fps (and 15 fps) motion; ``frame_step`` 2 feeds it every other frame of a 60 fps stream
(``frame_step_for``), so its window spans the same time.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.features import N_FEATURES, limb_features
from models.skeleton import N_LIMBS

TRAINED_FPS = 30.0
METADATA_KEY = "pof_weight"  # per-limb fusion weights (models/fusion.py), if fitted


def frame_step_for(fps: float) -> int:
    """Frames to step over so that the window sees motion at about the trained rate."""
    return max(1, round(fps / TRAINED_FPS)) if np.isfinite(fps) and fps > 0 else 1


class PofModel:
    """The network loaded once: an ONNX Runtime session, which every tracked person's
    ``PofOnnx`` shares. Opening it (importing onnxruntime, building the session: ~60 ms)
    belongs in a stage's setup, not in its first frame."""

    def __init__(self, path: Path) -> None:
        import onnxruntime as ort  # here: importing this module for its constants stays light

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.inputs = set(inputs)  # the MLP baseline has no "prior"
        self.window = int(inputs["features"].shape[-1]) // N_FEATURES
        meta = self.session.get_modelmeta().custom_metadata_map
        self.pof_weight = (
            np.array(json.loads(meta[METADATA_KEY])) if METADATA_KEY in meta else None
        )  # weight of the network against MediaPipe's 3D, per limb


class PofOnnx:
    """2D keypoints -> unit limb orientations (camera frame) and depth-sign probabilities,
    for one tracked person (``model``: a loaded ``PofModel`` or the path of one)."""

    def __init__(self, model: PofModel | Path, vis_min: float = 0.3, frame_step: int = 1) -> None:
        self.model = model if isinstance(model, PofModel) else PofModel(model)
        self.vis_min = vis_min
        self.frame_step = frame_step
        self.prior = np.zeros((1, N_LIMBS, 4), np.float32)
        self.history: np.ndarray | None = None  # ((W - 1) x step + 1, L, 11), oldest first
        self.pof_weight = self.model.pof_weight

    @property
    def window(self) -> int:
        """Frames the network sees per call."""
        return self.model.window

    def reset(self) -> None:
        """Forget the previous frames (new track)."""
        self.prior[:] = 0
        self.history = None

    def __call__(
        self, uv: np.ndarray, vis: np.ndarray, K: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(J, 2) pixels, (J,) visibility, (3, 3) -> ((L, 3) orientations, (L,) P(depth > 0))."""
        feats = limb_features(uv[None], vis[None], K[None], self.vis_min)[0]
        if self.history is None:
            self.history = np.repeat(feats[None], (self.window - 1) * self.frame_step + 1, 0)
        else:
            self.history = np.concatenate([self.history[1:], feats[None]])
        frames = self.history[:: self.frame_step]
        window = frames.transpose(1, 0, 2).reshape(1, N_LIMBS, -1)
        if "prior" not in self.model.inputs:  # the MLP: no prior to feed or to carry
            pof, z = self.model.session.run(None, {"features": window})
        else:
            pof, z = self.model.session.run(None, {"features": window, "prior": self.prior})
            self.prior = np.concatenate([pof, np.ones((1, N_LIMBS, 1), np.float32)], -1)
        return pof[0], 1 / (1 + np.exp(-z[0]))
