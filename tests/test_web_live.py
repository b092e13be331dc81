"""The web app's live session: ``run_live.py`` started through the API on a real video,
its public stream bridged to a real WebSocket, recorded with the record button's API."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.sync.client import connect

from bench.proc import descendants
from core.trc import read_trc
from tests.web_server import WebServer, cmdline, free_port


@pytest.fixture
def live_server(tmp_path: Path, pingpong_video: Path) -> Iterator[WebServer]:
    """A server whose data folder holds the ping-pong demo clip, on free live ports."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(pingpong_video, data / "walk.mp4")
    config = tmp_path / "web.toml"
    config.write_text(
        f'[web]\nlive_publish = "tcp://127.0.0.1:{free_port()}"\n'
        f'live_control = "tcp://127.0.0.1:{free_port()}"\n'
    )
    web = WebServer(data, "--config", str(config)).start()
    yield web
    web.request("DELETE", "/api/live")
    web.stop()


def post_json(server: WebServer, path: str, body: dict) -> tuple[int, dict]:
    status, answer = server.request(
        "POST", path, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    return status, json.loads(answer)


def test_websocket_gets_the_published_frames_in_order_and_records(
    live_server: WebServer,
) -> None:
    status, answer = post_json(live_server, "/api/live", {"source": "../walk.mp4"})
    assert status == 400 and "inside the server's data folder" in answer["error"]
    status, answer = post_json(live_server, "/api/live", {"source": "walk.mp4", "height": 1.7})
    assert status == 200 and answer["running"], answer
    status, answer = post_json(live_server, "/api/live", {"source": "walk.mp4"})
    assert status == 400 and "already running" in answer["error"]

    frames: list[int] = []
    angles: list[str] = []
    recorded_from = None
    with connect(live_server.url.replace("http", "ws") + "/ws/live") as ws:
        deadline = time.monotonic() + 150  # generous: stage processes start slowly when loaded
        while len(frames) < 60 and time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=150))
            if message["type"] == "state":
                angles = message["angles"] or angles
            elif message["type"] == "markers":
                frames.append(message["frame"])
                assert len(message["markers"]) == 64
                if len(frames) == 10:
                    assert post_json(live_server, "/api/live/record", {"on": True})[0] == 200
                    recorded_from = message["frame"]
    assert len(frames) == 60, frames
    assert frames == sorted(set(frames))  # in order, none twice
    assert "knee_r_flex_deg" in angles

    status, answer = post_json(live_server, "/api/live/record", {"on": False})
    assert status == 200 and len(answer["recorded"]) == 1, answer
    name = answer["recorded"][0]
    status, body = live_server.request("GET", f"/api/live/files/{name}")
    assert status == 200
    recording = live_server.data / "live" / name
    assert recording.read_bytes() == body
    assert recorded_from is not None and read_trc(recording).xyz.shape[0] >= 2

    status, _ = live_server.request("DELETE", "/api/live")
    assert status == 200
    assert live_server.get("/api/live")["running"] is False
    assert live_server.proc is not None
    left = [cmdline(pid) for pid in descendants(live_server.proc.pid)]
    assert not [c for c in left if "run_live.py" in c or "forkserver" in c], left
