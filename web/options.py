"""A job's offline options: the form fields a page or script may send, mapped onto the very
flags of ``run_offline.py``, so a job's configuration is built exactly as that command
builds it (and its files are the same)."""

from __future__ import annotations

import argparse
import math
from collections.abc import Mapping
from typing import Any

from stream.cli import OneLineParser, add_pipeline_flags, config_from_args

NUMBERS = {"height": "--height", "mass": "--mass"}
SWITCHES = {
    "estimate_missing": "--estimate-missing",
    "force_complete": "--force-complete",
    "compute_all_joint_angles": "--compute-all-joint-angles",
    "plot_all_joint_angles": "--plot-all-joint-angles",
    "c3d": "--c3d",
    "ik": "--ik",
}
TRUE, FALSE = ("1", "true", "on", "yes"), ("", "0", "false", "off", "no")


def parse_options(form: Mapping[str, Any]) -> dict[str, Any]:
    """The known fields of ``form`` as typed options; ``ValueError`` names a bad one.
    Unknown fields are refused too, so a typo is not silently ignored."""
    unknown = sorted(set(form) - set(NUMBERS) - set(SWITCHES) - {"video"})
    if unknown:
        known = ", ".join([*NUMBERS, *SWITCHES])
        raise ValueError(f"unknown field {unknown[0]!r}: the options are {known}")
    options: dict[str, Any] = {}
    for key in NUMBERS:
        text = str(form.get(key, "")).strip()
        if text:
            try:
                options[key] = float(text)
            except ValueError:
                raise ValueError(f"{key} must be a number, got {text!r}") from None
            if not math.isfinite(options[key]):
                raise ValueError(f"{key} must be a finite number, got {text!r}")
    for key in SWITCHES:
        text = str(form.get(key, "")).strip().lower()
        if text not in TRUE + FALSE:
            raise ValueError(f"{key} must be true or false, got {text!r}")
        if text in TRUE:
            options[key] = True
    return options


def offline_flags(options: Mapping[str, Any]) -> list[str]:
    """The ``run_offline.py`` flags these options stand for."""
    flags = [
        arg for key, flag in NUMBERS.items() if key in options for arg in (flag, f"{options[key]}")
    ]
    return flags + [flag for key, flag in SWITCHES.items() if options.get(key)]


def job_config(options: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration ``run_offline.py <flags>`` would run with; ``ConfigError`` (one
    line naming the flag) for a value the schema refuses."""
    parser = OneLineParser(prog="job")
    add_pipeline_flags(parser)
    args: argparse.Namespace = parser.parse_args(offline_flags(options))
    return config_from_args(args)
