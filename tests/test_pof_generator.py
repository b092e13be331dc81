"""Training-pair generator: exact geometry without noise, corruption matching its settings."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models.features import window_features
from models.skeleton import N_JOINTS, J, limb_vectors, unit
from models.training.camera import Cameras, look_at, project
from models.training.corruption import NoiseModel, corrupt, markov_runs, person_scale
from models.training.landmark_offsets import OFFSETS, TARGET, apply_offsets, ratios
from models.training.mocap import (
    HEEL_ALONG,
    HEEL_DOWN,
    VALIDATION_SUBJECTS,
    MocapError,
    heel_basis,
    load_clips,
    split,
)
from models.training.pairs import PairGenerator
from tests.data import MOCAP_FIXTURE_DIR

CLEAN = NoiseModel(
    sigma=np.zeros(N_JOINTS), outlier_p=0, swap_p=0, dropout_p=0, outside_dropout_p=0
)


@pytest.fixture(scope="module")
def clips():
    return load_clips(MOCAP_FIXTURE_DIR)


def test_split_keeps_subjects_on_one_side(clips) -> None:
    train, val = split(clips)
    assert train and val, "the fixture has clips on both sides of the split"
    assert {c.subject for c in val} <= VALIDATION_SUBJECTS
    assert not {c.subject for c in train} & {c.subject for c in val}


@pytest.mark.full_mocap
def test_split_holds_out_a_tenth_of_the_full_set(full_mocap_dir) -> None:
    clips = load_clips(full_mocap_dir)
    train, val = split(clips)
    assert {c.subject for c in val} == VALIDATION_SUBJECTS
    assert 0.09 < sum(len(c.joints) for c in val) / sum(len(c.joints) for c in clips) < 0.12


def test_load_clips_names_a_missing_or_empty_folder(tmp_path) -> None:
    with pytest.raises(MocapError, match="does not exist"):
        load_clips(tmp_path / "absent")
    with pytest.raises(MocapError, match="holds no .npz clips"):
        load_clips(tmp_path)


def test_heel_model_reproduces_measured_heels(clips) -> None:
    dm = [c for c in clips if c.skeleton == "deepmimic_humanoid_fixed"][:5]
    assert len(dm) == 5, "the fixture carries five DeepMimic clips (the layout with heels)"
    for clip in dm:
        j = clip.joints.astype(np.float64)
        for side in "LR":
            k = [J[side + p] for p in ("Ankle", "BigToe", "Knee", "Heel")]
            heel = j[:, k[0]] + heel_basis(j[:, k[0]], j[:, k[1]], j[:, k[2]]) @ [
                HEEL_ALONG,
                HEEL_DOWN,
            ]
            assert np.median(np.linalg.norm(heel - j[:, k[3]], axis=-1)) < 0.005


def test_known_camera_reprojects_exactly(clips) -> None:
    pose = clips[0].joints[:3].astype(np.float64)[None]  # (1, 3, J, 3)
    eye, target = np.array([[1.0, 1.5, 4.0]]), np.array([[0.2, 1.0, 0.0]])
    R = look_at(eye, target, np.zeros(1))
    K = np.array([[[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]]])
    cams = Cameras(R, eye, K, np.array([[1280.0, 720.0]]))
    uv = project(cams.to_camera(pose), K)
    P = K[0] @ np.hstack([R[0], -R[0] @ eye[0][:, None]])  # textbook K [R | -R C]
    h = np.concatenate([pose[0], np.ones(pose.shape[:-1])[0][..., None]], -1) @ P.T
    np.testing.assert_allclose(uv[0], h[..., :2] / h[..., 2:], atol=1e-9)
    centre = project(cams.to_camera(target[:, None, None]), K)[0, 0, 0]
    np.testing.assert_allclose(centre, [640, 360], atol=1e-9)  # look-at point on the axis
    above = project(cams.to_camera((target + [0, 0.5, 0])[:, None, None]), K)[0, 0, 0]
    assert above[1] < 360  # world up is image up (camera y points down)


def test_clean_pairs_are_exact(clips) -> None:
    gen = PairGenerator(split(clips)[0], seq_len=4, noise=CLEAN, seed=3)
    b = gen.sample(64)
    np.testing.assert_allclose(b.uv, project(b.joints_cam, b.K), atol=1e-9)
    np.testing.assert_allclose(b.pof, unit(limb_vectors(b.joints_cam)), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(b.pof, axis=-1), 1, atol=1e-5)
    assert (b.joints_cam[..., 2] > 0.3).all()


def test_jitter_and_correlation_match_settings() -> None:
    rng = np.random.default_rng(0)
    noise = replace(CLEAN, sigma=np.linspace(0.005, 0.03, N_JOINTS), rho=0.8)
    uv = np.broadcast_to(rng.uniform(100, 500, (1, 1, N_JOINTS, 2)), (4000, 6, N_JOINTS, 2))
    out, vis = corrupt(rng, uv, np.array([[2000.0, 2000.0]]), noise)
    r = (out - uv) / person_scale(uv)[..., None, None]
    np.testing.assert_allclose(r.std(axis=(0, 1, 3)), noise.sigma, rtol=0.05)
    z = r / noise.sigma[:, None]
    lag1 = np.mean(z[:, 1:] * z[:, :-1]) / np.mean(z**2)
    assert abs(lag1 - 0.8) < 0.02
    assert (vis >= noise.vis_min).all()


def test_outliers_dropouts_and_swaps_match_settings() -> None:
    rng = np.random.default_rng(1)
    noise = replace(CLEAN, sigma=np.full(N_JOINTS, 1e-6), outlier_p=0.05, dropout_p=0.1)
    uv = np.broadcast_to(rng.uniform(100, 500, (1, 1, N_JOINTS, 2)), (3000, 8, N_JOINTS, 2))
    out, vis = corrupt(rng, uv, np.array([[2000.0, 2000.0]]), noise)
    missing = vis < noise.vis_min
    assert abs(missing.mean() - 0.1) < 0.01
    big = np.linalg.norm(out - uv, axis=-1) > 1e-3 * person_scale(uv)[..., None]
    assert abs(big[~missing].mean() - 0.05) < 0.005
    runs = markov_runs(rng, (20000, 40), 0.02, 4.0, uv)
    assert abs(runs.mean() - 0.02) < 0.003
    starts = (runs[:, 1:] & ~runs[:, :-1]).sum()
    assert abs(runs[:, 1:].sum() / max(starts, 1) - 4.0) < 0.6  # mean run length


def test_window_features_look_back_and_pad_at_track_start() -> None:
    feats = np.arange(2 * 5 * 1 * 2, dtype=np.float32).reshape(2, 5, 1, 2)
    out = window_features(feats, 3, first=np.array([0, 2]))
    assert out.shape == (2, 5, 1, 6)
    np.testing.assert_array_equal(out[0, 4, 0], feats[0, 2:5, 0].ravel())  # oldest first
    np.testing.assert_array_equal(out[0, 0, 0], np.tile(feats[0, 0, 0], 3))
    np.testing.assert_array_equal(out[1, 3, 0], feats[1, [2, 2, 3], 0].ravel())


def layout_ratios(clips: list) -> dict[str, dict[str, float]]:
    """Hip width, trunk and shoulder ratios per skeleton layout, every 5th frame."""
    assert clips, "no clips to measure"
    layouts = {c.skeleton for c in clips}
    return {
        layout: ratios(
            np.concatenate([c.joints for c in clips if c.skeleton == layout])[::5].astype(float)
        )
        for layout in layouts
    }


def test_landmark_offsets_move_every_layout_to_mediapipe_proportions(clips) -> None:
    """On the fixture: every layout moves toward MediaPipe's proportions, and the layouts
    with one fixed body (all but the actors' own CMU skeletons) reach them within 3%."""
    adapted = layout_ratios(clips)
    raw = layout_ratios(load_clips(MOCAP_FIXTURE_DIR, adapt=False))
    assert set(adapted) == set(OFFSETS), "the fixture has every layout"
    for layout, got in adapted.items():
        for key, want in TARGET.items():
            assert abs(got[key] - want) < abs(raw[layout][key] - want), (layout, key)
            if layout != "cmu_asf31":
                assert got[key] == pytest.approx(want, rel=0.03), (layout, key)
    raw_clip = load_clips(MOCAP_FIXTURE_DIR, adapt=False)[0].joints.astype(np.float64)
    moved = apply_offsets(raw_clip, (0.0, 0.0, 0.0, 0.0))
    np.testing.assert_array_equal(moved, raw_clip)  # zero offsets change nothing


@pytest.mark.full_mocap
def test_landmark_offsets_give_mediapipe_proportions(full_mocap_dir) -> None:
    """Over the full set (what the offsets were fitted to): every layout within 2%."""
    for layout, got in layout_ratios(load_clips(full_mocap_dir)).items():
        for key, want in TARGET.items():
            assert got[key] == pytest.approx(want, rel=0.02), (layout, key)


def test_pose_balance_draws_rare_knee_and_elbow_angles_more_often(clips) -> None:
    """Balanced drawing raises the share of the least common angle bins and keeps every
    sequence's weight within the cap; without it the draws are the frame-uniform ones."""
    from models.training.pairs import BALANCE_CAP, balance_angles, balance_weights

    frames, window = 12, 9
    weights = np.concatenate(balance_weights(clips, frames, window))
    assert weights.max() <= BALANCE_CAP * np.median(weights) + 1e-9
    shares = {}
    for balance in (False, True):
        gen = PairGenerator(clips, frames - window + 1, CLEAN, True, 0, window, balance)
        target = np.concatenate([gen.sequences(256)[:, window - 1] for _ in range(8)])
        shares[balance] = balance_angles(target) // 15
    for k in range(shares[False].shape[1]):  # left knee, right knee, left elbow, right elbow
        counts = np.bincount(shares[False][:, k].astype(int))
        rare = np.flatnonzero((counts > 0) & (counts < np.percentile(counts[counts > 0], 50)))
        before = np.isin(shares[False][:, k], rare).mean()
        after = np.isin(shares[True][:, k], rare).mean()
        assert after > before, (k, before, after)
