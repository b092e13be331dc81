"""Joint-angle files: one CSV per joint group, an OpenSim .mot with every column, PNG plots.

Everything goes under ``<out_dir>/joint_angles/``. Each file is written to a temporary file
in the same folder and renamed over the final name (``core.atomic``), so a crash or an
error never leaves a half-written file under a name that a user or another program trusts.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from core.angle_set import ANGLE_COLUMNS, ANGLE_GROUPS, ANGLE_POSITIVE
from core.atomic import AtomicFile
from core.number_text import number_row
from core.provenance import software_label

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FOLDER = "joint_angles"


def _write_atomic(path: Path, content: str | bytes) -> None:
    """Write ``content`` to ``path`` atomically (see ``core.atomic``)."""
    with AtomicFile(path, binary=isinstance(content, bytes)) as f:
        f.write(content)


def _table(times: np.ndarray, values: np.ndarray, delimiter: str) -> str:
    rows = np.column_stack([times, values])
    return "".join(number_row(row, ".6f", delimiter) + "\n" for row in rows)


def confidence_column(column: str) -> str:
    """The CSV column of an angle's confidence (``knee_r_flex_deg``: ``knee_r_flex_confidence``)."""
    return column.removesuffix("_deg") + "_confidence"


def write_group_csv(
    path: Path,
    times: np.ndarray,
    values: np.ndarray,
    columns: tuple[str, ...],
    confidence: np.ndarray | None = None,
) -> None:
    """``time`` + the group's columns, comma separated, ``nan`` where a joint is missing;
    then, with ``confidence`` (same shape as ``values``), each column's confidence (0..1)."""
    names = ["time", *columns]
    if confidence is not None:
        names += [confidence_column(c) for c in columns]
        values = np.column_stack([values, confidence])
    _write_atomic(path, ",".join(names) + "\n" + _table(times, values, ","))


def write_mot(
    path: Path, times: np.ndarray, values: np.ndarray, columns: tuple[str, ...] = ANGLE_COLUMNS
) -> None:
    """OpenSim motion file (angles in degrees, tab separated), ``time`` then ``columns``."""
    header = (
        f"{path.stem}\nversion=1\nnRows={len(times)}\nnColumns={len(columns) + 1}\n"
        f"inDegrees=yes\nsoftware={software_label()}\nendheader\n"
        + "\t".join(["time", *columns])
        + "\n"
    )
    _write_atomic(path, header + _table(times, values, "\t"))


def read_mot(path: Path) -> tuple[list[str], np.ndarray]:
    """Column names and (rows, columns) values of a .mot file written by ``write_mot``."""
    lines = Path(path).read_text().splitlines()
    start = lines.index("endheader") + 1
    names = lines[start].split("\t")
    data = np.array([[float(v) for v in line.split("\t")] for line in lines[start + 1 :]])
    return names, data.reshape(-1, len(names))


def _label(column: str) -> str:
    """'+ dorsiflexion (deg)': what a positive value of the column means."""
    return f"+ {ANGLE_POSITIVE[column]} (deg)"


def save_png(fig: Figure, path: Path) -> None:
    """Render in memory first, so a plotting error never touches the folder."""
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    _write_atomic(path, png.getvalue())


def plot_group(
    path: Path, title: str, times: np.ndarray, values: np.ndarray, columns: tuple[str, ...]
) -> None:
    """One panel per angle of the group, against time."""
    from matplotlib.figure import Figure  # here: the live sink writes no plots

    fig = Figure(figsize=(8, 1.2 + 1.8 * len(columns)), layout="constrained")
    axes = fig.subplots(len(columns), 1, sharex=True, squeeze=False)[:, 0]
    for ax, column, series in zip(axes, columns, values.T, strict=True):
        ax.plot(times, series, lw=1.2)
        ax.set_ylabel(_label(column))
        ax.grid(alpha=0.3)
    axes[0].set_title(title)
    axes[-1].set_xlabel("time (s)")
    save_png(fig, path)


def plot_summary(path: Path, title: str, times: np.ndarray, angles: np.ndarray) -> None:
    """Every joint group in one grid, the group's angles overlaid per panel."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(14, 11), layout="constrained")
    axes = fig.subplots(4, 3, sharex=True).ravel()
    for ax, (group, columns) in zip(axes, ANGLE_GROUPS.items(), strict=True):
        for column in columns:
            series = angles[:, ANGLE_COLUMNS.index(column)]
            ax.plot(times, series, lw=1.0, label=ANGLE_POSITIVE[column])
        ax.set_title(group)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
    for ax in axes[-3:]:
        ax.set_xlabel("time (s)")
    fig.suptitle(f"{title}: joint angles (deg), legend = positive direction")
    save_png(fig, path)


def write_angle_outputs(
    out_dir: Path,
    video_stem: str,
    times: np.ndarray,
    angles: np.ndarray,
    csv: bool = True,
    plots: bool = True,
    confidence: np.ndarray | None = None,
) -> list[Path]:
    """Write ``<video>_<group>.csv``/``.png``, ``<video>_angles.mot`` and
    ``<video>_angles_summary.png`` for (T,) times in seconds and (T, N) angles in the order
    of ``ANGLE_COLUMNS``; with (T, N) ``confidence`` the CSVs also hold each angle's
    confidence (``confidence_column``); return the paths written."""
    times = np.asarray(times, dtype=np.float64)
    angles = np.asarray(angles, dtype=np.float64)
    if angles.shape != (len(times), len(ANGLE_COLUMNS)):
        raise ValueError(
            f"angles must be ({len(times)}, {len(ANGLE_COLUMNS)}) like ANGLE_COLUMNS, "
            f"got {angles.shape}"
        )
    if confidence is not None and np.shape(confidence) != angles.shape:
        raise ValueError(f"confidence must be {angles.shape} like the angles")
    folder = Path(out_dir) / FOLDER  # AtomicFile creates it
    written: list[Path] = []
    for group, columns in ANGLE_GROUPS.items():
        values = angles[:, [ANGLE_COLUMNS.index(c) for c in columns]]
        if csv:
            table = folder / f"{video_stem}_{group}.csv"
            rows = [ANGLE_COLUMNS.index(c) for c in columns]
            group_confidence = None if confidence is None else np.asarray(confidence)[:, rows]
            write_group_csv(table, times, values, columns, group_confidence)
            written.append(table)
        if plots:
            png = folder / f"{video_stem}_{group}.png"
            plot_group(png, f"{video_stem}: {group}", times, values, columns)
            written.append(png)
    write_mot(folder / f"{video_stem}_angles.mot", times, angles)
    written.append(folder / f"{video_stem}_angles.mot")
    if plots:
        plot_summary(folder / f"{video_stem}_angles_summary.png", video_stem, times, angles)
        written.append(folder / f"{video_stem}_angles_summary.png")
    return written
