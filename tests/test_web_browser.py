"""The pages in a real headless Chromium against a real ``run_web.py``: the results page
draws the skeleton and plays it, the upload page lists jobs and shows an upload's error,
the live page draws the live stream (which a WebSocket client also gets, in order);
asserted on screenshot pixels, not only the DOM."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import BrowserContext, Page
from websockets.sync.client import connect

from bench.proc import descendants
from core.demo_data import demo_video
from core.trc import read_trc
from tests.browser import BLUE_BGR, ORANGE_BGR, chromium, image, near
from tests.web_server import WebServer, cmdline, free_port

SLOW_MS = 150_000  # generous: the machine is shared


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pingpong_video: Path) -> Iterator[WebServer]:
    """A server (keeping uploads) with one job (the demo video, angles computed) and the
    ping-pong clip in its data folder for the live page."""
    root = tmp_path_factory.mktemp("web")
    data = root / "data"
    data.mkdir()
    shutil.copy(pingpong_video, data / "walk.mp4")
    config = root / "web.toml"
    config.write_text(
        f'[web]\nlive_publish = "tcp://127.0.0.1:{free_port()}"\n'
        f'live_control = "tcp://127.0.0.1:{free_port()}"\n'
    )
    web = WebServer(data, "--config", str(config), "--keep-uploads").start()
    status, answer = web.post_video(demo_video(), compute_all_joint_angles="true")
    assert status == 201, answer
    web.job_id = answer["id"]  # type: ignore[attr-defined]
    yield web
    web.request("DELETE", "/api/live")
    web.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with chromium(tmp_path_factory.mktemp("profile")) as context:
        yield context


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    page.close()
    assert errors == []  # no JavaScript error on the page


def bones(picture: np.ndarray) -> int:
    """Pixels of left (blue) and right (orange) bones: both sides must be drawn."""
    return min(near(picture, ORANGE_BGR), near(picture, BLUE_BGR))


def test_results_page_draws_the_skeleton_and_plays(
    server: WebServer, page: Page, tmp_path: Path
) -> None:
    job_id = server.job_id  # type: ignore[attr-defined]
    server.wait_job(job_id, ("done",))
    assert (server.data / "jobs" / job_id / "upload" / "cam01.mp4").is_file()  # --keep-uploads
    page.goto(f"{server.url}/jobs/{job_id}")
    page.wait_for_selector("body[data-ready='1']", timeout=SLOW_MS)
    assert page.inner_text("#counter") == "frame 1 / 100"
    first = image(page.locator("#skeleton").screenshot(), tmp_path / "results-first.png")
    assert bones(first) > 200
    plot = image(page.locator("#angles").screenshot(), tmp_path / "results-angles.png")
    assert near(plot, (219, 111, 42)) > 100  # the first angle's blue line (#2a6fdb)
    assert "cam01_final.trc" in page.inner_text("#files")

    page.click("#play")
    page.wait_for_function("Number(document.querySelector('#scrub').value) > 20", timeout=SLOW_MS)
    page.click("#play")  # pause
    playing = image(page.locator("#skeleton").screenshot(), tmp_path / "results-played.png")
    assert bones(playing) > 200
    assert np.abs(playing.astype(int) - first).max(axis=2).astype(bool).sum() > 500

    page.locator("#scrub").evaluate("(s) => { s.value = 49; s.dispatchEvent(new Event('input')); }")
    assert page.inner_text("#counter") == "frame 50 / 100"
    page.mouse.move(300, 300)  # orbit: drag across the canvas
    box = page.locator("#skeleton").bounding_box()
    assert box is not None
    before = image(page.locator("#skeleton").screenshot())
    page.mouse.move(box["x"] + 200, box["y"] + 200)
    page.mouse.down()
    page.mouse.move(box["x"] + 320, box["y"] + 230, steps=5)
    page.mouse.up()
    orbited = image(page.locator("#skeleton").screenshot(), tmp_path / "results-orbited.png")
    assert bones(orbited) > 200
    assert np.abs(orbited.astype(int) - before).max(axis=2).astype(bool).sum() > 500


def test_upload_page_lists_jobs_and_shows_a_refused_upload(
    server: WebServer, page: Page, tmp_path: Path
) -> None:
    server.wait_job(server.job_id, ("done",))  # type: ignore[attr-defined]
    page.goto(server.url)
    page.wait_for_selector("tr.state-done", timeout=SLOW_MS)
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n" * 100)
    text = tmp_path / "notes.txt"
    text.write_text("not a video either\n")
    page.set_input_files("#files", [str(fake), str(text)])  # several files: one job each
    page.click("#send")
    page.wait_for_selector("#upload-errors li:nth-child(2)", timeout=SLOW_MS)
    errors = page.inner_text("#upload-errors").splitlines()
    assert "notes.mp4 is not a readable video" in errors[0]
    assert "notes.txt is not a video file name" in errors[1]
    shot = image(page.screenshot(), tmp_path / "upload.png")
    assert near(shot, (91, 157, 46), 10) > 300  # the finished job's green bar (#2e9d5b)
    assert near(shot, (30, 38, 179), 10) > 50  # the error line's red text (#b3261e)


def post_json(server: WebServer, path: str, body: dict) -> tuple[int, dict]:
    status, answer = server.request(
        "POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    return status, json.loads(answer)


def websocket_frames(server: WebServer, count: int) -> list[int]:
    """The frame indices of the first ``count`` markers messages a new WebSocket gets."""
    frames: list[int] = []
    with connect(server.url.replace("http", "ws") + "/ws/live") as ws:
        while len(frames) < count:
            message = json.loads(ws.recv(timeout=SLOW_MS / 1000))
            if message["type"] == "markers":
                assert len(message["markers"]) == 64
                frames.append(message["frame"])
    return frames


def test_live_page_and_its_websocket_bridge(server: WebServer, page: Page, tmp_path: Path) -> None:
    """One live session (they start slowly): the page starts it and draws it, a second
    client gets the bridged frames in order, the page records and stops it."""
    status, answer = post_json(server, "/api/live", {"source": "../walk.mp4"})
    assert status == 400 and "inside the server's data folder" in answer["error"]
    page.goto(f"{server.url}/live")
    page.wait_for_selector("#state:has-text('stopped')", timeout=SLOW_MS)
    page.fill("#source", "walk.mp4")
    page.click("#start")
    page.wait_for_selector("#state:has-text('running')", timeout=SLOW_MS)
    status, answer = post_json(server, "/api/live", {"source": "walk.mp4"})
    assert status == 400 and "already running" in answer["error"]

    frames = websocket_frames(server, 45)
    assert frames == sorted(set(frames))  # in the order published, none twice

    page.wait_for_function("window.framesDrawn >= 20", timeout=SLOW_MS)
    first = image(page.locator("#skeleton").screenshot(), tmp_path / "live-first.png")
    assert bones(first) > 200
    drawn = page.evaluate("window.framesDrawn")
    page.wait_for_function(f"window.framesDrawn >= {drawn + 15}", timeout=SLOW_MS)
    later = image(page.locator("#skeleton").screenshot(), tmp_path / "live-later.png")
    assert bones(later) > 200
    assert np.abs(later.astype(int) - first).max(axis=2).astype(bool).sum() > 200
    plot = image(page.locator("#angles").screenshot(), tmp_path / "live-angles.png")
    assert near(plot, (219, 111, 42)) > 50  # knee_r flexion's line

    page.click("#record")
    page.wait_for_selector("#record:has-text('Stop recording')", timeout=SLOW_MS)
    drawn = page.evaluate("window.framesDrawn")
    page.wait_for_function(f"window.framesDrawn >= {drawn + 10}", timeout=SLOW_MS)
    page.click("#record")
    page.wait_for_selector("#recorded a", timeout=SLOW_MS)
    name = page.inner_text("#recorded a")
    assert name.startswith("walk_") and name.endswith(".trc")
    status, body = server.request("GET", f"/api/live/files/{name}")
    assert status == 200 and body == (server.data / "live" / name).read_bytes()
    assert read_trc(server.data / "live" / name).xyz.shape[0] >= 2

    page.click("#stop")
    page.wait_for_selector("#state:has-text('stopped')", timeout=SLOW_MS)
    image(page.screenshot(), tmp_path / "live-page.png")
    assert server.proc is not None
    left = [cmdline(pid) for pid in descendants(server.proc.pid)]
    assert not [c for c in left if "run_live.py" in c or "forkserver" in c], left
