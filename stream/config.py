"""Configuration: ``config.toml`` holds every default; command-line flags override it.

A user's ``--config`` file may be partial: it is checked against ``stream/config_schema.py``
(unknown sections and keys, types and ranges are errors) and merged over the project's
``config.toml``, so a section or key it leaves out keeps its default.
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stream.config_schema import ConfigError, validate

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config.toml"

__all__ = ["DEFAULT_CONFIG", "ConfigError", "load_config", "with_overrides"]


def load_config(path: Path | None = None) -> dict[str, Any]:
    """The project's ``config.toml``, with the TOML file at ``path`` (if any) merged over it."""
    defaults = _read(DEFAULT_CONFIG)
    validate(defaults, DEFAULT_CONFIG.name)
    if path is None:
        return defaults
    user = _read(Path(path))
    validate(user, str(path), partial=True)
    return _merged(defaults, user)


def with_overrides(config: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` with ``{"section.key": value}`` overrides applied (None = keep)."""
    merged = copy.deepcopy(dict(config))
    for dotted, value in overrides.items():
        if value is None:
            continue
        section, key = dotted.split(".", 1)
        merged.setdefault(section, {})[key] = value
    return merged


def _read(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None


def _merged(defaults: dict[str, Any], user: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` with each key ``user`` sets replaced (section by section)."""
    merged = copy.deepcopy(defaults)
    for section, table in user.items():
        merged.setdefault(section, {}).update(copy.deepcopy(table))
    return merged
