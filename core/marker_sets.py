"""Marker names shared by the stages, the writers and the public stream.

The 21 input markers follow Pose2Sim's naming (``Hip`` = mid-hip, ``Neck`` = mid-shoulder);
the 43 augmented markers are the outputs of Pose2Sim's v0.3 LSTM augmenter (lower model
first, then upper), so a final TRC opens directly in Pose2Sim/OpenSim workflows.
"""

from __future__ import annotations

MARKERS_21: tuple[str, ...] = (
    "Neck", "RShoulder", "LShoulder", "RHip", "LHip", "RKnee", "LKnee",
    "RAnkle", "LAnkle", "RHeel", "LHeel", "RSmallToe", "LSmallToe",
    "RBigToe", "LBigToe", "RElbow", "LElbow", "RWrist", "LWrist", "Hip", "Nose",
)  # fmt: skip

AUGMENT_LOWER_INPUTS: tuple[str, ...] = (
    "Neck", "RShoulder", "LShoulder", "RHip", "LHip", "RKnee", "LKnee",
    "RAnkle", "LAnkle", "RHeel", "LHeel", "RSmallToe", "LSmallToe",
    "RBigToe", "LBigToe",
)  # fmt: skip

AUGMENT_LOWER_OUTPUTS: tuple[str, ...] = (
    "r.ASIS_study", "L.ASIS_study", "r.PSIS_study", "L.PSIS_study",
    "r_knee_study", "r_mknee_study", "r_ankle_study", "r_mankle_study",
    "r_toe_study", "r_5meta_study", "r_calc_study",
    "L_knee_study", "L_mknee_study", "L_ankle_study", "L_mankle_study",
    "L_toe_study", "L_calc_study", "L_5meta_study",
    "r_shoulder_study", "L_shoulder_study", "C7_study",
    "r_thigh1_study", "r_thigh2_study", "r_thigh3_study",
    "L_thigh1_study", "L_thigh2_study", "L_thigh3_study",
    "r_sh1_study", "r_sh2_study", "r_sh3_study",
    "L_sh1_study", "L_sh2_study", "L_sh3_study",
    "RHJC_study", "LHJC_study",
)  # fmt: skip

AUGMENT_UPPER_INPUTS: tuple[str, ...] = (
    "Neck", "RShoulder", "LShoulder", "RElbow", "LElbow", "RWrist", "LWrist",
)  # fmt: skip

AUGMENT_UPPER_OUTPUTS: tuple[str, ...] = (
    "r_lelbow_study", "r_melbow_study", "r_lwrist_study", "r_mwrist_study",
    "L_lelbow_study", "L_melbow_study", "L_lwrist_study", "L_mwrist_study",
)  # fmt: skip

MARKERS_64: tuple[str, ...] = MARKERS_21 + AUGMENT_LOWER_OUTPUTS + AUGMENT_UPPER_OUTPUTS


def indices(names: tuple[str, ...], within: tuple[str, ...] = MARKERS_21) -> list[int]:
    """Positions of ``names`` in the marker list ``within``."""
    return [within.index(n) for n in names]


def _sided_sources(side: str, video: str) -> dict[str, tuple[str, ...]]:
    """The video markers each augmented marker of one side is placed from (``side``: the
    augmenter's prefix "r" or "L"; ``video``: "R" or "L")."""
    return {
        f"{side}.ASIS_study": ("RHip", "LHip"),
        f"{side}.PSIS_study": ("RHip", "LHip"),
        f"{side}_knee_study": (video + "Knee",),
        f"{side}_mknee_study": (video + "Knee",),
        f"{side}_ankle_study": (video + "Ankle",),
        f"{side}_mankle_study": (video + "Ankle",),
        f"{side}_toe_study": (video + "BigToe",),
        f"{side}_5meta_study": (video + "SmallToe",),
        f"{side}_calc_study": (video + "Heel",),
        f"{side}_shoulder_study": (video + "Shoulder",),
        **{f"{side}_thigh{i}_study": (video + "Hip", video + "Knee") for i in (1, 2, 3)},
        **{f"{side}_sh{i}_study": (video + "Knee", video + "Ankle") for i in (1, 2, 3)},
        f"{video}HJC_study": ("RHip", "LHip"),
        f"{side}_lelbow_study": (video + "Elbow",),
        f"{side}_melbow_study": (video + "Elbow",),
        f"{side}_lwrist_study": (video + "Wrist",),
        f"{side}_mwrist_study": (video + "Wrist",),
    }


# The video markers each augmented marker mostly follows (the augmenter sees them all, but
# a knee epicondyle moves with the knee): its confidence is theirs (stages/augment.py).
AUGMENTED_FROM: dict[str, tuple[str, ...]] = {
    "C7_study": ("Neck",),
    **_sided_sources("r", "R"),
    **_sided_sources("L", "L"),
}
AUGMENTED_SOURCES: tuple[tuple[str, ...], ...] = tuple(
    AUGMENTED_FROM[name] for name in MARKERS_64[len(MARKERS_21) :]
)  # in MARKERS_64 order; a KeyError here names an augmented marker without its sources
