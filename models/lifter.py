"""One frame of the lift, shared by the pipeline stage and the evaluation.

Network orientations -> depth signs flipped where the sign head is sure -> per-limb fusion
with MediaPipe's own 3D when the model carries fusion weights (models/fusion.py) -> least
squares against the 2D rays with bone lengths (models/pof_solver.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.fusion import fuse
from models.pof_onnx import PofOnnx
from models.pof_solver import correct_z_sign, solve
from models.skeleton import limb_vectors, unit


@dataclass
class LiftedFrame:
    """Camera-frame joints (J, 3) and the limb orientations (L, 3) behind them."""

    joints: np.ndarray
    network: np.ndarray  # after the depth-sign fix, before any fusion with MediaPipe
    directions: np.ndarray  # what the solve used: fused with MediaPipe where weights exist
    confidence: np.ndarray  # (L,) certainty of each depth sign, |2 P(depth > 0) - 1|


def lift_frame(
    net: PofOnnx,
    uv: np.ndarray,
    vis: np.ndarray,
    K: np.ndarray,
    mediapipe_world: np.ndarray,
    bones: np.ndarray,
    vis_min: float = 0.3,
) -> LiftedFrame:
    """(J, 2) pixels, (J,) visibility, (J, 3) MediaPipe world joints -> lifted frame."""
    pof, z_prob = net(uv, vis, K)
    network = correct_z_sign(pof.astype(np.float64), z_prob)
    target = network
    if net.pof_weight is not None and np.isfinite(mediapipe_world).all():
        target = fuse(network, unit(limb_vectors(mediapipe_world)), net.pof_weight)
    joints = solve(uv, vis >= vis_min, K, target, bones)
    return LiftedFrame(joints, network, target, np.abs(2 * z_prob.astype(np.float64) - 1))
