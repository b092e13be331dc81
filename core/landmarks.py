"""MediaPipe Pose's 33 landmarks, and where each Pose2Sim-named body point is among them.

The one home of these indices: the markers stage, the lifter's skeleton and the person
lock all look them up here by name.
"""

from __future__ import annotations

MEDIAPIPE_LANDMARKS: tuple[str, ...] = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
    "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
N_LANDMARKS = len(MEDIAPIPE_LANDMARKS)


def _mirrored(name: str) -> str:
    return name.replace("left", "@").replace("right", "left").replace("@", "right")


# Landmark index of each landmark's left/right counterpart (the nose is its own): the
# permutation that undoes MediaPipe labelling a whole body the wrong way round.
MIRROR: tuple[int, ...] = tuple(
    MEDIAPIPE_LANDMARKS.index(_mirrored(n)) for n in MEDIAPIPE_LANDMARKS
)

# Pose2Sim marker name -> MediaPipe landmark index, for the body points that map one to one:
# the nose, and per side ("L"/"R" + part) these limb points.
_SIDED_POINTS = {
    "Shoulder": "shoulder", "Elbow": "elbow", "Wrist": "wrist", "Hip": "hip", "Knee": "knee",
    "Ankle": "ankle", "Heel": "heel", "BigToe": "foot_index",
}  # fmt: skip
LANDMARK: dict[str, int] = {"Nose": MEDIAPIPE_LANDMARKS.index("nose")} | {
    side + part: MEDIAPIPE_LANDMARKS.index(f"{full}_{mediapipe}")
    for part, mediapipe in _SIDED_POINTS.items()
    for side, full in (("L", "left"), ("R", "right"))
}
