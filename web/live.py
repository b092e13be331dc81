"""The live page's engine: ``run_live.py --no-viewer`` as a child process, and a bridge
that reads its public stream like any external client and fans it out to the browsers.

The bridge is one SUB socket read by a thread: ZeroMQ's PUB end never waits for it, and
each browser has its own short queue that drops its oldest messages when the browser falls
behind, so neither a slow bridge nor a slow browser can slow the pipeline. The record
button writes what the bridge receives (``viewer.record.ViewerRecorder``, as the desktop
viewer's ``r`` key does).
"""

from __future__ import annotations

import asyncio
import collections
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from core.marker_sets import MARKERS_64
from transports.client import ControlTimeout, PoseClient
from transports.queues import Subscriber
from transports.schema import ANGLES, MARKERS, STATUS
from viewer.record import ViewerRecorder
from web.manager import REPO
from web.options import offline_flags
from web.process import die_with_parent
from web.results import plain

STOP_GRACE_S = 10.0  # run_live gets this long to stop after SIGINT, then SIGKILL
POLL_S = 0.2  # the bridge thread checks this often whether it should end


class LiveError(ValueError):
    """A live request the server refuses; the message says why."""


def resolve_source(source: str, data: Path) -> str:
    """A webcam index, a stream URL, or a file name inside ``data`` (never outside)."""
    source = source.strip()
    if source.isdigit() or "://" in source:
        return source
    root = data.resolve()
    path = (root / source).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise LiveError(
            f"{source!r} is not a webcam index, a URL or a file inside the server's data folder"
        )
    return str(path)


class Browser:
    """One WebSocket's queue: newest messages kept, oldest dropped when it lags."""

    def __init__(self, size: int) -> None:
        self.messages: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)
        self.ready = asyncio.Event()

    def put(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        self.ready.set()


class LiveSession:
    """At most one live run at a time, started and stopped from the page."""

    def __init__(self, data: Path, publish: str, control: str, queue: int) -> None:
        self.data = Path(data)
        self.publish, self.control, self.queue = publish, control, queue
        self.browsers: set[Browser] = set()
        self.source = ""
        self.error = ""
        self.angle_names: list[str] = []
        self.run: dict[str, Any] | None = None  # the pipeline's provenance, for run.json
        self.recorder = ViewerRecorder(self.data / "live")
        self.recorded: list[str] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._bridge: threading.Thread | None = None
        self._stop_bridge = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watch: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    def state(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "source": self.source,
            "error": self.error,
            "recording": self.recorder.recording,
            "recorded": self.recorded,
            "angles": self.angle_names,
        }

    async def start(self, source: str, options: Mapping[str, Any]) -> None:
        if self.running:
            raise LiveError("a live session is already running: stop it first")
        resolved = resolve_source(source, self.data)
        command = [
            sys.executable, str(REPO / "run_live.py"), "--no-viewer", "--source", resolved,
            "--publish", self.publish, "--control", self.control, *offline_flags(options),
        ]  # fmt: skip
        self._proc = await asyncio.create_subprocess_exec(
            *command, cwd=REPO, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        self.source, self.error, self.angle_names, self.run = source, "", [], None
        self._loop = asyncio.get_running_loop()
        self._stop_bridge.clear()
        self._bridge = threading.Thread(target=self._read_stream, daemon=True)
        self._bridge.start()
        self._watch = asyncio.create_task(self._wait_end(self._proc))
        self._broadcast({"type": "state", **self.state()})

    async def _wait_end(self, proc: asyncio.subprocess.Process) -> None:
        """When run_live ends by itself (end of file, bad source) keep its error line."""
        assert proc.stderr is not None
        stderr = (await proc.stderr.read()).decode(errors="replace").splitlines()
        await proc.wait()
        errors = [line for line in stderr if line.startswith("error:")]
        if proc.returncode not in (0, -signal.SIGINT, 128 + signal.SIGINT) and errors:
            self.error = errors[-1]
        await self._end_bridge()
        self._broadcast({"type": "state", **self.state()})

    async def stop(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        except TimeoutError:
            proc.kill()
            await proc.wait()
        if self._watch is not None:
            await self._watch

    async def _end_bridge(self) -> None:
        self._stop_bridge.set()
        if self._bridge is not None:
            await asyncio.to_thread(self._bridge.join)
            self._bridge = None
        self.stop_recording()

    def start_recording(self) -> None:
        if not self.running:
            raise LiveError("no live session is running: start one first")
        if not self.recorder.recording:
            self.recorder.start(Path(self.source).stem or "live", MARKERS_64)

    def stop_recording(self) -> str | None:
        path = self.recorder.stop(self.run)
        if path is not None:
            self.recorded.append(path.name)
        return path.name if path is not None else None

    def _read_stream(self) -> None:
        """The bridge thread: SUB socket -> every browser's queue (and the recorder)."""
        client = PoseClient(self.publish, self.control)
        with Subscriber(self.publish, (MARKERS, ANGLES, STATUS)) as subscriber:
            while not self._stop_bridge.is_set():
                if not self.angle_names:
                    self._ask_angles(client)
                elif self.run is None:
                    self._ask_run(client)
                message = subscriber.recv(POLL_S)
                if message is not None:
                    topic, payload = message
                    assert self._loop is not None
                    self._loop.call_soon_threadsafe(self._deliver, topic, payload)

    def _ask_angles(self, client: PoseClient) -> None:
        try:
            self.angle_names = list(client.request("angles", timeout_s=POLL_S)["angles"])
        except (ControlTimeout, KeyError):
            return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._broadcast, {"type": "state", **self.state()})

    def _ask_run(self, client: PoseClient) -> None:
        """The run's provenance; refused while the sink still hashes the input: asked again."""
        try:
            reply = client.request("run", timeout_s=POLL_S)
        except ControlTimeout:
            return
        if reply.get("ok"):
            self.run = reply["run"]

    def _deliver(self, topic: str, payload: dict[str, Any]) -> None:
        """On the event loop: record, then hand a browser-sized copy to each browser."""
        if topic == MARKERS:
            self.recorder.add(payload)
            message = {
                "type": "markers",
                "frame": int(payload["frame_index"]),
                "time": float(payload["media_time_s"]),
                "markers": plain(np.asarray(payload["markers"])),
            }
        elif topic == ANGLES:
            message = {
                "type": "angles",
                "frame": int(payload["frame_index"]),
                "angles": plain(np.asarray(payload["angles"])),
            }
        else:
            keep = ("published", "published_fps", "latency_ms_p50", "latency_ms_p95", "dropped")
            message = {"type": "status", **{k: payload.get(k) for k in keep}}
        self._broadcast(message)

    def _broadcast(self, message: dict[str, Any]) -> None:
        for browser in self.browsers:
            browser.put(message)
