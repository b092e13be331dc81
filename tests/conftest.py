"""Shared fixtures."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.clips import paced_clip, ping_pong, read_frames
from core.demo_data import demo_video
from models.training.mocap import MOCAP_DIR
from stream.config import load_config


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full-mocap",
        action="store_true",
        help=f"also run the tests that need the full motion-capture set ({MOCAP_DIR})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "full_mocap: needs the full motion-capture set; runs with --full-mocap"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--full-mocap"):
        return
    skip = pytest.mark.skip(
        reason=f"needs the full motion-capture set in {MOCAP_DIR}; run with --full-mocap"
    )
    for item in items:
        if "full_mocap" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def full_mocap_dir() -> Path:
    """The full CMU set; asked for only by ``full_mocap`` tests, so it must be there."""
    return MOCAP_DIR


@pytest.fixture(scope="session")
def config() -> dict[str, Any]:
    return load_config()


@pytest.fixture(scope="session")
def pingpong_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """20 s at 30 fps of real demo frames (cam01 played forth and back, 540x960): a source
    long enough for live runs that are killed, interrupted or watched in a window."""
    frames = read_frames(demo_video("cam01"), scale=0.5)  # 1080x1920 -> 540x960
    path = tmp_path_factory.mktemp("video") / "pingpong.mp4"
    paced_clip(frames, 30.0, 3 * len(ping_pong(frames)) / 30.0, path)
    return path


@pytest.fixture(autouse=True)
def no_qt_in_the_test_process() -> Iterator[None]:
    """Qt keeps process-wide state (its application, X connection, queued events of closed
    windows) that crashed later tests: windows open in processes of their own
    (tests/isolated.py), and a test that loads Qt here fails."""
    before = "PySide6" in sys.modules
    yield
    assert before or "PySide6" not in sys.modules, (
        "this test loaded Qt into the pytest process: open windows through tests/isolated.py"
    )
