"""Command-line pieces shared by ``run_offline.py`` and ``run_live.py``.

Both entry points take the same subject and marker flags, map them onto ``config.toml``
keys the same way and report bad values the same way: one ``error:`` line.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, NoReturn

from core.intrinsics import read_calibration
from stream.config import DEFAULT_CONFIG, ConfigError, load_config, with_overrides
from stream.config_schema import validate
from transports.keys import CLIENTS, KeysError, ServerKeys, is_loopback


class OneLineParser(argparse.ArgumentParser):
    """Argument errors as one line naming the problem, not a usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


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
        help="camera intrinsics, distortion and pose from a Pose2Sim .toml or Qualisys .qca.txt"
        " (replaces --fov; a pose gives the lab frame)",
    )
    p.add_argument(
        "--calibration-camera", metavar="NAME", help="which camera of a multi-camera --calibration"
    )
    p.add_argument(
        "--camera-pitch",
        type=float,
        metavar="DEG",
        help="the camera's downward tilt (default: estimated from the video)",
    )
    p.add_argument(
        "--camera-roll",
        type=float,
        metavar="DEG",
        help="the true vertical's lean to the image's right (default: estimated from the video)",
    )
    p.add_argument(
        "--lift",
        choices=LIFTS,
        help="3D from the learned limb-orientation lifter (pof) or MediaPipe's world landmarks"
        " (default: config.toml's [lift] method)",
    )
    p.add_argument("--camera-pof", action="store_true", help="same as --lift pof")
    p.add_argument("--pof-model", type=Path, help="ONNX model of the lifter (implies --lift pof)")
    p.add_argument(
        "--joint-refinement",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fit a skeleton with constant bones and joint limits to the POF lift ([fit] "
        "enabled; on by default)",
    )
    p.add_argument(
        "--c3d",
        action="store_true",
        default=None,
        help="also write <video>.c3d: the final markers (mm) and the ISB angles",
    )
    p.add_argument(
        "--ik",
        action="store_true",
        default=None,
        help="scale the OpenSim model and run inverse kinematics ([opensim] in config.toml)",
    )
    p.add_argument(
        "--osim",
        type=Path,
        metavar="FILE.osim",
        help="IK with this model scaled earlier (e.g. a _scaled.osim), no scaling (implies --ik)",
    )
    p.add_argument(
        "--static",
        type=Path,
        metavar="VIDEO_OR_TRC",
        help="scale the OpenSim model from this static trial (the subject standing still: a "
        "video, or its _final.trc), then IK with it (implies --ik)",
    )
    p.add_argument("--config", type=Path, help="configuration file (default: config.toml)")
    p.add_argument(
        "--verbose", action="store_true", help="also show MediaPipe's native log messages"
    )


# Config keys a command-line flag overrides (when given), named by that flag in errors.
FLAGS = {
    "subject.height": "--height",
    "subject.mass": "--mass",
    "markers.visibility_min": "--visibility-min",
    "markers.estimate_missing": "--estimate-missing",
    "markers.force_complete": "--force-complete",
    "markers.fov_deg": "--fov",
    "lift.method": "--lift",
    "lift.model": "--pof-model",
    "fit.enabled": "--joint-refinement",
    "camera.calibration": "--calibration",
    "camera.camera": "--calibration-camera",
    "camera.pitch": "--camera-pitch",
    "camera.roll": "--camera-roll",
    "angles.compute_all": "--compute-all-joint-angles",
    "angles.plot_all": "--plot-all-joint-angles",
    "opensim.enabled": "--ik",
    "opensim.scaled_model": "--osim",
    "opensim.static": "--static",
    "output.dir": "--output",
    "output.c3d": "--c3d",
    "live.publish": "--publish",
    "live.control": "--control",
    "live.curve_keys": "--curve-keys",
    "viewer.record_dir": "--record",
    "lsl.enabled": "--lsl",
    "osc.target": "--osc",
    "osc.max_rate": "--osc-max-rate",
}


def config_from_args(args: argparse.Namespace, extra: dict[str, Any] | None = None) -> dict:
    """``config.toml`` merged with ``--config`` and the flags, checked against the schema
    (``stream/config_schema.py``) so a flag's value obeys the same rules as the file's."""
    overrides = {key: _flag_value(args, flag) for key, flag in FLAGS.items()}
    config = with_overrides(load_config(args.config), {**overrides, **(extra or {})})
    if args.lift == "mediapipe" and (args.camera_pof or args.pof_model):
        raise ConfigError("--lift mediapipe contradicts --camera-pof / --pof-model: pick one")
    if args.camera_pof or args.pof_model:
        config["lift"]["method"] = "pof"
    if args.pof_model is not None:
        if not args.pof_model.is_file():
            raise ConfigError(f"--pof-model: file not found: {args.pof_model}")
        config["lift"]["model"] = str(args.pof_model.resolve())
    given = {key: flag for key, flag in FLAGS.items() if overrides[key] is not None}
    validate(config, str(args.config or DEFAULT_CONFIG.name), flags=given)
    if args.joint_refinement and config["lift"]["method"] != "pof":
        raise ConfigError("--joint-refinement needs the limb directions of --lift pof")
    check_calibration(config["camera"])
    check_opensim(config["opensim"])
    return config


def check_opensim(opensim: dict[str, Any]) -> None:
    """``--osim`` and ``--static`` imply ``--ik``, exclude each other, and name files that
    exist (resolved against the current folder)."""
    given = [key for key in ("scaled_model", "static") if opensim[key]]
    if len(given) == 2:
        raise ConfigError("--osim and --static contradict each other: give one model source")
    for key in given:
        path = Path(opensim[key])
        if not path.is_file():
            flag = FLAGS[f"opensim.{key}"]
            raise ConfigError(f"{flag}: file not found: {path} (check the path)")
        opensim[key] = str(path.resolve())
        opensim["enabled"] = True


def _flag_value(args: argparse.Namespace, flag: str) -> Any:
    """The value of ``--flag`` (None when not given or not a flag of this program);
    paths as strings, as the config file has them."""
    value = getattr(args, flag.removeprefix("--").replace("-", "_"), None)
    return str(value) if isinstance(value, Path) else value


def check_calibration(camera: dict[str, Any]) -> None:
    """Resolve ``[camera] calibration`` against the current folder and read it once now, so
    a bad file fails before any frame is processed."""
    if not camera.get("calibration"):
        if camera.get("camera"):
            raise ConfigError("--calibration-camera needs --calibration FILE")
        return
    camera["calibration"] = str(Path(camera["calibration"]).resolve())
    try:
        calibration = read_calibration(Path(camera["calibration"]), camera.get("camera") or None)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    given = [k for k in ("pitch", "roll") if camera[k] != "" and not math.isnan(camera[k])]
    if calibration.R is not None and given:
        raise ConfigError(
            "--camera-pitch/--camera-roll contradict the pose in --calibration: leave them "
            "out (the calibration gives the vertical)"
        )


def check_public_endpoints(config: dict[str, Any], insecure: bool) -> list[str]:
    """Load the CURVE keys now, so a bad folder fails before any process starts; refuse a
    publish/control endpoint other hosts can reach unless it has CURVE or ``--insecure``.
    Returns the warning lines to print."""
    live = config["live"]
    if live["curve_keys"]:
        live["curve_keys"] = str(Path(live["curve_keys"]).resolve())
        try:
            keys = ServerKeys.load(live["curve_keys"])
        except KeysError as exc:
            raise ConfigError(str(exc)) from None
        if not keys.clients:
            clients = Path(live["curve_keys"]) / CLIENTS
            return [
                f"warning: no client keys in {clients}: only this host's viewer (and --lsl/--osc)"
                " can connect"
            ]
        return []
    exposed = [live[key] for key in ("publish", "control") if not is_loopback(live[key])]
    if not exposed:
        return []
    if not insecure:
        raise ConfigError(
            f"{exposed[0]} can be reached from other hosts: use --curve-keys DIR (keys from "
            "`uv run python -m transports.keys generate DIR`), or --insecure to let anyone "
            "on the network read the stream and use the control socket"
        )
    return [
        f"warning: {' and '.join(exposed)} without authentication or encryption (--insecure): "
        "anyone on the network can read the stream and use the control socket"
    ]
