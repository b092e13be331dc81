"""The lift stage end to end with stand-in ONNX models that output fixed orientations."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from core.intrinsics import focal_length_px
from core.packet import Packet
from models.fusion import fuse
from models.pof_onnx import PofOnnx
from models.skeleton import (
    HIPS,
    LIMB_NAMES,
    MEDIAPIPE_INDEX,
    N_LIMBS,
    J,
    limb_vectors,
    mid_hip,
    unit,
)
from models.training.camera import look_at, project
from models.training.fit_fusion import fit_weights, write_weights
from models.training.mocap import load_clips, split
from stages.lift import PofLift
from stream.config import load_config, with_overrides
from tests.data import MOCAP_FIXTURE_DIR

SIZE = (1280, 720)


def constant_model(path: Path, pof: np.ndarray) -> None:
    """An ONNX graph with the POF model's signature that always returns ``pof``."""
    batch_shape = [
        helper.make_node("Shape", ["features"], ["shape"], end=1),
        helper.make_node("Concat", ["shape", "tail3"], ["shape3"], axis=0),
        helper.make_node("Concat", ["shape", "tail1"], ["shape1"], axis=0),
        helper.make_node("Expand", ["const_pof", "shape3"], ["pof"]),
        helper.make_node("Expand", ["const_z", "shape1"], ["z_logit"]),
    ]
    inits = [
        numpy_helper.from_array(pof[None].astype(np.float32), "const_pof"),
        numpy_helper.from_array(
            np.where(pof[None, :, 2] > 0, 5.0, -5.0).astype(np.float32), "const_z"
        ),
        numpy_helper.from_array(np.array([N_LIMBS, 3], np.int64), "tail3"),
        numpy_helper.from_array(np.array([N_LIMBS], np.int64), "tail1"),
    ]
    graph = helper.make_graph(
        batch_shape, "constant_pof",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["b", N_LIMBS, 11]),
         helper.make_tensor_value_info("prior", TensorProto.FLOAT, ["b", N_LIMBS, 4])],
        [helper.make_tensor_value_info("pof", TensorProto.FLOAT, ["b", N_LIMBS, 3]),
         helper.make_tensor_value_info("z_logit", TensorProto.FLOAT, ["b", N_LIMBS])],
        inits,
    )  # fmt: skip
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A held-out mocap pose seen by a 60-degree camera: camera-frame joints, K, pixels."""
    pose = split(load_clips(MOCAP_FIXTURE_DIR))[1][0].joints[10].astype(np.float64)
    eye = pose[HIPS].mean(0) + [1.0, 0.3, 3.5]
    R = look_at(eye[None], pose[HIPS].mean(0)[None], np.zeros(1))[0]
    cam = (pose - eye) @ R.T
    f = focal_length_px(SIZE, 60.0)
    K = np.array([[f, 0, SIZE[0] / 2], [0, f, SIZE[1] / 2], [0, 0, 1]])
    return cam, K, project(cam[None, None], K[None])[0, 0]


def person_packet(uv: np.ndarray, world17: np.ndarray) -> Packet:
    packet = Packet("cam", 0, 0, 0.0, SIZE)
    packet.data["landmarks_2d"] = np.full((33, 2), np.nan)
    packet.data["landmarks_2d"][MEDIAPIPE_INDEX] = uv
    packet.data["visibility"] = np.full(33, 0.95)
    packet.data["world_3d"] = np.zeros((33, 3))
    packet.data["world_3d"][MEDIAPIPE_INDEX] = world17
    packet.meta["person"] = True
    return packet


def limb_errors_deg(joints: np.ndarray, truth: np.ndarray) -> np.ndarray:
    got = unit(limb_vectors(joints))
    return np.degrees(np.arccos(np.clip((got * truth).sum(-1), -1, 1)))


def test_lift_stage(tmp_path: Path) -> None:
    cam, K, uv = scene()
    truth = unit(limb_vectors(cam))
    constant_model(tmp_path / "pof.onnx", truth)

    stage = PofLift()
    stage.setup(with_overrides(load_config(), {"lift.model": str(tmp_path / "pof.onnx")}))
    out = stage(person_packet(uv, np.zeros((len(MEDIAPIPE_INDEX), 3))))
    world = out.data["world_3d"][MEDIAPIPE_INDEX]
    assert limb_errors_deg(world, truth).max() < 5
    np.testing.assert_allclose(world[HIPS].mean(0), 0, atol=1e-9)

    empty = Packet("cam", 1, 0, 0.0, SIZE, meta={"person": False})
    assert stage(empty) is empty  # nobody in view: passed on, temporal prior reset
    stage.close()


def test_fusion_weights_in_the_model_pick_the_source_per_limb(tmp_path: Path) -> None:
    """A network wrong on the thighs, MediaPipe right there and wrong elsewhere: weights
    0 on thighs and 1 elsewhere give the truth everywhere."""
    cam, K, uv = scene()
    truth = unit(limb_vectors(cam))
    thighs = [LIMB_NAMES.index(("LHip", "LKnee")), LIMB_NAMES.index(("RHip", "RKnee"))]
    wrong = truth.copy()
    wrong[thighs] = unit(truth[thighs] * [1.0, 1.0, -1.0] + [0.3, 0.0, 0.0])
    constant_model(tmp_path / "pof.onnx", wrong)
    weights = np.ones(N_LIMBS)
    weights[thighs] = 0.0
    write_weights(tmp_path / "pof.onnx", weights)
    np.testing.assert_array_equal(PofOnnx(tmp_path / "pof.onnx").pof_weight, weights)

    mediapipe = cam - cam[HIPS].mean(0)
    mediapipe[[J["LWrist"], J["RWrist"]]] += [0.0, 0.0, 0.3]  # MediaPipe's forearm depth
    stage = PofLift()
    stage.setup(with_overrides(load_config(), {"lift.model": str(tmp_path / "pof.onnx")}))
    world = stage(person_packet(uv, mediapipe)).data["world_3d"][MEDIAPIPE_INDEX]
    assert limb_errors_deg(world, truth).max() < 5
    stage.close()


def test_fit_weights_follow_inverse_variance() -> None:
    err_pof = np.array([[1.0, 4.0], [1.0, 4.0]])
    err_mp = np.array([[1.0, 2.0], [1.0, 2.0]])
    np.testing.assert_allclose(fit_weights(err_pof, err_mp), [0.5, 0.2])
    a, b = unit(np.array([[1.0, 0, 0]])), unit(np.array([[0, 1.0, 0]]))
    np.testing.assert_allclose(fuse(a, b, np.array([1.0])), a)
    np.testing.assert_allclose(fuse(a, b, np.array([0.5])), unit(np.array([[1.0, 1.0, 0]])))


def test_lift_mediapipe_passes_mediapipe_3d_through(config, tmp_path: Path) -> None:
    """--lift mediapipe: the stage changes nothing and loads no model (none exists here)."""
    stage = PofLift()
    missing = str(tmp_path / "absent.onnx")
    stage.setup(with_overrides(config, {"lift.method": "mediapipe", "lift.model": missing}))
    cam, K, uv = scene()
    packet = person_packet(uv, cam - cam[HIPS].mean(0))
    before = copy.deepcopy(packet.data)
    out = stage(packet)
    assert out.data.keys() == before.keys()
    for key, value in before.items():
        np.testing.assert_array_equal(out.data[key], value)


def test_mid_hip_is_the_hips_mean_bit_for_bit() -> None:
    """The root the lift and the fit subtract equals numpy's mean of the two hips exactly."""
    joints = np.random.default_rng(2).normal(0, 2, (300, len(J), 3))
    for frame in joints:
        assert mid_hip(frame).tobytes() == frame[HIPS].mean(0).tobytes()
    assert len(joints) == 300
