"""Configuration: ``config.toml`` holds every default; command-line flags override it."""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"


class ConfigError(ValueError):
    """The configuration file or an override is invalid; the message names it."""


def load_config(path: Path | None = None) -> dict[str, Any]:
    """Read a TOML config file (the project's ``config.toml`` by default)."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc


def with_overrides(config: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with ``{"section.key": value}`` overrides applied (None = keep)."""
    merged = copy.deepcopy(dict(config))
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, key = dotted.split(".", 1)
        merged.setdefault(section, {})[key] = value
    return merged
