"""Inverse kinematics one frame at a time with OpenSim's ``InverseKinematicsSolver``.

Each frame gets a one-row ``MarkersReference`` and is assembled starting from the previous
frame's solution (warm start), instead of one ``InverseKinematicsTool`` run over a whole
file: the same object can then step a live stream, and offline and live give the same
numbers. The price: ~1.5x the time of one solver tracking a whole table (measured on
the demo's cam01: 8-14 ms per frame on 2 shared cores; the solver is rebuilt each frame).
Marker weights and coordinate tasks come from the IK setup file; a marker missing in a
frame (NaN) is left out of that frame's problem (weight 0); a frame with fewer than
``min_markers`` weighted markers is not solved (NaN row).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.opensim_model import IkError, marker_names, opensim_module


@dataclass(frozen=True)
class IkTasks:
    """What the IK setup file asks: marker weights, coordinate targets, accuracy."""

    markers: dict[str, float]
    coordinates: dict[str, tuple[float, float | None]]  # name -> (weight, value; None=default)
    accuracy: float


def read_tasks(path: Path) -> IkTasks:
    """The applied tasks of an OpenSim IK setup file."""
    root = ET.parse(path).getroot()

    def applied(e: ET.Element) -> bool:
        return (e.findtext("apply") or "true").strip().lower() == "true"

    markers = {
        e.get("name", ""): float(e.findtext("weight", "0"))
        for e in root.iter("IKMarkerTask")
        if applied(e) and float(e.findtext("weight", "0")) > 0
    }
    coordinates: dict[str, tuple[float, float | None]] = {}
    for e in root.iter("IKCoordinateTask"):
        kind = (e.findtext("value_type") or "default_value").strip()
        if applied(e) and kind in ("default_value", "manual_value"):
            value = float(e.findtext("value", "0")) if kind == "manual_value" else None
            coordinates[e.get("name", "")] = (float(e.findtext("weight", "0")), value)
    accuracy = float(root.findtext(".//accuracy") or 1e-5)
    return IkTasks(markers, coordinates, accuracy)


@dataclass(frozen=True)
class IkFrame:
    """One frame's solution: model coordinates (degrees / metres), marker errors (m)."""

    values: np.ndarray
    rms_m: float
    max_m: float
    markers: int  # markers used


class MarkerIk:
    """Steps IK for one source over (N, 3) marker frames named ``names``."""

    def __init__(self, model: Any, names: Sequence[str], tasks: IkTasks, min_markers: int) -> None:
        opensim = opensim_module()
        self._osim = opensim
        self.model = model
        present = set(marker_names(model)) & set(names)
        missing = sorted(set(tasks.markers) - present)
        if missing:
            raise IkError(
                f"the marker set does not match the OpenSim model: {len(missing)} IK markers "
                f"are not in both the data and the model ({', '.join(missing[:5])}...): set "
                "[opensim] markers and ik_setup to files of the same marker set"
            )
        self.used = [n for n in names if n in tasks.markers]
        self._columns = [list(names).index(n) for n in self.used]
        self.min_markers = min_markers
        self.accuracy = tasks.accuracy
        self._weights = opensim.SetMarkerWeights()
        for name in self.used:
            self._weights.cloneAndAppend(opensim.MarkerWeight(name, tasks.markers[name]))
        self._coordinate_refs = opensim.SimTKArrayCoordinateReference()
        coords = model.getCoordinateSet()
        for name, (weight, value) in tasks.coordinates.items():
            if not coords.contains(name):
                raise IkError(f"the IK setup's coordinate task {name} is not in the model")
            target = coords.get(name).getDefaultValue() if value is None else value
            ref = opensim.CoordinateReference(name, opensim.Constant(target))
            ref.setWeight(weight)
            self._coordinate_refs.push_back(ref)
        self.coordinates = [coords.get(i).getName() for i in range(coords.getSize())]
        self._rotational = np.array(
            [
                coords.get(i).getMotionType() == opensim.Coordinate.Rotational
                for i in range(coords.getSize())
            ]
        )
        self.state = model.initSystem()

    def step(self, time_s: float, xyz: np.ndarray) -> IkFrame | None:
        """Solve one frame; None if it has fewer than ``min_markers`` usable markers."""
        osim = self._osim
        frame = np.asarray(xyz, dtype=np.float64)[self._columns]
        seen = np.isfinite(frame).all(axis=1)
        if seen.sum() < self.min_markers:
            return None
        table = osim.TimeSeriesTableVec3()
        table.setColumnLabels(self.used)
        row = [
            osim.Vec3(*p) if ok else osim.Vec3(math.nan) for p, ok in zip(frame, seen, strict=True)
        ]
        table.appendRow(float(time_s), osim.RowVectorVec3(row))
        reference = osim.MarkersReference(table, self._weights)
        solver = osim.InverseKinematicsSolver(
            self.model, reference, self._coordinate_refs, math.inf
        )
        solver.setAccuracy(self.accuracy)
        self.state.setTime(float(time_s))
        try:
            solver.assemble(self.state)  # starts from the state's q: the previous frame
        except RuntimeError as exc:
            raise IkError(f"OpenSim IK failed at t={time_s:.3f} s: {exc}") from None
        errors = osim.SimTKArrayDouble()
        solver.computeCurrentMarkerErrors(errors)
        e = np.array([errors.getElt(i) for i in range(errors.size())])
        return IkFrame(
            self._coordinate_values(), float(np.sqrt(np.mean(e**2))), float(e.max()), len(e)
        )

    def _coordinate_values(self) -> np.ndarray:
        coords = self.model.getCoordinateSet()
        q = np.array([coords.get(i).getValue(self.state) for i in range(coords.getSize())])
        return np.where(self._rotational, np.degrees(q), q)
