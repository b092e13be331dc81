"""Live mode under process and network faults, with real processes, signals and sockets:
a killed supervisor, a killed capture, a network stream that stalls and drops, a port in
use; and latency accounting that stays the same size however long a run lasts."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from bench.mjpeg_server import MjpegServer
from bench.proc import descendants, running
from core.demo_data import demo_video
from core.packet import Packet
from stages.capture import VideoSource
from stream.run_dir import remove_stale_run_dirs
from stream.stats import LatencyStats
from tests.data import REPO
from tests.test_live import LiveRun, assert_no_orphans, collect, pipeline_processes

GONE_WITHIN_S = 5.0  # the benchmark (bench/bench_orphans.py) measures ~0.6 s


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def published(run: LiveRun) -> int:
    try:
        return run.client.request("status", timeout_s=1.0)["status"]["published"]
    except TimeoutError:
        return 0


def test_killed_supervisor_takes_every_process_with_it(pingpong_video: Path, tmp_path: Path):
    tmp = tmp_path / "tmp"
    killed = LiveRun("--source", pingpong_video, tmp=tmp)
    killed.wait_ready()
    wait_for(lambda: published(killed) > 10, 60, "frames")
    children = descendants(killed.process.pid)
    names = sorted(name for name, _ in children.values())
    assert len([n for n in names if n.startswith("mm-")]) >= 7, names  # capture, 5 stages, sink
    assert len(children) >= 9, names  # + forkserver and resource tracker
    left = {p.name for p in tmp.iterdir() if p.name.startswith(("monomocap-run-", "pymp-"))}
    os.kill(killed.process.pid, signal.SIGKILL)
    killed.process.wait()
    deadline = time.monotonic() + GONE_WITHIN_S
    while time.monotonic() < deadline and any(running(p, s) for p, (_, s) in children.items()):
        time.sleep(0.05)
    alive = {pid: name for pid, (name, start) in children.items() if running(pid, start)}
    assert alive == {}, f"still running {GONE_WITHIN_S} s after the supervisor's SIGKILL"
    assert len(left) == 2 and left <= {p.name for p in tmp.iterdir()}, "its folders leak"

    # The next start removes the dead run's folders and never those of a live run.
    later = LiveRun("--source", pingpong_video, tmp=tmp)
    try:
        later.wait_ready()
        now = {p.name for p in tmp.iterdir()}
        assert not left & now, "the killed run's folders are gone"
        own = {p for p in tmp.iterdir() if p.name.startswith("monomocap-run-")}
        assert len(own) == 1
        assert remove_stale_run_dirs(tmp) == []
        assert all(p.exists() for p in own), "a live run's folder is never removed"
        assert later.process.poll() is None
    finally:
        later.process.send_signal(signal.SIGINT)
        later.finish(timeout=30)


def test_killed_capture_resumes_the_file_and_duration_still_ends_the_run(pingpong_video: Path):
    run = LiveRun("--source", pingpong_video, "--duration", "15")
    got: list = []
    stop = threading.Event()
    thread = collect(run.publish, got, stop)
    run.wait_ready()
    wait_for(lambda: published(run) > 10, 60, "frames")
    seen, killed_at = run.kill("mm-capture")
    time.sleep(2.0)
    seen.update(pipeline_processes(run.process.pid))  # the restarted capture too
    code, _, err = run.finish(timeout=90)  # hung for ever before: capture kept --duration
    time.sleep(0.5)
    stop.set()
    thread.join(5)
    assert code == 0, err
    markers = [m for t, m in got if t == "pose.markers"]
    frames = [m["frame_index"] for m in markers]
    assert frames == sorted(set(frames)), f"in order, never from the start again: {frames}"
    before = [m["frame_index"] for m in markers if m["timestamp_ns"] < killed_at]
    after = [m["frame_index"] for m in markers if m["timestamp_ns"] > killed_at]
    assert before and len(after) > 20, f"publishing resumed after the kill: {before}, {after}"
    assert after[0] - before[-1] < 90, f"resumed near where capture died: {before}, {after}"
    statuses = [m for t, m in got if t == "pose.status"]
    assert statuses[-1]["restarts"] == {"capture": 1}, statuses[-1]
    assert_no_orphans(seen)


def small_frames(n: int = 30) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(demo_video("cam01")))
    frames = []
    while len(frames) < n:
        ok, frame = cap.read()
        assert ok
        frames.append(cv2.resize(frame, (270, 480)))
    return frames + frames[::-1]


def test_network_stream_reconnects_and_fails_with_an_error_when_gone(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    text = (REPO / "config.toml").read_text()
    assert "reconnect_s = 10.0" in text and "read_timeout_s = 2.0" in text
    config.write_text(
        text.replace("reconnect_s = 10.0", "reconnect_s = 4.0").replace(
            "read_timeout_s = 2.0", "read_timeout_s = 1.0"
        )
    )
    server = MjpegServer(small_frames(), fps=30).serve()
    run = LiveRun("--source", server.url, "--config", config)
    got: list = []
    stop = threading.Event()
    thread = collect(run.publish, got, stop, topics=("pose.status",))

    def status() -> dict:
        return run.client.request("status", timeout_s=2.0)["status"]

    try:
        run.wait_ready()
        wait_for(lambda: status()["published"] > 10, 60, "frames from the stream")
        server.stall()  # connection open, no more frames
        wait_for(lambda: status()["source"] == "reconnecting", 20, "the stall to be noticed")
        stalled_at = status()["published"]
        server.resume()
        wait_for(lambda: status()["source"] == "ok", 20, "the stream to come back")
        wait_for(lambda: status()["published"] > stalled_at + 10, 30, "frames after it")
        assert status()["reconnects"] == 1
        seen = pipeline_processes(run.process.pid)
        server.drop()  # gone for good
        code, _, err = run.finish(timeout=60)
    finally:
        server.drop()
        stop.set()
        thread.join(5)
        if run.process.poll() is None:
            run.process.kill()
    assert code != 0
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert server.url in errors[0] and "did not come back within 4 s" in errors[0]
    assert "reconnecting" in [m["source"] for _, m in got], "pose.status reported it"
    assert_no_orphans(seen)


@pytest.mark.parametrize("what", ["--publish", "--control", "tcp_base_port"])
def test_port_in_use_is_one_line_naming_port_and_how_to_change_it(what: str, tmp_path: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        if what == "tcp_base_port":  # the first stage's input, with tcp links between stages
            config = tmp_path / "tcp.toml"
            text = (REPO / "config.toml").read_text()
            text = text.replace('transport = "ipc"', 'transport = "tcp"', 1)
            config.write_text(text.replace("tcp_base_port = 5600", f"tcp_base_port = {port}"))
            args = ["--config", config]
        else:  # after LiveRun's own free ports, so it wins
            args = [what, f"tcp://127.0.0.1:{port}"]
        run = LiveRun("--source", demo_video("cam01"), *args, tmp=tmp_path / "tmp")
        seen: dict[int, str] = {}
        while run.process.poll() is None:
            seen.update(pipeline_processes(run.process.pid))
            time.sleep(0.05)
        code, _, err = run.finish(timeout=60)
    assert code != 0
    assert "Traceback" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert f"port {port}" in errors[0] and what in errors[0], errors[0]
    assert_no_orphans(seen)
    assert list((tmp_path / "tmp").glob("monomocap-run-*")) == [], "no run folder left"


def test_latency_stats_stay_the_same_size_and_match_exact_percentiles() -> None:
    rng = np.random.default_rng(0)
    stats = LatencyStats()
    values = []

    def add(n: int) -> None:
        for index in range(n):
            packet = Packet("cam", index, timestamp_ns=0, media_time_s=0.0, image_size=(1, 1))
            enter = 0
            for name in ("detect", "lift", "markers", "augment", "angles"):
                leave = enter + int(rng.lognormal(1.0, 0.8) * 1e6)
                packet.timings.append((name, enter, leave))
                enter = leave
            values.append(enter / 1e6)
            stats.add(packet, published_ns=enter)

    add(2_000)
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    add(30_000)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename") if "stats.py" in str(s))
    assert grown < 20_000, f"LatencyStats grew {grown} bytes over 30000 packets"
    summary = stats.summary()["capture->publish"]
    for q in (50, 95, 99):
        assert summary[f"p{q}"] == pytest.approx(np.percentile(values, q), rel=0.01)
    assert stats.frames == 32_000


def test_a_file_resumes_at_a_given_frame() -> None:
    """What a restarted capture does: frame 40 onwards, at frame 40's media time."""
    video = demo_video("cam01")
    everything = list(VideoSource(video))
    resumed = list(VideoSource(video, start_frame=40))
    assert [p.frame_index for p in resumed] == list(range(40, 100))
    assert resumed[0].media_time_s == pytest.approx(40 / 60)
    assert np.abs(resumed[0].image.astype(int) - everything[40].image).mean() < 1.0
    assert list(VideoSource(video, start_frame=100)) == [], "killed after its last frame"
