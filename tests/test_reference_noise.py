"""The reference-noise estimate: exact views agree to zero, noisy views to their noise, and
a view with left and right exchanged never joins a comparison."""

from __future__ import annotations

import numpy as np
import pytest

from models.skeleton import FLIP_JOINTS
from models.training.mocap import load_clips
from models.training.multiview import demo_cameras
from models.training.reference_noise import noise_figures, pair_differences
from tests.data import MOCAP_FIXTURE_DIR

Y_UP_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])


@pytest.fixture(scope="module")
def views() -> tuple[list, np.ndarray]:
    """The demo's four calibrated cameras and exact 2D of real motion seen by them."""
    joints = max(load_clips(MOCAP_FIXTURE_DIR), key=lambda c: len(c.joints)).joints
    poses = joints.astype(np.float64)[:200:10] @ Y_UP_TO_Z_UP.T
    poses -= [*poses[:, :, :2].mean((0, 1)), poses[..., 2].min()]
    cams = demo_cameras("Demo_SinglePerson")
    return cams, np.stack([np.stack([cam.project(X) for X in poses]) for cam in cams])


def detections_of(uv: np.ndarray) -> dict[str, np.ndarray]:
    return {"uv": uv, "vis": np.ones(uv.shape[:3])}


def test_exact_views_give_no_reference_noise(views) -> None:
    cams, uv = views
    diffs = pair_differences(cams, detections_of(uv))
    assert len(diffs["knee"]) == 3 * uv.shape[1]  # every frame, all three pair splits
    for figure in noise_figures(diffs).values():
        assert figure["two_view_rms_deg"] < 0.01


def test_pixel_noise_shows_as_reference_noise_and_a_swapped_view_is_left_out(views) -> None:
    cams, uv = views
    noisy = uv + np.random.default_rng(0).normal(0.0, 2.0, uv.shape)
    figures = noise_figures(pair_differences(cams, detections_of(noisy)))
    assert all(f["two_view_rms_deg"] > 0.1 for f in figures.values())
    swapped = uv.copy()
    swapped[0, ::2] = swapped[0, ::2][:, FLIP_JOINTS]  # cam01 mislabelled every other frame
    diffs = pair_differences(cams, detections_of(swapped))
    # the clean frames, and at most a swapped one whose pose is left-right symmetric
    assert 3 * len(uv[0, 1::2]) <= len(diffs["knee"]) <= 3 * (len(uv[0, 1::2]) + 1)
    # a swap let through would show as tens of degrees (4.6 deg RMS with a 3D distance check)
    assert noise_figures(diffs)["elbow"]["two_view_rms_deg"] < 1.0
