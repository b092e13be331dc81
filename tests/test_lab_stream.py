"""LSL outlets and OSC bundles of a live run, received by the example receivers in processes
of their own: a real pylsl inlet, a real python-osc server on loopback UDP."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pylsl
import pytest
from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message_builder import OscMessageBuilder

from core.angle_set import ANGLE_COLUMNS
from core.marker_sets import MARKERS_64
from stages.lsl_outlets import LslOutlets, source_id
from stages.osc_bundles import OscSender
from tests.data import REPO
from tests.test_live import STARTUP_S, LiveRun, collect
from transports.schema import ANGLES, MARKERS

NAMES = {"markers": list(MARKERS_64), "angles": list(ANGLE_COLUMNS)}
RUN_S = 10.0
SYNTHETIC = f"confidence-test-{os.getpid()}"  # the source of the hand-made payloads


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lsl_offset_s() -> float:
    """pylsl.local_clock() minus CLOCK_MONOTONIC in this process, measured independently."""
    offsets = []
    for _ in range(21):
        before = time.monotonic_ns()
        lsl = pylsl.local_clock()
        after = time.monotonic_ns()
        offsets.append(lsl - (before + after) / 2e9)
    return statistics.median(offsets)


class Receiver:
    """An example receiver in its own process, printing JSON lines into a file (a pipe
    would fill up and stall it)."""

    def __init__(self, folder: Path, *args: str) -> None:
        self.out = folder / f"{args[0]}.jsonl"
        with open(self.out, "w") as out, open(self.out.with_suffix(".err"), "w") as err:
            command = [sys.executable, "-m", *args]
            self.process = subprocess.Popen(command, cwd=REPO, stdout=out, stderr=err)

    def wait_for_line(self, timeout_s: float = 60.0) -> None:
        """Until its first line is out (the OSC server listens)."""
        deadline = time.monotonic() + timeout_s
        while not self.out.read_text().endswith("\n"):
            assert self.process.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)

    def stop(self) -> list[dict[str, Any]]:
        """Stop it (SIGTERM, as the end of a session) and parse what it printed."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)
        return [json.loads(line) for line in self.out.read_text().splitlines()]


@dataclass
class LabRun:
    published: dict[str, list[dict[str, Any]]]  # topic -> payloads, from the ZeroMQ stream
    lsl: list[dict[str, Any]]  # the inlet's lines: info, then samples
    osc: list[dict[str, Any]]  # the OSC server's lines: listening, then frames
    source: str


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory: pytest.TempPathFactory, pingpong_video: Path) -> Iterator[LabRun]:
    """One 10 s live run with --lsl and --osc, received by the examples and by ZeroMQ."""
    folder = tmp_path_factory.mktemp("lab")
    video = folder / f"lab{os.getpid()}.mp4"  # the source_id this run's LSL streams carry
    video.symlink_to(pingpong_video)
    port = free_udp_port()
    osc = Receiver(folder, "examples.osc_server", "--port", str(port), "--json")
    osc.wait_for_line()
    inlet = Receiver(folder, "examples.lsl_inlet", "--json", "--source-id", source_id(video.stem))
    run = LiveRun("--source", video, "--duration", str(RUN_S), "--lsl", "--osc", str(port))
    got: list = []
    stop = threading.Event()
    thread = collect(run.publish, got, stop, (MARKERS, ANGLES, "pose.status"))
    try:
        run.wait_ready()
        code, _, err = run.finish(timeout=STARTUP_S + 60)
        assert code == 0, err
        assert "INFO|" not in err, "liblsl's start-up lines are filtered"
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(5)
        run.stop()
        lsl, frames = inlet.stop(), osc.stop()
    published: dict[str, list] = {MARKERS: [], ANGLES: [], "pose.status": []}
    for topic, message in got:
        published[topic].append(message)
    assert len(published[MARKERS]) == published["pose.status"][-1]["published"]
    yield LabRun(published, lsl, frames, video.stem)


def test_lsl_markers_outlet_has_every_frame_at_its_capture_time(lab_run: LabRun) -> None:
    info = lab_run.lsl[0]["info"]
    assert info["name"] == "monomocap-markers" and info["type"] == "MoCap"
    assert info["channel_count"] == 192
    assert info["labels"] == [f"{m}_{axis}" for m in MARKERS_64 for axis in "XYZ"]
    assert info["types"] == ["PositionX", "PositionY", "PositionZ"] * 64
    assert set(info["units"]) == {"meters"}
    assert info["nominal_srate"] == 30.0  # the video's rate
    assert info["source_id"] == source_id(lab_run.source)
    samples = lab_run.lsl[1:]
    assert len(samples) > 100
    stamps = np.array([s["t"] for s in samples])
    assert np.all(np.diff(stamps) > 0), "timestamps increase"
    # Each sample belongs to the frame captured at its time (within 5 ms, on LSL's clock).
    frames = lab_run.published[MARKERS]
    captured = np.array([m["timestamp_ns"] for m in frames]) / 1e9 + lsl_offset_s()
    nearest = np.abs(stamps[:, None] - captured[None, :]).argmin(axis=1)
    errors_ms = np.abs(stamps - captured[nearest]) * 1000
    print(f"LSL timestamp - capture time: max {errors_ms.max():.3f} ms over {len(stamps)}")
    assert errors_ms.max() < 5.0
    assert np.array_equal(nearest, np.arange(nearest[0], nearest[0] + len(nearest))), (
        "one sample per published frame, in order, none skipped"
    )
    # From the moment the inlet connected (the stream appears with the first frame), it got
    # every published frame (within 1), with the published values.
    assert len(samples) >= len(frames) - nearest[0] - 1
    print(f"published {len(frames)} frames, the inlet connected at frame {nearest[0]}")
    for sample, index in zip(samples, nearest, strict=True):
        expected = np.asarray(frames[index]["markers"], np.float32).ravel()
        np.testing.assert_array_equal(np.array(sample["x"], np.float32), expected)


def test_osc_server_receives_every_frame_with_the_published_angles(lab_run: LabRun) -> None:
    assert "listening" in lab_run.osc[0]
    received = {frame["frame"]: frame for frame in lab_run.osc[1:]}
    angles = {m["frame_index"]: m for m in lab_run.published[ANGLES]}
    markers = {m["frame_index"]: m for m in lab_run.published[MARKERS]}
    assert len(angles) > 100
    arrived = [i for i in angles if i in received]
    print(f"OSC: {len(arrived)} of {len(angles)} published frames arrived")
    assert len(arrived) >= 0.99 * len(angles)
    for index in arrived:
        frame = received[index]
        assert list(frame["angles"]) == list(ANGLE_COLUMNS)
        sent = np.array(list(frame["angles"].values()), np.float32)
        np.testing.assert_array_equal(sent, np.asarray(angles[index]["angles"], np.float32))
        assert list(frame["markers"]) == list(MARKERS_64)
        xyz = np.array(list(frame["markers"].values()), np.float32)
        np.testing.assert_array_equal(xyz, np.asarray(markers[index]["markers"], np.float32))
        assert frame["person"] == markers[index]["person"]


def payloads(frame: int, with_confidence: bool) -> list[tuple[str, dict[str, Any]]]:
    """The two public messages of one frame, as the engine publishes them."""
    rng = np.random.default_rng(frame)
    head = {
        "source_id": SYNTHETIC,
        "frame_index": frame,
        "timestamp_ns": time.monotonic_ns(),
    }
    markers = {**head, "fps": 30.0, "person": True, "markers": rng.normal(size=(64, 3))}
    angles = {**head, "angles": rng.normal(size=len(ANGLE_COLUMNS)) * 30}
    if with_confidence:
        markers["confidence"] = rng.uniform(size=64)
        angles["confidence"] = rng.uniform(size=len(ANGLE_COLUMNS))
    return [(MARKERS, markers), (ANGLES, angles)]


def test_confidence_fields_get_their_own_lsl_streams_only_when_present() -> None:
    outlets = LslOutlets(NAMES)
    try:
        for topic, payload in payloads(0, with_confidence=False):
            outlets.push(topic, payload)
        assert outlets.streams == ["monomocap-markers", "monomocap-angles"]
        sent = payloads(1, with_confidence=True)
        for topic, payload in sent:
            outlets.push(topic, payload)  # the confidence outlets appear with this frame
        assert outlets.streams[2:] == [
            "monomocap-markers-confidence",
            "monomocap-angles-confidence",
        ]
        query = f"source_id='{source_id(SYNTHETIC)}'"
        found = {i.name(): i for i in pylsl.resolve_bypred(query, minimum=4, timeout=10)}
        inlets = {
            name: pylsl.StreamInlet(found[name])
            for name in ("monomocap-markers-confidence", "monomocap-angles-confidence")
        }
        for inlet in inlets.values():
            inlet.open_stream(timeout=10)
        sent = payloads(2, with_confidence=True)
        for topic, payload in sent:
            outlets.push(topic, payload)
        for inlet, (_, payload) in zip(inlets.values(), sent, strict=True):
            info = inlet.info(timeout=10)
            channel = info.desc().child("channels").child("channel")
            assert channel.child_value("type") == "Confidence"
            assert channel.child_value("unit") == "normalized"
            assert info.channel_count() == len(payload["confidence"])
            sample, stamp = inlet.pull_sample(timeout=10)
            np.testing.assert_array_equal(sample, np.float32(payload["confidence"]))
            assert stamp == pytest.approx(payload["timestamp_ns"] / 1e9 + lsl_offset_s(), abs=1e-3)
        assert found["monomocap-markers-confidence"].channel_count() == 64
    finally:
        outlets.close()


def test_osc_bundle_is_the_one_python_osc_builds() -> None:
    """The sender writes the bytes itself (python-osc's builders cost 40 times more CPU);
    they must be exactly what python-osc's own builders make of the same frame."""
    parts = dict(payloads(3, with_confidence=False))
    parts[MARKERS]["markers"][5] = np.nan  # a missing marker
    parts[MARKERS]["media_time_s"] = 0.1
    builder = OscBundleBuilder(IMMEDIATELY)
    for address, values, types in [
        ("/monomocap/frame", (3, 0.1, 1), "ifi"),
        *[
            (f"/monomocap/markers/{m}", xyz, "fff")
            for m, xyz in zip(MARKERS_64, parts[MARKERS]["markers"].tolist(), strict=True)
        ],
        *[
            (f"/monomocap/angles/{a}", (v,), "f")
            for a, v in zip(ANGLE_COLUMNS, parts[ANGLES]["angles"].tolist(), strict=True)
        ],
    ]:
        message = OscMessageBuilder(address)
        for value, kind in zip(values, types, strict=True):
            message.add_arg(value, kind)
        builder.add_content(message.build())
    sender = OscSender("9", NAMES)
    assert sender.bundle(parts) == builder.build().dgram
    sender.close()


def test_osc_rate_limit_sends_at_most_max_rate_bundles_a_second() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(0.5)
        sender = OscSender(str(receiver.getsockname()[1]), NAMES, max_rate=5.0)
        started = time.monotonic()
        for frame in range(60):
            for topic, payload in payloads(frame, with_confidence=False):
                sender.push(topic, payload)
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        sender.close()
        bundles = []
        try:
            while True:
                bundles.append(receiver.recv(65536))
        except TimeoutError:
            pass
    assert 1 <= len(bundles) == sender.sent <= elapsed * 5.0 + 1
    assert sender.sent + sender.skipped == 60 and sender.lost == 0


@pytest.mark.parametrize(
    ("args", "env", "why"),
    [
        (["--osc", "70000"], {}, "UDP port 1-65535"),
        (["--osc", "no-such-host.invalid:9000"], {}, "cannot resolve host"),
        (["--lsl", "--publish", "tcp://127.0.0.1:*"], {}, "give --publish a fixed port"),
        (["--lsl"], {"PYLSL_LIB": "README.md"}, "--lsl: pylsl cannot load liblsl"),  # no library
    ],
)
def test_what_the_lab_process_cannot_use_fails_before_the_run(
    args: list[str], env: dict[str, str], why: str
) -> None:
    result = subprocess.run(
        [sys.executable, "run_live.py", "--no-viewer", "--source", "x.mp4", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert why in result.stderr


def test_killed_lab_process_restarts_and_the_lsl_inlet_recovers(
    tmp_path: Path, pingpong_video: Path
) -> None:
    """A crash in liblsl or python-osc costs a moment of LSL/OSC, not the run: the process
    comes back, and an inlet finds the new outlets by their source_id and goes on."""
    video = tmp_path / f"restart{os.getpid()}.mp4"
    video.symlink_to(pingpong_video)
    port = free_udp_port()
    osc = Receiver(tmp_path, "examples.osc_server", "--port", str(port), "--json")
    osc.wait_for_line()
    inlet = Receiver(tmp_path, "examples.lsl_inlet", "--json", "--source-id", source_id(video.stem))
    run = LiveRun("--source", video, "--duration", "9", "--lsl", "--osc", str(port))
    got: list = []
    stop = threading.Event()
    thread = collect(run.publish, got, stop, (MARKERS, "pose.status"))
    try:
        run.wait_ready()
        deadline = time.monotonic() + STARTUP_S
        while len(inlet.out.read_text().splitlines()) < 10:  # the inlet is connected
            assert time.monotonic() < deadline, "the LSL inlet received nothing"
            time.sleep(0.1)
        _, killed_ns = run.kill("mm-lab")
        code, _, err = run.finish(timeout=STARTUP_S)
        assert code == 0, err
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(5)
        run.stop()
        lsl, frames = inlet.stop(), osc.stop()
    assert [m for t, m in got if t == "pose.status"][-1]["restarts"] == {"lab": 1}
    killed_s = killed_ns / 1e9 + lsl_offset_s()
    after = [s for s in lsl[1:] if s["t"] > killed_s]
    later = {m["frame_index"] for t, m in got if t == MARKERS and m["timestamp_ns"] > killed_ns}
    osc_after = [f for f in frames[1:] if f["frame"] in later]
    print(f"after the kill: {len(later)} frames published, LSL {len(after)}, OSC {len(osc_after)}")
    assert len(after) > 30, "the inlet recovered the restarted outlet"
    assert len(osc_after) > 30, "OSC went on after the restart"
