"""Where the tests' real inputs live: the Pose2Sim demo videos and motion-capture clips.

The suite carries its own small CMU fixture (``tests/data/mocap``, made by
``tests/make_mocap_fixture.py``); the full set (``../shared/data/mocap``) is read only by the
few tests marked ``full_mocap``, which run with ``pytest --full-mocap``.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MOCAP_FIXTURE_DIR = REPO / "tests" / "data" / "mocap"
DEMO_CAMERAS = ("cam01", "cam02", "cam03", "cam04")


def demo_video(camera: str, demo: str = "Demo_SinglePerson") -> Path:
    """Path of one camera of a Pose2Sim demo, from the installed package."""
    return Path(str(importlib.resources.files("Pose2Sim") / demo / "videos" / f"{camera}.mp4"))
