"""Where Pose2Sim's calibrated 4-camera demos are: read from the installed package.

``Demo_MultiPerson`` (two people) is for tuning; ``Demo_SinglePerson`` is a test set: report
it, never tune on it. Both are filmed by the same four calibrated cameras.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

TUNING_DEMO = "Demo_MultiPerson"
TEST_DEMO = "Demo_SinglePerson"
DEMO_CAMERAS = ("cam01", "cam02", "cam03", "cam04")


def demo_folder(demo: str = TEST_DEMO) -> Path:
    """The demo's folder inside the installed Pose2Sim package."""
    return Path(str(importlib.resources.files("Pose2Sim") / demo))


def demo_video(camera: str = "cam01", demo: str = TEST_DEMO) -> Path:
    """One camera's video of a demo."""
    return demo_folder(demo) / "videos" / f"{camera}.mp4"


def demo_calibration(demo: str = TEST_DEMO) -> Path:
    """The demo's Qualisys calibration of its four cameras."""
    return demo_folder(demo) / "calibration" / "Calib.qca.txt"
