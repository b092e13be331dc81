"""Live mode with real processes and real sockets: subscribers, restarts, shutdown, identity."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import msgpack
import numpy as np
import pytest
import zmq

from bench.proc import comm, descendants
from core.angle_files import read_mot
from core.demo_data import demo_video
from core.provenance import sha256_file
from models.opensim_model import coordinate_names, load_model, scaled_model
from stream.config import load_config
from tests.data import REPO
from transports.client import PoseClient
from transports.queues import Subscriber

STARTUP_S = 90.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveRun:
    """run_live.py in a subprocess on free ports, with a client for its sockets."""

    def __init__(self, *args: str | Path, tmp: Path | None = None) -> None:
        """``tmp``: the run's TMPDIR, where its ipc socket folder lives (to check cleanup)."""
        self.publish = f"tcp://127.0.0.1:{free_port()}"
        self.control = f"tcp://127.0.0.1:{free_port()}"
        self.client = PoseClient(self.publish, self.control)
        cmd = [sys.executable, str(REPO / "run_live.py"), "--publish", self.publish]
        cmd += ["--control", self.control, "--no-viewer", *map(str, args)]
        env = dict(os.environ)
        if tmp is not None:
            tmp.mkdir(parents=True, exist_ok=True)
            env["TMPDIR"] = str(tmp)
        self.process = subprocess.Popen(
            cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )

    def wait_ready(self) -> None:
        """Until frames are published: every stage has loaded its models (the control
        socket answers as soon as the sink is up, the stages may still be loading)."""
        deadline = time.monotonic() + STARTUP_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.process.communicate()
            try:
                if self.client.request("status", timeout_s=0.5)["status"]["published"] > 0:
                    return
            except TimeoutError:
                pass
            time.sleep(0.1)
        raise AssertionError("live pipeline did not start")

    def wait_published(self, messages: list, count: int = 1) -> None:
        """Until ``count`` pose.markers have arrived in ``messages`` (a ``collect`` on this
        run's stream): only then is every stage up and are frames flowing through them."""
        deadline = time.monotonic() + STARTUP_S
        while sum(topic == "pose.markers" for topic, _ in messages) < count:
            assert self.process.poll() is None, self.process.communicate()
            assert time.monotonic() < deadline, f"{count} frames were not published"
            time.sleep(0.1)

    def kill(self, process_name: str) -> tuple[dict[int, str], int]:
        """SIGKILL the one pipeline process called ``process_name`` (``mm-detect``, ...);
        the processes seen just before, and the time of the kill (monotonic ns)."""
        seen = pipeline_processes(self.process.pid)
        pids = [pid for pid, name in seen.items() if name == process_name]
        assert len(pids) == 1, seen
        killed_at = time.monotonic_ns()
        os.kill(pids[0], signal.SIGKILL)
        return seen, killed_at

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err

    def stop(self) -> None:
        """End the run if it still runs: SIGINT as a user would, SIGKILL if that hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.communicate()


@pytest.fixture
def live_run() -> Iterator[Callable[..., LiveRun]]:
    """Starts LiveRuns; one still running when its test ends (the test failed midway) is
    stopped then, so it cannot load or disturb the tests after it."""
    runs: list[LiveRun] = []

    def start(*args: str | Path, tmp: Path | None = None) -> LiveRun:
        runs.append(LiveRun(*args, tmp=tmp))
        return runs[-1]

    yield start
    for run in runs:
        run.stop()


def pipeline_processes(root: int) -> dict[int, str]:
    """{pid: name} of the live pipeline processes under process ``root`` (any depth)."""
    return {pid: name for pid, (name, _) in descendants(root).items() if name.startswith("mm-")}


def assert_no_orphans(pids: dict[int, str]) -> None:
    """None of the pipeline processes seen during the run is still alive."""
    alive = {pid: name for pid, name in pids.items() if comm(pid) == name}
    assert alive == {}, f"orphans: {alive}"


def collect(
    endpoint: str,
    into: list,
    stop: threading.Event,
    topics: tuple[str, ...] = ("pose.markers", "pose.status"),
) -> threading.Thread:
    """Subscribe now (one socket for the whole run) and append messages until ``stop``."""
    subscriber = Subscriber(endpoint, topics)

    def run() -> None:
        with subscriber:
            while not stop.is_set():
                message = subscriber.recv(timeout_s=0.2)
                if message is not None:
                    into.append(message)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_two_subscribers_get_every_frame_and_a_stalled_one_costs_nothing(
    pingpong_video: Path, live_run: Callable[..., LiveRun]
) -> None:
    delivered = {}
    for stalled in (False, True):
        run = live_run("--source", pingpong_video, "--duration", "8")
        context = zmq.Context.instance()
        stall = context.socket(zmq.SUB)
        if stalled:  # subscribes and never reads
            stall.setsockopt(zmq.RCVHWM, 1)
            stall.connect(run.publish)
            stall.subscribe(b"")
        got: list[list] = [[], []]
        stop = threading.Event()
        threads = [collect(run.publish, got[i], stop) for i in range(2)]
        run.wait_ready()
        code, _, err = run.finish()
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(5)
        stall.close(linger=0)
        assert code == 0, err
        frames = [[m["frame_index"] for t, m in g if t == "pose.markers"] for g in got]
        final = [m for t, m in got[0] if t == "pose.status"][-1]
        assert frames[0] == frames[1], "both subscribers see the same frames"
        assert frames[0] == sorted(set(frames[0])), "in order, no duplicates"
        assert len(frames[0]) == final["published"], "every published frame arrived"
        delivered[stalled] = len(frames[0])
    print(f"frames delivered without/with a stalled subscriber: {delivered}")
    assert delivered[True] >= 0.9 * delivered[False]


def test_killed_stage_restarts_in_live_mode(
    pingpong_video: Path, live_run: Callable[..., LiveRun]
) -> None:
    run = live_run("--source", pingpong_video, "--duration", "10")
    got: list = []
    stop = threading.Event()
    thread = collect(run.publish, got, stop)
    run.wait_ready()
    run.wait_published(got)
    seen, killed_at = run.kill("mm-detect")
    time.sleep(1.5)
    seen.update(pipeline_processes(run.process.pid))  # the restarted detect too
    code, _, err = run.finish()
    stop.set()
    thread.join(5)
    assert code == 0, err
    after = [m for t, m in got if t == "pose.markers" and m["timestamp_ns"] > killed_at]
    assert len(after) > 30, "publishing resumed after the kill"
    first_after = min(m["timestamp_ns"] for m in after)
    assert (first_after - killed_at) / 1e9 < 2.0
    statuses = [m for t, m in got if t == "pose.status"]
    assert statuses[-1]["restarts"] == {"detect": 1}
    assert_no_orphans(seen)


def test_killed_stage_fails_a_lossless_run(
    pingpong_video: Path, tmp_path: Path, live_run: Callable[..., LiveRun]
) -> None:
    run = live_run("--source", pingpong_video, "--lossless", "--record", tmp_path)
    got: list = []
    stop = threading.Event()
    thread = collect(run.publish, got, stop)
    run.wait_ready()
    run.wait_published(got)
    seen, _ = run.kill("mm-markers")
    code, _, err = run.finish()
    stop.set()
    thread.join(5)
    assert code != 0
    assert "stage 'markers' died (signal 9)" in err
    assert_no_orphans(seen)
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_sigint_stops_within_2s_with_a_valid_trc(
    pingpong_video: Path, tmp_path: Path, live_run: Callable[..., LiveRun]
) -> None:
    run = live_run("--source", pingpong_video, "--record", tmp_path, tmp=tmp_path / "tmp")
    got: list = []
    stop = threading.Event()
    thread = collect(run.publish, got, stop)
    run.wait_ready()
    run.wait_published(got, count=10)
    seen = pipeline_processes(run.process.pid)
    assert len(seen) >= 6  # capture, 4 stages, sink
    sent = time.monotonic()
    run.process.send_signal(signal.SIGINT)
    code, _, err = run.finish(timeout=10)
    elapsed = time.monotonic() - sent
    stop.set()
    thread.join(5)
    assert code == 0, err
    assert elapsed < 2.0, f"shutdown took {elapsed:.2f} s"
    assert_no_orphans(seen)
    assert list((tmp_path / "tmp").glob("monomocap-run-*")) == [], "stale ipc run folder"
    trc = (tmp_path / "pingpong" / "pingpong_final.trc").read_text().splitlines()
    n_frames = int(trc[2].split("\t")[2])
    assert n_frames >= 10 and len(trc) == 6 + n_frames  # every published frame is recorded
    assert all(len(line.split("\t")) == 2 + 64 * 3 for line in trc[6:])


def test_offline_equals_live_lossless_byte_for_byte(
    tmp_path: Path, live_run: Callable[..., LiveRun]
) -> None:
    """Over ipc:// (the default), tcp:// and with detect run as a separate remote stage,
    live --lossless writes exactly the offline files."""
    video = demo_video("cam02")
    offline = subprocess.run(
        [sys.executable, "run_offline.py", video, "--output", tmp_path / "offline", "--quiet",
         "--compute-all-joint-angles", "--c3d"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stderr
    tcp_config = tmp_path / "tcp.toml"
    text = (REPO / "config.toml").read_text().replace('transport = "ipc"', 'transport = "tcp"', 1)
    tcp_config.write_text(text)
    remote_config = tmp_path / "remote.toml"  # detect "on another host": a separate process
    remote_config.write_text(text + f'\n[live.remote]\ndetect = "tcp://127.0.0.1:{free_port()}"\n')
    remote = subprocess.Popen(
        [sys.executable, "-m", "stream.remote_stage", "detect", "--config", remote_config,
         "--lossless"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    variants = {"ipc": [], "tcp": ["--config", tcp_config], "remote": ["--config", remote_config]}
    try:
        for transport, extra in variants.items():
            out = tmp_path / f"live_{transport}"
            run = live_run(
                "--source", video, "--lossless", "--record", out, "--compute-all-joint-angles",
                "--c3d", *extra,
            )  # fmt: skip
            code, _, err = run.finish(timeout=300)
            assert code == 0, err
            for name in ("cam02_initial.trc", "cam02_final.trc", "cam02_raw_landmarks.csv",
                         "cam02.c3d", "joint_angles/cam02_angles.mot",
                         "joint_angles/cam02_knee_r.csv"):  # fmt: skip
                live = (out / "cam02" / name).read_bytes()
                offline = (tmp_path / "offline" / "cam02" / name).read_bytes()
                assert live == offline, (transport, name)
        assert remote.wait(timeout=10) == 0, "the remote stage ends with its source"
    finally:
        if remote.poll() is None:  # the test failed before the remote's source ended
            remote.kill()
            remote.communicate()


def test_offline_equals_live_with_the_kinematic_fit(
    tmp_path: Path, live_run: Callable[..., LiveRun]
) -> None:
    """The fit's per-source state gives the same files live (its own process) and offline,
    and with the same scaled model (--osim) the live ik stage's frame-by-frame IK is the
    offline IK of the whole trial; both folders have a run.json naming how they were made."""
    video = demo_video("cam02")
    osim = tmp_path / "subject.osim"  # a model scaled earlier: the live ik stage's too
    opensim = load_config()["opensim"]
    scaled_model(load_model(opensim), {"femur_r": np.full(3, 1.05)}, 70.0).printToXML(str(osim))
    flags = ["--compute-all-joint-angles", "--joint-refinement", "--c3d", "--osim", osim]
    offline = subprocess.run(
        [sys.executable, "run_offline.py", video, "--output", tmp_path / "offline", "--quiet",
         *flags],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stderr
    run = live_run("--source", video, "--lossless", "--record", tmp_path / "live", *flags)
    code, _, err = run.finish(timeout=300)
    assert code == 0, err
    for name in ("cam02_final.trc", "cam02.c3d", "joint_angles/cam02_angles.mot",
                 "cam02_ik.mot", "cam02_ik_marker_errors.csv", "cam02_scaled.osim"):  # fmt: skip
        live = (tmp_path / "live" / "cam02" / name).read_bytes()
        assert live == (tmp_path / "offline" / "cam02" / name).read_bytes(), name
    records = {
        mode: json.loads((tmp_path / mode / "cam02" / "run.json").read_text())
        for mode in ("live", "offline")
    }
    assert Path(records["live"]["command"][1]).name == "run_live.py"
    assert records["offline"]["command"][1] == "run_offline.py"
    for key in ("input", "models", "software"):
        assert records["live"][key] == records["offline"][key], key
    assert records["live"]["input"]["sha256"] == sha256_file(Path(video))
    assert records["live"]["config"]["output"]["c3d"] is True


def test_live_ik_scales_from_the_first_frames_and_publishes_pose_ik(
    tmp_path: Path, live_run: Callable[..., LiveRun]
) -> None:
    """--ik: the ik stage runs in its own process, scales the model from the first
    [opensim] scale_s seconds, then publishes every frame's coordinates (named once by the
    control socket's schema); --record writes what was published; no opensim.log."""
    config = tmp_path / "ik.toml"
    config.write_text("[opensim]\nscale_s = 0.5\n")  # 31 frames fit for scaling at 60 fps
    out = tmp_path / "live"
    run = live_run(
        "--source", demo_video("cam02"), "--lossless", "--ik", "--config", config,
        "--record", out,
    )  # fmt: skip
    messages: list = []
    stop = threading.Event()
    thread = collect(run.publish, messages, stop, ("pose.ik", "pose.markers"))
    schema = run.client.request("schema", timeout_s=STARTUP_S)["schema"]
    assert schema["version"] == "1.3" and "pose.ik" in schema["topics"]
    run.wait_published(messages)
    assert "mm-ik" in pipeline_processes(run.process.pid).values()
    code, _, err = run.finish(timeout=300)
    stop.set()
    thread.join()
    assert code == 0, err
    ik = [payload for topic, payload in messages if topic == "pose.ik"]
    assert len(ik) == 100 == sum(topic == "pose.markers" for topic, _ in messages)
    folder = out / "cam02"
    names = coordinate_names((folder / "cam02_scaled.osim").read_text())
    assert schema["ik_coordinates"] == names and len(names) == 40
    scaled = [p["scaled"] for p in ik]
    first = scaled.index(True)
    assert 30 <= first < 90 and all(scaled[first:]), scaled  # once, after >= 0.5 s
    values = np.array([p["values"] for p in ik])
    assert np.isnan(values[:first]).all() and np.isfinite(values[first:]).all()
    rms = np.array([p["rms_m"] for p in ik[first:]])
    assert np.median(rms) < 0.05 and all(p["markers"] > 10 for p in ik[first:])
    knee = values[first:, names.index("knee_angle_r")]
    assert -5 < knee.min() and knee.max() < 140  # degrees, a physiological range
    columns, table = read_mot(folder / "cam02_ik.mot")
    assert columns[1:] == names
    np.testing.assert_allclose(table[:, 1:], values, atol=5e-7)  # the file: what was published
    assert (folder / "cam02_ik_marker_errors.csv").is_file()
    assert not (REPO / "opensim.log").exists()


def test_live_ik_that_never_scaled_says_so(
    tmp_path: Path, live_run: Callable[..., LiveRun]
) -> None:
    """A session shorter than [opensim] scale_s: the IK files hold only NaN rows, no model
    is written, and one note line says why and what to do."""
    config = tmp_path / "ik.toml"
    config.write_text("[opensim]\nscale_s = 10.0\n")  # the 100-frame demo lasts 1.7 s
    out = tmp_path / "live"
    run = live_run(
        "--source", demo_video("cam02"), "--lossless", "--ik", "--config", config,
        "--record", out,
    )  # fmt: skip
    code, _, err = run.finish(timeout=300)
    assert code == 0, err
    notes = [line for line in err.splitlines() if "IK solved no frame" in line]
    assert len(notes) == 1 and notes[0].startswith("note: cam02:") and "--osim" in notes[0]
    folder = out / "cam02"
    assert not (folder / "cam02_scaled.osim").exists()
    _, table = read_mot(folder / "cam02_ik.mot")
    assert len(table) == 100 and np.isnan(table[:, 1:]).all()


def raw_request(endpoint: str, frames: list[bytes]) -> dict | None:
    """Send raw frames to the control socket; the reply map, or None without reply in 2 s."""
    req = zmq.Context.instance().socket(zmq.REQ)
    req.linger = 0
    req.connect(endpoint)
    try:
        req.send_multipart(frames)
        if not req.poll(2000):
            return None
        return msgpack.unpackb(req.recv(), raw=False)
    finally:
        req.close()


def test_control_socket_answers_and_survives_bad_requests(
    pingpong_video: Path, live_run: Callable[..., LiveRun]
) -> None:
    run = live_run("--source", pingpong_video, "--duration", "60")
    try:
        run.wait_ready()
        seen = pipeline_processes(run.process.pid)
        client = run.client
        assert client.request("version")["version"] == "1.3"
        schema = client.request("schema")["schema"]
        assert len(schema["markers"]) == 64 and "pose.markers" in schema["topics"]
        assert schema["ik_coordinates"] == client.request("ik_coordinates")["ik_coordinates"]
        assert schema["ik_coordinates"] == []  # no --ik
        assert len(client.request("angles")["angles"]) == 32
        assert client.request("ports")["ports"]["publish"] == run.publish
        deadline = time.monotonic() + 30  # the input's hash is computed in the background
        while not (provenance := client.request("run"))["ok"]:
            assert "not ready" in provenance["error"] and time.monotonic() < deadline
            time.sleep(0.2)
        digest = hashlib.sha256(pingpong_video.read_bytes()).hexdigest()
        assert provenance["run"]["input"]["sha256"] == digest
        assert provenance["run"]["software"]["name"] == "monomocap" and provenance["run"]["config"]
        unknown = client.request("nonsense")
        assert not unknown["ok"] and "unknown cmd" in unknown["error"]
        garbage = raw_request(run.control, [b"\xc1\xff garbage"])
        assert garbage is not None and not garbage["ok"] and "not msgpack" in garbage["error"]
        not_a_map = raw_request(run.control, [msgpack.packb([1, 2, 3])])
        assert not_a_map is not None and not not_a_map["ok"]
        two_frames = raw_request(run.control, [b"a", b"b"])
        assert two_frames is not None and not two_frames["ok"]
        big = raw_request(run.control, [msgpack.packb({"cmd": "x" * 200_000})])
        assert big is not None and "exceeds" in big["error"]
        huge = raw_request(run.control, [b"x" * 4_000_000])  # over ZeroMQ's limit: dropped
        assert huge is None
        assert client.request("version")["ok"], "still serving after all of that"
        assert run.process.poll() is None
    finally:
        run.process.send_signal(signal.SIGINT)
        run.finish(timeout=10)
    assert_no_orphans(seen)
