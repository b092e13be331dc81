"""Where the tests' real inputs live: the Pose2Sim demo videos and the CMU mocap folder."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MOCAP_DIR = REPO.parent / "shared" / "data" / "mocap"
DEMO_CAMERAS = ("cam01", "cam02", "cam03", "cam04")


def demo_video(camera: str, demo: str = "Demo_SinglePerson") -> Path:
    """Path of one camera of a Pose2Sim demo, from the installed package."""
    return Path(str(importlib.resources.files("Pose2Sim") / demo / "videos" / f"{camera}.mp4"))
