"""The OpenSim model of Pose2Sim's setup: its files, loading, and scaling to a subject.

The model, marker set and setup files are those the installed Pose2Sim package ships in
``OpenSim_Setup/`` (read at run time, never copied here): the same 64-marker LSTM set the
augmenter produces. Scaling follows Pose2Sim's kinematics step: each body's scale factors
are the ratio of measured to model distances of the marker pairs its setup file names
(measurements), measured robustly over the frames fit for it (complete markers, person well
inside the image, hip and knee not deeply flexed), as a trimmed mean; then OpenSim scales
the bodies (markers move with them) and distributes the subject's mass. Height needs no
step of its own: the markers are already metric from ``[subject] height``.

``import opensim`` is deferred to the functions that need it so the rest of the engine runs
where the optional wheel is absent.
"""

from __future__ import annotations

import importlib.resources
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LOG_LEVELS = {"off": "Off", "error": "Error", "warn": "Warn", "info": "Info"}


class IkError(RuntimeError):
    """OpenSim scaling or IK cannot run on this input; the message says why and what to do."""


def opensim_module() -> Any:
    """``opensim``, with its log file off (no ``opensim.log`` in the working folder)."""
    try:
        import opensim
    except ImportError:
        raise IkError(
            "--ik needs the opensim package: `uv pip install opensim==4.6` (numpy>=2.1)"
        ) from None
    opensim.Logger.removeFileSink()
    return opensim


def with_log_level(level: str) -> Any:
    """``opensim`` with its console log at ``level`` (one of ``LOG_LEVELS``)."""
    opensim = opensim_module()
    opensim.Logger.setLevelString(LOG_LEVELS[level])
    return opensim


def setup_file(name: str) -> Path:
    """A file of Pose2Sim's ``OpenSim_Setup`` folder by bare name, or a path as given."""
    if "/" in name or "\\" in name:
        path = Path(name)
    else:
        path = Path(str(importlib.resources.files("Pose2Sim") / "OpenSim_Setup" / name))
    if not path.is_file():
        raise IkError(f"OpenSim file not found: {path} (check [opensim] in config.toml)")
    return path


@dataclass(frozen=True)
class Measurement:
    """Marker pairs whose distance ratios scale the listed ``(body, axes)``."""

    name: str
    pairs: tuple[tuple[str, str], ...]
    bodies: tuple[tuple[str, tuple[int, ...]], ...]


def read_measurements(path: Path) -> list[Measurement]:
    """The applied measurements of an OpenSim ScaleTool setup file."""
    axis = {"X": 0, "Y": 1, "Z": 2}
    found = []
    for m in ET.parse(path).iter("Measurement"):
        if (m.findtext("apply") or "true").strip().lower() != "true":
            continue
        pairs = tuple(tuple(p.findtext("markers", "").split()) for p in m.iter("MarkerPair"))
        bodies = tuple(
            (b.get("name", ""), tuple(axis[a] for a in b.findtext("axes", "").split()))
            for b in m.iter("BodyScale")
        )
        found.append(Measurement(m.get("name", ""), pairs, bodies))  # type: ignore[arg-type]
    return found


def load_model(config: Mapping[str, Any], path: Path | None = None) -> Any:
    """The generic model with the configured marker set (or a scaled model file), checked:
    raise ``IkError`` if it does not load."""
    opensim = with_log_level(config["log"])
    folder = setup_file(config["model"]).parent / "Geometry"
    opensim.ModelVisualizer.addDirToGeometrySearchPaths(str(folder))
    source = path or setup_file(config["model"])
    try:
        model = opensim.Model(str(source))
        if path is None:
            model.set_MarkerSet(opensim.MarkerSet(str(setup_file(config["markers"]))))
        model.initSystem()
    except RuntimeError as exc:
        why = " ".join(str(exc).split())[-160:] or type(exc).__name__
        raise IkError(f"OpenSim cannot load the model {source}: {why}") from None
    return model


def coordinate_names(model_text: str) -> list[str]:
    """The coordinates of an .osim file's text, in the order OpenSim's CoordinateSet has
    them (the joints' order; a test checks it), without loading OpenSim: for the sink's
    schema and the recorder."""
    return [c.get("name", "") for c in ET.fromstring(model_text).iter("Coordinate")]


def marker_names(model: Any) -> list[str]:
    markers = model.getMarkerSet()
    return [markers.get(i).getName() for i in range(markers.getSize())]


def marker_positions(model: Any, state: Any) -> np.ndarray:
    """(N, 3) ground positions of the model's markers in ``state`` (metres)."""
    model.realizePosition(state)
    markers = model.getMarkerSet()
    return np.array(
        [markers.get(i).getLocationInGround(state).to_numpy() for i in range(markers.getSize())]
    )


# Joint-centre markers of the LSTM set (also on the model) for the flexion of a frame.
FLEXION_MARKERS = (
    "RHJC_study",
    "LHJC_study",
    "r_knee_study",
    "L_knee_study",
    "r_ankle_study",
    "L_ankle_study",
    "r_shoulder_study",
    "L_shoulder_study",
)


def check_pairs(
    measurements: Sequence[Measurement], names: Sequence[str], model_names: Sequence[str]
) -> None:
    """Raise ``IkError`` unless every marker scaling needs is in the data and the model."""
    needed = {m for meas in measurements for pair in meas.pairs for m in pair}
    needed |= set(FLEXION_MARKERS)
    missing = sorted((needed - set(names)) | (needed - set(model_names)))
    if missing:
        raise IkError(
            "the marker set does not match the OpenSim model: scaling needs "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''} in both the data "
            "and the model: set "
            "[opensim] markers and scaling_setup to files of the same marker set"
        )


def _flexion_deg(xyz: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """(T,) mean of hip and knee flexion per frame from the joint markers, as Pose2Sim's
    frame selection: 0 standing straight, 90 sitting."""
    at = {n: xyz[:, names.index(n)] for n in FLEXION_MARKERS}

    def bend(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
        u, v = a - b, c - b
        cos = (u * v).sum(-1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
        return 180.0 - np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))

    hip_r, hip_l, knee_r, knee_l, ankle_r, ankle_l, shoulder_r, shoulder_l = (
        at[n] for n in FLEXION_MARKERS
    )
    shoulders = (shoulder_r + shoulder_l) / 2
    return np.mean(
        [
            bend(hip_r, knee_r, ankle_r),
            bend(hip_l, knee_l, ankle_l),
            bend(shoulders, hip_r, knee_r),
            bend(shoulders, hip_l, knee_l),
        ],
        axis=0,
    )


def trimmed_mean(values: np.ndarray, percent: float) -> float:
    """Mean of the finite values after dropping ``percent``/2 % at each end."""
    v = np.sort(values[np.isfinite(values)])
    cut = int(len(v) * percent / 200.0)
    kept = v[cut : len(v) - cut] if len(v) > 2 * cut else v
    return float(kept.mean()) if len(kept) else float("nan")


def scaling_frames(
    xyz: np.ndarray, names: Sequence[str], usable: np.ndarray, max_flexion_deg: float
) -> np.ndarray:
    """Indices of the frames to scale from: ``usable`` (markers complete, person inside the
    image) and hip/knee flexion below ``max_flexion_deg``; raise if there are none."""
    flexion = _flexion_deg(xyz, names)
    good = np.flatnonzero(usable & (flexion < max_flexion_deg))
    if len(good) == 0:
        good = np.flatnonzero(usable)
    if len(good) == 0:
        raise IkError(
            "no frame to scale the OpenSim model from: the person is never whole and inside "
            "the image with every marker"
        )
    return good


def scale_factors(
    model: Any,
    xyz: np.ndarray,
    names: Sequence[str],
    measurements: Sequence[Measurement],
    trimmed_percent: float,
) -> dict[str, np.ndarray]:
    """Per body, (3,) scale factors: the mean over a measurement's pairs of the trimmed-mean
    measured distance over the model's distance in its default pose."""
    model_names = marker_names(model)
    model_xyz = marker_positions(model, model.initSystem())
    check_pairs(measurements, names, model_names)
    factors: dict[str, np.ndarray] = {}
    for meas in measurements:
        ratios = []
        for a, b in meas.pairs:
            measured = np.linalg.norm(xyz[:, names.index(a)] - xyz[:, names.index(b)], axis=-1)
            generic = np.linalg.norm(
                model_xyz[model_names.index(a)] - model_xyz[model_names.index(b)]
            )
            ratios.append(trimmed_mean(measured, trimmed_percent) / generic)
        ratio = float(np.mean(ratios))
        for body, axes in meas.bodies:
            factors.setdefault(body, np.ones(3))[list(axes)] = ratio
    return factors


def scaled_model(model: Any, factors: Mapping[str, np.ndarray], mass: float) -> Any:
    """``model`` with its bodies (and markers) scaled and its mass set to ``mass`` kg,
    keeping the generic mass distribution."""
    opensim = opensim_module()
    scales = opensim.ScaleSet()
    for body, f in factors.items():
        scale = opensim.Scale()
        scale.setSegmentName(body)
        scale.setScaleFactors(opensim.Vec3(*map(float, f)))
        scale.setApply(True)
        scales.cloneAndAppend(scale)
    state = model.initSystem()
    if not model.scale(state, scales, True, float(mass)):
        raise IkError("OpenSim could not scale the model (see --verbose output)")
    model.initSystem()
    return model
