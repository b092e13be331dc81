"""The sink process of a live run: publishes, records and reports, answers the control
socket, and finalizes the recorded files when the run stops.

Named in config.toml ``[pipeline] sink`` and started by the supervisor.
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zmq

from core.angle_set import ANGLE_COLUMNS
from core.atomic import AtomicFile
from core.provenance import Invocation, RunRecord
from models.opensim_model import coordinate_names, setup_file
from stages.publish import StreamPublisher
from stages.record import LiveRecorder
from stages.run_info import models_used
from stream.graph import Graph
from stream.lifeline import Lifeline
from stream.processes import (
    EXIT_ABORTED,
    LINK_PORTS,
    StopFlag,
    become_child,
    bind_or_fail,
    live_key,
)
from stream.stats import LatencyStats
from transports.codec import EndOfStream, unpack
from transports.control import ControlServer
from transports.keys import CurveServer
from transports.queues import PacketReceiver


def sink_main(
    graph: Graph,
    config: Mapping[str, Any],
    record_dir: Path | None,
    invocation: Invocation | None,
    source: str,
    print_stats: bool,
    stats_path: Path | None,
    ready: Any,
    lifeline: Lifeline,
) -> None:
    """Publish, record and report; answer the control socket; finalize files on stop."""
    become_child("sink", lifeline)
    flag = StopFlag()
    context = zmq.Context.instance()
    curve = CurveServer(context, config["live"].get("curve_keys"))  # no keys: plain
    publisher = StreamPublisher(graph.publish, curve.options)
    bind_or_fail(lambda: publisher.setup(config), graph.publish, live_key("publish"), lifeline)
    provenance = RunRecord(invocation or Invocation(), config, source, models_used(config))
    recorder = None
    if record_dir is not None:
        recorder = LiveRecorder(
            record_dir, invocation, source
        )  # a write error stops recording, not the sink
        recorder.setup(config)
    receiver = bind_or_fail(
        lambda: PacketReceiver(graph.sink_input, capacity=int(config["live"]["queue"])),
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
    source_state = {"source": "ok", "reconnects": 0}
    last: dict[str, Any] = {"person": False, "dropped": 0, "person_switches": 0}
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
            "person_switches": last["person_switches"],
            "restarts": dict(restarts),
            **source_state,
        }

    ports = {"publish": graph.publish, "control": graph.control}

    def run() -> dict[str, Any] | None:
        """The run's provenance for the control socket (None while hashes are computed)."""
        if not provenance.ready:
            return None
        return {k: v for k, v in provenance.as_dict().items() if k != "ended"}

    control = bind_or_fail(
        lambda: ControlServer(
            context,
            graph.control,
            ports,
            status,
            angle_names,
            curve.options,
            _ik_names(config),
            run,
        ),
        graph.control,
        live_key("control"),
        lifeline,
        opened=(publisher, receiver, events),
    )
    interval = float(config["live"]["status_interval_s"])
    ready.set()
    next_status = time.monotonic() + interval
    exit_code = 0
    try:
        while not flag.stop:
            control.poll_once()
            exit_code = _read_events(events, restarts, source_state)
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
                last["person_switches"] = int(item.meta.get("person_switches", 0))
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
        curve.close()
        receiver.close()
        events.close()
        context.term()  # waits (up to the sockets' linger) until the last status is out
    sys.exit(exit_code)


def _write_stats(path: Path, stats: LatencyStats, status: dict[str, Any]) -> None:
    """The run's latency percentiles and counters as JSON, for benchmarks and dashboards."""
    summary = {"published": stats.frames, "dropped": status["dropped"], "ms": stats.summary()}
    summary["restarts"] = status["restarts"]
    with AtomicFile(Path(path)) as f:
        json.dump(summary, f, indent=2)


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


def _ik_names(config: Mapping[str, Any]) -> tuple[str, ...]:
    """The coordinates of ``pose.ik`` when the live ik stage runs: those of the given model
    file, else of the generic model it scales (the same names)."""
    pipeline = config.get("pipeline", {})
    if pipeline.get("ik") not in pipeline.get("stages", []):
        return ()
    opensim = config["opensim"]
    path = (
        Path(opensim["scaled_model"]) if opensim["scaled_model"] else setup_file(opensim["model"])
    )
    return tuple(coordinate_names(path.read_text(encoding="utf-8")))


def _angle_names(config: Mapping[str, Any]) -> tuple[str, ...]:
    specs = config.get("pipeline", {}).get("stages", [])
    if any(spec.startswith("stages.angles:") for spec in specs):
        return ANGLE_COLUMNS
    return ()
