"""The stateful LSTM augmenter equals Pose2Sim's whole-sequence run and handles gaps."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from core.marker_sets import (
    AUGMENT_LOWER_OUTPUTS,
    MARKERS_21,
    MARKERS_64,
    indices,
)
from core.packet import Packet
from stages.augment import HIP, Augment, AugmenterModel
from tests.data import MOCAP_FIXTURE_DIR

FPS = 30.0
TOLERANCE_M = 1e-5
LOWER_ROWS = indices(AUGMENT_LOWER_OUTPUTS, MARKERS_64)
AUGMENTED = slice(len(MARKERS_21), len(MARKERS_64))
M = {name: i for i, name in enumerate(MARKERS_21)}


@pytest.fixture(scope="module")
def models() -> dict[str, AugmenterModel]:
    return {part: AugmenterModel.from_package(part) for part in ("lower", "upper")}


def make_stage(config: dict[str, Any]) -> Augment:
    stage = Augment()
    stage.setup(config)
    return stage


def run_one(
    stage: Augment, markers: np.ndarray, source_id: str, index: int
) -> tuple[np.ndarray, np.ndarray]:
    """One frame through the stage: markers_64 (64, 3) and markers_64_estimated (64,)."""
    packet = Packet(source_id, index, 0, index / FPS, (640, 480), data={"markers_21": markers})
    packet = stage.process(packet)
    return packet.data["markers_64"], packet.data["markers_64_estimated"]


def run(stage: Augment, frames: np.ndarray, source_id: str = "s") -> tuple[np.ndarray, np.ndarray]:
    """Feed (T, 21, 3) markers frame by frame; return markers_64 (T, 64, 3) and the flags."""
    results = [run_one(stage, markers, source_id, i) for i, markers in enumerate(frames)]
    return np.array([r[0] for r in results]), np.array([r[1] for r in results])


def onnx_sequence(model: AugmenterModel, inputs: np.ndarray) -> np.ndarray:
    """Pose2Sim's whole-sequence onnxruntime run, the reference: (T, F) -> (T, n_out, 3)."""
    session = ort.InferenceSession(
        str(model.model_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    batch = np.asarray(inputs, dtype=np.float32)[None]
    (out,) = session.run(None, {session.get_inputs()[0].name: batch})
    return out[0].astype(np.float64).reshape(len(inputs), -1, 3)


def onnx_reference(
    models: dict[str, AugmenterModel], frames: np.ndarray, height: float, mass: float
) -> np.ndarray:
    """Augmented markers (T, 43, 3) computed the way Pose2Sim does, whole sequence at once."""
    hip = frames[:, HIP]
    parts = []
    for model in models.values():
        relative = frames[:, indices(model.inputs)] - hip[:, None]
        n = len(frames)
        inputs = np.hstack(
            [relative.reshape(n, -1) / height, np.full((n, 1), height), np.full((n, 1), mass)]
        )
        out = onnx_sequence(model, (inputs - model.mean) / model.std)
        parts.append(out * height + hip[:, None])
    return np.concatenate(parts, axis=1)


def synthetic_walk(n_frames: int, speed: float = 1.2, phase: float = 0.0) -> np.ndarray:
    """A smooth walking-like 21-marker sequence (Y up, walking along +X, right = +Z)."""
    t = np.arange(n_frames) / FPS
    phi = 2 * np.pi * 0.9 * t + phase
    m = np.zeros((n_frames, 21, 3))
    hip = np.stack([speed * t, 0.95 + 0.02 * np.cos(2 * phi), 0.01 * np.sin(phi)], axis=1)
    m[:, M["Hip"]] = hip
    for side, sign, offset in (("R", 1.0, 0.0), ("L", -1.0, np.pi)):
        swing = 0.4 * np.sin(phi + offset)
        knee_flex = 0.35 * (1 - np.cos(phi + offset))
        lateral = np.array([0.0, 0.0, sign])
        joint = hip + 0.09 * lateral
        knee = joint + 0.43 * np.stack([np.sin(swing), -np.cos(swing), 0 * t], axis=1)
        shank = swing - knee_flex
        ankle = knee + 0.42 * np.stack([np.sin(shank), -np.cos(shank), 0 * t], axis=1)
        shoulder = hip + [0.0, 0.5, 0.0] + 0.18 * lateral
        arm = -0.5 * swing
        elbow = shoulder + 0.28 * np.stack([np.sin(arm), -np.cos(arm), 0 * t], axis=1)
        forearm = arm + 0.3
        m[:, M[side + "Hip"]] = joint
        m[:, M[side + "Knee"]] = knee
        m[:, M[side + "Ankle"]] = ankle
        m[:, M[side + "Heel"]] = ankle + [-0.05, -0.06, 0.0]
        m[:, M[side + "BigToe"]] = ankle + [0.17, -0.07, 0.0]
        m[:, M[side + "SmallToe"]] = ankle + [0.14, -0.07, 0.05 * sign]
        m[:, M[side + "Shoulder"]] = shoulder
        m[:, M[side + "Elbow"]] = elbow
        m[:, M[side + "Wrist"]] = elbow + 0.25 * np.stack(
            [np.sin(forearm), -np.cos(forearm), 0 * t], axis=1
        )
    m[:, M["Neck"]] = (m[:, M["RShoulder"]] + m[:, M["LShoulder"]]) / 2
    m[:, M["Nose"]] = m[:, M["Neck"]] + [0.08, 0.2, 0.0]
    return m


def cmu_markers(path: str) -> np.ndarray:
    """The 21 markers from a ``cmu_asf31`` clip; heels and small toes are approximated."""
    clip = np.load(MOCAP_FIXTURE_DIR / path)
    assert str(clip["skeleton"]) == "cmu_asf31"
    j = {
        name: clip["joints"][:, k].astype(np.float64) for k, name in enumerate(clip["joint_names"])
    }
    m = np.zeros((len(clip["joints"]), 21, 3))
    for side, s in (("R", "r_"), ("L", "l_")):
        for marker in ("Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle"):
            m[:, M[side + marker]] = j[s + marker.lower()]
        ankle, ball = j[s + "ankle"], j[s + "toe_base"]
        heel = ankle - 0.3 * (ball - ankle)
        heel[:, 1] = ball[:, 1]
        m[:, M[side + "Heel"]] = heel
        m[:, M[side + "BigToe"]] = j[s + "toe_tip"]
        m[:, M[side + "SmallToe"]] = ball
    m[:, M["Neck"]] = (j["r_shoulder"] + j["l_shoulder"]) / 2
    m[:, M["Hip"]] = (j["r_hip"] + j["l_hip"]) / 2
    m[:, M["Nose"]] = (j["neck_upper"] + j["head_top"]) / 2
    return m


def assert_matches_onnx(
    frames: np.ndarray, config: dict[str, Any], models: dict[str, AugmenterModel]
) -> float:
    """Run the stage over complete markers; check it against onnxruntime; return the error."""
    height, mass = config["subject"]["height"], config["subject"]["mass"]
    out, flags = run(make_stage(config), frames)
    reference = onnx_reference(models, frames, height, mass)
    error = float(np.abs(out[:, AUGMENTED] - reference).max())
    assert error < TOLERANCE_M, f"stepped LSTM differs from onnxruntime by {error:.2e} m"
    np.testing.assert_array_equal(out[:, : len(MARKERS_21)], frames)
    assert flags[:, AUGMENTED].all() and not flags[:, : len(MARKERS_21)].any()
    return error


def test_stepping_matches_onnx_on_real_mocap(config, models) -> None:
    frames = cmu_markers("cmu_002_05.npz")[:400]  # punch/strike: arms and stepping
    error = assert_matches_onnx(frames, config, models)
    print(f"max |stepped - onnxruntime| on real mocap: {error:.2e} m")


def test_stepping_matches_onnx_on_synthetic_walk(config, models) -> None:
    error = assert_matches_onnx(synthetic_walk(300), config, models)
    print(f"max |stepped - onnxruntime| on a synthetic walk: {error:.2e} m")


def test_gaps_hold_markers_and_reset_state(config) -> None:
    max_gap = config["augment"]["max_gap_frames"]
    frames = synthetic_walk(200)
    short_gap = np.arange(40, 40 + max_gap)  # not long enough to reset
    long_gap = np.arange(120, 120 + max_gap + 1)
    wrist_missing = np.arange(70, 80)
    frames[short_gap] = np.nan
    frames[long_gap] = np.nan
    frames[wrist_missing, M["LWrist"]] = np.nan
    out, flags = run(make_stage(config), frames)

    no_person = np.concatenate([short_gap, long_gap])
    assert np.isnan(out[no_person]).all() and not flags[no_person].any()
    seen = np.setdiff1d(np.arange(len(frames)), no_person)
    assert np.isfinite(out[seen]).all()
    assert flags[seen][:, AUGMENTED].all()

    wrist_rel = frames[wrist_missing[0] - 1, M["LWrist"]] - frames[wrist_missing[0] - 1, HIP]
    np.testing.assert_allclose(
        out[wrist_missing, M["LWrist"]], frames[wrist_missing, HIP] + wrist_rel
    )
    expected_inputs = np.zeros((len(seen), 21), bool)
    expected_inputs[np.isin(seen, wrist_missing), M["LWrist"]] = True
    np.testing.assert_array_equal(flags[seen, : len(MARKERS_21)], expected_inputs)

    # A short gap keeps the state: as if the gap frames had never been sent.
    before_long = np.setdiff1d(np.arange(long_gap[0]), short_gap)
    kept, _ = run(make_stage(config), frames[before_long])
    np.testing.assert_allclose(out[before_long], kept, rtol=0, atol=1e-12)
    # A long gap resets it: the same as a fresh stage starting after the gap.
    after_long = np.arange(long_gap[-1] + 1, len(frames))
    fresh, _ = run(make_stage(config), frames[after_long])
    np.testing.assert_allclose(out[after_long], fresh, rtol=0, atol=1e-12)


def test_network_waits_for_every_feature_marker(config) -> None:
    frames = synthetic_walk(60)
    frames[:5, [M["RHeel"], M["LHeel"]]] = np.nan  # never seen, not mirrorable: no step
    legs = [M[s + m] for s in "RL" for m in ("Hip", "Knee", "Ankle", "Heel", "BigToe")]
    frames[30, legs] = np.nan  # 5 of 15 lower features left: no person for that network
    out, flags = run(make_stage(config), frames)

    for frame in (*range(5), 30):
        assert np.isnan(out[frame, LOWER_ROWS]).all() and not flags[frame, LOWER_ROWS].any()
    upper_rows = np.setdiff1d(np.arange(len(MARKERS_21), len(MARKERS_64)), LOWER_ROWS)
    assert np.isfinite(out[:, upper_rows]).all()
    fresh, _ = run(make_stage(config), np.delete(frames[5:], 30 - 5, axis=0))
    np.testing.assert_allclose(
        np.delete(out[5:, LOWER_ROWS], 30 - 5, axis=0), fresh[:, LOWER_ROWS], rtol=0, atol=1e-12
    )


def test_never_seen_marker_starts_mirrored(config) -> None:
    frames = synthetic_walk(20)
    frames[:5, M["RHeel"]] = np.nan  # never seen yet, but its partner is visible
    out, flags = run(make_stage(config), frames)
    assert np.isfinite(out[:, LOWER_ROWS]).all()
    assert flags[:5, M["RHeel"]].all() and not flags[5:, M["RHeel"]].any()
    hip = frames[0, M["Hip"]]
    lateral = frames[0, M["RHip"]] - frames[0, M["LHip"]]
    lateral /= np.linalg.norm(lateral)
    mirrored_x = (frames[0, M["LHeel"]] - hip) @ lateral
    assert (out[0, M["RHeel"]] - hip) @ lateral == pytest.approx(-mirrored_x)


def test_sources_keep_separate_state(config) -> None:
    walks = {"a": synthetic_walk(90), "b": synthetic_walk(90, speed=0.8, phase=1.0)}
    alone = {name: run(make_stage(config), frames, name)[0] for name, frames in walks.items()}
    stage = make_stage(config)
    mixed: dict[str, list[np.ndarray]] = {"a": [], "b": []}
    for i in range(90):
        for name, frames in walks.items():
            out, _ = run_one(stage, frames[i], name, i)
            mixed[name].append(out)
    for name in walks:
        np.testing.assert_array_equal(np.array(mixed[name]), alone[name])

    stage.reset("a")
    restarted, _ = run(stage, walks["a"], "a")
    np.testing.assert_array_equal(restarted, alone["a"])


def test_upstream_estimates_are_kept(config) -> None:
    stage = make_stage(config)
    markers = synthetic_walk(1)[0]
    upstream = np.zeros(21, bool)
    upstream[[M["RSmallToe"], M["LSmallToe"]]] = True
    packet = Packet("s", 0, 0, 0.0, (640, 480), data={"markers_21": markers})
    packet.data["markers_21_estimated"] = upstream
    flags = stage.process(packet).data["markers_64_estimated"]
    np.testing.assert_array_equal(flags[: len(MARKERS_21)], upstream)
    assert flags[AUGMENTED].all()
