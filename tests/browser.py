"""Debian's headless Chromium driven by Playwright (no browser download), and the pixel
checks the browser tests make on its screenshots."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
from playwright.sync_api import BrowserContext, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections were refused many at a
# time in this sandbox; a fresh profile per run.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
BACKGROUND = (31, 25, 21)  # the skeleton canvas' #15191f, BGR
ORANGE_BGR, BLUE_BGR = (46, 90, 255), (255, 140, 61)  # right and left bones (draw.js)


@contextmanager
def chromium(profile: Path) -> Iterator[BrowserContext]:
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            viewport={"width": 1280, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def image(png: bytes, save: Path | None = None) -> np.ndarray:
    """A screenshot as a BGR array (also written to ``save`` to be looked at)."""
    if save is not None:
        save.write_bytes(png)
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)


def near(picture: np.ndarray, bgr: tuple[int, int, int], tolerance: int = 40) -> int:
    """How many pixels are within ``tolerance`` of colour ``bgr`` in every channel."""
    return int((np.abs(picture.astype(int) - bgr).max(axis=2) <= tolerance).sum())
