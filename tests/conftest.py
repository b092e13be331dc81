"""Shared fixtures."""

from __future__ import annotations

from typing import Any

import pytest

from stream.config import load_config


@pytest.fixture(scope="session")
def config() -> dict[str, Any]:
    return load_config()
