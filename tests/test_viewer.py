"""The live viewer and the TRC replay, drawn for real on a virtual X server (Xvfb + Mesa).

One live run with the viewer on a demo video is driven with real key presses (xdotool): a
screenshot, ``r`` twice (a TRC), ``q`` (the whole pipeline stops). Its published messages
are then replayed into windows whose renders are checked pixel by pixel against where the
markers project. Each window lives in a process of its own (tests/viewer_windows.py, run
through tests/isolated.py), so no Qt state passes from one test to the next. Reference
screenshots for humans are written under tmp_path; their paths are printed (``pytest -s``).
"""

from __future__ import annotations

import hashlib
import json
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

from core.trc import read_trc
from tests import viewer_windows as windows
from tests.data import REPO
from tests.isolated import call_isolated
from tests.test_live import assert_no_orphans, collect, free_port, pipeline_processes
from tests.viewer_windows import (
    LEFT_RGB,
    RIGHT_RGB,
    both_sides_in_3d,
    found_at,
    near,
    window_pixels,
)
from tests.xvfb import xvfb
from transports.client import PoseClient

pytestmark = pytest.mark.skipif(
    shutil.which("Xvfb") is None or shutil.which("xdotool") is None,
    reason="needs Xvfb and xdotool (.ci/run installs them)",
)

STARTUP_S = 90.0


@pytest.fixture(scope="module")
def display() -> Iterator[dict[str, str]]:
    """A private Xvfb server for this module: the environment that points a process to it.

    This process never connects to it (nor changes its own environment): the live run, its
    viewer, xdotool and every window of a test get it through ``env``.
    """
    with xvfb() as name:
        yield {"DISPLAY": name}


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


def xdotool(display: dict[str, str], *args: str) -> str:
    return subprocess.run(
        ["xdotool", *args], check=True, capture_output=True, text=True, timeout=STARTUP_S,
        env={**os.environ, **display},
    ).stdout  # fmt: skip


def save_png(path: Path, rgb: np.ndarray) -> None:
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., :3][..., ::-1]))
    print(f"\nreference screenshot: {path}")


@pytest.fixture(scope="module")
def live(
    display: dict[str, str], pingpong_video: Path, tmp_path_factory: pytest.TempPathFactory
) -> LiveSession:
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
        env={**os.environ, **display},
    )  # fmt: skip
    try:
        window_id = xdotool(display, "search", "--sync", "--name", "monomocap live").split()[0]
        deadline = time.monotonic() + STARTUP_S
        while sum(t == "pose.preview" and m["person"] for t, m in messages) < 20:
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "no frames with a person arrived"
            time.sleep(0.1)
        schema = PoseClient(publish, control).request("schema")["schema"]
        processes = pipeline_processes(process.pid)
        geometry = xdotool(display, "getwindowgeometry", "--shell", window_id)
        window = {k.lower(): int(v) for k, v in (line.split("=") for line in geometry.split())}
        wait_s = max(deadline - time.monotonic(), 0.0)  # the window runs at a low priority
        screenshot = call_isolated(windows.screenshot_when_drawn, window, wait_s, env=display)
        assert both_sides_in_3d(screenshot, window), "the viewer never drew the skeleton"
        xdotool(display, "windowfocus", "--sync", window_id)
        time.sleep(0.5)  # Qt takes keys once it has handled the focus change
        xdotool(display, "key", "r")
        time.sleep(1.5)
        xdotool(display, "key", "r")
        time.sleep(0.5)
        pressed = time.monotonic()
        xdotool(display, "key", "q")
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


def frames_until_person(messages: list) -> list:
    """The messages up to the 40th preview with a person (plots and framing settle)."""
    seen = 0
    for i, (topic, message) in enumerate(messages):
        seen += topic == "pose.preview" and message["person"]
        if seen == 40:
            return messages[: i + 1]
    raise AssertionError("the live run published too few frames with a person")


def test_skeleton_and_landmarks_drawn_where_they_project(
    display: dict[str, str], live: LiveSession, tmp_path: Path
) -> None:
    seen = call_isolated(
        windows.skeleton_and_landmarks, live.schema, frames_until_person(live.messages),
        tmp_path, env=display,
    )  # fmt: skip
    image = seen["image"]
    save_png(tmp_path / "viewer_render.png", image)
    names = live.schema["markers"]
    markers, pixels = seen["markers"], seen["marker_pixels"]
    for side, rgb in (("L", LEFT_RGB), ("R", RIGHT_RGB)):
        mine = [i for i, n in enumerate(names) if n[:1].upper() == side]
        mine = [i for i in mine if np.isfinite(markers[i]).all()]
        assert len(mine) > 10
        assert found_at(image, pixels[mine], rgb) > 0.8, f"{side} markers not drawn in place"
    visible, at = seen["visibility"] >= 0.5, seen["landmark_pixels"]
    left = [i for i in (11, 13, 23, 25, 27) if visible[i]]
    right = [i for i in (12, 14, 24, 26, 28) if visible[i]]
    assert found_at(image, at[left], LEFT_RGB) > 0.8 and found_at(image, at[right], RIGHT_RGB) > 0.8
    assert seen["plot_samples"] > 30, "angles reached the plots"


def test_plots_show_opensim_coordinates_when_configured(
    display: dict[str, str], live: LiveSession, tmp_path: Path
) -> None:
    """[viewer] ik_coordinates: the plots follow pose.ik (the --ik stream) by the schema's
    ik_coordinates, not pose.angles."""
    names = ["pelvis_tilt", "hip_flexion_r", "knee_angle_r", "knee_angle_l"]
    schema = {**live.schema, "ik_coordinates": names}
    frames = [m for t, m in live.messages if t == "pose.markers"][:40]
    assert len(frames) == 40
    ik = [
        ("pose.ik", {"source_id": m["source_id"], "frame_index": m["frame_index"],
                     "timestamp_ns": m["timestamp_ns"], "values": np.arange(4.0) + i,
                     "rms_m": 0.02, "max_m": 0.05, "markers": 43, "scaled": True,
                     "skipped": 0})
        for i, m in enumerate(frames)
    ]  # fmt: skip
    angles = [(t, m) for t, m in live.messages if t == "pose.angles"][:40]
    wanted = ["knee_angle_l", "knee_angle_r", "hip_flexion_r"]
    seen = call_isolated(windows.ik_plots, schema, ik + angles, tmp_path, wanted, env=display)
    assert seen["plot_samples"] == 40  # one per pose.ik message; pose.angles ignored
    assert seen["columns"] == {"knee_angle_l": 3, "knee_angle_r": 2, "hip_flexion_r": 1}
    plot = seen["image"][-200:, -300:]  # the plots' corner: both side colours drawn
    assert near(plot, LEFT_RGB).sum() > 20 and near(plot, RIGHT_RGB).sum() > 20


def test_status_line_follows_the_stream(
    display: dict[str, str], live: LiveSession, tmp_path: Path
) -> None:
    status = {"source_fps": 30.0, "published_fps": 29.0, "latency_ms_p50": 41.0, "dropped": 0}
    statuses = [status, {**status, "published_fps": 12.5, "dropped": 7}]
    (text, before), (text_after, after) = call_isolated(
        windows.status_lines, live.schema, frames_until_person(live.messages), statuses,
        tmp_path, env=display,
    )  # fmt: skip
    assert "pipeline 29.0 fps" in text and "latency 41 ms" in text
    assert "pipeline 12.5 fps" in text_after and "dropped 7" in text_after
    assert (before != after).any(axis=-1).sum() > 50, "the status line was redrawn"


def test_nobody_in_view_hides_the_skeleton_but_shows_the_camera(
    display: dict[str, str], live: LiveSession, tmp_path: Path
) -> None:
    seen = call_isolated(
        windows.nobody_then_silence, live.schema, frames_until_person(live.messages), tmp_path,
        env=display,
    )  # fmt: skip
    image = seen["nobody"]
    save_png(tmp_path / "no_person.png", image)
    width = image.shape[1]
    view3d = image[:-30, : width * 3 // 5 - 10]
    assert near(view3d, LEFT_RGB).sum() < 20 and near(view3d, RIGHT_RGB).sum() < 20
    assert "person: no" in seen["nobody_status"]
    camera = image[: image.shape[0] // 2, width * 3 // 5 :]
    assert camera.std() > 30, "the camera image stays on screen"
    assert "no frames" in seen["silent_status"], "the stream went silent"
    silent3d = seen["silent"][:-30, : width * 3 // 5 - 10]
    assert near(silent3d, LEFT_RGB).sum() < 20, "no frozen skeleton either"


def test_keys_pause_record_and_quit(
    display: dict[str, str], live: LiveSession, tmp_path: Path
) -> None:
    messages = frames_until_person(live.messages)
    seen = call_isolated(windows.pause_record_quit, live.schema, messages, tmp_path, env=display)
    assert seen["recording"] and "recording to" in seen["recording_status"]
    assert "PAUSED" in seen["paused_status"]
    assert (seen["paused"][:-30] == seen["frozen"][:-30]).all(), "paused: the picture holds still"
    saved = sorted(tmp_path.glob("pingpong_*.trc"))
    assert len(saved) == 1 and "saved" in seen["saved_status"]
    n_recorded = sum(t == "pose.markers" for t, _ in messages[len(messages) // 2 :])
    assert len(saved[0].read_text().splitlines()) == 6 + n_recorded, "every received frame"
    run = json.loads(saved[0].with_suffix(".run.json").read_text())
    assert run["recording"]["frames"] == n_recorded and run["pipeline"] == "unknown"
    assert seen["quits"] == [True] and seen["feed_closed"]


def test_a_viewer_recording_names_the_run_that_made_it(
    live: LiveSession, pingpong_video: Path
) -> None:
    """The live window's ``r`` recording has a run.json: the pipeline's command, settings,
    models and input with their hashes, from the control socket's ``run`` reply."""
    saved = sorted(live.record_dir.glob("pingpong_*.trc"))
    assert saved, "the live window saved no recording"
    run = json.loads(saved[0].with_suffix(".run.json").read_text())
    frames = len(saved[0].read_text().splitlines()) - 6
    assert run["recording"]["frames"] == frames > 0 and run["recording"]["source_id"] == "pingpong"
    pipeline = run["pipeline"]
    assert pipeline["software"]["name"] == "monomocap" == run["viewer"]["name"]
    assert pipeline["input"]["sha256"] == hashlib.sha256(pingpong_video.read_bytes()).hexdigest()
    assert any(m["path"].endswith(".onnx") and len(m["sha256"]) == 64 for m in pipeline["models"])
    assert "run_live.py" in " ".join(pipeline["command"]) and pipeline["config"]["subject"]


def test_closing_the_window_quits(
    display: dict[str, str], live: LiveSession, tmp_path: Path
) -> None:
    assert call_isolated(windows.close_window, live.schema, tmp_path, env=display) == [True]


def test_trc_replay_plays_steps_and_scrubs(
    display: dict[str, str], live: LiveSession, tmp_path: Path
) -> None:
    path = sorted(live.record_dir.glob("pingpong_*.trc"))[0]
    seen = call_isolated(windows.replay_session, path, env=display)
    assert seen["after_two_steps"] == 2
    image = seen["image"]
    save_png(tmp_path / "replay.png", image)
    trc = read_trc(path)
    for side, rgb in (("L", LEFT_RGB), ("R", RIGHT_RGB)):
        mine = [i for i, n in enumerate(trc.names) if n[:1].upper() == side]
        mine = [i for i in mine if np.isfinite(trc.xyz[2, i]).all()]
        assert mine and found_at(image, seen["frame2_pixels"][mine], rgb) > 0.8
    assert seen["at_end"] == seen["n_frames"] - 1 and "paused" in seen["end_status"]
    assert seen["replaying"] and seen["replay_from"] == 0, "at the end, space plays again"
    assert seen["played_to"] > 0, "playback advances with time"
    assert abs(seen["clicked_to"] - (seen["n_frames"] - 1) / 2) <= 1, "a click on the bar seeks"
    assert seen["quits"] == [True]


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
