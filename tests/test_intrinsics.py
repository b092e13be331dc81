"""Camera intrinsics: calibration files (Pose2Sim TOML, Qualisys qca), K per frame size."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.intrinsics import Intrinsics, camera_matrix, read_calibration, undistort
from models.training.multiview import demo_cameras
from stages.markers import root_translation
from tests.test_offline_cli import assert_clean_failure, run_offline

DEMO_QCA = Path(
    str(
        importlib.resources.files("Pose2Sim")
        / "Demo_SinglePerson"
        / "calibration"
        / "Calib.qca.txt"
    )
)
K1 = np.array([[1500.0, 0.0, 530.0], [0.0, 1502.0, 950.0], [0.0, 0.0, 1.0]])


def write_pose2sim_toml(path: Path, cameras: dict[str, np.ndarray]) -> Path:
    """A calibration file as Pose2Sim's toml_write writes it (1088 x 1920 cameras)."""
    text = ""
    for name, K in cameras.items():
        text += (
            f'[{name}]\nname = "{name.replace("_", "")}"\nsize = [ 1088.0, 1920.0]\n'
            f"matrix = [ [ {K[0, 0]}, 0.0, {K[0, 2]}], [ 0.0, {K[1, 1]}, {K[1, 2]}], "
            "[ 0.0, 0.0, 1.0]]\n"
            "distortions = [ -0.05, 0.14, 0.0006, 0.0007]\n"
            "rotation = [ 1.2, -0.3, 0.4]\ntranslation = [ 0.5, 1.1, 3.2]\nfisheye = false\n\n"
        )
    path.write_text(text + "[metadata]\nadjusted = false\nerror = 0.0\n")
    return path


def test_qca_gives_the_demo_cameras_intrinsics() -> None:
    intr = read_calibration(DEMO_QCA, "cam01")
    np.testing.assert_array_equal(intr.K, demo_cameras("Demo_SinglePerson")[0].K)
    assert intr.size == (1088, 1920)


def test_qca_gives_the_demo_cameras_pose() -> None:
    """The extrinsics put the demo's triangulated world on every camera's 2D detections:
    a world point projected with core's R, t lands where OpenCV's projection puts it."""
    calib = read_calibration(DEMO_QCA, "cam02")
    centre = -calib.R.T @ calib.t
    np.testing.assert_allclose(calib.R @ calib.R.T, np.eye(3), atol=1e-6)
    assert 1.5 < centre[2] < 2.5  # the camera hangs about 1.7 m above the lab floor (Z up)
    world = np.array([[0.0, 0.0, 0.0], [0.3, -0.2, 1.0]])
    cam = world @ calib.R.T + calib.t
    uv, _ = cv2.projectPoints(world, cv2.Rodrigues(calib.R)[0], calib.t, calib.K, None)
    np.testing.assert_allclose(cam[:, :2] / cam[:, 2:] @ calib.K[:2, :2].T + calib.K[:2, 2],
                               uv.reshape(-1, 2), atol=1e-6)  # fmt: skip


def test_undistort_inverts_the_lens() -> None:
    K = np.array([[1000.0, 0.0, 540.0], [0.0, 1000.0, 960.0], [0.0, 0.0, 1.0]])
    dist = np.array([-0.05, 0.14, 0.0006, 0.0007])
    ideal = np.array([[100.0, 200.0], [540.0, 960.0], [np.nan, np.nan], [1000.0, 1800.0]])
    rays = np.c_[(ideal - K[:2, 2]) / 1000.0, np.ones(4)]
    seen, _ = cv2.projectPoints(np.nan_to_num(rays), np.zeros(3), np.zeros(3), K, dist)
    seen = seen.reshape(-1, 2)
    seen[2] = np.nan
    assert np.nanmax(np.abs(seen - ideal)) > 5.0  # the lens moves the border points
    np.testing.assert_allclose(undistort(seen, K, dist), ideal, atol=0.05)


def test_pose2sim_toml_round_trips(tmp_path: Path) -> None:
    path = write_pose2sim_toml(tmp_path / "Calib_board.toml", {"cam_01": K1, "cam_02": 2 * K1})
    by_name = read_calibration(path, "cam01")
    np.testing.assert_array_equal(by_name.K, K1)
    assert by_name.size == (1088, 1920)
    np.testing.assert_array_equal(by_name.dist, [-0.05, 0.14, 0.0006, 0.0007])
    np.testing.assert_allclose(cv2.Rodrigues(by_name.R)[0].ravel(), [1.2, -0.3, 0.4])
    np.testing.assert_array_equal(by_name.t, [0.5, 1.1, 3.2])
    np.testing.assert_array_equal(read_calibration(path, "cam_02").K[:2], 2 * K1[:2])
    single = write_pose2sim_toml(tmp_path / "Calib_one.toml", {"cam_01": K1})
    np.testing.assert_array_equal(read_calibration(single, None).K, K1)


def test_k_follows_the_frame_size() -> None:
    calib = Intrinsics(K1, (1088, 1920), np.zeros(4))
    np.testing.assert_array_equal(camera_matrix((1088, 1920), 60.0, calib), K1)
    half = camera_matrix((544, 960), 60.0, calib)
    np.testing.assert_allclose(half, np.diag([0.5, 0.5, 1.0]) @ K1)
    # the demo videos are 1080 wide: codec padding of the 1088-px sensor window, same K
    np.testing.assert_array_equal(camera_matrix((1080, 1920), 60.0, calib), K1)
    with pytest.raises(ValueError, match=r"rotated by 90 degrees .* leave out --calibration"):
        camera_matrix((1920, 1088), 60.0, calib)
    with pytest.raises(ValueError, match="another aspect ratio than the calibration"):
        camera_matrix((1088, 1088), 60.0, calib)


def test_fov_default_is_the_old_pinhole() -> None:
    f = 0.5 * 1920 / np.tan(np.radians(60.0) / 2)
    expected = np.array([[f, 0, 960.0], [0, f, 540.0], [0, 0, 1]])
    np.testing.assert_array_equal(camera_matrix((1920, 1080), 60.0, None), expected)


@pytest.mark.parametrize(
    ("name", "camera", "words"),
    [
        ("demo", "cam09", "camera 'cam09' is not in"),
        ("demo", None, "has 4 cameras (cam01, cam02, cam03, cam04): pass --calibration-camera"),
        ("missing.toml", None, "calibration file not found"),
        ("calib.json", None, "unsupported calibration file"),
        ("no_matrix.toml", None, "has no usable intrinsics (missing 'matrix')"),
    ],
)
def test_bad_calibrations_are_one_line_errors(
    tmp_path: Path, name: str, camera: str | None, words: str
) -> None:
    path = DEMO_QCA if name == "demo" else tmp_path / name
    if name in ("calib.json", "no_matrix.toml"):
        path.write_text('[cam_01]\nname = "cam01"\nsize = [ 1088.0, 1920.0]\n')
    with pytest.raises(ValueError) as info:
        read_calibration(path, camera)
    message = str(info.value)
    assert words in message and "\n" not in message


def test_root_translation_uses_fx_fy_and_the_principal_point() -> None:
    K = np.array([[1400.0, 0.0, 500.0], [0.0, 1450.0, 980.0], [0.0, 0.0, 1.0]])
    skeleton = np.random.default_rng(3).normal(0.0, 0.3, (21, 3))
    t = np.array([0.2, -0.1, 4.0])
    cam = skeleton + t
    uv = cam[:, :2] / cam[:, 2:] * K[[0, 1], [0, 1]] + K[:2, 2]
    np.testing.assert_allclose(root_translation(skeleton, uv, np.ones(21), K), t, atol=1e-9)


def test_cli_rejects_a_missing_calibration_before_processing(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_offline("--demo", "--output", out, "--calibration", tmp_path / "nope.toml")
    assert result.returncode == 2
    assert_clean_failure(result, "calibration file not found", out)
