"""The model files a configuration makes the pipeline load, for ``run.json``.

Each path comes from the stage that loads it, so this list cannot drift from what runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stages.augment import AUGMENTER_FILES, MARKER_SETS, augmenter_dir


def models_used(config: Mapping[str, Any]) -> list[Path]:
    """The lifter's ONNX (``--lift pof``), the fit's pose prior (``[fit] enabled``) and the
    Pose2Sim LSTM augmenter's files; MediaPipe's own models are named by its version."""
    # Here, not at the top: the live sink imports this module, and these two pull in
    # numba and the solver, which it never runs.
    from models.pose_prior import PRIOR_PATH
    from stages.lift import pof_model_path

    pof = config["lift"]["method"] == "pof"
    files = [pof_model_path(config)] if pof else []
    if pof and config["fit"]["enabled"]:
        files.append(PRIOR_PATH)
    files += [augmenter_dir(part) / name for part in MARKER_SETS for name in AUGMENTER_FILES]
    return files
