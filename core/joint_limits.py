"""Anatomical range of every joint-angle column: the one table the kinematic fit and the
angle stage share (docs/joint_angles.md, "Anatomical ranges", explains each row).

Degrees, with the signs of core/angle_set.py (flex > 0 flexion, abd > 0 abduction, rot > 0
internal rotation, pelvis and trunk as documented). The ranges are the active ranges of
motion of healthy adults (AAOS / Norkin & White normative values) widened by a margin for
marker-frame offsets and for athletes, so a real movement never touches them; only a
measurement error can. ``None``: the angle has no anatomical bound (the pelvis heading of
someone who turns around), so it is unwrapped through whole turns instead.
"""

from __future__ import annotations

JOINT_RANGES: dict[str, tuple[float, float] | None] = {
    # pelvis in the lab: tilt and obliquity of an upright or bending person; heading is free
    "pelvis_flex_deg": (-60.0, 100.0), "pelvis_abd_deg": (-60.0, 60.0), "pelvis_rot_deg": None,
    # trunk (mid-hips -> mid-shoulders) relative to the pelvis
    "trunk_flex_deg": (-50.0, 110.0), "trunk_abd_deg": (-60.0, 60.0),
    "trunk_rot_deg": (-70.0, 70.0),
    # hip: flexion 120-140, extension 20-30, abduction 45, adduction 30, rotation 45 each way
    "hip_r_flex_deg": (-40.0, 150.0), "hip_r_abd_deg": (-45.0, 80.0),
    "hip_r_rot_deg": (-70.0, 70.0),
    "hip_l_flex_deg": (-40.0, 150.0), "hip_l_abd_deg": (-45.0, 80.0),
    "hip_l_rot_deg": (-70.0, 70.0),
    # knee: flexion 140-160, hyperextension to 10; small frontal and axial motion
    "knee_r_flex_deg": (-20.0, 165.0), "knee_r_abd_deg": (-40.0, 40.0),
    "knee_r_rot_deg": (-60.0, 60.0),
    "knee_l_flex_deg": (-20.0, 165.0), "knee_l_abd_deg": (-40.0, 40.0),
    "knee_l_rot_deg": (-60.0, 60.0),
    # ankle: dorsiflexion 20-30, plantarflexion 50; eversion 15-20, inversion 30-35
    "ankle_r_flex_deg": (-70.0, 50.0), "ankle_r_abd_deg": (-50.0, 45.0),
    "ankle_r_rot_deg": (-60.0, 60.0),
    "ankle_l_flex_deg": (-70.0, 50.0), "ankle_l_abd_deg": (-50.0, 45.0),
    "ankle_l_rot_deg": (-60.0, 60.0),
    # shoulder (humerus relative to the trunk, ZXY): flexion 180, extension 60, abduction
    # 180 (a lateral raise above the shoulder reads abd > 90 on the floating axis: its
    # other Cardan reading has rotation 180), rotation 90 each way
    "shoulder_r_flex_deg": (-90.0, 200.0), "shoulder_r_abd_deg": (-60.0, 180.0),
    "shoulder_r_rot_deg": (-110.0, 110.0),
    "shoulder_l_flex_deg": (-90.0, 200.0), "shoulder_l_abd_deg": (-60.0, 180.0),
    "shoulder_l_rot_deg": (-110.0, 110.0),
    # elbow: flexion 145-150, hyperextension to 10
    "elbow_r_flex_deg": (-20.0, 165.0), "elbow_l_flex_deg": (-20.0, 165.0),
}  # fmt: skip
