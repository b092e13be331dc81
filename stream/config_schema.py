"""What a configuration may contain: every section and key of ``config.toml``, its type and
its allowed values, declared once here.

``validate`` checks a config (a user's file, the project's defaults, or the result of
command-line overrides) and raises ``ConfigError`` with one line that names the key (or the
flag that set it), the value and what is allowed, so a bad value fails before any process
starts instead of deep inside MediaPipe or a stage.
"""

from __future__ import annotations

import difflib
import importlib.util
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any


class ConfigError(ValueError):
    """The configuration file or an override is invalid; the message names it."""


# MediaPipe's pose landmark model for each model_complexity. mediapipe 0.10.21 ships only
# the full model; it would download the others at first use, which fails offline.
POSE_MODELS = {
    0: "pose_landmark_lite.tflite",
    1: "pose_landmark_full.tflite",
    2: "pose_landmark_heavy.tflite",
}


@cache
def installed_pose_models() -> tuple[int, ...]:
    """The model_complexity values whose model file is in the installed mediapipe package
    (found without importing it: that takes seconds)."""
    spec = importlib.util.find_spec("mediapipe")
    if spec is None or not spec.submodule_search_locations:
        return ()
    folder = Path(list(spec.submodule_search_locations)[0]) / "modules" / "pose_landmark"
    return tuple(level for level, name in POSE_MODELS.items() if (folder / name).is_file())


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@dataclass(frozen=True)
class Number:
    """A finite real number in ``[low, high]`` (``above``: strictly greater than ``low``)."""

    low: float
    high: float
    unit: str = ""
    above: bool = False
    unset: str = ""  # what "" or nan mean where allowed ("estimated ..."); "": not allowed

    def accepts(self, value: Any) -> bool:
        if self.unset and (value == "" or (_is_number(value) and math.isnan(value))):
            return True
        if not _is_number(value) or not math.isfinite(value):
            return False
        return (value > self.low if self.above else value >= self.low) and value <= self.high

    def allowed(self) -> str:
        low = f"above {self.low:g} and at most" if self.above else f"between {self.low:g} and"
        either = f', or "" ({self.unset})' if self.unset else ""
        return f"{low} {self.high:g} {self.unit}".rstrip() + either


@dataclass(frozen=True)
class Integer:
    """A whole number in ``[low, high]``, or one of ``choices()`` when given."""

    low: int = 0
    high: int | None = None
    unit: str = ""
    choices: Callable[[], tuple[int, ...]] | None = None
    why: str = ""  # what the choices are, for the message

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, int) or isinstance(value, bool):
            return False
        if self.choices is not None:
            return value in self.choices()
        return value >= self.low and (self.high is None or value <= self.high)

    def allowed(self) -> str:
        if self.choices is not None:
            options = ", ".join(map(str, self.choices())) or "none"
            return f"one of {options} ({self.why})"
        if self.high is None:
            return f"a whole number of at least {self.low} {self.unit}".rstrip()
        return f"a whole number between {self.low} and {self.high} {self.unit}".rstrip()


@dataclass(frozen=True)
class Flag:
    """``true`` or ``false``."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def allowed(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Text:
    """A string: one of ``choices``, or matching ``pattern`` (``what`` says it in words)."""

    choices: tuple[str, ...] = ()
    pattern: str = ""
    what: str = "a string"

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        if self.choices:
            return value in self.choices
        return re.fullmatch(self.pattern, value) is not None if self.pattern else True

    def allowed(self) -> str:
        if self.choices:
            return "one of " + ", ".join(f'"{c}"' for c in self.choices)
        return self.what


@dataclass(frozen=True)
class TextList:
    """A list of strings, each accepted by ``item`` (and at least one if ``nonempty``)."""

    item: Text = field(default_factory=Text)
    nonempty: bool = False

    def accepts(self, value: Any) -> bool:
        return (
            isinstance(value, list)
            and (len(value) > 0 or not self.nonempty)
            and all(self.item.accepts(v) for v in value)
        )

    def allowed(self) -> str:
        size = "a non-empty list" if self.nonempty else "a list"
        return f"{size} of strings, each {self.item.allowed()}"


@dataclass(frozen=True)
class Table:
    """A sub-table of free names (e.g. ``[live.remote]`` stage names) to ``value`` entries."""

    value: Text

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict) and all(self.value.accepts(v) for v in value.values())

    def allowed(self) -> str:
        return f"a table of name = value, each value {self.value.allowed()}"


Field = Number | Integer | Flag | Text | TextList | Table

NONEMPTY = Text(pattern=r".+", what="a non-empty string")
ENDPOINT = Text(
    pattern=r"(tcp://[^\s]+:(\d+|\*)|ipc://[^\s]+)",
    what='a ZeroMQ endpoint like "tcp://127.0.0.1:5555" or "ipc://pose.sock"',
)
OSC_TARGET = Text(
    pattern=r"(([^\s:]+:)?\d{1,5})?", what='"HOST:PORT", "PORT" (127.0.0.1) or "" (off)'
)
_SPEC = r"[A-Za-z_][\w.]*:[A-Za-z_]\w*"
STAGE = Text(pattern=_SPEC, what='"module:Class"')
ENTRY = Text(pattern=_SPEC, what='"module:function"')

# Every section and key of config.toml. A key listed in OPTIONAL may be absent from it.
SCHEMA: dict[str, dict[str, Field]] = {
    "subject": {"height": Number(0.5, 2.6, "m"), "mass": Number(10.0, 300.0, "kg")},
    "capture": {
        "realtime": Flag(),
        "reconnect_s": Number(0.0, 86400.0, "s"),
        "read_timeout_s": Number(0.0, 3600.0, "s", above=True),
        "truncation_tolerance": Number(0.0, 1.0),
    },
    "detect": {
        "model_complexity": Integer(
            choices=installed_pose_models,
            why="the pose models whose file the installed mediapipe has: 0 lite, 1 full, 2 heavy",
        ),
        "min_detection_confidence": Number(0.0, 1.0),
        "min_tracking_confidence": Number(0.0, 1.0),
        "preview": Flag(),
        "preview_size": Integer(16, 4096, "px"),
        "preview_quality": Integer(0, 100),
        "person_lock": Flag(),
        "lock_min_visibility": Number(0.0, 1.0),
        "lock_max_jump": Number(0.0, 10.0, "torso lengths", above=True),
        "lock_max_scale_change": Number(1.0, 10.0, above=True),
        "lock_max_head": Number(0.0, 10.0, "torso lengths", above=True),
        "lock_search_radius": Number(0.0, 10.0, "torso lengths", above=True),
        "lock_timeout_s": Number(0.0, 3600.0, "s"),
    },
    "swap_repair": {
        "enabled": Flag(),
        "threshold": Number(0.0, 100.0, "squared torso lengths", above=True),
        "weight_3d": Number(0.0, 100.0),
        "trunk_weight": Number(0.0, 100.0),
        "max_gap_s": Number(0.0, 3600.0, "s"),
    },
    "lift": {"method": Text(choices=("pof", "mediapipe")), "model": NONEMPTY},
    "fit": {
        "enabled": Flag(),
        "prior": Flag(),
        "prior_weight": Number(0.0, 1000.0),
        "sigma_2d": Number(0.0, 1.0, above=True),
        "sigma_direction_deg": Number(0.0, 180.0, "deg", above=True),
        "confidence_floor": Number(0.0, 1.0),
        "sigma_smooth_deg": Number(0.0, 360.0, "deg", above=True),
        "sigma_smooth_m": Number(0.0, 10.0, "m", above=True),
        "iterations": Integer(1, 100),
    },
    "markers": {
        "visibility_min": Number(0.0, 1.0),
        "estimate_missing": Flag(),
        "force_complete": Flag(),
        "fov_deg": Number(10.0, 170.0, "deg"),
    },
    "camera": {
        "calibration": Text(),
        "camera": Text(),
        "pitch": Number(-90.0, 90.0, "deg", unset="estimated from the video"),
        "roll": Number(-180.0, 180.0, "deg", unset="estimated from the video"),
        "level_s": Number(0.0, 3600.0, "s"),
    },
    "confidence": {"swap_factor": Number(0.0, 1.0), "swap_hold_s": Number(0.0, 3600.0, "s")},
    "augment": {"max_gap_frames": Integer(0, None, "frames")},
    "angles": {"compute_all": Flag(), "plot_all": Flag()},
    "opensim": {
        "enabled": Flag(),
        "model": NONEMPTY,
        "markers": NONEMPTY,
        "scaling_setup": NONEMPTY,
        "ik_setup": NONEMPTY,
        "image_margin": Number(0.0, 0.4),
        "max_flexion_deg": Number(0.0, 180.0, "deg", above=True),
        "trimmed_percent": Number(0.0, 99.0, "%"),
        "min_markers": Integer(1, None, "markers"),
        "scaled_model": Text(what="an .osim file path, or empty"),
        "static": Text(what="a video or .trc file path, or empty"),
        "scale_s": Number(0.0, 600.0, "s"),
        "log": Text(choices=("off", "error", "warn", "info")),
    },
    "output": {"dir": NONEMPTY, "c3d": Flag()},
    "batch": {
        "extensions": TextList(Text(pattern=r"\.\w+", what='".ext"'), nonempty=True),
        "ray_cpus": Number(0.0, 64.0, "CPUs", above=True),
    },
    "pipeline": {
        "capture": ENTRY,
        "stages": TextList(STAGE, nonempty=True),
        "sink": ENTRY,
        "viewer": ENTRY,
        "ik": STAGE,
        "lab": ENTRY,
    },
    "live": {
        "transport": Text(choices=("ipc", "tcp")),
        "tcp_host": NONEMPTY,
        "tcp_base_port": Integer(1, 65000),
        "publish": ENDPOINT,
        "control": ENDPOINT,
        "curve_keys": Text(what="a folder path, or empty"),
        "queue": Integer(1, 1000, "packets"),
        "status_interval_s": Number(0.0, 3600.0, "s", above=True),
        "remote": Table(ENDPOINT),
    },
    "lsl": {"enabled": Flag()},
    "osc": {"target": OSC_TARGET, "max_rate": Number(0.0, 1000.0, "Hz (0: every frame)")},
    "viewer": {
        "angles": TextList(),
        "ik_coordinates": TextList(),
        "history_s": Number(0.0, 600.0, "s", above=True),
        "max_fps": Number(0.0, 240.0, "fps", above=True),
        "cpu_budget": Number(0.0, 16.0, "cores", above=True),
        "record_dir": NONEMPTY,
    },
    "web": {
        "host": NONEMPTY,
        "port": Integer(1, 65535),
        "data": NONEMPTY,
        "max_upload_mb": Number(0.0, 1e7, "MB", above=True),
        "workers": Integer(1, 64, "processes"),
        "live_publish": ENDPOINT,
        "live_control": ENDPOINT,
        "live_queue": Integer(1, 1000, "messages"),
    },
}
OPTIONAL = {"live.remote"}


def validate(
    config: Mapping[str, Any],
    source: str,
    *,
    partial: bool = False,
    flags: Mapping[str, str] | None = None,
) -> None:
    """Raise ``ConfigError`` for the first unknown, missing (unless ``partial``) or invalid
    key. ``source`` names the file in messages; ``flags`` maps ``"section.key"`` to the
    command-line flag that set it, which is then named instead."""
    flags = flags or {}
    for section, table in config.items():
        known = SCHEMA.get(section)
        if known is None:
            raise ConfigError(_unknown(f"section [{section}] in {source}", section, SCHEMA, "[]"))
        if not isinstance(table, dict):
            raise ConfigError(f"[{section}] in {source} must be a table, got {table!r}")
        for key, value in table.items():
            if key not in known:
                raise ConfigError(_unknown(f"key {key!r} in [{section}] of {source}", key, known))
            rule = known[key]
            if not rule.accepts(value):
                who = flags.get(f"{section}.{key}") or f"[{section}] {key} in {source}"
                raise ConfigError(f"{who} must be {rule.allowed()}, got {value!r}")
    if partial:
        return
    for section, table in SCHEMA.items():
        for key in table:
            if f"{section}.{key}" not in OPTIONAL and key not in config.get(section, {}):
                allowed = table[key].allowed()
                raise ConfigError(f"{source} lacks [{section}] {key} (it must be {allowed})")


def _unknown(what: str, name: str, known: Mapping[str, Any], brackets: str = "''") -> str:
    """'unknown X: did you mean Y? allowed: ...' with the closest known name, if any."""
    left, right = brackets
    close = difflib.get_close_matches(name, list(known), n=1)
    hint = f" (did you mean {left}{close[0]}{right}?)" if close else ""
    allowed = ", ".join(f"{left}{k}{right}" for k in known)
    return f"unknown {what}{hint}; allowed: {allowed}"
