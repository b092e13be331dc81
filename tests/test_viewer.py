"""The live viewer and the TRC replay, drawn for real on a virtual X server (Xvfb + Mesa).

One live run with the viewer on a demo video is driven with real key presses (xdotool): a
screenshot, ``r`` twice (a TRC), ``q`` (the whole pipeline stops). Its published messages
are then replayed into in-process windows whose renders are checked pixel by pixel against
where the markers project. Reference screenshots for humans are written under tmp_path;
their paths are printed (``pytest -s``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.data import REPO
from tests.test_live import assert_no_orphans, collect, free_port, pipeline_processes
from tests.xvfb import start_xvfb
from transports.client import PoseClient

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None or shutil.which("xdotool") is None,
    reason="needs Xvfb and xdotool (.ci/run installs them)",
)

LEFT_RGB = np.array([51, 140, 255])  # viewer.skeleton.LEFT as 8-bit
RIGHT_RGB = np.array([255, 77, 38])  # viewer.skeleton.RIGHT
STARTUP_S = 90.0


@pytest.fixture(scope="module")
def display() -> Iterator[str]:
    """A private Xvfb server; DISPLAY points to it for this module and its subprocesses.

    The server lives until pytest exits (it dies with it): Qt keeps its connection for the
    life of the process and a server that goes away first makes Xlib exit the process.
    """
    name = start_xvfb()
    previous = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = name
    yield name
    if previous is None:
        del os.environ["DISPLAY"]
    else:
        os.environ["DISPLAY"] = previous


@pytest.fixture(scope="module")
def qt(display: str) -> Any:
    """vispy's Qt application in this process (windows render on the Xvfb server)."""
    from vispy import app

    application = app.use_app("pyside6")
    application.create()  # the QApplication, also used for screen grabs
    return application


@dataclass
class LiveSession:
    """What the live run with the viewer left behind."""

    code: int
    stderr: str
    quit_s: float
    screenshot: np.ndarray
    window: dict[str, int]
    record_dir: Path
    schema: dict[str, Any]
    messages: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    processes: dict[int, str] = field(default_factory=dict)  # the run's, seen while it ran


def xdotool(*args: str) -> str:
    return subprocess.run(
        ["xdotool", *args], check=True, capture_output=True, text=True, timeout=STARTUP_S
    ).stdout


def grab_screen() -> np.ndarray:
    """The whole X screen as RGB, grabbed through Qt in this process."""
    from PySide6.QtGui import QGuiApplication, QImage

    image = QGuiApplication.primaryScreen().grabWindow(0).toImage()
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), -1)
    return rows[:, : image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def near(image: np.ndarray, rgb: np.ndarray, tolerance: int = 40) -> np.ndarray:
    """Mask of the pixels within ``tolerance`` of ``rgb`` on every channel."""
    return (np.abs(image[..., :3].astype(int) - rgb) <= tolerance).all(axis=-1)


def window_pixels(screen: np.ndarray, window: dict[str, int]) -> np.ndarray:
    return screen[window["y"] : window["y"] + window["height"], window["x"] :][:, : window["width"]]


def both_sides_in_3d(screen: np.ndarray, window: dict[str, int]) -> bool:
    """Left and right bones are drawn in the 3D view (the left 3/5 of the window)."""
    view3d = window_pixels(screen, window)[:, : window["width"] * 3 // 5]
    return near(view3d, LEFT_RGB).sum() > 200 and near(view3d, RIGHT_RGB).sum() > 200


def save_png(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., :3][..., ::-1]))
    print(f"\nreference screenshot: {path}")


@pytest.fixture(scope="module")
def live(qt: Any, pingpong_video: Path, tmp_path_factory: pytest.TempPathFactory) -> LiveSession:
    """run_live.py with its viewer: wait for frames, screenshot, r, r, q."""
    record_dir = tmp_path_factory.mktemp("record")
    publish, control = (f"tcp://127.0.0.1:{free_port()}" for _ in range(2))
    messages: list[tuple[str, dict[str, Any]]] = []
    stop = threading.Event()
    thread = collect(publish, messages, stop, ("pose.",))
    process = subprocess.Popen(
        [sys.executable, "run_live.py", "--source", str(pingpong_video), "--publish", publish,
         "--control", control, "--record", str(record_dir)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        window_id = xdotool("search", "--sync", "--name", "monomocap live").split()[0]
        deadline = time.monotonic() + STARTUP_S
        while sum(t == "pose.preview" and m["person"] for t, m in messages) < 20:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "no frames with a person arrived"
            time.sleep(0.1)
        schema = PoseClient(publish, control).request("schema")["schema"]
        processes = pipeline_processes(process.pid)
        geometry = xdotool("getwindowgeometry", "--shell", window_id)
        window = {k.lower(): int(v) for k, v in (line.split("=") for line in geometry.split())}
        screenshot = grab_screen()
        while not both_sides_in_3d(screenshot, window):  # the window runs at a low priority
            assert time.monotonic() < deadline, "the viewer never drew the skeleton"
            time.sleep(0.2)
            screenshot = grab_screen()
        xdotool("windowfocus", "--sync", window_id)
        time.sleep(0.5)  # Qt takes keys once it has handled the focus change
        xdotool("key", "r")
        time.sleep(1.5)
        xdotool("key", "r")
        time.sleep(0.5)
        pressed = time.monotonic()
        xdotool("key", "q")
        _, stderr = process.communicate(timeout=30)
        quit_s = time.monotonic() - pressed
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=10)
        stop.set()
        thread.join(5)
    return LiveSession(
        process.returncode, stderr, quit_s, screenshot, window, record_dir, schema, messages,
        processes,
    )  # fmt: skip


def test_q_in_the_window_stops_the_whole_pipeline_cleanly(live: LiveSession) -> None:
    assert live.code == 0, live.stderr
    assert live.quit_s < 3.0, f"quitting took {live.quit_s:.1f} s"
    assert "mm-viewer" in live.processes.values()
    assert_no_orphans(live.processes)
    sink_trc = (live.record_dir / "pingpong" / "pingpong_final.trc").read_text().splitlines()
    assert int(sink_trc[2].split("\t")[2]) > 30, "the sink finalized its recording"
    recorded = sorted(live.record_dir.glob("pingpong_*.trc"))
    assert len(recorded) == 1, "r, r in the window wrote one TRC"
    rows = [r.split("\t") for r in recorded[0].read_text().splitlines()[6:]]
    assert len(rows) > 5 and all(len(r) == 2 + 64 * 3 for r in rows)
    assert 1.0 < float(rows[-1][1]) < 3.0, "1.5 s between the key presses, in media time"


def test_window_on_screen_shows_both_sides_and_the_camera(live: LiveSession, tmp_path: Path):
    w = live.window
    shot = window_pixels(live.screenshot, w)
    save_png(tmp_path / "live_window.png", shot)
    assert both_sides_in_3d(live.screenshot, w)
    camera = shot[: w["height"] // 2, w["width"] * 3 // 5 :]
    assert camera.std() > 30, "the camera image is drawn"


def test_preview_topic_carries_a_small_jpeg_and_scaled_landmarks(live: LiveSession) -> None:
    previews = [m for t, m in live.messages if t == "pose.preview" and m["person"]]
    image = cv2.imdecode(np.frombuffer(previews[-1]["jpeg"], np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (480, 270, 3) and previews[-1]["size"] == [270, 480]
    xy = previews[-1]["landmarks_2d"]
    assert np.nanmin(xy) > -50 and np.nanmax(xy[:, 0]) < 320 and np.nanmax(xy[:, 1]) < 530


class ListFeed:
    """Stands in for StreamFeed: hands recorded messages to the window, a batch per tick."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.pending: list[tuple[str, dict[str, Any]]] = []
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


def project(view: Any, canvas: Any, points: np.ndarray) -> np.ndarray:
    """Canvas pixel positions of scene points (N, 2 or 3) as drawn by ``view``."""
    points = np.column_stack([points, np.zeros((len(points), 3 - points.shape[1]))])
    mapped = view.scene.node_transform(canvas.scene).map(points)
    return mapped[:, :2] / mapped[:, 3:4]


def found_at(image: np.ndarray, pixels: np.ndarray, rgb: np.ndarray, radius: int = 4) -> float:
    """Fraction of ``pixels`` with a pixel of colour ``rgb`` within ``radius``."""
    hits = 0
    for x, y in np.round(pixels).astype(int):
        patch = image[max(y - radius, 0) : y + radius + 1, max(x - radius, 0) : x + radius + 1]
        hits += bool(near(patch, rgb).any())
    return hits / max(len(pixels), 1)


@pytest.fixture
def quits() -> list[bool]:
    """One True per time a window asked its owner to end the run."""
    return []


@pytest.fixture
def window(qt: Any, live: LiveSession, tmp_path: Path, quits: list[bool]) -> Iterator[Any]:
    from stream.config import load_config, with_overrides
    from viewer.window import LiveWindow

    config = with_overrides(load_config(), {"viewer.record_dir": str(tmp_path)})
    window = LiveWindow(ListFeed(live.schema), config, on_quit=lambda: quits.append(True))
    window.canvas.show()
    qt.process_events()
    yield window
    window.canvas.close()


def frames_until_person(messages: list) -> list:
    """The messages up to the 40th preview with a person (plots and framing settle)."""
    seen = 0
    for i, (topic, message) in enumerate(messages):
        seen += topic == "pose.preview" and message["person"]
        if seen == 40:
            return messages[: i + 1]
    raise AssertionError("the live run published too few frames with a person")


def render(window: Any, qt: Any) -> np.ndarray:
    qt.process_events()
    return window.canvas.render()[..., :3]


def test_skeleton_and_landmarks_drawn_where_they_project(
    window: Any, qt: Any, live: LiveSession, tmp_path: Path
) -> None:
    window.feed.pending = frames_until_person(live.messages)
    window.tick()
    image = render(window, qt)
    save_png(tmp_path / "viewer_render.png", image)
    names = live.schema["markers"]
    markers = np.asarray(window.newest["markers"])
    pixels = project(window.skeleton.view, window.canvas, markers)
    for side, rgb in (("L", LEFT_RGB), ("R", RIGHT_RGB)):
        mine = [i for i, n in enumerate(names) if n[:1].upper() == side]
        mine = [i for i in mine if np.isfinite(markers[i]).all()]
        assert len(mine) > 10
        assert found_at(image, pixels[mine], rgb) > 0.8, f"{side} markers not drawn in place"
    preview = window.preview
    seen = np.asarray(preview["visibility"]) >= 0.5
    landmarks = np.asarray(preview["landmarks_2d"])
    at = project(window.camera.view, window.canvas, landmarks)
    left = [i for i in (11, 13, 23, 25, 27) if seen[i]]
    right = [i for i in (12, 14, 24, 26, 28) if seen[i]]
    assert found_at(image, at[left], LEFT_RGB) > 0.8 and found_at(image, at[right], RIGHT_RGB) > 0.8
    assert window.plots.samples > 30, "angles reached the plots"


def test_status_line_follows_the_stream(window: Any, qt: Any, live: LiveSession) -> None:
    window.feed.pending = frames_until_person(live.messages)
    window.tick()
    status = {"source_fps": 30.0, "published_fps": 29.0, "latency_ms_p50": 41.0, "dropped": 0}
    window.feed.pending = [("pose.status", status)]
    window.tick()
    before = render(window, qt)[-24:]
    assert "pipeline 29.0 fps" in window.status.text and "latency 41 ms" in window.status.text
    window.feed.pending = [("pose.status", {**status, "published_fps": 12.5, "dropped": 7})]
    window.tick()
    after = render(window, qt)[-24:]
    assert "pipeline 12.5 fps" in window.status.text and "dropped 7" in window.status.text
    assert (before != after).any(axis=-1).sum() > 50, "the status line was redrawn"


def test_nobody_in_view_hides_the_skeleton_but_shows_the_camera(
    window: Any, qt: Any, live: LiveSession, tmp_path: Path
) -> None:
    window.feed.pending = frames_until_person(live.messages)
    window.tick()
    newest = window.newest
    nobody = {**newest, "person": False, "markers": np.full_like(newest["markers"], np.nan)}
    preview = {**window.preview, "person": False}
    preview["landmarks_2d"] = np.full_like(preview["landmarks_2d"], np.nan)
    window.feed.pending = [("pose.markers", nobody), ("pose.preview", preview)]
    window.tick()
    image = render(window, qt)
    save_png(tmp_path / "no_person.png", image)
    width = image.shape[1]
    view3d = image[:-30, : width * 3 // 5 - 10]
    assert near(view3d, LEFT_RGB).sum() < 20 and near(view3d, RIGHT_RGB).sum() < 20
    assert "person: no" in window.status.text
    camera = image[: image.shape[0] // 2, width * 3 // 5 :]
    assert camera.std() > 30, "the camera image stays on screen"
    window.feed.pending = frames_until_person(live.messages)[-60:]
    window.tick()
    time.sleep(1.2)  # then the stream goes silent: no frozen skeleton either
    window.tick()
    image = render(window, qt)
    assert "no frames" in window.status.text
    assert near(image[:-30, : width * 3 // 5 - 10], LEFT_RGB).sum() < 20


def key(canvas: Any, name: str, text: str = "") -> None:
    from vispy.util.keys import Key

    canvas.events.key_press(key=Key(name), text=text, modifiers=())


def test_keys_pause_record_and_quit(
    window: Any, qt: Any, live: LiveSession, tmp_path: Path, quits: list[bool]
) -> None:
    messages = frames_until_person(live.messages)
    window.feed.pending = messages[: len(messages) // 2]
    window.tick()
    key(window.canvas, "Space", " ")
    frozen = render(window, qt)
    key(window.canvas, "R", "r")
    assert window.recorder.recording and "recording to" in window.status.text
    window.feed.pending = messages[len(messages) // 2 :]
    window.tick()
    assert "PAUSED" in window.status.text
    assert (render(window, qt)[:-30] == frozen[:-30]).all(), "paused: the picture holds still"
    key(window.canvas, "R", "r")
    saved = sorted(tmp_path.glob("pingpong_*.trc"))
    assert len(saved) == 1 and "saved" in window.status.text
    n_recorded = sum(t == "pose.markers" for t, _ in messages[len(messages) // 2 :])
    assert len(saved[0].read_text().splitlines()) == 6 + n_recorded, "every received frame"
    key(window.canvas, "Q", "q")
    assert quits == [True] and window.feed.closed


def test_closing_the_window_quits(window: Any, qt: Any, quits: list[bool]) -> None:
    window.canvas.close()
    qt.process_events()
    assert quits == [True]


def test_trc_replay_plays_steps_and_scrubs(qt: Any, live: LiveSession, tmp_path: Path) -> None:
    from core.trc import read_trc
    from viewer.replay import ReplayWindow

    path = sorted(live.record_dir.glob("pingpong_*.trc"))[0]
    trc = read_trc(path)
    quits: list[bool] = []
    replay = ReplayWindow(trc, path, on_quit=lambda: quits.append(True))
    replay.canvas.show()
    try:
        key(replay.canvas, "Right")
        key(replay.canvas, "Right")
        assert replay.frame == 2
        image = render(replay, qt)
        save_png(tmp_path / "replay.png", image)
        pixels = project(replay.skeleton.view, replay.canvas, trc.xyz[2])
        for side, rgb in (("L", LEFT_RGB), ("R", RIGHT_RGB)):
            mine = [i for i, n in enumerate(trc.names) if n[:1].upper() == side]
            mine = [i for i in mine if np.isfinite(trc.xyz[2, i]).all()]
            assert found_at(image, pixels[mine], rgb) > 0.8
        key(replay.canvas, "End")
        assert replay.frame == replay.n_frames - 1 and "paused" in replay.status.text
        key(replay.canvas, "Space", " ")  # at the end: plays again from the start
        assert replay.playing and replay.frame == 0
        time.sleep(0.3)
        replay.advance()
        assert replay.frame > 0, "playback advances with time"
        key(replay.canvas, "Space", " ")
        bar = replay.timeline
        x, y = bar.node_transform(replay.canvas.scene).map([bar.size[0] / 2, bar.size[1] / 2])[:2]
        replay.canvas.events.mouse_press(pos=(x, y), button=1, buttons=[1], modifiers=())
        assert abs(replay.frame - (replay.n_frames - 1) / 2) <= 1, "a click on the bar seeks"
        key(replay.canvas, "Escape")
        assert quits == [True]
    finally:
        replay.canvas.close()


def test_no_display_is_one_line_suggesting_no_viewer(pingpong_video: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    live = subprocess.run(
        [sys.executable, "run_live.py", "--source", str(pingpong_video)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert live.returncode == 2
    assert live.stderr.strip().count("\n") == 0 and "--no-viewer" in live.stderr
    not_trc = tmp_path / "notes.trc"
    not_trc.write_text("hello\n")
    for path, expected in ((not_trc, "not a TRC file"), (tmp_path / "missing.trc", "cannot read")):
        replay = subprocess.run(
            [sys.executable, "run_offline.py", "--view", str(path)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert replay.returncode == 2 and replay.stderr.count("\n") == 1, replay.stderr
        assert expected in replay.stderr
