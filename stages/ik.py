"""OpenSim scaling and inverse kinematics of a recorded trial (``--ik``).

Runs after the markers of the whole trial exist (the recorder calls it when a source's
files are finished), not as a stage between frames: scaling needs robust statistics over
the trial's best frames, which a frame-by-frame stage sees only at the end. IK itself is
stepped frame by frame (``models.opensim_ik.MarkerIk``, warm-started from the previous
frame), so a live stage can later run the same solver once a model is scaled.

Writes, into the source's staged output folder (committed whole by the recorder, or not
at all): ``<stem>_scaled.osim``, ``<stem>_ik.mot`` (every model coordinate, degrees for
rotations, metres for translations), ``<stem>_ik_marker_errors.csv`` (RMS and largest
marker error per frame, metres) and with plots ``<stem>_ik.png``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.angle_files import save_png, write_mot
from core.atomic import AtomicFile
from core.packet import Packet
from models.opensim_ik import MarkerIk, read_tasks
from models.opensim_model import (
    check_pairs,
    load_model,
    marker_names,
    read_measurements,
    scale_factors,
    scaled_model,
    scaling_frames,
    setup_file,
)

# The coordinates of the figure: sagittal lower body and trunk.
PLOTTED = (
    ("hip_flexion_r", "hip_flexion_l"),
    ("knee_angle_r", "knee_angle_l"),
    ("ankle_angle_r", "ankle_angle_l"),
    ("pelvis_tilt", "L5_S1_Flex_Ext"),
)


@dataclass
class IkReport:
    """What scaling and IK of one trial gave, for the run summary."""

    frames: int
    solved: int
    median_rms_m: float
    ms_per_frame: float
    factors: dict[str, np.ndarray]


def inside_image(packet: Packet, margin: float) -> bool:
    """Every 2D landmark at least ``margin`` (fraction of the image size) inside the image:
    the frames fit for scaling, where no limb is guessed beyond the border."""
    xy = packet.data["landmarks_2d"]
    size = np.array(packet.image_size, dtype=np.float64)
    return bool(
        np.isfinite(xy).all() and ((xy >= margin * size) & (xy <= (1 - margin) * size)).all()
    )


def check_setup(config: Mapping[str, Any], names: Sequence[str]) -> None:
    """Load the configured model and setup files and check they fit the marker ``names``,
    so a wrong file fails before any frame is processed (``IkError``)."""
    if config["scaled_model"]:
        model = load_model(config, path=Path(config["scaled_model"]))
        tasks = read_tasks(setup_file(config["ik_setup"]))
        MarkerIk(model, names, tasks, int(config["min_markers"]))
        return
    model = load_model(config)
    check_pairs(read_measurements(setup_file(config["scaling_setup"])), names, marker_names(model))
    MarkerIk(model, names, read_tasks(setup_file(config["ik_setup"])), int(config["min_markers"]))


def scale_to_markers(
    config: Mapping[str, Any],
    xyz: np.ndarray,
    names: Sequence[str],
    usable: np.ndarray,
    mass: float,
) -> tuple[Any, dict[str, np.ndarray]]:
    """The generic model scaled to the markers of the usable frames, and its factors."""
    model = load_model(config)
    measurements = read_measurements(setup_file(config["scaling_setup"]))
    check_pairs(measurements, names, marker_names(model))  # before any marker is looked up
    frames = scaling_frames(xyz, names, usable, float(config["max_flexion_deg"]))
    factors = scale_factors(
        model, xyz[frames], names, measurements, float(config["trimmed_percent"])
    )
    return scaled_model(model, factors, mass), factors


def solve_trial(
    model: Any, config: Mapping[str, Any], times: np.ndarray, xyz: np.ndarray, names: Sequence[str]
) -> tuple[MarkerIk, np.ndarray, np.ndarray, float]:
    """IK of every frame: (solver, (T, C) coordinates, (T, 3) rms/max/markers, ms/frame)."""
    ik = MarkerIk(
        model,
        names,
        read_tasks(setup_file(config["ik_setup"])),
        int(config["min_markers"]),
    )
    values = np.full((len(times), len(ik.coordinates)), np.nan)
    errors = np.full((len(times), 3), np.nan)
    start = time.perf_counter()
    for i, (t, frame) in enumerate(zip(times, xyz, strict=True)):
        solution = ik.step(float(t), frame)
        if solution is not None:
            values[i] = solution.values
            errors[i] = (solution.rms_m, solution.max_m, solution.markers)
    ms = 1e3 * (time.perf_counter() - start) / max(len(times), 1)
    return ik, values, errors, ms


def save_model(model: Any, opensim: Mapping[str, Any], folder: Path, stem: str) -> tuple[Any, Path]:
    """Save ``model`` as ``<folder>/<stem>_scaled.osim`` and load it back: IK runs on the
    model as written (offline and live alike), and a file OpenSim cannot load is an error."""
    osim = folder / f"{stem}_scaled.osim"
    folder.mkdir(parents=True, exist_ok=True)
    model.setName(f"{stem}_scaled")
    model.printToXML(str(osim))
    return load_model(opensim, path=osim), osim


def write_ik_files(
    folder: Path,
    stem: str,
    config: Mapping[str, Any],
    times: np.ndarray,
    xyz: np.ndarray,
    names: Sequence[str],
    usable: np.ndarray,
    plots: bool,
) -> tuple[list[Path], IkReport]:
    """Scale (or take ``[opensim] scaled_model``), save and reload the model, run IK over
    every frame, write the files; return their paths and the report."""
    opensim = config["opensim"]
    if opensim["scaled_model"]:
        model, factors = load_model(opensim, path=Path(opensim["scaled_model"])), {}
    else:
        mass = float(config["subject"]["mass"])
        model, factors = scale_to_markers(opensim, xyz, names, usable, mass)
    model, osim = save_model(model, opensim, folder, stem)
    ik, values, errors, ms = solve_trial(model, opensim, times, xyz, names)
    written = [osim, *write_ik_results(folder, stem, times, values, errors, ik.coordinates, plots)]
    report = ik_report(errors)
    report.ms_per_frame, report.factors = ms, factors
    return written, report


def ik_report(errors: np.ndarray) -> IkReport:
    """Frames, frames solved and median marker RMS of (T, 3) rms/max/markers rows."""
    solved = int(np.isfinite(errors[:, 0]).sum())
    rms = float(np.nanmedian(errors[:, 0])) if solved else float("nan")
    return IkReport(len(errors), solved, rms, float("nan"), {})


def write_ik_results(
    folder: Path,
    stem: str,
    times: np.ndarray,
    values: np.ndarray,
    errors: np.ndarray,
    coordinates: Sequence[str],
    plots: bool,
) -> list[Path]:
    """``_ik.mot``, ``_ik_marker_errors.csv`` and with ``plots`` ``_ik.png`` of (T, C)
    coordinate values and (T, 3) rms/max/markers rows (NaN: not solved)."""
    mot = folder / f"{stem}_ik.mot"
    write_mot(mot, times, values, tuple(coordinates))
    csv = folder / f"{stem}_ik_marker_errors.csv"
    with AtomicFile(csv) as f:
        f.write("time,rms_m,max_m,markers\n")
        for t, (rms, big, n) in zip(times, errors, strict=True):
            used = "0" if np.isnan(n) else str(int(n))
            f.write(f"{t:.6f},{rms:.6f},{big:.6f},{used}\n")
    written = [mot, csv]
    if plots:
        png = folder / f"{stem}_ik.png"
        plot_coordinates(png, stem, times, values, coordinates)
        written.append(png)
    return written


def plot_coordinates(
    path: Path, title: str, times: np.ndarray, values: np.ndarray, coordinates: Sequence[str]
) -> None:
    """The main coordinates against time, right and left overlaid."""
    from matplotlib.figure import Figure  # here: plots are optional, the sink needs none

    fig = Figure(figsize=(9, 9), layout="constrained")
    axes = fig.subplots(len(PLOTTED), 1, sharex=True)
    for ax, names in zip(axes, PLOTTED, strict=True):
        for name in names:
            if name in coordinates:
                ax.plot(times, values[:, list(coordinates).index(name)], lw=1.2, label=name)
        ax.set_ylabel("deg")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper right")
    axes[0].set_title(f"{title}: OpenSim coordinates (IK)")
    axes[-1].set_xlabel("time (s)")
    save_png(fig, path)
