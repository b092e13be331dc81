"""The pages in a real headless Chromium against a real ``run_web.py``: the results page
draws the skeleton and plays it, the upload page lists jobs and shows an upload's error,
the live page draws the live stream; asserted on screenshot pixels, not only the DOM."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import BrowserContext, Page

from core.demo_data import demo_video
from tests.browser import BLUE_BGR, ORANGE_BGR, chromium, image, near
from tests.web_server import WebServer, free_port

SLOW_MS = 150_000  # generous: the machine is shared


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pingpong_video: Path) -> Iterator[WebServer]:
    """A server with one finished job (the demo video, angles computed) and the ping-pong
    clip in its data folder for the live page."""
    root = tmp_path_factory.mktemp("web")
    data = root / "data"
    data.mkdir()
    shutil.copy(pingpong_video, data / "walk.mp4")
    config = root / "web.toml"
    config.write_text(
        f'[web]\nlive_publish = "tcp://127.0.0.1:{free_port()}"\n'
        f'live_control = "tcp://127.0.0.1:{free_port()}"\n'
    )
    web = WebServer(data, "--config", str(config)).start()
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
    page.set_input_files("#files", [str(fake)])
    page.click("#send")
    page.wait_for_selector("#upload-errors li", timeout=SLOW_MS)
    assert "notes.mp4 is not a readable video" in page.inner_text("#upload-errors")
    shot = image(page.screenshot(), tmp_path / "upload.png")
    assert near(shot, (91, 157, 46), 10) > 300  # the finished job's green bar (#2e9d5b)
    assert near(shot, (30, 38, 179), 10) > 50  # the error line's red text (#b3261e)


def test_live_page_draws_the_stream(server: WebServer, page: Page, tmp_path: Path) -> None:
    page.goto(f"{server.url}/live")
    page.wait_for_selector("#state:has-text('stopped')", timeout=SLOW_MS)
    page.fill("#source", "walk.mp4")
    page.click("#start")
    page.wait_for_function("window.framesDrawn >= 20", timeout=SLOW_MS)
    first = image(page.locator("#skeleton").screenshot(), tmp_path / "live-first.png")
    assert bones(first) > 200
    drawn = page.evaluate("window.framesDrawn")
    page.wait_for_function(f"window.framesDrawn >= {drawn + 15}", timeout=SLOW_MS)
    later = image(page.locator("#skeleton").screenshot(), tmp_path / "live-later.png")
    assert bones(later) > 200
    assert np.abs(later.astype(int) - first).max(axis=2).astype(bool).sum() > 200
    plot = image(page.locator("#angles").screenshot(), tmp_path / "live-angles.png")
    assert near(plot, (219, 111, 42)) > 50

    page.click("#record")
    page.wait_for_selector("#record:has-text('Stop recording')", timeout=SLOW_MS)
    drawn = page.evaluate("window.framesDrawn")
    page.wait_for_function(f"window.framesDrawn >= {drawn + 10}", timeout=SLOW_MS)
    page.click("#record")
    page.wait_for_selector("#recorded a", timeout=SLOW_MS)
    assert page.inner_text("#recorded a").startswith("walk_")
    page.click("#stop")
    page.wait_for_selector("#state:has-text('stopped')", timeout=SLOW_MS)
    image(page.screenshot(), tmp_path / "live-page.png")
