"""How far to trust each marker: a calibrated probability that it lies within a tolerance
of the truth, from what the pipeline already knows about each frame.

Per observed joint (the 17 of models/skeleton.py) four inputs (``FEATURES``): MediaPipe's
visibility (its log), how far the kinematic fit had to move the lifted joint (the lift
and the fit disagree), how unsure the lifter's depth-sign head was about the limb ending
at the joint, and the joint's hip-relative acceleration (jitter, a wrong depth flipping
back and forth). A logistic model turns them into the probability that the joint is within
``tolerance_m`` of a multi-view triangulation of the same frame (after a per-frame
similarity alignment). It has one intercept for all joints: intercepts per kind of joint
fitted better on the tuning demo but learned that demo's own systematic errors (its most
accurate markers, ankles and heels, are among the test demo's worst).
Its coefficients are fitted on Pose2Sim's Demo_MultiPerson (the tuning demo) by
models/training/fit_confidence.py and shipped in ``models/weights/confidence.json``, with
the probability measured for mirrored (``--estimate-missing``) markers.

The stages turn these into the published confidences: stages/markers.py for the 21
markers (missing: 0, estimated: the measured probability, swap-repaired parts scaled
down), stages/augment.py for the augmented ones (from the markers that feed them,
``core.marker_sets.AUGMENTED_FROM``) and stages/angles.py per angle (the least sure
marker its segment frames use).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.arrays import nan_to_num
from models.skeleton import LIMBS, N_JOINTS

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "confidence.json"
FEATURES = ("visibility_log", "fit_residual", "depth_doubt", "acceleration")
VISIBILITY_FLOOR = 1e-3  # visibility is clipped to at least this before its log
ACCELERATION_SCALE = 10.0  # m/s^2: acceleration enters as log(1 + a / scale)


def joint_features(
    visibility: np.ndarray,
    fit_residual: np.ndarray | None,
    limb_confidence: np.ndarray | None,
    acceleration: np.ndarray,
    height: float,
) -> np.ndarray:
    """(17, len(FEATURES)) model inputs of one frame's joints (models.skeleton.JOINTS order).

    ``visibility`` (17,) MediaPipe's; ``fit_residual`` (17,) m, how far the fit moved each
    joint (None without a fit: 0); ``limb_confidence`` (18,) the lifter's depth-sign
    certainty per limb (None without the lift: 1); ``acceleration`` (17,) m/s^2 of the
    hip-relative markers (NaN where unknown: 0). Lengths are in subject heights.
    """
    v = np.clip(visibility, VISIBILITY_FLOOR, 1.0)
    doubt = np.zeros(N_JOINTS)
    if limb_confidence is not None:
        # a joint is as unsure as the least sure limb that ends at it
        np.maximum.at(doubt, LIMBS[:, 1], 1.0 - np.asarray(limb_confidence))
    residual = np.zeros(N_JOINTS) if fit_residual is None else np.asarray(fit_residual) / height
    accel = np.log1p(nan_to_num(acceleration) / ACCELERATION_SCALE)
    return np.column_stack([np.log(v), residual, doubt, accel])


@dataclass(frozen=True)
class MarkerConfidence:
    """The fitted logistic model (``models/weights/confidence.json``)."""

    tolerance_m: float  # what the probability is about: error within this distance
    intercept: float
    coefficients: np.ndarray  # (len(FEATURES),)
    estimated: float  # probability measured for a mirrored marker

    @classmethod
    def load(cls, path: Path = WEIGHTS_PATH) -> MarkerConfidence:
        if not path.is_file():
            raise FileNotFoundError(
                f"confidence model not found: {path} (fit it with "
                "`uv run python -m models.training.fit_confidence`)"
            )
        d = json.loads(path.read_text())
        if tuple(d["features"]) != FEATURES:
            raise ValueError(f"confidence model {path} was fitted for other inputs")
        return cls(
            float(d["tolerance_m"]),
            float(d["intercept"]),
            np.array([d["coefficients"][f] for f in FEATURES], dtype=np.float64),
            float(d["estimated"]),
        )

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """(17,) probabilities of (17, len(FEATURES)) ``joint_features``."""
        z = self.intercept + features @ self.coefficients
        return 1.0 / (1.0 + np.exp(-z))
