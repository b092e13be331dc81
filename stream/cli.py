"""Command-line pieces shared by ``run_offline.py`` and ``run_live.py``.

Both entry points take the same subject and marker flags, map them onto ``config.toml``
keys the same way and report bad values the same way: one ``error:`` line.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NoReturn

from stages.intrinsics import read_calibration
from stream.config import ConfigError, load_config, with_overrides


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line naming the problem, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


LIFT_STAGE = "stages.lift:PofLift"
LIFTS = ("pof", "mediapipe")


def add_pipeline_flags(p: argparse.ArgumentParser) -> None:
    """Flags that set the subject, marker and angle options of the pipeline."""
    p.add_argument("--height", type=float, help="subject standing height in metres")
    p.add_argument("--mass", type=float, help="subject mass in kg")
    p.add_argument("--visibility-min", type=float, help="landmarks below this are missing")
    p.add_argument(
        "--estimate-missing", action="store_true", default=None, help="mirror occluded limbs"
    )
    p.add_argument(
        "--force-complete",
        action="store_true",
        default=None,
        help="estimate every missing marker so each frame with a person is complete",
    )
    p.add_argument(
        "--compute-all-joint-angles",
        action="store_true",
        default=None,
        help="write joint_angles/<video>_<joint>.csv per group and an OpenSim .mot",
    )
    p.add_argument(
        "--plot-all-joint-angles",
        action="store_true",
        default=None,
        help="write a PNG per joint group and a summary figure",
    )
    p.add_argument("--fov", type=float, help="camera field of view across the long side (deg)")
    p.add_argument(
        "--calibration",
        type=Path,
        metavar="FILE",
        help="camera intrinsics from a Pose2Sim .toml or Qualisys .qca.txt (replaces --fov)",
    )
    p.add_argument(
        "--calibration-camera", metavar="NAME", help="which camera of a multi-camera --calibration"
    )
    p.add_argument(
        "--lift",
        choices=LIFTS,
        help="3D from the learned limb-orientation lifter (pof) or MediaPipe's world landmarks"
        " (default: as config.toml's [pipeline] stages say)",
    )
    p.add_argument("--camera-pof", action="store_true", help="same as --lift pof")
    p.add_argument("--pof-model", type=Path, help="ONNX model of the lifter (implies --lift pof)")
    p.add_argument("--config", type=Path, help="configuration file (default: config.toml)")
    p.add_argument(
        "--verbose", action="store_true", help="also show MediaPipe's native log messages"
    )


def config_from_args(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> dict:
    """``config.toml`` (or ``--config``) with the flags applied and checked."""
    config = with_overrides(
        load_config(args.config),
        {
            "subject.height": args.height,
            "subject.mass": args.mass,
            "markers.visibility_min": args.visibility_min,
            "markers.estimate_missing": args.estimate_missing,
            "markers.force_complete": args.force_complete,
            "markers.fov_deg": args.fov,
            "camera.calibration": args.calibration and str(args.calibration),
            "camera.camera": args.calibration_camera,
            "angles.compute_all": args.compute_all_joint_angles,
            "angles.plot_all": args.plot_all_joint_angles,
            **(extra or {}),
        },
    )
    if args.lift == "mediapipe" and (args.camera_pof or args.pof_model):
        raise ConfigError("--lift mediapipe contradicts --camera-pof / --pof-model: pick one")
    if args.lift or args.camera_pof or args.pof_model:
        choose_lift(config, "mediapipe" if args.lift == "mediapipe" else "pof", args.pof_model)
    check_values(config)
    return config


def choose_lift(config: dict[str, Any], method: str, model: Path | None = None) -> None:
    """``pof``: the POF lift right after detection (it replaces MediaPipe's world landmarks);
    ``mediapipe``: no lift stage, MediaPipe's world landmarks go on as they are."""
    stages = config["pipeline"]["stages"]
    if method == "mediapipe":
        stages[:] = [s for s in stages if s != LIFT_STAGE]
        return
    if LIFT_STAGE not in stages:
        stages.insert(1, LIFT_STAGE)
    if model is not None:
        if not model.is_file():
            raise ConfigError(f"--pof-model: file not found: {model}")
        config.setdefault("lift", {})["model"] = str(model.resolve())


def check_values(config: dict[str, Any]) -> None:
    """Reject values that would silently give nonsense."""
    checks = [
        ("--height", config["subject"]["height"], 0.5, 2.6, "m"),
        ("--mass", config["subject"]["mass"], 10.0, 300.0, "kg"),
        ("--visibility-min", config["markers"]["visibility_min"], 0.0, 1.0, ""),
        ("--fov", config["markers"]["fov_deg"], 10.0, 170.0, "deg"),
    ]
    for flag, value, low, high, unit in checks:
        if not low <= float(value) <= high:
            raise ConfigError(f"{flag} must be between {low} and {high} {unit}, got {value}")
    check_calibration(config.setdefault("camera", {}))


def check_calibration(camera: dict[str, Any]) -> None:
    """Resolve ``[camera] calibration`` against the current folder and read it once now, so
    a bad file fails before any frame is processed."""
    if not camera.get("calibration"):
        if camera.get("camera"):
            raise ConfigError("--calibration-camera needs --calibration FILE")
        return
    camera["calibration"] = str(Path(camera["calibration"]).resolve())
    try:
        read_calibration(Path(camera["calibration"]), camera.get("camera") or None)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
