"""Processes import only what they run (README "Memory"): checked in fresh interpreters."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.data import REPO

DETECT_ONE_FRAME = """
import json, sys
from core.demo_data import demo_video
from stages.capture import VideoSource
from stream.config import load_config
from stream.pipeline import build_stages, run_inline
(detect,) = build_stages(load_config(), stop=1)
packet = run_inline([detect], next(iter(VideoSource(demo_video()))))
print(json.dumps({"person": packet.meta["person"], "loaded": sorted(
    name for name in ("matplotlib", "mediapipe.tasks", "mediapipe.python.solutions.drawing_utils")
    if name in sys.modules
)}))
"""


def test_the_detect_stage_imports_no_drawing_helpers_nor_the_tasks_api() -> None:
    """mediapipe's package __init__ files import matplotlib and the tasks API (~40 MB)."""
    run = subprocess.run(
        [sys.executable, "-c", DETECT_ONE_FRAME], cwd=REPO, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result == {"person": True, "loaded": []}
