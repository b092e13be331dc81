"""Window scenarios of tests/test_viewer.py, each run in a process of its own
(tests/isolated.py): it opens a real window on the test's X server, drives it with recorded
stream messages and key events, and returns what it saw (renders, status lines, where the
markers project); the test asserts on that. Only the scenarios import Qt and vispy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

LEFT_RGB = np.array([51, 140, 255])  # viewer.skeleton.LEFT as 8-bit
RIGHT_RGB = np.array([255, 77, 38])  # viewer.skeleton.RIGHT

Messages = list[tuple[str, dict[str, Any]]]


def near(image: np.ndarray, rgb: np.ndarray, tolerance: int = 40) -> np.ndarray:
    """Mask of the pixels within ``tolerance`` of ``rgb`` on every channel."""
    return (np.abs(image[..., :3].astype(int) - rgb) <= tolerance).all(axis=-1)


def window_pixels(screen: np.ndarray, window: dict[str, int]) -> np.ndarray:
    return screen[window["y"] : window["y"] + window["height"], window["x"] :][:, : window["width"]]


def both_sides_in_3d(screen: np.ndarray, window: dict[str, int]) -> bool:
    """Left and right bones are drawn in the 3D view (the left 3/5 of the window)."""
    view3d = window_pixels(screen, window)[:, : window["width"] * 3 // 5]
    return near(view3d, LEFT_RGB).sum() > 200 and near(view3d, RIGHT_RGB).sum() > 200


def found_at(image: np.ndarray, pixels: np.ndarray, rgb: np.ndarray, radius: int = 4) -> float:
    """Fraction of ``pixels`` with a pixel of colour ``rgb`` within ``radius``."""
    hits = 0
    for x, y in np.round(pixels).astype(int):
        patch = image[max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1]
        hits += bool(near(patch, rgb).any())
    return hits / max(len(pixels), 1)


def screenshot_when_drawn(window: dict[str, int], timeout_s: float) -> np.ndarray:
    """The whole X screen (RGB) once ``window`` shows both sides of the skeleton, or the
    last grab after ``timeout_s`` (the live window runs at a low priority)."""
    from PySide6.QtGui import QGuiApplication, QImage

    application = QGuiApplication([])
    deadline = time.monotonic() + timeout_s
    while True:
        image = application.primaryScreen().grabWindow(0).toImage()
        image = image.convertToFormat(QImage.Format.Format_RGB888)
        rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), -1)
        screen = rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()
        if both_sides_in_3d(screen, window) or time.monotonic() > deadline:
            return screen
        time.sleep(0.2)


class ListFeed:
    """Stands in for StreamFeed: hands recorded messages to the window, a batch per tick."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.run: dict[str, Any] | None = None  # no control socket: no pipeline provenance
        self.pending: Messages = []
        self.closed = False

    def poll(self) -> Any:
        from viewer.feed import FeedUpdate

        update = FeedUpdate()
        for topic, message in self.pending:
            update.add(topic, message)
        self.pending = []
        return update

    def close(self) -> None:
        self.closed = True


class Opened:
    """A window of this process, shown, with the vispy application that draws it."""

    def __init__(self, make: Callable[[Callable[[], None]], Any]) -> None:
        """``make(on_quit)`` builds the window."""
        from vispy import app

        self.application = app.use_app("pyside6")
        self.application.create()
        self.quits: list[bool] = []  # one True per time the window asked to end the run
        self.window = make(lambda: self.quits.append(True))
        self.window.canvas.show()
        self.application.process_events()

    def render(self) -> np.ndarray:
        self.application.process_events()
        return self.window.canvas.render()[..., :3]

    def key(self, name: str, text: str = "") -> None:
        from vispy.util.keys import Key

        self.window.canvas.events.key_press(key=Key(name), text=text, modifiers=())

    def project(self, view: Any, points: np.ndarray) -> np.ndarray:
        """Canvas pixel positions of scene points (N, 2 or 3) as drawn by ``view``."""
        points = np.column_stack([points, np.zeros((len(points), 3 - points.shape[1]))])
        mapped = view.scene.node_transform(self.window.canvas.scene).map(points)
        return mapped[:, :2] / mapped[:, 3:4]


@contextmanager
def live_window(
    schema: dict[str, Any], record_dir: Path, overrides: dict[str, Any] | None = None
) -> Iterator[Opened]:
    """The live window on a ListFeed, recording (``r``) into ``record_dir``; ``overrides``:
    more config keys."""
    from stream.config import load_config, with_overrides
    from viewer.window import LiveWindow

    settings = {"viewer.record_dir": str(record_dir), **(overrides or {})}
    config = with_overrides(load_config(), settings)
    opened = Opened(lambda on_quit: LiveWindow(ListFeed(schema), config, on_quit=on_quit))
    try:
        yield opened
    finally:
        opened.window.canvas.close()


def skeleton_and_landmarks(schema: dict, messages: Messages, record_dir: Path) -> dict:
    """The window after ``messages``: its render, and where markers and landmarks project."""
    with live_window(schema, record_dir) as opened:
        window = opened.window
        window.feed.pending = messages
        window.tick()
        markers = np.asarray(window.newest["markers"])
        landmarks = np.asarray(window.preview["landmarks_2d"])
        return {
            "image": opened.render(),
            "markers": markers,
            "marker_pixels": opened.project(window.skeleton.view, markers),
            "visibility": np.asarray(window.preview["visibility"]),
            "landmark_pixels": opened.project(window.camera.view, landmarks),
            "plot_samples": window.plots.samples,
        }


def ik_plots(schema: dict, messages: Messages, record_dir: Path, wanted: list[str]) -> dict:
    """With ``[viewer] ik_coordinates = wanted``: how many samples the plots hold after
    ``messages``, which columns they draw, and the render's plot corner."""
    with live_window(schema, record_dir, {"viewer.ik_coordinates": wanted}) as opened:
        window = opened.window
        window.feed.pending = messages
        window.tick()
        return {
            "plot_samples": window.plots.samples,
            "columns": dict(window.plots._index),
            "image": opened.render(),
        }


def status_lines(
    schema: dict, messages: Messages, statuses: list[dict], record_dir: Path
) -> list[tuple[str, np.ndarray]]:
    """After ``messages``, each ``pose.status`` in turn: the status text and the rendered
    bottom 24 rows."""
    with live_window(schema, record_dir) as opened:
        window = opened.window
        window.feed.pending = messages
        window.tick()
        seen = []
        for status in statuses:
            window.feed.pending = [("pose.status", status)]
            window.tick()
            seen.append((window.status.text, opened.render()[-24:]))
        return seen


def nobody_then_silence(schema: dict, messages: Messages, record_dir: Path) -> dict:
    """After ``messages``: a frame without a person (render, status), then the last 60
    messages and 1.2 s without any (render, status)."""
    with live_window(schema, record_dir) as opened:
        window = opened.window
        window.feed.pending = messages
        window.tick()
        newest = window.newest
        nobody = {**newest, "person": False, "markers": np.full_like(newest["markers"], np.nan)}
        preview = {**window.preview, "person": False}
        preview["landmarks_2d"] = np.full_like(preview["landmarks_2d"], np.nan)
        window.feed.pending = [("pose.markers", nobody), ("pose.preview", preview)]
        window.tick()
        seen = {"nobody": opened.render(), "nobody_status": window.status.text}
        window.feed.pending = messages[-60:]
        window.tick()
        time.sleep(1.2)  # then the stream goes silent
        window.tick()
        return {**seen, "silent": opened.render(), "silent_status": window.status.text}


def pause_record_quit(schema: dict, messages: Messages, record_dir: Path) -> dict:
    """Half the messages, space (pause), r, the other half, r, q: what the window showed."""
    with live_window(schema, record_dir) as opened:
        window = opened.window
        half = len(messages) // 2
        window.feed.pending = messages[:half]
        window.tick()
        opened.key("Space", " ")
        seen: dict[str, Any] = {"frozen": opened.render()}
        opened.key("R", "r")
        seen |= {"recording": window.recorder.recording, "recording_status": window.status.text}
        window.feed.pending = messages[half:]
        window.tick()
        seen |= {"paused_status": window.status.text, "paused": opened.render()}
        opened.key("R", "r")
        seen["saved_status"] = window.status.text
        opened.key("Q", "q")
        return {**seen, "quits": opened.quits, "feed_closed": window.feed.closed}


def close_window(schema: dict, record_dir: Path) -> list[bool]:
    """Close the live window as a user would: how often it asked to end the run."""
    with live_window(schema, record_dir) as opened:
        opened.window.canvas.close()
        opened.application.process_events()
        return opened.quits


def replay_session(path: Path) -> dict:
    """The TRC replay window driven by keys and a click: frames, states and a render."""
    from core.trc import read_trc
    from viewer.replay import ReplayWindow

    trc = read_trc(path)
    opened = Opened(lambda on_quit: ReplayWindow(trc, path, on_quit=on_quit))
    replay = opened.window
    try:
        opened.key("Right")
        opened.key("Right")
        seen: dict[str, Any] = {"after_two_steps": replay.frame, "image": opened.render()}
        seen["frame2_pixels"] = opened.project(replay.skeleton.view, trc.xyz[2])
        opened.key("End")
        seen |= {"at_end": replay.frame, "n_frames": replay.n_frames}
        seen["end_status"] = replay.status.text
        opened.key("Space", " ")  # at the end: plays again from the start
        seen |= {"replaying": replay.playing, "replay_from": replay.frame}
        time.sleep(0.3)
        replay.advance()
        seen["played_to"] = replay.frame
        opened.key("Space", " ")
        bar = replay.timeline
        x, y = bar.node_transform(replay.canvas.scene).map([bar.size[0] / 2, bar.size[1] / 2])[:2]
        replay.canvas.events.mouse_press(pos=(x, y), button=1, buttons=[1], modifiers=())
        seen["clicked_to"] = replay.frame
        opened.key("Escape")
        return {**seen, "quits": opened.quits}
    finally:
        replay.canvas.close()
