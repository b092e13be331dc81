"""The lift stage end to end with a stand-in ONNX model that outputs the true orientations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from models.camera import look_at, project
from models.mocap import load_clips, split
from models.skeleton import HIPS, MEDIAPIPE_INDEX, N_LIMBS, limb_vectors, unit
from stages.intrinsics import focal_length_px
from stages.lift import PofLift
from stream.packet import Packet

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


def test_lift_stage(tmp_path: Path) -> None:
    pose = split(load_clips())[1][0].joints[10].astype(np.float64)
    eye = pose[HIPS].mean(0) + [1.0, 0.3, 3.5]
    R = look_at(eye[None], pose[HIPS].mean(0)[None], np.zeros(1))[0]
    cam = (pose - eye) @ R.T
    f = focal_length_px(SIZE, 60.0)
    K = np.array([[f, 0, SIZE[0] / 2], [0, f, SIZE[1] / 2], [0, 0, 1]])
    uv = project(cam[None, None], K[None])[0, 0]
    truth = unit(limb_vectors(cam))
    constant_model(tmp_path / "pof.onnx", truth)

    stage = PofLift()
    config = {"lift": {"model": str(tmp_path / "pof.onnx")}, "markers": {"fov_deg": 60.0}}
    stage.setup(config)
    packet = Packet("cam", 0, 0, 0.0, SIZE)
    packet.data["landmarks_2d"] = np.full((33, 2), np.nan)
    packet.data["landmarks_2d"][MEDIAPIPE_INDEX] = uv
    packet.data["visibility"] = np.full(33, 0.95)
    packet.data["world_3d"] = np.zeros((33, 3))
    packet.meta["person"] = True
    out = stage(packet)
    joints = out.data["lift_camera"]
    assert (joints[:, 2] > 1).all()
    got = unit(limb_vectors(joints))
    assert np.degrees(np.arccos(np.clip((got * truth).sum(-1), -1, 1))).max() < 5
    world = out.data["world_3d"][MEDIAPIPE_INDEX]
    np.testing.assert_allclose(world[HIPS].mean(0), 0, atol=1e-9)
    assert (out.data["world_3d_mediapipe"] == 0).all()

    empty = Packet("cam", 1, 0, 0.0, SIZE, meta={"person": False})
    assert stage(empty) is empty  # nobody in view: passed on, temporal prior reset
    stage.close()
