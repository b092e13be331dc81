"""The accuracy figures (models/training/accuracy.py) on real mocap poses with known errors,
and the measurement script's guards: no MediaPipe, fast."""

from __future__ import annotations

import numpy as np
import pytest

from core.packet import Packet
from models.skeleton import FLIP_JOINTS, LIMB_NAMES, MEDIAPIPE_INDEX, J, limb_vectors, unit
from models.training import measure_accuracy
from models.training.accuracy import (
    Clip,
    block_resamples,
    bootstrap,
    flexion,
    relabelled,
    vertical_error,
)
from models.training.evaluate import direction_flexion, flexion_bias
from models.training.mocap import load_clips
from models.training.multiview import demo_cameras, triangulate_others, unlabelled_residual
from tests.data import MOCAP_FIXTURE_DIR

Z_UP = np.array([0.0, 0.0, 1.0])
Y_UP_TO_Z_UP = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # a +90 degree turn about X


def rotation(axis: np.ndarray, deg: float) -> np.ndarray:
    """Rodrigues: the rotation by ``deg`` about ``axis``."""
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    a = np.radians(deg)
    return np.eye(3) + np.sin(a) * K + (1 - np.cos(a)) * K @ K


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    """(T, 17, 3) real motion (a CMU clip of the fixture) in a Z-up world, metres."""
    joints = max(load_clips(MOCAP_FIXTURE_DIR), key=lambda c: len(c.joints)).joints
    return joints.astype(np.float64)[:200] @ Y_UP_TO_Z_UP.T


def as_output(truth: np.ndarray, tilt_deg: float = 0.0, heading_deg: float = 0.0) -> np.ndarray:
    """The truth as a pipeline would give it: in a lab frame whose Y axis leans
    ``tilt_deg`` from the true up, turned by ``heading_deg``, shifted to the camera."""
    lab_to_world = rotation(Z_UP, heading_deg) @ rotation([1.0, 0, 0], tilt_deg) @ Y_UP_TO_Z_UP
    return truth @ lab_to_world + np.array([0.3, -1.2, -4.0])


def test_a_rotated_output_has_no_error_after_the_clip_rotation(truth) -> None:
    figures = Clip.of(as_output(truth, heading_deg=137.0), truth, Z_UP).figures()
    assert figures["limb_deg"] < 1e-4
    for name in ("knee", "hip", "elbow"):
        assert figures[f"{name}_rmse_deg"] < 1e-4
    assert figures["vertical_deg"] < 1e-4
    assert figures["swap_body_pct"] == figures["swap_arms_pct"] == figures["swap_legs_pct"] == 0


@pytest.mark.parametrize("tilt", [5.0, 21.0, 34.0])
def test_a_tilted_lab_frame_gives_its_tilt_as_vertical_error(truth, tilt: float) -> None:
    figures = Clip.of(as_output(truth, tilt, heading_deg=-60.0), truth, Z_UP).figures()
    assert figures["vertical_deg"] == pytest.approx(tilt, abs=1e-4)
    assert figures["limb_deg"] < 1e-4  # the tilt is the frame's, not the pose's


def test_a_reported_output_up_is_measured_directly(truth) -> None:
    """The pipeline's own camera -> lab transform gives the vertical error frame by frame,
    whatever the pose's errors: half the frames 10 deg off, half exact -> 5 deg."""
    lean = rotation([1.0, 0, 0], 10.0) @ Z_UP
    output_up = np.where(np.arange(len(truth))[:, None] % 2 == 0, lean, Z_UP)
    clip = Clip.of(as_output(truth, 30.0), truth, Z_UP, output_up)
    assert clip.figures()["vertical_deg"] == pytest.approx(5.0, abs=1e-6)


def test_vertical_error_of_a_known_rotation() -> None:
    assert vertical_error(np.eye(3), Z_UP) == pytest.approx(90.0)
    assert vertical_error(Y_UP_TO_Z_UP, Z_UP) == pytest.approx(0.0, abs=1e-9)


def test_injected_swaps_are_counted_by_kind(truth) -> None:
    out = as_output(truth, 20.0, heading_deg=45.0)
    injected = {"body": range(20, 60), "arms": range(100, 112), "legs": range(150, 158)}
    for part, frames in injected.items():
        out[list(frames)] = out[list(frames)][:, relabelled(part)]
    clip = Clip.of(out, truth, Z_UP)
    for part, frames in injected.items():
        assert np.flatnonzero(clip.swaps[part]).tolist() == list(frames), part
    figures = clip.figures()
    assert figures["swap_body_pct"] == pytest.approx(100 * 40 / len(truth))
    assert figures["limb_deg"] > 5  # the swapped frames count as errors


def test_flexion_sides_tell_which_side_is_off(truth) -> None:
    """Left and right given each other's labels: each side's output is the other side's
    reference and the biases are their difference; the output as it is has none."""
    swapped = measure_accuracy.flexion_sides(as_output(truth)[:, relabelled("body")], truth)
    same = measure_accuracy.flexion_sides(as_output(truth, heading_deg=40.0), truth)
    for name in ("knee", "hip", "elbow"):
        flex = swapped[name]
        assert flex["output_median"] == flex["reference_median"][::-1]
        assert flex["bias"][0] == pytest.approx(-flex["bias"][1], abs=0.11)
        assert same[name]["bias"] == [0.0, 0.0]
        assert same[name]["output_median"] == same[name]["reference_median"]
    assert abs(swapped["elbow"]["bias"][0]) > 1.0, "the clip's elbows differ: a test that can fail"


def test_relabelling_exchanges_only_its_part() -> None:
    assert (relabelled("body") == FLIP_JOINTS).all()
    arms = relabelled("arms")
    assert arms[J["LElbow"]] == J["RElbow"] and arms[J["RWrist"]] == J["LWrist"]
    assert arms[J["LShoulder"]] == J["LShoulder"] and arms[J["LKnee"]] == J["LKnee"]
    legs = relabelled("legs")
    assert legs[J["LKnee"]] == J["RKnee"] and legs[J["RBigToe"]] == J["LBigToe"]
    assert legs[J["LHip"]] == J["LHip"] and legs[J["LElbow"]] == J["LElbow"]


def noisy_clip(truth: np.ndarray, frames: int, seed: int) -> Clip:
    """A clip of ``frames`` frames (the motion repeated) with 3 cm joint noise."""
    reps = -(-frames // len(truth))
    long = np.concatenate([truth] * reps)[:frames]
    out = as_output(long, 12.0) + np.random.default_rng(seed).normal(0, 0.03, long.shape)
    return Clip.of(out, long, Z_UP)


def test_bootstrap_intervals_hold_the_mean_and_shrink_with_more_frames(truth) -> None:
    widths = []
    for frames in (100, 800):
        result = bootstrap({"cam01": noisy_clip(truth, frames, seed=1)}, 10, 300, seed=0)
        for camera in ("cam01", "overall"):
            for name, fig in result[camera].items():
                if not name.startswith("swap"):
                    assert fig["lo"] <= fig["mean"] <= fig["hi"], (frames, camera, name)
        assert result["overall"] == result["cam01"]  # the mean of one camera is that camera
        widths.append(result["cam01"]["limb_deg"]["hi"] - result["cam01"]["limb_deg"]["lo"])
    assert widths[1] < 0.6 * widths[0]


def test_bootstrap_is_repeatable_and_overall_is_the_mean_of_cameras(truth) -> None:
    clips = {"cam01": noisy_clip(truth, 150, 1), "cam02": noisy_clip(truth[::-1], 90, 2)}
    first, again = bootstrap(clips, 10, 100, seed=3), bootstrap(clips, 10, 100, seed=3)
    assert first == again
    mean = 0.5 * (first["cam01"]["limb_deg"]["mean"] + first["cam02"]["limb_deg"]["mean"])
    assert first["overall"]["limb_deg"]["mean"] == pytest.approx(mean)


def test_block_resamples_are_runs_of_consecutive_frames() -> None:
    idx = block_resamples(95, 10, 50, np.random.default_rng(0))
    assert idx.shape == (50, 95)
    assert idx.min() >= 0 and idx.max() < 95
    runs = idx[:, :90].reshape(50, 9, 10)
    assert (np.diff(runs, axis=-1) == 1).all()
    assert len(np.unique(idx[:, 0])) > 5  # the starts vary


def test_the_reference_outvotes_a_view_with_left_and_right_exchanged(truth) -> None:
    """The demo's four cameras see exact 2D of a real pose; one view has its labels
    exchanged. The other views' triangulation must still be the pose (the plain first
    consistent pair can take the swapped view and be off by decimetres)."""
    cams = demo_cameras("Demo_SinglePerson")
    poses = truth[::25] - [*truth[:, :, :2].mean((0, 1)), truth[..., 2].min()]  # feet on Z=0
    uv = np.stack([np.stack([cam.project(X) for X in poses]) for cam in cams])
    vis = np.ones(uv.shape[:3])
    uv[0] = uv[0][:, FLIP_JOINTS]  # cam01 swapped in every frame
    plain_worst = 0.0
    for target in (1, 2, 3):
        for f, X in enumerate(poses):
            found = triangulate_others(cams, uv, vis, target, f, relabel=True)
            assert np.abs(found - X).max() < 1e-6, (target, f)
            plain = triangulate_others(cams, uv, vis, target, f)
            plain_worst = max(plain_worst, np.abs(plain - X).max())
    assert plain_worst > 0.1  # the defect relabel fixes
    assert unlabelled_residual(cams[0], poses[0], uv[0, 0]) < 1e-6  # the same person


def test_an_unknown_variant_key_stops_the_run_in_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setitem(measure_accuracy.VARIANTS, "future", {"no_such_stage.enabled": True})
    code = measure_accuracy.main(["--demo", "Demo_MultiPerson", "--variants", "future",
                                  "--verbose"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: unknown section [no_such_stage]")
    assert "variant 'future'" in err


def test_detected_packets_survive_the_cache(tmp_path) -> None:
    packets = [
        Packet("cam01", i, 0, i / 60, (1080, 1920), None,
               {"landmarks_2d": np.full((33, 2), float(i)), "visibility": np.ones(33)},
               {"fps": 60.0, "person": i % 2 == 0, "person_lock": "held"})
        for i in range(3)
    ]  # fmt: skip
    path = tmp_path / "detect.npz"
    measure_accuracy.save_packets(path, packets)
    back = measure_accuracy.load_packets(path)
    assert [p.frame_index for p in back] == [0, 1, 2]
    for a, b in zip(packets, back, strict=True):
        assert (a.source_id, a.media_time_s, a.image_size, a.meta) == (
            b.source_id, b.media_time_s, b.image_size, b.meta)  # fmt: skip
        assert all((a.data[k] == b.data[k]).all() for k in a.data)
    assert list(tmp_path.iterdir()) == [path]


def test_frame_runs() -> None:
    assert measure_accuracy.frame_runs([3, 4, 5, 9, 11, 12]) == "3-5, 9, 11-12"


def test_reference_2d_puts_the_references_reprojection_where_a_camera_is_measured(truth) -> None:
    """--reference-2d: the measured camera's keypoints become the reprojection of the other
    cameras' triangulation (here the exact pose, since the views are exact); a frame
    without a person keeps what it had."""
    cams = demo_cameras("Demo_SinglePerson")
    poses = truth[::40] - [*truth[:, :, :2].mean((0, 1)), truth[..., 2].min()]
    uv = np.stack([np.stack([cam.project(X) for X in poses]) for cam in cams])
    det = {"uv": uv, "vis": np.ones(uv.shape[:3])}
    packets = []
    for f in range(len(poses)):
        landmarks = np.zeros((33, 2))
        landmarks[MEDIAPIPE_INDEX] = uv[0, f] + 7.0  # MediaPipe's 2D, 7 px off
        packets.append(Packet("cam01", f, 0, f / 60, (1088, 1920), None,
                              {"landmarks_2d": landmarks}, {"person": f != 2}))  # fmt: skip
    measure_accuracy.replace_2d_by_reference(cams, det, 0, packets)
    for f, p in enumerate(packets):
        got = p.data["landmarks_2d"][MEDIAPIPE_INDEX]
        want = uv[0, f] + (7.0 if f == 2 else 0.0)
        np.testing.assert_allclose(got, want, atol=1e-6)


def test_flexion_from_limb_directions_is_the_three_point_angle_and_its_bias_by_bin(truth) -> None:
    """evaluate.py's regression-to-the-mean breakdown: the angle between two limb directions
    is the joints' 3-point angle, and a network that bends every joint 10 deg more shows
    -10 in every true-angle bin."""
    dirs = unit(limb_vectors(truth))
    for name in ("knee", "elbow"):
        np.testing.assert_allclose(direction_flexion(dirs, name), flexion(truth, name), atol=1e-6)
    bent = dirs.copy()
    for s in "LR":  # turn each shank 10 deg further about its knee's hinge axis
        thigh = dirs[:, LIMB_NAMES.index((s + "Hip", s + "Knee"))]
        i = LIMB_NAMES.index((s + "Knee", s + "Ankle"))
        axis = unit(np.cross(thigh, dirs[:, i]))
        bent[:, i] = [rotation(k, 10.0) @ v for k, v in zip(axis, dirs[:, i], strict=True)]
    bias = flexion_bias(bent, dirs)["knee"]
    assert bias and all(b == pytest.approx(-10.0, abs=0.05) for b, _ in bias.values()), bias
    assert all(b == 0 for b, _ in flexion_bias(dirs, dirs)["elbow"].values())
