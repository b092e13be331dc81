"""The web app's HTTP API against a real ``run_web.py``: real uploads of the demo video,
real worker processes, files compared byte for byte with ``run_offline.py``'s."""

from __future__ import annotations

import io
import json
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.proc import descendants
from core.demo_data import demo_video
from tests.data import REPO
from tests.web_server import WebServer, alive, cmdline, free_port
from web.jobs import CRASHED


@pytest.fixture
def server(tmp_path: Path) -> Iterator[WebServer]:
    web = WebServer(tmp_path / "data").start()
    yield web
    web.stop()


@pytest.fixture(scope="module")
def short_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's first 40 frames (cam01, full size): a real video, processed quickly."""
    capture = cv2.VideoCapture(str(demo_video()))
    path = tmp_path_factory.mktemp("clip") / "walk.mp4"
    fps = capture.get(cv2.CAP_PROP_FPS)
    ok, frame = capture.read()
    size = (frame.shape[1], frame.shape[0])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
    for _ in range(40):
        writer.write(frame)
        ok, frame = capture.read()
    writer.release()
    capture.release()
    return path


def running_job(server: WebServer, name: str) -> tuple[str, list[int]]:
    """A demo video job that has processed a few frames, and its worker's pids."""
    status, answer = server.post_video(demo_video(), name=name)
    assert status == 201, answer
    server.wait_job(answer["id"], ("running",), frames=3)
    assert server.proc is not None
    return answer["id"], [
        pid for pid in descendants(server.proc.pid) if "web.worker" in cmdline(pid)
    ]


def test_upload_gives_run_offline_files_and_survives_a_restart(
    server: WebServer, tmp_path: Path, short_demo: Path
) -> None:
    offline = subprocess.Popen(
        [sys.executable, str(REPO / "run_offline.py"), "--quiet", str(short_demo),
         "--height", "1.75", "--compute-all-joint-angles", "--output", str(tmp_path / "offline")],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    empty = tmp_path / "empty room.mp4"  # a real video with nobody in it: its job fails
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"mp4v"), 30, (320, 240))
    for value in np.random.default_rng(1).integers(90, 110, (15, 240, 320, 3), dtype=np.uint8):
        writer.write(value)
    writer.release()
    status, failing = server.post_video(empty)
    assert status == 201, failing
    status, answer = server.post_video(short_demo, height="1.75", compute_all_joint_angles="true")
    assert status == 201, answer
    job = server.wait_job(answer["id"], ("done",))
    failed = server.get(f"/api/jobs/{failing['id']}")
    assert failed["state"] == "failed" and failed["error"].startswith("nobody was detected")
    assert failed["name"] == "empty_room.mp4" and "/" not in failed["error"]
    assert server.get(f"/api/jobs/{failing['id']}/files")["files"] == []
    assert job["frames_done"] == job["frames_total"] == job["summary"]["frames"] == 40
    assert job["progress"] == 1.0 and job["summary"]["detected_pct"] > 90
    assert offline.wait(300) == 0, offline.stderr.read()

    listed = {f["name"]: f["size"] for f in server.get(f"/api/jobs/{job['id']}/files")["files"]}
    compared = ("walk_final.trc", "walk_initial.trc", "joint_angles/walk_angles.mot")
    assert set(compared) <= set(listed)
    for name in compared:
        status, body = server.request("GET", f"/api/jobs/{job['id']}/files/{name}")
        assert status == 200 and len(body) == listed[name]
        assert body == (tmp_path / "offline" / "walk" / name).read_bytes(), name
    status, body = server.request("GET", f"/api/jobs/{job['id']}/archive")
    assert status == 200
    assert sorted(zipfile.ZipFile(io.BytesIO(body)).namelist()) == sorted(listed)
    assert not (server.data / "jobs" / job["id"] / "upload").exists()  # no --keep-uploads

    replay = server.get(f"/api/jobs/{job['id']}/replay")
    assert len(replay["frames"]) == 40 and len(replay["names"]) == 64
    assert "knee_r_flex_deg" in replay["angles"]["columns"]

    server.restart()
    again = server.get(f"/api/jobs/{job['id']}")
    assert again["state"] == "done" and again["summary"] == job["summary"]
    assert {f["name"] for f in server.get(f"/api/jobs/{job['id']}/files")["files"]} == set(listed)

    status, body = server.request("DELETE", f"/api/jobs/{job['id']}")
    assert status == 200 and json.loads(body)["result"] == "removed"
    assert not (server.data / "jobs" / job["id"]).exists()
    assert [j["id"] for j in server.get("/api/jobs")["jobs"]] == [failing["id"]]


def test_a_text_file_is_refused_with_its_reason(server: WebServer, tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video\n" * 500)
    status, answer = server.post_video(fake)
    assert status == 415
    assert "notes.mp4 is not a readable video" in answer["error"]
    assert str(tmp_path) not in answer["error"]  # no server path in the message
    status, answer = server.post_video(fake, name="notes.txt")
    assert status == 415 and "not a video file name" in answer["error"]
    status, answer = server.post_video(demo_video(), height="tall")
    assert status == 400 and answer["error"] == "height must be a number, got 'tall'"
    status, answer = server.post_video(demo_video(), mass="-3")
    assert status == 400 and "--mass" in answer["error"]
    assert server.get("/api/jobs")["jobs"] == []
    assert list((server.data / "jobs").iterdir()) == []


def job_events(server: WebServer, job_id: str, timeout_s: float = 240.0) -> list[dict]:
    """Every state of ``job_id`` that ``/api/events`` (the pages' progress bars) sent, read
    as a browser's EventSource reads it, until the job is over."""
    seen: list[dict] = []
    with urllib.request.urlopen(f"{server.url}/api/events", timeout=timeout_s) as stream:
        for raw in stream:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue  # keep-alive comments and the blank lines between events
            job = next((j for j in json.loads(line[6:])["jobs"] if j["id"] == job_id), None)
            if job is not None:
                seen.append(job)
                if job["state"] in ("done", "failed", "cancelled"):
                    return seen
    raise AssertionError(f"the event stream ended before job {job_id} did")


def test_the_event_stream_reports_progress_while_the_job_runs(server: WebServer) -> None:
    """Also: an upload without Content-Length (chunked) is taken."""
    status, answer = server.post_video(demo_video(), name="progress.mp4", chunked=True)
    assert status == 201, answer
    events = job_events(server, answer["id"])
    assert events[-1]["state"] == "done" and events[-1]["progress"] == 1.0
    running = [e["progress"] for e in events if e["state"] == "running"]
    midway = [p for p in running if 0.0 < p < 1.0]
    assert len(set(midway)) >= 3, running  # the bar moves during the job, not only at its end
    assert running == sorted(running)


def test_cancel_a_running_job_leaves_no_files(server: WebServer) -> None:
    job_id, workers = running_job(server, name="../../a folder/cancel me.mp4")
    assert workers
    job = server.get(f"/api/jobs/{job_id}")
    assert job["name"] == "cancel_me.mp4"  # the name is kept, its folders are not
    status, body = server.request("DELETE", f"/api/jobs/{job_id}")
    assert status == 200 and json.loads(body)["result"] == "cancelled"
    job = server.get(f"/api/jobs/{job_id}")
    assert job["state"] == "cancelled"
    assert server.get(f"/api/jobs/{job_id}/files")["files"] == []
    folder = server.data / "jobs" / job_id
    assert sorted(p.name for p in folder.iterdir()) == ["job.json"]
    assert not any(alive(pid) for pid in workers)
    for path in (f"/api/jobs/{job_id}/files/..%2Fjob.json", f"/api/jobs/{job_id}/files/job.json",
                 "/api/jobs/..%2F..%2Fetc/files", "/api/jobs/0123/archive"):  # fmt: skip
        assert server.request("GET", path)[0] == 404, path


def test_a_job_running_when_the_server_dies_is_failed_after_restart(server: WebServer) -> None:
    job_id, workers = running_job(server, name="crash.mp4")
    server.stop(signal.SIGKILL)
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in workers)  # the worker died with the server
    server.start()
    job = server.get(f"/api/jobs/{job_id}")
    assert job["state"] == "failed" and job["error"] == CRASHED
    assert sorted(p.name for p in (server.data / "jobs" / job_id).iterdir()) == ["job.json"]


def test_token_and_upload_limit(tmp_path: Path) -> None:
    config = tmp_path / "web.toml"
    config.write_text("[web]\nmax_upload_mb = 0.25\n")
    refused = subprocess.run(
        [sys.executable, str(REPO / "run_web.py"), "--host", "0.0.0.0", "--data", str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: --host 0.0.0.0 can be reached from other hosts")

    web = WebServer(tmp_path / "data", "--config", str(config), token="s3cret").start()
    try:
        assert web.request("GET", "/api/jobs", auth=False)[0] == 401
        assert web.request("GET", "/api/jobs", headers={"Authorization": "Bearer nope"})[0] == 401
        assert web.get("/api/jobs") == {"jobs": []}
        status, body = web.request("GET", "/?token=s3cret", auth=False)
        assert status == 200 and b"Upload videos" in body
        status, answer = web.post_video(demo_video())  # 380 kB over a 256 kB limit
        assert status == 413 and "larger than the limit" in answer["error"]
        status, answer = web.post_video(demo_video(), chunked=True)  # no Content-Length
        assert status == 413 and "larger than the limit" in answer["error"]
        assert list((web.data / "jobs").iterdir()) == []
    finally:
        web.stop()


def test_https_with_a_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    half = subprocess.run(
        [sys.executable, str(REPO / "run_web.py"), "--tls-cert", str(cert),
         "--data", str(tmp_path)],
        capture_output=True, text=True, timeout=60, cwd=REPO,
    )  # fmt: skip
    assert half.returncode == 2 and half.stderr.startswith("error: --tls-cert and --tls-key go")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, str(REPO / "run_web.py"), "--port", str(port), "--data",
         str(tmp_path / "data"), "--tls-cert", str(cert), "--tls-key", str(key)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        context = ssl.create_default_context(cafile=str(cert))
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/api/health", context=context, timeout=10
                ) as answer:
                    assert json.loads(answer.read())["ok"] is True
                    break
            except urllib.error.URLError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=30)[0]
    assert f"on https://127.0.0.1:{port}/" in output
