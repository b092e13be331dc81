"""The joint-angle set every output shares: groups, column names and sign conventions.

Computed by stages/angles.py, written by the angle files, named in the stream's schema;
docs/joint_angles.md explains each sign. Order matters: it is the column order of the
``pose.angles`` array and of every angle file.
"""

from __future__ import annotations

CARDAN_GROUPS = (
    "pelvis", "trunk", "hip_r", "hip_l", "knee_r", "knee_l", "ankle_r", "ankle_l",
    "shoulder_r", "shoulder_l",
)  # fmt: skip
HINGE_GROUPS = ("elbow_r", "elbow_l")  # flexion only

ANGLE_GROUPS: dict[str, tuple[str, ...]] = {
    **{g: tuple(f"{g}_{dof}_deg" for dof in ("flex", "abd", "rot")) for g in CARDAN_GROUPS},
    **{g: (f"{g}_flex_deg",) for g in HINGE_GROUPS},
}
ANGLE_COLUMNS: tuple[str, ...] = tuple(c for cols in ANGLE_GROUPS.values() for c in cols)

# What a positive value means, per column (the sign conventions of docs/joint_angles.md).
_POSITIVE_LIMB = ("flexion", "abduction", "internal rotation")
_POSITIVE_SPECIAL = {
    "pelvis": ("anterior tilt", "right side down", "turn to the left"),
    "trunk": ("flexion", "bend to the right", "turn to the left"),
    "knee": ("flexion", "abduction (valgus)", "internal rotation"),
    "ankle": ("dorsiflexion", "eversion", "internal rotation (toes in)"),
}
ANGLE_POSITIVE: dict[str, str] = {
    column: _POSITIVE_SPECIAL.get(group.split("_")[0], _POSITIVE_LIMB)[n]
    for group, cols in ANGLE_GROUPS.items()
    for n, column in enumerate(cols)
}
