"""Mocap clips (../shared/data/mocap, CMU) -> the lifter's 17 joints, split by subject.

Each of the four skeleton layouts is mapped to the 17 joints (models/skeleton.py):
- body joints map one to one (README table "COCO-17-style points");
- big toe = the layout's toe tip (cmu toe_tip, DAZ Foot_End, DeepMimic toe, CC BigToe1_End);
- heel: only the DeepMimic humanoid has one. Elsewhere it is placed in the foot's sagittal
  plane (spanned by ankle->toe and knee->ankle) at ``HEEL_ALONG`` x the ankle->toe vector
  plus ``HEEL_DOWN`` x its length along the downward normal: the two numbers are the
  least-squares fit on the DeepMimic clips (``fit_heel``; 1 mm median error there, where
  the foot is a rigid box; on real feet it is an approximation of the same shape);
- nose: DAZ and CC have eyes: nose = mid eye-ends, 4 cm down the head's axis. CMU and
  DeepMimic have only a neck and head top: nose = 45 % up the neck->head-top line, 10 cm
  forward of the chest (forward = up x right, right = right - left shoulder), so head yaw
  relative to the chest is lost there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from models.skeleton import N_JOINTS, J, unit
from models.training.landmark_offsets import OFFSETS, apply_offsets

MOCAP_DIR = Path(__file__).resolve().parents[3] / "shared" / "data" / "mocap"
# Whole subjects held out for validation, as the mocap README recommends (10.4 % of frames).
VALIDATION_SUBJECTS = frozenset({"131", "aclstm_martial", "085", "090"})
HEEL_ALONG, HEEL_DOWN = -0.163, 0.435  # fit_heel() on the DeepMimic clips
NOSE_DROP, NOSE_UP, NOSE_FORWARD = 0.04, 0.45, 0.10

# Per layout: source joint names in ``BODY_JOINTS`` order ("{s}" = side), side prefixes (L, R).
BODY = {
    "cmu_asf31": ("{s}_shoulder {s}_elbow {s}_wrist {s}_hip {s}_knee {s}_ankle {s}_toe_tip", "lr"),
    "cgspeed_daz_fixed": ("{s}Shldr {s}ForeArm {s}Hand {s}Thigh {s}Shin {s}Foot {s}Foot_End", "lr"),
    "deepmimic_humanoid_fixed": (
        "{s}_shoulder {s}_elbow {s}_wrist {s}_hip {s}_knee {s}_ankle {s}_toe", ("left", "right")),
    "cc_base_fixed": (
        "CC_Base_{s}_Upperarm CC_Base_{s}_Forearm CC_Base_{s}_Hand CC_Base_{s}_Thigh "
        "CC_Base_{s}_Calf CC_Base_{s}_Foot CC_Base_{s}_BigToe1_End", "LR"),
}  # fmt: skip
BODY_JOINTS = ("Shoulder", "Elbow", "Wrist", "Hip", "Knee", "Ankle", "BigToe")


class MocapError(FileNotFoundError):
    """The motion-capture folder is missing or holds no clips; the message says where."""


@dataclass
class Clip:
    """One mocap clip on the lifter's joints: (T, 17, 3) metres, world Y-up, 30 fps."""

    name: str
    subject: str
    skeleton: str
    joints: np.ndarray


def _heel(ankle: np.ndarray, toe: np.ndarray, knee: np.ndarray) -> np.ndarray:
    return ankle + heel_basis(ankle, toe, knee) @ np.array([HEEL_ALONG, HEEL_DOWN])


def heel_basis(ankle: np.ndarray, toe: np.ndarray, knee: np.ndarray) -> np.ndarray:
    """Columns (foot, |foot| x downward normal) that ``HEEL_ALONG``/``HEEL_DOWN`` multiply."""
    foot = toe - ankle
    down = ankle - knee
    f = unit(foot)
    n = unit(down - (down * f).sum(-1, keepdims=True) * f)
    return np.stack([foot, np.linalg.norm(foot, axis=-1, keepdims=True) * n], -1)


def to_lifter_joints(joints: np.ndarray, names: list[str], skeleton: str) -> np.ndarray:
    """Map one clip's source joints to the lifter's 17 (see the module docstring)."""
    idx = {n: i for i, n in enumerate(names)}
    out = np.zeros((len(joints), N_JOINTS, 3), np.float64)
    pattern, sides = BODY[skeleton]
    for side, s in zip("LR", sides, strict=True):
        for part, src in zip(BODY_JOINTS, pattern.format(s=s).split(), strict=True):
            out[:, J[side + part]] = joints[:, idx[src]]
        if skeleton == "deepmimic_humanoid_fixed":
            out[:, J[side + "Heel"]] = joints[:, idx[f"{s}_heel"]]
        else:
            out[:, J[side + "Heel"]] = _heel(
                out[:, J[side + "Ankle"]], out[:, J[side + "BigToe"]], out[:, J[side + "Knee"]]
            )
    out[:, J["Nose"]] = _nose(joints, idx, skeleton, out)
    return out


def _nose(joints: np.ndarray, idx: dict[str, int], skeleton: str, out: np.ndarray) -> np.ndarray:
    if skeleton in ("cgspeed_daz_fixed", "cc_base_fixed"):
        eyes = ("leftEye_End", "rightEye_End", "neck", "head")
        if skeleton == "cc_base_fixed":
            eyes = ("CC_Base_L_Eye_End", "CC_Base_R_Eye_End", "CC_Base_NeckTwist01", "CC_Base_Head")
        mid_eye = 0.5 * (joints[:, idx[eyes[0]]] + joints[:, idx[eyes[1]]])
        head_up = unit(joints[:, idx[eyes[3]]] - joints[:, idx[eyes[2]]])
        return mid_eye - NOSE_DROP * head_up
    neck, top = ("neck_upper", "head_top") if skeleton == "cmu_asf31" else ("neck", "head_top")
    base, tip = joints[:, idx[neck]], joints[:, idx[top]]
    right = out[:, J["RShoulder"]] - out[:, J["LShoulder"]]
    forward = unit(np.cross(unit(tip - base), right))
    return base + NOSE_UP * (tip - base) + NOSE_FORWARD * forward


def fit_heel(clips: list[Path]) -> tuple[float, float]:
    """Least-squares (along, down) heel coefficients from the layout that has heels."""
    rows, rhs = [], []
    for path in clips:
        d = np.load(path)
        names = list(d["joint_names"])
        jt = d["joints"].astype(np.float64)
        for s in ("left", "right"):
            ankle, toe, knee, heel = (jt[:, names.index(f"{s}_{p}")] for p in
                                      ("ankle", "toe", "knee", "heel"))  # fmt: skip
            rows.append(heel_basis(ankle, toe, knee).reshape(-1, 2))
            rhs.append((heel - ankle).reshape(-1))
    coef, *_ = np.linalg.lstsq(np.concatenate(rows), np.concatenate(rhs), rcond=None)
    return float(coef[0]), float(coef[1])


def load_clips(root: Path = MOCAP_DIR, adapt: bool = True) -> list[Clip]:
    """Every clip of the folder on the lifter's joints (``adapt``: MediaPipe-like hips and
    shoulders, models/training/landmark_offsets.py)."""
    paths = sorted(Path(root).glob("*.npz"))
    if not paths:
        what = "holds no .npz clips" if Path(root).is_dir() else "does not exist"
        raise MocapError(
            f"motion-capture folder {root} {what}: training and evaluation need the CMU "
            "clips there (see models/README.md)"
        )
    clips = []
    for path in paths:
        d = np.load(path)
        skel = str(d["skeleton"])
        joints = to_lifter_joints(d["joints"].astype(np.float64), list(d["joint_names"]), skel)
        if adapt:
            joints = apply_offsets(joints, OFFSETS[skel])
        clips.append(Clip(path.stem, str(d["subject"]), skel, joints.astype(np.float32)))
    return clips


def split(clips: list[Clip]) -> tuple[list[Clip], list[Clip]]:
    """(train, validation): whole subjects on one side; ``VALIDATION_SUBJECTS`` held out."""
    val = [c for c in clips if c.subject in VALIDATION_SUBJECTS]
    return [c for c in clips if c.subject not in VALIDATION_SUBJECTS], val
