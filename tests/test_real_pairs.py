"""Real-detection training windows: exact views give exact targets, the mirrored pair is the
mirrored pose's own, a view with left and right exchanged is left out, and each window is
the one the runtime feeds the network."""

from __future__ import annotations

import numpy as np
import pytest

from models.features import N_FEATURES, limb_features
from models.skeleton import FLIP_JOINTS, N_LIMBS, limb_vectors, unit
from models.training.mocap import load_clips
from models.training.multiview import demo_cameras
from models.training.pairs import MIRROR_X
from models.training.real_pairs import camera_pairs
from tests.data import MOCAP_FIXTURE_DIR

Y_UP_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
WINDOW, STEP = 3, 2


@pytest.fixture(scope="module")
def scene() -> tuple[list, np.ndarray, dict[str, np.ndarray]]:
    """The demo's four calibrated cameras, real motion (world) and its exact 2D in each."""
    joints = max(load_clips(MOCAP_FIXTURE_DIR), key=lambda c: len(c.joints)).joints
    poses = joints.astype(np.float64)[:120:4] @ Y_UP_TO_Z_UP.T
    poses -= [*poses[:, :, :2].mean((0, 1)), poses[..., 2].min()]
    cams = demo_cameras("Demo_SinglePerson")
    uv = np.stack([np.stack([cam.project(X) for X in poses]) for cam in cams])
    return cams, poses, {"uv": uv, "vis": np.ones(uv.shape[:3])}


def test_exact_views_give_the_true_limb_directions(scene) -> None:
    cams, poses, det = scene
    windows, targets = camera_pairs(cams, det, 0, WINDOW, STEP, 0.3)
    assert len(targets) == 2 * len(poses)  # every frame, original and mirrored
    truth = unit(limb_vectors(poses @ cams[0].R.T + cams[0].t))
    np.testing.assert_allclose(np.array(targets[0::2]), truth, atol=1e-4)
    mirrored = unit(limb_vectors((poses @ cams[0].R.T + cams[0].t)[:, FLIP_JOINTS] * MIRROR_X))
    np.testing.assert_allclose(np.array(targets[1::2]), mirrored, atol=1e-4)


def test_windows_are_the_runtimes_and_the_mirror_is_the_mirrored_pose_seen(scene) -> None:
    cams, poses, det = scene
    cam = cams[0]
    windows, _ = camera_pairs(cams, det, 0, WINDOW, STEP, 0.3)
    feats = limb_features(det["uv"][0], det["vis"][0], cam.K[None])
    for f in (0, 1, 2, 7):  # the first frames repeat frame 0 in their earlier slots
        slots = [max(f - STEP * k, 0) for k in range(WINDOW - 1, -1, -1)]
        expected = feats[slots].transpose(1, 0, 2).reshape(N_LIMBS, WINDOW * N_FEATURES)
        np.testing.assert_array_equal(windows[2 * f], expected)
    # the mirrored window is what the camera would see of the mirrored pose (in its frame)
    seen = (poses @ cam.R.T + cam.t)[:, FLIP_JOINTS] * MIRROR_X
    uv = seen[..., :2] / seen[..., 2:] * np.diag(cam.K)[:2] + cam.K[:2, 2]
    mirrored = limb_features(uv, det["vis"][0], cam.K[None])
    last = windows[2 * 7 + 1].reshape(N_LIMBS, WINDOW, N_FEATURES)[:, -1]
    np.testing.assert_allclose(last, mirrored[7], atol=2e-3)  # the lens distortion aside


def test_a_view_with_left_and_right_exchanged_is_left_out(scene) -> None:
    cams, poses, det = scene
    swapped = {k: v.copy() for k, v in det.items()}
    swapped["uv"][0, 5:9] = swapped["uv"][0, 5:9][:, FLIP_JOINTS]
    _, targets = camera_pairs(cams, swapped, 0, WINDOW, STEP, 0.3)
    assert len(targets) == 2 * (len(poses) - 4)
