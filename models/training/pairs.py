"""Training pairs: mocap sequences seen by random virtual cameras through MediaPipe-like noise.

A sample is ``seq_len`` consecutive frames (the temporal model feeds each frame's predicted
orientations to the next), preceded by ``window - 1`` frames of history that only fill the
first frames' input windows (models/features.py); ``START_P`` of the augmented samples start
their track inside that history, so the model also learns the first frames after a detection
(short windows padded with the first frame). Data are multiplied by random viewpoints,
left/right mirroring and per-sample bone-length scaling within anthropometric ranges
(segment groups scaled symmetrically by +-``SEGMENT_SCALE``, then the whole body by
``BODY_SCALE``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.arrays import Array, Random, asarray, astype, namespace, zeros
from models.features import limb_features, window_features
from models.skeleton import FLIP_JOINTS, J, limb_vectors, unit
from models.training.accuracy import flexion
from models.training.camera import project, random_cameras
from models.training.corruption import NoiseModel, corrupt
from models.training.mocap import Clip

SEGMENT_SCALE = 0.10
BODY_SCALE = (0.85, 1.15)
START_P = 0.15
MIRROR_X = np.array([-1.0, 1.0, 1.0])  # a left/right mirror: x negated, labels exchanged
# Re-posing tree: (joint, parent, segment group); "midhip"/"midsho" are virtual centres.
TREE = (
    ("LHip", "midhip", "pelvis"), ("RHip", "midhip", "pelvis"),
    ("LShoulder", "midsho", "shoulders"), ("RShoulder", "midsho", "shoulders"),
    ("Nose", "midsho", "head"),
    ("LElbow", "LShoulder", "upperarm"), ("RElbow", "RShoulder", "upperarm"),
    ("LWrist", "LElbow", "forearm"), ("RWrist", "RElbow", "forearm"),
    ("LKnee", "LHip", "thigh"), ("RKnee", "RHip", "thigh"),
    ("LAnkle", "LKnee", "shank"), ("RAnkle", "RKnee", "shank"),
    ("LHeel", "LAnkle", "foot"), ("RHeel", "RAnkle", "foot"),
    ("LBigToe", "LAnkle", "foot"), ("RBigToe", "RAnkle", "foot"),
)  # fmt: skip
GROUPS = sorted({g for *_, g in TREE} | {"trunk"})
# Pose balance (``balance``): the mocap is mostly dance and martial arts (knees 135-165 deg
# in 54% of frames, straight knees in 4%, straight elbows in 0.6%), and where 2D leaves
# depth ambiguous a network falls back on the angles it saw most. Each sequence is drawn
# with weight prod over knees and elbows of p(angle bin) ** -BALANCE_POWER, capped.
BALANCE_FLEXIONS = ("knee", "elbow")  # 3-point angles of models/training/accuracy.py
BALANCE_BIN_DEG = 15.0
BALANCE_POWER = 0.5
BALANCE_CAP = 20.0  # no sequence weighs more than this x the median


@dataclass
class Batch:
    """One batch of sequences (B, T, ...): network inputs, targets and what made them
    (numpy arrays, or tensors on the torch generator's device)."""

    features: Array  # (B, T, L, window x 11) float32; frames [history:] are the ones to learn
    history: int
    pof: Array  # (B, T, L, 3) float32 unit limb vectors, camera frame
    joints_cam: Array  # (B, T, J, 3) metres
    uv_clean: Array  # (B, T, J, 2)
    uv: Array  # (B, T, J, 2) corrupted
    vis: Array  # (B, T, J)
    K: Array  # (B, 3, 3)


def rescale_bones(rng: Random, world: Array) -> Array:
    """Scale segment groups of (B, T, J, 3) poses, keeping each segment's direction."""
    b = len(world)
    s = {g: rng.uniform(1 - SEGMENT_SCALE, 1 + SEGMENT_SCALE, (b, 1, 1)) for g in GROUPS}
    old = {n: world[:, :, i] for n, i in J.items()}
    old["midhip"] = 0.5 * (old["LHip"] + old["RHip"])
    old["midsho"] = 0.5 * (old["LShoulder"] + old["RShoulder"])
    new = {"midhip": old["midhip"]}
    new["midsho"] = new["midhip"] + s["trunk"] * (old["midsho"] - old["midhip"])
    for joint, parent, group in TREE:
        new[joint] = new[parent] + s[group] * (old[joint] - old[parent])
    out = namespace(world).stack([new[n] for n in J], 2)
    body = rng.uniform(*BODY_SCALE, (b, 1, 1, 1))
    root = old["midhip"].mean(1)[:, None, None]
    return root + body * (out - root)


def balance_angles(poses: np.ndarray) -> np.ndarray:
    """(N, J, 3) poses -> (N, 4) their left and right knee, then elbow angles, degrees."""
    return np.concatenate([flexion(poses, name) for name in BALANCE_FLEXIONS], -1)


def pose_balance_weights(poses: np.ndarray) -> np.ndarray:
    """(N, J, 3) poses -> (N,) weights that flatten their knee and elbow angle histograms
    (each joint's bin share to the power -``BALANCE_POWER``, the product capped)."""
    bins = (balance_angles(poses) // BALANCE_BIN_DEG).astype(np.int64)
    w = np.ones(len(poses))
    for k in range(bins.shape[1]):
        share = np.bincount(bins[:, k]) / len(bins)
        w *= share[bins[:, k]] ** -BALANCE_POWER
    return np.minimum(w, BALANCE_CAP * np.median(w))


def balance_weights(clips: list[Clip], frames: int, window: int) -> list[np.ndarray]:
    """Per clip, the weight of each start frame (valid at stride 2) under pose balance: that
    of the sequence's first target frame."""
    starts = [len(c.joints) - 2 * (frames - 1) for c in clips]
    target = np.concatenate([c.joints[window - 1 : window - 1 + n]
                             for c, n in zip(clips, starts, strict=True)])  # fmt: skip
    return np.split(pose_balance_weights(target.astype(np.float64)), np.cumsum(starts)[:-1])


class PairGenerator:
    """Draws batches of corrupted 2D sequences and their camera-frame limb orientations."""

    def __init__(self, clips: list[Clip], seq_len: int, noise: NoiseModel | None = None,
                 augment: bool = True, seed: int = 0, window: int = 1,
                 balance: bool = False) -> None:  # fmt: skip
        self.frames = seq_len + window - 1
        self.clips = [c for c in clips if len(c.joints) >= 2 * self.frames]
        frames = np.array([len(c.joints) for c in self.clips], float)
        self.weights = frames / frames.sum()
        self.window = window
        self.noise = noise or NoiseModel()
        self.augment = augment
        self.rng = np.random.default_rng(seed)
        self.balance = balance
        if balance:  # one flat table of (clip, start) with its probability
            w = balance_weights(self.clips, self.frames, window)
            self.start_clip = np.concatenate([np.full(len(x), i) for i, x in enumerate(w)])
            self.start_frame = np.concatenate([np.arange(len(x)) for x in w])
            flat = np.concatenate(w)
            self.start_p = flat / flat.sum()

    def sequences(self, batch: int) -> np.ndarray:
        """(B, T, J, 3) world sequences, stride 1 or 2 (30 or 15 fps motion)."""
        rng = self.rng
        out = np.empty((batch, self.frames) + self.clips[0].joints.shape[1:])
        if self.balance:
            picks = rng.choice(len(self.start_p), batch, p=self.start_p)
            for k, i in enumerate(picks):
                joints, start = self.clips[self.start_clip[i]].joints, self.start_frame[i]
                stride = rng.integers(1, 3) if self.augment else 1
                out[k] = joints[start : start + stride * self.frames : stride]
            return out
        for k, ci in enumerate(rng.choice(len(self.clips), batch, p=self.weights)):
            joints = self.clips[ci].joints
            stride = rng.integers(1, 3) if self.augment else 1
            start = rng.integers(0, len(joints) - stride * (self.frames - 1))
            out[k] = joints[start : start + stride * self.frames : stride]
        return out

    def get_state(self) -> dict:
        """The random state (for checkpoints: models/training/checkpoint.py)."""
        return self.rng.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state

    def sample(self, batch: int) -> Batch:
        """One batch; mirroring and bone scaling only when ``augment``."""
        return self.pairs(self.sequences(batch))

    def pairs(self, world: Array) -> Batch:
        """A batch from (B, T, J, 3) world sequences (changed in place): augmentation, random
        cameras, noise, features; numpy or torch alike (models/arrays.py)."""
        rng = self.rng
        batch = len(world)
        if self.augment:
            mirror = rng.random(batch) < 0.5
            world[mirror] = world[mirror][:, :, FLIP_JOINTS] * asarray(MIRROR_X, world)
            world = rescale_bones(rng, world)
        cams = random_cameras(rng, world)
        cam_pts = cams.to_camera(world)
        uv_clean = project(cam_pts, cams.K)
        uv, vis = corrupt(rng, uv_clean, cams.size, self.noise)
        feats = limb_features(uv, vis, cams.K[:, None], self.noise.vis_min)
        history = self.window - 1
        first = zeros(batch, "int64", world)
        if self.augment and history:
            late = rng.random(batch) < START_P
            first[late] = rng.integers(1, history + 1, int(late.sum()))
        feats = window_features(feats, self.window, first)
        pof = astype(unit(limb_vectors(cam_pts)), "float32")
        return Batch(feats, history, pof, cam_pts, uv_clean, uv, vis, cams.K)
