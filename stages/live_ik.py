"""The ``ik`` stage of a live run (``run_live.py --ik``): OpenSim IK frame by frame.

Offline, IK runs over the whole trial once its markers exist (``stages/ik.py``); live, a
stage after the augmenter (and the angles) solves each frame as it comes. The model is the
one given (``[opensim] scaled_model``: ``--osim``, or the model ``--static`` scaled before
the run) or, without one, the generic model scaled from the first ``[opensim] scale_s``
seconds of frames fit for scaling (all 64 markers, the person well inside the image), the
way offline scales from the whole trial; until then frames carry NaN. Each frame is
warm-started from the previous one (``models.opensim_ik.MarkerIk``), a missing marker has
weight 0, and a frame with too few markers, or one OpenSim cannot solve, is a NaN row that
is counted while the stream goes on. The model is saved and loaded back exactly as offline
does, so the same model and markers give the same numbers in both modes.

Adds ``data["ik"]`` (C,) coordinates (degrees, metres for the pelvis translations; order
``ik_coordinates``), ``data["ik_errors"]`` (rms m, max m, markers used), ``meta["ik_scaled"]``
(a model is in use), ``meta["ik_skipped"]`` (frames with a model left unsolved so far) and,
on the first frame solved with a model, ``meta["ik_model"]``: the model file's text, for
the recorder's ``_scaled.osim``.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.marker_sets import MARKERS_64
from core.packet import Packet
from core.stage import Stage
from models.opensim_ik import MarkerIk, read_tasks
from models.opensim_model import IkError, load_model, setup_file
from stages.ik import check_setup, inside_image, save_model, scale_to_markers
from stages.record import file_stem


@dataclass
class _Source:
    """One source's solver, or the frames it is collecting to scale from."""

    ik: MarkerIk | None = None
    model_text: str | None = None  # sent once with the first solved frame
    frames: list[np.ndarray] = field(default_factory=list)
    since: float = math.inf  # media time of the first frame collected
    skipped: int = 0


class LiveIk(Stage):
    """OpenSim inverse kinematics of each frame's 64 markers (``--ik`` in live mode)."""

    name = "ik"

    def __init__(self) -> None:
        self._sources: dict[str, _Source] = {}
        self.coordinates: list[str] = []

    def setup(self, config: Mapping[str, Any]) -> None:
        self.opensim = config["opensim"]
        self.mass = float(config["subject"]["mass"])
        check_setup(self.opensim, MARKERS_64)  # a wrong file fails before the first frame
        self.tasks = read_tasks(setup_file(self.opensim["ik_setup"]))
        model = load_model(self.opensim)
        coords = model.getCoordinateSet()
        self.coordinates = [coords.get(i).getName() for i in range(coords.getSize())]

    def process(self, packet: Packet) -> Packet:
        markers = packet.data.get("markers_64")
        if markers is None:
            raise ValueError("ik needs data['markers_64']: augment must run before ik")
        source = self._sources.setdefault(packet.source_id, _Source())
        if source.ik is None:
            self._prepare(source, packet, np.array(markers, dtype=np.float64))
        values = np.full(len(self.coordinates), np.nan)
        errors = np.full(3, np.nan)
        if source.ik is not None:
            try:
                solution = source.ik.step(float(packet.media_time_s), markers)
            except IkError:
                solution = None  # OpenSim could not assemble this frame: a NaN row
            if solution is None:
                source.skipped += 1
            else:
                values, errors = (
                    solution.values,
                    np.array([solution.rms_m, solution.max_m, solution.markers], dtype=np.float64),
                )
                if source.model_text is not None:
                    packet.meta["ik_model"], source.model_text = source.model_text, None
        packet.data["ik"] = values
        packet.data["ik_errors"] = errors
        packet.meta["ik_scaled"] = source.ik is not None
        packet.meta["ik_skipped"] = source.skipped
        return packet

    def _prepare(self, source: _Source, packet: Packet, markers: np.ndarray) -> None:
        """Load the given model, or collect this frame and scale once there are enough."""
        if self.opensim["scaled_model"]:
            model = load_model(self.opensim, path=Path(self.opensim["scaled_model"]))
        else:
            if np.isfinite(markers).all() and inside_image(
                packet, float(self.opensim["image_margin"])
            ):
                source.frames.append(markers)
                source.since = min(source.since, float(packet.media_time_s))
            span = float(packet.media_time_s) - source.since  # -inf before the first one
            if len(source.frames) < 2 or span < float(self.opensim["scale_s"]):
                return
            xyz = np.array(source.frames)
            usable = np.ones(len(xyz), dtype=bool)
            model, _ = scale_to_markers(self.opensim, xyz, MARKERS_64, usable, self.mass)
            source.frames = []
        with tempfile.TemporaryDirectory(prefix="monomocap-ik-") as folder:
            model, path = save_model(model, self.opensim, Path(folder), file_stem(packet.source_id))
            source.model_text = path.read_text(encoding="utf-8")
        source.ik = MarkerIk(model, MARKERS_64, self.tasks, int(self.opensim["min_markers"]))

    def reset(self, source_id: str | None = None) -> None:
        """A new person (or a restart): scale again, or reload the given model."""
        if source_id is None:
            self._sources.clear()
        else:
            self._sources.pop(source_id, None)
