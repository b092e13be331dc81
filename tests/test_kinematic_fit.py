"""The kinematic fit (models/kinematic_fit.py, stages/fit.py) on mocap and real video."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numba.core.registry import CPUDispatcher as Dispatcher
from scipy.spatial.transform import Rotation

from core.demo_data import TEST_DEMO
from core.packet import Packet
from models import kinematic_fit, kinematic_model, pose_prior
from models import kinematic_model as km
from models.kinematic_fit import (
    BONE_FRAMES,
    HINGE_LIMBS,
    N_RESIDUALS,
    FitWeights,
    PersonFit,
    jacobian,
    levenberg_marquardt,
    residuals,
)
from models.lifter import lift_frame
from models.pof_onnx import PofOnnx, frame_step_for
from models.pof_solver import bone_lengths, solve
from models.pose_prior import PosePrior
from models.skeleton import HIPS, LIMBS, MEDIAPIPE_INDEX, J, limb_vectors, unit
from models.training.camera import look_at
from models.training.evaluate import demo_fps
from models.training.mocap import load_clips
from models.training.multiview import demo_cameras, detections
from stages.fit import KinematicFit
from stages.lift import PofLift
from stream.config import load_config
from tests.data import MOCAP_FIXTURE_DIR, REPO

K = np.array([[1100.0, 0, 640], [0, 1100.0, 360], [0, 0, 1]])
LO, HI = km.bounds()


@pytest.fixture(scope="module")
def prior() -> PosePrior:
    return PosePrior.load()


@pytest.fixture(scope="module")
def weights() -> FitWeights:
    return FitWeights.from_config(load_config()["fit"])


def camera_frame(seq: np.ndarray, azimuth_deg: float) -> np.ndarray:
    """(T, 17, 3) Y-up mocap seen by a camera 3.5 m away at this azimuth, 1 m above the hips."""
    centre = seq[0, HIPS].mean(0)
    a = np.radians(azimuth_deg)
    eye = centre + np.array([3.5 * np.sin(a), 1.0, 3.5 * np.cos(a)])
    R = look_at(eye[None], centre[None], np.zeros(1))[0]
    return (seq - eye) @ R.T


def model_sequence(
    prior: PosePrior, frames: slice, azimuth: float = 30.0, clip: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A real mocap motion turned into the model's own skeleton: each frame read back into
    parameters (models/kinematic_model.inverse), held inside the joint ranges (a nearly
    straight knee leaves the thigh's twist to a sliver of bend) and placed again with the
    median bones. Returns the joints and the model geometry."""
    joints = load_clips(MOCAP_FIXTURE_DIR)[clip].joints[frames].astype(np.float64)
    seq = camera_frame(joints, azimuth)
    g = km.geometry(np.median(np.linalg.norm(limb_vectors(seq), axis=-1), 0), prior.foot_angle)
    out = []
    for X in seq:
        p, R = km.inverse(np.ascontiguousarray(X), LO, HI)
        out.append(km.forward(np.clip(p, LO, HI), g, R)[0])
    return np.array(out), g


def pixels(X: np.ndarray) -> np.ndarray:
    return X[:, :2] / X[:, 2:] * K[[0, 1], [0, 1]] + K[:2, 2]


def exact_fitter(g: np.ndarray, prior: PosePrior, weights: FitWeights) -> PersonFit:
    """A fit on the model's own bones (no online refinement), without prior or smoothing:
    exact data needs neither."""
    w = replace(weights, prior_weight=0.0, sigma_smooth_deg=1e4, sigma_smooth_m=1e4)
    fit = PersonFit(bone_lengths(1.7), prior, replace(w, iterations=30))
    fit.geometry = g
    fit.n_lengths = BONE_FRAMES  # known bones: no online refinement
    return fit


def test_exact_2d_and_directions_give_the_exact_skeleton(prior, weights) -> None:
    seq, g = model_sequence(prior, slice(30, 60))
    fit = exact_fitter(g, prior, weights)
    noisy = seq[0] + np.random.default_rng(0).normal(0, 0.005, seq[0].shape)
    errors = []
    for t, X in enumerate(seq):
        lifted = noisy if t == 0 else seq[t - 1]  # the first frame starts from noisy joints
        out = fit(pixels(X), np.ones(17), K, lifted, unit(limb_vectors(X)), np.ones(18), 0.3)
        errors.append(np.linalg.norm(out - X, axis=1).max())
    assert len(errors) == 30
    assert max(errors) < 1e-4, f"worst joint error {1000 * max(errors):.3f} mm"


def backward_limb(prior: PosePrior, chains: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """A mocap frame (model skeleton, camera frame), its geometry and a hinge chain of
    ``chains`` (HINGE_LIMBS order) whose lower limb, mirrored in depth, bends the chain out
    of its range by more than 20 degrees (hinge flexion or the ball joint's angles)."""
    for clip in range(len(load_clips(MOCAP_FIXTURE_DIR))):
        for azimuth in (0.0, 90.0):
            seq, g = model_sequence(prior, slice(0, None, 5), azimuth, clip)
            for X in seq:
                p, R = km.inverse(X, LO, HI)
                dirs = unit(limb_vectors(X))
                for c in chains:
                    upper, lower = dirs[HINGE_LIMBS[c, 0]], dirs[HINGE_LIMBS[c, 1]].copy()
                    if abs(lower[2]) < 0.5:
                        continue  # a clear depth component: the mirror is far from the truth
                    lower[2] *= -1
                    leg, side = c >= 2, "r" if c % 2 == 0 else "l"
                    parent = R if leg else km.mm(km.mm(R, km.rot_x(p[6])), km.rot_y(p[7]))
                    first = km.HIP[side] if leg else km.SHOULDER[side]
                    excess = km.chain(parent, np.zeros(3), upper, upper + lower,
                                      parent[:, 0].copy(), km.SIDE_SIGN[side],
                                      -1.0 if leg else 1.0, LO, HI, first)[3]  # fmt: skip
                    if excess > np.radians(20):
                        return X, g, c
    raise AssertionError("no fixture frame bends this joint backwards when mirrored")


@pytest.mark.parametrize(("limb", "chains"), [("forearm", (0, 1)), ("shank", (2, 3))])
def test_a_limb_with_the_wrong_depth_sign_is_flipped(prior, weights, limb, chains) -> None:
    X, g, c = backward_limb(prior, chains)
    lower = HINGE_LIMBS[c, 1]
    dirs = unit(limb_vectors(X))
    wrong = dirs.copy()
    wrong[lower, 2] *= -1
    uv = pixels(X)
    bones = np.linalg.norm(limb_vectors(X), axis=-1)
    lifted = solve(uv, np.ones(17, bool), K, wrong, bones)  # the lift follows the wrong sign
    fit = exact_fitter(g, prior, weights)
    out = fit(uv, np.ones(17), K, lifted, wrong, np.ones(18), 0.3)
    assert fit.repaired[c], f"the backward {limb} was not detected"
    err = np.degrees(np.arccos(np.clip(unit(limb_vectors(out))[lower] @ dirs[lower], -1, 1)))
    given = np.degrees(np.arccos(np.clip(wrong[lower] @ dirs[lower], -1, 1)))
    assert given > 40 and err < 2.0, f"{limb} {err:.1f} deg off (given {given:.1f} deg off)"
    mid, end = LIMBS[lower]
    assert np.linalg.norm(out[mid] - X[mid]) < 0.01 and np.linalg.norm(out[end] - X[end]) < 0.01


@pytest.fixture(scope="session")
def demo_detections(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    """Real MediaPipe detections of the test demo's four cameras (cached for the session)."""
    cache = tmp_path_factory.mktemp("mediapipe") / f"{TEST_DEMO}.npz"
    return detections(TEST_DEMO, cache)


def test_joint_limits_hold_on_every_frame_of_the_demo(prior, weights, demo_detections) -> None:
    det = demo_detections
    bones = bone_lengths(1.70)
    model = REPO / Path(load_config()["lift"]["model"])
    checked = 0
    for c, cam in enumerate(demo_cameras(TEST_DEMO)):
        net = PofOnnx(model, frame_step=frame_step_for(demo_fps(TEST_DEMO)))
        fit = PersonFit(bones, prior, weights)
        for f in range(det["uv"].shape[1]):
            uv, vis = det["uv"][c, f], det["vis"][c, f]
            if np.isnan(uv).any():
                continue
            lifted = lift_frame(net, uv, vis, cam.K, det["world"][c, f], bones)
            out = fit(uv, vis, cam.K, lifted.joints, lifted.directions, lifted.confidence, 0.3)
            # the output is exactly the skeleton of the fit's angles, and they keep the ranges
            np.testing.assert_allclose(km.forward(fit.params, fit.geometry, fit.R_base)[0], out)
            bad = [n for n, v, lo, hi in zip(km.PARAM_NAMES, fit.params, LO, HI, strict=True)
                   if not lo <= v <= hi]  # fmt: skip
            assert not bad, f"cam{c + 1:02d} frame {f}: {bad} out of range"
            checked += 1
    assert checked > 300


# --- numpy reference of the residuals, their Jacobian and one LM step --------------------


def reference_joints(p: np.ndarray, g: np.ndarray, R_base: np.ndarray) -> np.ndarray:
    """The forward kinematics written with scipy rotations (intrinsic 'ZXY' Cardan)."""

    def rot(angles: np.ndarray, sign: float) -> np.ndarray:
        a, b, c = angles
        return Rotation.from_euler("ZXY", [a, -sign * b, sign * c]).as_matrix()

    X = np.zeros((17, 3))
    Rp = R_base @ Rotation.from_rotvec(p[3:6]).as_matrix()
    X[J["RHip"]], X[J["LHip"]] = p[:3] + 0.5 * g[0] * Rp[:, 2], p[:3] - 0.5 * g[0] * Rp[:, 2]
    Rt = Rp @ Rotation.from_euler("XY", p[6:8]).as_matrix()
    mid = p[:3] + g[1] * Rt[:, 1]
    X[J["RShoulder"]], X[J["LShoulder"]] = mid + 0.5 * g[2] * Rt[:, 2], mid - 0.5 * g[2] * Rt[:, 2]
    X[J["Nose"]] = mid + g[3] * (Rt @ Rotation.from_euler("ZX", p[8:10]).as_matrix())[:, 1]
    for k, s in enumerate("RL"):
        sign = 1.0 - 2 * k
        h, a = 10 + 7 * k, 24 + 4 * k
        Rf = Rp @ rot(p[h : h + 3], sign)
        knee = X[J[s + "Hip"]] - g[8 + k] * Rf[:, 1]
        Rs = Rf @ Rotation.from_euler("Z", -p[h + 3]).as_matrix()
        ankle = knee - g[10 + k] * Rs[:, 1]
        Rfoot = Rs @ rot(p[h + 4 : h + 7], sign)
        f = g[12 + 4 * k : 16 + 4 * k]
        X[J[s + "Knee"]], X[J[s + "Ankle"]] = knee, ankle
        X[J[s + "Heel"]] = ankle + Rfoot[:, :2] @ f[:2]
        X[J[s + "BigToe"]] = ankle + Rfoot[:, :2] @ f[2:]
        Rh = Rt @ rot(p[a : a + 3], sign)
        elbow = X[J[s + "Shoulder"]] - g[4 + k] * Rh[:, 1]
        X[J[s + "Elbow"]] = elbow
        X[J[s + "Wrist"]] = (
            elbow - g[6 + k] * (Rh @ Rotation.from_euler("Z", p[a + 3]).as_matrix())[:, 1]
        )
    return X


def reference_residuals(p, g, R, xn, w2, dirs, wd, prev, ws, mean, chol, wp) -> np.ndarray:  # noqa: ANN001
    X = reference_joints(p, g, R)
    proj = w2[:, None] * (X[:, :2] / X[:, 2:] - xn)
    direction = wd[:, None] * (unit(X[LIMBS[:, 1]] - X[LIMBS[:, 0]]) - dirs)
    return np.concatenate(
        [proj.ravel(), direction.ravel(), ws * (p - prev), wp * chol @ (p[6:] - mean)]
    )


def test_numba_fit_equals_numpy_reference(prior) -> None:
    rng = np.random.default_rng(3)
    seq, _ = model_sequence(prior, slice(40, 42))
    truth, R = km.inverse(seq[1], LO, HI)
    g = km.geometry(np.linalg.norm(limb_vectors(seq[1]), axis=-1), prior.foot_angle)
    p = np.clip(truth + rng.normal(0, 0.05, truth.shape), LO, HI)
    p[3:6] = 0.0
    xn = (pixels(seq[1]) - K[:2, 2]) / K[[0, 1], [0, 1]] + rng.normal(0, 0.002, (17, 2))
    dirs = unit(unit(limb_vectors(seq[0])) + rng.normal(0, 0.05, (18, 3)))
    w2, wd, ws = rng.uniform(5, 50, 17), rng.uniform(1, 5, 18), rng.uniform(0, 3, 32)
    prev = p + rng.normal(0, 0.02, 32)
    args = (xn, w2, dirs, wd, prev, ws, prior.means[2], prior.chols[2], 0.7)
    X, _, axes, centers = km.kinematics(p, g, R)
    np.testing.assert_allclose(X, reference_joints(p, g, R), atol=1e-12)
    r = np.empty(N_RESIDUALS)
    residuals(X, p, *args, r)
    np.testing.assert_allclose(r, reference_residuals(p, g, R, *args), atol=1e-9)
    # the analytic Jacobian against central differences of the reference
    Jac = np.empty((N_RESIDUALS, km.N_PARAMS))
    jacobian(X, km.joint_jacobian(X, axes, centers), w2, wd, ws, prior.chols[2], 0.7, Jac)
    step = 1e-6
    numeric = np.stack(
        [(reference_residuals(p + step * e, g, R, *args)
          - reference_residuals(p - step * e, g, R, *args)) / (2 * step)
         for e in np.eye(km.N_PARAMS)], 1,
    )  # fmt: skip
    np.testing.assert_allclose(Jac, numeric, atol=1e-5 * np.abs(numeric).max())
    # one damped Gauss-Newton step (a single-component prior so both pick the same one)
    one = (prior.means[2:3], prior.chols[2:3], prior.log_norm[2:3])
    got, R_got = levenberg_marquardt(p, g, R, xn, w2, dirs, wd, prev, ws, *one, 0.7, LO, HI, 1)
    r0 = reference_residuals(p, g, R, *args)
    A, b = numeric.T @ numeric, numeric.T @ r0
    q = np.clip(p - np.linalg.solve(A + np.diag(1e-3 * np.diag(A) + 1e-9), b), LO, HI)
    assert (reference_residuals(q, g, R, *args) ** 2).sum() < (r0**2).sum()
    want = reference_joints(q, g, R)
    np.testing.assert_allclose(km.forward(got, g, R_got)[0], want, atol=1e-6)


# --- the stage ---------------------------------------------------------------------------


def demo_packets(det: dict[str, np.ndarray], camera: int) -> list:
    """Packets of one camera of the test demo as detect leaves them (real detections)."""
    K_cam = demo_cameras(TEST_DEMO)[camera].K
    size = (int(round(2 * K_cam[0, 2])), int(round(2 * K_cam[1, 2])))
    packets = []
    for f in range(det["uv"].shape[1]):
        p = Packet("cam", f, 0, f / 60.0, size, meta={"fps": 60.0})
        uv = det["uv"][camera, f]
        p.meta["person"] = not np.isnan(uv).any()
        if p.meta["person"]:
            p.data["landmarks_2d"] = np.zeros((33, 2))
            p.data["landmarks_2d"][MEDIAPIPE_INDEX] = uv
            p.data["visibility"] = np.zeros(33)
            p.data["visibility"][MEDIAPIPE_INDEX] = det["vis"][camera, f]
            p.data["world_3d"] = np.zeros((33, 3))
            p.data["world_3d"][MEDIAPIPE_INDEX] = det["world"][camera, f]
        packets.append(p)
    return packets


def test_fit_stage_keeps_bones_and_restarts_with_the_track(demo_detections) -> None:
    config = load_config()
    config["fit"]["enabled"] = True
    lift, fit = PofLift(), KinematicFit()
    lift.setup(config)
    fit.setup(config)
    lifted = [lift(p) for p in demo_packets(demo_detections, 0)]
    people = [p for p in lifted if p.meta["person"]]
    assert len(people) > 80
    before = [p.data["world_3d"].copy() for p in people]
    fitted = [fit(p) for p in lifted]
    after = [p.data["world_3d"] for p in fitted if p.meta["person"]]
    for world in after:  # hip-centred, as the lift leaves it for the marker stage
        np.testing.assert_allclose(world[MEDIAPIPE_INDEX[HIPS]].mean(0), 0.0, atol=1e-9)

    def forearm_cv(worlds: list) -> float:
        lengths = np.linalg.norm(limb_vectors(np.array(worlds)[:, MEDIAPIPE_INDEX]), axis=-1)
        forearms = lengths[:, [LIMBS.tolist().index([J["LElbow"], J["LWrist"]]),
                               LIMBS.tolist().index([J["RElbow"], J["RWrist"]])]]  # fmt: skip
        return float((forearms.std(0) / forearms.mean(0)).max())

    assert forearm_cv(after) < 0.5 * forearm_cv(before)
    # a packet without a person forgets the source; a track reset starts a new person
    assert "cam" in fit._people
    fit(Packet("cam", 999, 0, 0.0, people[0].image_size))
    assert "cam" not in fit._people
    fit(people[-2])
    first = fit._people["cam"]
    people[-1].meta["track_reset"] = True
    fit(people[-1])
    assert fit._people["cam"] is not first and fit._people["cam"].params is not None


def compiled_signatures() -> int:
    """How many type signatures numba has compiled for the fit's kernels so far."""
    modules = (kinematic_fit, kinematic_model, pose_prior)
    return sum(len(f.signatures) for m in modules for f in vars(m).values()
               if isinstance(f, Dispatcher))  # fmt: skip


def test_the_stage_compiles_everything_in_setup(demo_detections) -> None:
    """Frames arrive frozen (read-only arrays): none may make numba compile a new variant
    (seconds on a fresh install's first frame, a live stall)."""
    config = load_config()
    lift, fit = PofLift(), KinematicFit()
    lift.setup(config)
    fit.setup(config)
    before = compiled_signatures()
    assert before > 0
    for packet in demo_packets(demo_detections, 1)[:20]:
        packet.freeze()
        lifted = lift(packet)
        lifted.freeze()
        fit(lifted)
    assert compiled_signatures() == before


def test_joint_refinement_without_the_pof_lift_is_refused() -> None:
    result = subprocess.run(
        [sys.executable, "run_offline.py", "--demo", "--joint-refinement", "--lift", "mediapipe"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --joint-refinement needs the limb directions of --lift pof"
    ]
