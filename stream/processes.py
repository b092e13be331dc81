"""What each process of the live graph runs: capture, one stage, or the sink.

The functions here are process entry points started by the supervisor. A stage process
knows nothing about its stage beyond the contract: it receives a packet, calls the stage,
sends the result on. Children ignore Ctrl-C (the supervisor coordinates the shutdown) and
hold the supervisor's ``Lifeline`` so none outlives a killed supervisor; a failure the user
can fix (a port in use, a stream that never came back) goes to the supervisor as one line.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import cv2
import zmq

from offline.atomic import AtomicFile
from stages.capture import SourceError, VideoSource, classify_source
from stages.publish import StreamPublisher
from stages.record import Recorder
from stream.graph import Graph, StageNode
from stream.lifeline import Lifeline
from stream.pipeline import load_stage_class
from stream.stats import LatencyStats
from transports.codec import EndOfStream, pack, unpack
from transports.control import ControlServer
from transports.queues import PacketReceiver, PacketSender

POLL_S = 0.1  # how often idle loops look at their stop flag
# Capture (decoding) and the first stage (detection) use most of the CPU; at a lower
# priority they never delay the light stages after them, which keeps latency short when
# the machine is saturated. Measured with bench/bench_live.py, 60 fps 1080p input on 2
# cores: capture->publish p99 165 ms at nice 5, 62 ms at nice 10.
HEAVY_NICE = 10
EXIT_ABORTED = 4
VIEWER_NICE = 19  # the window takes only the CPU the pipeline leaves (see stages/viewer.py)
T = TypeVar("T")
LINK_PORTS = "[live] tcp_base_port in config.toml"  # how to move the stage links' tcp ports


class _StopFlag:
    """Set by SIGTERM (and SIGINT if asked); loops check it between packets to end cleanly."""

    def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM,)) -> None:
        self.stop = False
        for signum in signals:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.stop = True


def become_child(name: str, lifeline: Lifeline) -> None:
    """Ignore Ctrl-C, end with the supervisor and show as ``mm-<name>`` in ps (Linux)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lifeline.hold()
    if sys.platform.startswith("linux"):
        pr_set_name = 15
        ctypes.CDLL("libc.so.6").prctl(pr_set_name, f"mm-{name}"[:15].encode())


def capture_main(
    source: str,
    graph: Graph,
    config: Mapping[str, Any],
    realtime: bool,
    lossless: bool,
    lifeline: Lifeline,
    progress: Any,
    origin_ns: int,
) -> None:
    """Read the source and feed the first stage; live drops here, never further down.

    ``progress`` (two shared integers) holds the index of the next frame to read and the
    frames dropped so far, so a capture restarted after a crash resumes a file there and
    keeps counting. Stream state changes
    (reconnecting, ok) go to the sink for ``pose.status``.
    """
    become_child("capture", lifeline)
    os.nice(HEAVY_NICE)
    if classify_source(source) == "url":  # a failed attempt to reconnect is no news
        os.environ["OPENCV_FFMPEG_LOGLEVEL"] = "-8"  # read at FFmpeg's first use
        cv2.setLogLevel(2)  # errors only
    flag = _StopFlag()
    sender = PacketSender(graph.first_input, lossless=lossless)
    events = zmq.Context.instance().socket(zmq.PUSH)
    events.linger = 200
    events.connect(graph.events)
    options = config.get("capture", {})
    try:
        video = VideoSource(
            source,
            realtime=realtime,
            idle=sender.idle,
            reconnect_s=float(options["reconnect_s"]),
            read_timeout_s=float(options["read_timeout_s"]),
            start_frame=progress[0],
            origin_ns=origin_ns,
            on_state=lambda state: events.send(pack({"source": state})),
        )
    except SourceError as exc:
        sender.close()
        events.close()
        lifeline.fail(str(exc))
    dropped_before = progress[1]
    try:
        for packet in video:
            if flag.stop:
                break
            packet.meta["dropped"] = progress[1] = dropped_before + sender.dropped
            progress[0] = packet.frame_index + 1  # before sending: a restart never repeats it
            while not sender.send(packet, timeout_s=POLL_S) and lossless and not flag.stop:
                pass
    except SourceError as exc:
        sender.send_end(video.source_id, timeout_s=1.0)
        lifeline.fail(str(exc))
    finally:
        video.close()
        events.close()
    sender.send_end(video.source_id, timeout_s=2.0)
    sender.close()


def stage_main(
    node: StageNode,
    config: Mapping[str, Any],
    lossless: bool,
    first: bool,
    ready: Any,
    lifeline: Lifeline | None = None,
) -> None:
    """Run one stage between its input and output links until the source ends.

    ``ready`` (a multiprocessing Event) is set once the stage is set up, so capture starts
    only when every model is loaded. An unsupervised stage (no ``lifeline``:
    ``stream.remote_stage``) runs in a terminal of its own and stops on Ctrl-C.
    """
    if lifeline is not None:
        become_child(node.name, lifeline)
    flag = _StopFlag() if lifeline else _StopFlag((signal.SIGTERM, signal.SIGINT))
    stage = load_stage_class(node.spec)()
    stage.setup(config)
    if first:
        os.nice(HEAVY_NICE)
    # The first stage takes one frame at a time so the capture end drops, not this queue.
    capacity = 1 if first and not lossless else int(config.get("live", {}).get("queue", 2))
    receiver = _bind_or_fail(
        lambda: PacketReceiver(node.input, capacity=capacity), node.input, LINK_PORTS, lifeline
    )
    sender = PacketSender(node.output, lossless=True)
    ready.set()
    try:
        while not flag.stop:
            item = receiver.recv(timeout_s=POLL_S)
            if item is None:
                continue
            if isinstance(item, EndOfStream):
                stage.reset(item.source_id)
                sender.send_end(item.source_id, timeout_s=2.0)
                break
            packet = stage(item)
            if packet is not None:
                while not sender.send(packet, timeout_s=POLL_S) and not flag.stop:
                    pass
    finally:
        stage.close()
        receiver.close()
        sender.close()


def sink_main(
    graph: Graph,
    config: Mapping[str, Any],
    record_dir: Path | None,
    print_stats: bool,
    stats_path: Path | None,
    ready: Any,
    lifeline: Lifeline,
) -> None:
    """Publish, record and report; answer the control socket; finalize files on stop."""
    become_child("sink", lifeline)
    flag = _StopFlag()
    context = zmq.Context.instance()
    publisher = StreamPublisher(graph.publish)
    _bind_or_fail(lambda: publisher.setup(config), graph.publish, _live_key("publish"), lifeline)
    recorder = None
    if record_dir is not None:
        recorder = Recorder(record_dir)
        recorder.setup(config)
    receiver = _bind_or_fail(
        lambda: PacketReceiver(graph.sink_input, capacity=int(config["live"].get("queue", 2))),
        graph.sink_input,
        LINK_PORTS,
        lifeline,
        opened=(publisher,),
    )
    events = context.socket(zmq.PULL)
    events.linger = 0
    events.bind(graph.events)
    stats = LatencyStats()
    restarts: dict[str, int] = {}
    source = {"source": "ok", "reconnects": 0}
    last: dict[str, Any] = {"person": False, "dropped": 0}
    captured: deque[tuple[int, int]] = deque(maxlen=600)  # (capture ns, frame index)
    angle_names = _angle_names(config)

    def status() -> dict[str, Any]:
        now = time.monotonic_ns()
        fps, latencies = stats.window(now)
        return {
            "source_fps": _source_fps(captured),
            "published_fps": fps,
            "published": stats.frames,
            "latency_ms_p50": latencies.percentile(50),
            "latency_ms_p95": latencies.percentile(95),
            "person": last["person"],
            "dropped": last["dropped"],
            "restarts": dict(restarts),
            **source,
        }

    ports = {"publish": graph.publish, "control": graph.control}
    control = _bind_or_fail(
        lambda: ControlServer(context, graph.control, ports, status, angle_names),
        graph.control,
        _live_key("control"),
        lifeline,
        opened=(publisher, receiver, events),
    )
    interval = float(config["live"].get("status_interval_s", 1.0))
    ready.set()
    next_status = time.monotonic() + interval
    exit_code = 0
    try:
        while not flag.stop:
            control.poll_once()
            exit_code = _read_events(events, restarts, source)
            if exit_code:
                if recorder is not None:
                    for source_id in list(recorder.open_sources()):
                        recorder.discard(source_id)
                break
            item = receiver.recv(timeout_s=0.02)
            if isinstance(item, EndOfStream):
                if recorder is not None:
                    recorder.finish(item.source_id)
                break
            if item is not None:
                publisher(item)
                if recorder is not None:
                    recorder(item)
                stats.add(item, time.monotonic_ns())
                captured.append((item.timestamp_ns, item.frame_index))
                last["person"] = bool(item.meta.get("person", False))
                last["dropped"] = int(item.meta.get("dropped", 0))
            if time.monotonic() >= next_status:
                publisher.publish_status(status())
                next_status += interval
    finally:
        if recorder is not None:
            recorder.close()  # finalize whatever is open into valid files
        publisher.publish_status(status())
        if print_stats:
            print(stats.report(), flush=True)
        if stats_path is not None:
            _write_stats(stats_path, stats, status())
        control.close()
        publisher.close()
        receiver.close()
        events.close()
        context.term()  # waits (up to the sockets' linger) until the last status is out
    sys.exit(exit_code)


def viewer_main(graph: Graph, config: Mapping[str, Any], ready: Any, lifeline: Lifeline) -> None:
    """The on-screen viewer: a subscriber of the public stream, at a lower CPU priority."""
    become_child("viewer", lifeline)
    os.nice(VIEWER_NICE)
    from stages.viewer import run_viewer  # Qt and vispy load in this process only

    sys.exit(run_viewer(graph.publish, graph.control, config, on_ready=ready.set))


def _write_stats(path: Path, stats: LatencyStats, status: dict[str, Any]) -> None:
    """The run's latency percentiles and counters as JSON, for benchmarks and dashboards."""
    summary = {"published": stats.frames, "dropped": status["dropped"], "ms": stats.summary()}
    summary["restarts"] = status["restarts"]
    with AtomicFile(Path(path)) as f:
        json.dump(summary, f, indent=2)


def _bind_or_fail(
    bind: Callable[[], T],
    endpoint: str,
    change: str,
    lifeline: Lifeline | None,
    opened: tuple = (),
) -> T:
    """``bind()``; if the address is taken or invalid, one line saying how to change it
    (``change``: the flag or config key). Unsupervised, the error propagates."""
    try:
        return bind()
    except zmq.ZMQError as exc:
        if lifeline is None:
            raise
        for thing in opened:
            thing.close()
        if exc.errno == errno.EADDRINUSE:
            port = endpoint.rsplit(":", 1)[-1]
            lifeline.fail(
                f"port {port} ({endpoint}) is already in use, probably by another run: "
                f"stop it or choose another port with {change}"
            )
        lifeline.fail(f"cannot listen on {endpoint}: {exc}; change it with {change}")


def _live_key(key: str) -> str:
    """How to change a public endpoint: its flag or its key in config.toml."""
    return f"--{key} or [live] {key} in config.toml"


def _read_events(events: zmq.Socket, restarts: dict[str, int], source: dict[str, Any]) -> int:
    """Apply supervisor and capture notifications; non-zero: the exit code to stop with."""
    while events.poll(0):
        event = unpack(events.recv())
        if event.get("restart"):
            restarts[event["restart"]] = restarts.get(event["restart"], 0) + 1
        if event.get("source"):
            source["reconnects"] += event["source"] == "ok"
            source["source"] = event["source"]
        if event.get("abort"):
            return EXIT_ABORTED
    return 0


def _source_fps(captured: deque[tuple[int, int]]) -> float:
    """Frames the source produced per second, from the indices of the frames that arrived."""
    if len(captured) < 2:
        return 0.0
    (t0, i0), (t1, i1) = captured[0], captured[-1]
    return (i1 - i0) / max((t1 - t0) / 1e9, 1e-9)


def _angle_names(config: Mapping[str, Any]) -> tuple[str, ...]:
    specs = config.get("pipeline", {}).get("stages", [])
    if any(spec.startswith("stages.angles:") for spec in specs):
        from stages.angles import ANGLE_COLUMNS

        return ANGLE_COLUMNS
    return ()
