"""Per-limb fusion of the POF network's orientations with MediaPipe's own 3D.

The two err differently: MediaPipe's world landmarks get feet and forearms wrong (depth of
limbs pointing at the camera) but hold thighs well; the network is the other way round
(models/MODEL_CARD.md). Their errors are largely independent, so a per-limb weighted mean
of the two unit vectors beats both. The weight of the network on limb l is the inverse-
variance weight ``e_mp^2 / (e_pof^2 + e_mp^2)`` from the mean squared angular errors of
each source against multi-view triangulation on Pose2Sim's ``Demo_MultiPerson`` (the
tuning demo; Demo_SinglePerson stays the test set). The weights belong to one network, so
they are stored in its ONNX file (metadata ``pof_weight``) and read by models/pof_onnx.py.

Fitted by ``uv run python -m models.training.fit_fusion MODEL.onnx [--cache mp_multi.npz]``.
"""

from __future__ import annotations

import numpy as np

from models.skeleton import unit


def fuse(pof: np.ndarray, mediapipe: np.ndarray, pof_weight: np.ndarray) -> np.ndarray:
    """(L, 3) network and MediaPipe unit limb vectors -> their per-limb weighted direction."""
    return unit(pof_weight[:, None] * pof + (1 - pof_weight[:, None]) * mediapipe)
