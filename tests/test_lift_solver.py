"""Least-squares lifting: exact recovery, a missing joint, numba == numpy, z-sign fix."""

from __future__ import annotations

import numpy as np
import pytest

from models.pof_solver import bone_lengths, correct_z_sign, solve, solve_reference
from models.skeleton import N_JOINTS, J, limb_vectors, unit
from models.training.mocap import load_clips, split
from models.training.pairs import PairGenerator
from tests.data import MOCAP_FIXTURE_DIR


@pytest.fixture(scope="module")
def frames():
    b = PairGenerator(
        split(load_clips(MOCAP_FIXTURE_DIR))[1], seq_len=2, augment=False, seed=7
    ).sample(8)
    return b.joints_cam[:, 0], b.uv_clean[:, 0], b.K


def _exact(X):
    v = limb_vectors(X)
    return unit(v), np.linalg.norm(v, axis=-1)


def test_exact_orientations_recover_joints(frames) -> None:
    for X, uv, K in zip(*frames, strict=True):
        pof, lengths = _exact(X)
        Y = solve(uv, np.ones(N_JOINTS, bool), K, pof, lengths)
        assert np.abs(Y - X).max() < 1e-3


def test_one_missing_joint(frames) -> None:
    X, uv, K = (a[0] for a in frames)
    pof, lengths = _exact(X)
    for name in ("LWrist", "RAnkle", "Nose"):
        vis = np.ones(N_JOINTS, bool)
        vis[J[name]] = False
        garbage = uv.copy()
        garbage[J[name]] = np.nan
        assert np.abs(solve(garbage, vis, K, pof, lengths) - X).max() < 1e-3


def test_numba_matches_numpy(frames) -> None:
    rng = np.random.default_rng(0)
    X, uv, K = (a[1] for a in frames)
    pof, lengths = _exact(X)
    noisy = unit(pof + rng.normal(0, 0.1, pof.shape))
    vis = rng.random(N_JOINTS) > 0.2
    uv = uv + rng.normal(0, 3, uv.shape)
    a = solve(uv, vis, K, noisy, lengths * 1.05)
    b = solve_reference(uv, vis, K, noisy, lengths * 1.05)
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_bone_lengths_scale_with_height() -> None:
    np.testing.assert_allclose(bone_lengths(1.8), bone_lengths(1.0) * 1.8)


def test_z_sign_correction_flips_only_confident_disagreements() -> None:
    pof = unit(np.array([[0.0, 0.6, 0.8], [0.0, 0.6, 0.8], [0.0, 0.6, -0.8]]))
    out = correct_z_sign(pof, np.array([0.05, 0.6, 0.1]))
    np.testing.assert_allclose(out[:, 2], [-0.8, 0.8, -0.8])
