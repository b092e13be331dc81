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


class PairGenerator:
    """Draws batches of corrupted 2D sequences and their camera-frame limb orientations."""

    def __init__(self, clips: list[Clip], seq_len: int, noise: NoiseModel | None = None,
                 augment: bool = True, seed: int = 0, window: int = 1) -> None:  # fmt: skip
        self.frames = seq_len + window - 1
        self.clips = [c for c in clips if len(c.joints) >= 2 * self.frames]
        frames = np.array([len(c.joints) for c in self.clips], float)
        self.weights = frames / frames.sum()
        self.window = window
        self.noise = noise or NoiseModel()
        self.augment = augment
        self.rng = np.random.default_rng(seed)

    def sequences(self, batch: int) -> np.ndarray:
        """(B, T, J, 3) world sequences, stride 1 or 2 (30 or 15 fps motion)."""
        rng = self.rng
        out = np.empty((batch, self.frames) + self.clips[0].joints.shape[1:])
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
