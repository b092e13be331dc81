"""``--static VIDEO_OR_TRC``: scale the OpenSim model from a static trial before the run.

OpenSim practice scales from a trial where the subject stands still (every marker seen, no
joint flexed), not from the movement itself. The static trial is a video, run through the
same stages as any video (inline, as offline), or the ``_final.trc`` of one run earlier;
scaling is the offline one (``stages.ik.scale_to_markers``: trimmed-mean marker-pair
distances over the frames fit for it). The scaled model is written to a file that the run
then uses as ``[opensim] scaled_model``, offline and live alike.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from core.marker_sets import MARKERS_64
from core.trc import TrcError, read_trc
from models.opensim_model import IkError
from stages.capture import SourceError, VideoSource
from stages.ik import inside_image, scale_to_markers
from stream.pipeline import StageError, build_stages, run_inline


class StaticError(RuntimeError):
    """The static trial cannot scale the model; the message says why."""


@contextmanager
def static_scaled(config: dict[str, Any]) -> Iterator[None]:
    """With ``[opensim] static``: the model scaled from it, as ``[opensim] scaled_model``
    while the block runs (a temporary file; each output folder gets its own copy as
    ``_scaled.osim``). Without: nothing. Raises ``StaticError``."""
    opensim = config["opensim"]
    if not opensim["static"]:
        yield
        return
    with tempfile.TemporaryDirectory(prefix="monomocap-static-") as folder:
        try:
            opensim["scaled_model"] = str(scale_from_static(config, Path(folder)))
        except (IkError, SourceError, TrcError, StageError) as exc:
            raise StaticError(f"--static {opensim['static']}: {exc}") from None
        yield


def static_markers(
    path: Path, config: dict[str, Any]
) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
    """(T, N, 3) markers of the static trial, their names, and the frames fit for scaling."""
    if path.suffix.lower() == ".trc":
        trc = read_trc(path)
        return trc.xyz, trc.names, np.isfinite(trc.xyz).all(axis=(1, 2))
    margin = float(config["opensim"]["image_margin"])
    stages = build_stages(config)
    source = VideoSource(path, realtime=False)
    frames, usable = [], []
    try:
        for packet in source:
            packet = run_inline(stages, packet)
            if packet is None:
                continue
            markers = np.array(packet.data["markers_64"], dtype=np.float64)
            frames.append(markers)
            usable.append(np.isfinite(markers).all() and inside_image(packet, margin))
    finally:
        source.close()
        for stage in stages:
            stage.close()
    if not frames:
        raise IkError("the video has no frames")
    return np.array(frames), MARKERS_64, np.array(usable)


def scale_from_static(config: dict[str, Any], folder: Path) -> Path:
    """Scale the generic model from ``[opensim] static``; the model file written in
    ``folder`` (raises ``IkError``, ``SourceError`` or ``TrcError`` naming the problem)."""
    opensim = config["opensim"]
    path = Path(opensim["static"])
    xyz, names, usable = static_markers(path, config)
    model, _ = scale_to_markers(opensim, xyz, list(names), usable, float(config["subject"]["mass"]))
    out = folder / f"{path.stem}_static_scaled.osim"
    model.setName(out.stem)
    model.printToXML(str(out))
    return out
