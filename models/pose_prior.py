"""The learned joint-angle prior of the kinematic fit: a Gaussian mixture over the 26 joint
angles of models/kinematic_model.py, trained on real motion capture
(models/training/fit_pose_prior.py), plus the foot shape learned with it.

Stored as the precision's upper Cholesky factor per component, so the fit's residual is one
triangular product: |U (pose - mean)|^2 is the Mahalanobis distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.kinematic_model import N_POSE

PRIOR_PATH = Path(__file__).resolve().parent / "weights" / "pose_prior.npz"


@dataclass(frozen=True)
class PosePrior:
    """Mixture of K Gaussians over the joint angles (radians)."""

    means: np.ndarray  # (K, N_POSE)
    chols: np.ndarray  # (K, N_POSE, N_POSE) upper triangular, precision = U.T @ U
    log_norm: np.ndarray  # (K,) log weight + log det U
    foot_angle: float  # heel-ankle-toe angle (rad), the foot triangle's shape

    @classmethod
    def from_mixture(cls, weights: np.ndarray, means: np.ndarray, covs: np.ndarray,
                     foot_angle: float) -> PosePrior:  # fmt: skip
        """From mixture weights (K,), means and covariances (K, N_POSE, N_POSE)."""
        chols = np.linalg.cholesky(np.linalg.inv(covs)).transpose(0, 2, 1)
        log_det = np.log(np.diagonal(chols, axis1=1, axis2=2)).sum(-1)
        return cls(means, np.ascontiguousarray(chols), np.log(weights) + log_det, foot_angle)

    def save(self, path: Path) -> None:
        np.savez_compressed(path, means=self.means, chols=self.chols, log_norm=self.log_norm,
                            foot_angle=self.foot_angle)  # fmt: skip

    @classmethod
    def load(cls, path: Path = PRIOR_PATH) -> PosePrior:
        if not path.is_file():
            raise FileNotFoundError(
                f"pose prior not found: {path} (train it with "
                "`uv run python -m models.training.fit_pose_prior`)"
            )
        d = np.load(path)
        if d["means"].shape[1] != N_POSE:
            raise ValueError(f"pose prior {path} has {d['means'].shape[1]} angles, not {N_POSE}")
        return cls(d["means"], d["chols"], d["log_norm"], float(d["foot_angle"]))

    def log_density(self, poses: np.ndarray) -> np.ndarray:
        """(N,) log density (up to a constant) of (N, N_POSE) poses."""
        d = np.einsum("kij,nkj->nki", self.chols, poses[:, None] - self.means)
        s = self.log_norm - 0.5 * (d**2).sum(-1)
        top = s.max(1)
        return top + np.log(np.exp(s - top[:, None]).sum(1))
