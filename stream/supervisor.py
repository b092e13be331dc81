"""The supervisor: starts the live graph's processes, watches them, stops them cleanly.

* Processes come from a forkserver that has already imported what they all use (the engine
  core, numpy, ZeroMQ, OpenCV) and numba, which three stages use, and frozen it so they
  share its memory; each imports its own stage's other libraries (MediaPipe's TensorFlow
  Lite, onnxruntime) after the fork, so no process holds another's (``preload_modules``).
* Live mode: a stage process that dies is restarted with fresh state and the sink is told
  (``pose.status`` reports restarts); the rest keeps running. Capture too: a camera or
  stream is reopened, a file resumes at the frame after the last one it sent. Lossless
  mode (``--lossless``): a dead process fails the run with its name and exit status.
* ``--duration`` is kept here, not by capture, so it holds whatever happens to capture.
* The processes hold a ``Lifeline`` to the supervisor: if it is killed they end within a
  second, and the next start removes the run folder it left (``stream/run_dir.py``).
* With a viewer, its window is one more process, a subscriber of the public stream; when
  it exits (``q``, Esc, the window closed) the run stops as on Ctrl-C.
* With LSL or OSC (``LiveOptions.lab``), the lab-streaming process is another subscriber;
  it is restarted like a stage if it dies (lossless: the run fails).
* ``stop()`` (Ctrl-C / SIGTERM): capture stops and sends end-of-stream, which drains through
  the stages; the sink finalizes its files. Anything still alive after the grace period is
  terminated, then killed; the run folder with the ipc sockets is removed.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import shutil
import signal
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import zmq

from core.provenance import Invocation
from stream.config import ConfigError
from stream.graph import Graph, StageNode, check_graph, check_live, plan_graph
from stream.lifeline import EXIT_REPORTED, Lifeline
from stream.pipeline import load_process
from stream.processes import stage_main
from stream.run_dir import make_run_dir
from transports.codec import pack

WATCH_S = 0.02
STOP_GRACE_S = 1.5
VIEWER_GRACE_S = 2.0  # for the window to save a recording when the run ends
LAB_GRACE_S = 1.0  # for the lab process to pass on the last frames when the run ends
STARTUP_TIMEOUT_S = 120.0  # model loading on a busy 2-core machine
RESTART_WINDOW_S = 10.0
MAX_RESTARTS_IN_WINDOW = 5  # more restarts than this in the window: the stage is broken


PROCESS_ROLES = ("capture", "sink", "viewer", "lab")  # named in [pipeline], besides the stages


def preload_modules(config: Mapping[str, Any]) -> list[str]:
    """What the forkserver imports once, for every process: the engine core and the
    libraries several of them use, shared by all, then frozen (``stream.freeze_preloaded``).
    numba is among them: three stages (lift, fit, angles) compile with it, and each held a
    copy of its own (about 15 MB of PSS each, bench/bench_live.py). Not the stages' modules:
    preloaded, MediaPipe and onnxruntime were in every process, the sink's and capture's
    included, and each process's writes to them made private copies (live PSS of all
    processes: 843-911 MB before, see README "Memory"). The cost: a restarted stage imports
    its own libraries again (about a second for MediaPipe)."""
    return [
        "stream.processes",
        "core.packet",
        "transports.queues",
        "numpy",
        "cv2",
        "numba",
        "stream.freeze_preloaded",  # last: freezes what the imports above created
    ]


class PipelineError(RuntimeError):
    """The live pipeline failed; the message names the process and why."""


@dataclass
class LiveOptions:
    """How ``run_live.py`` wants the graph run."""

    source: str
    realtime: bool = True
    lossless: bool = False
    duration_s: float | None = None
    record_dir: Path | None = None
    invocation: Invocation | None = None  # the command line and start, for run.json
    print_stats: bool = False
    stats_path: Path | None = None
    viewer: bool = False
    lab: bool = False  # the LSL/OSC process (stages/lab_stream.py)


@dataclass
class Supervisor:
    """Owns the processes of one live run."""

    config: Mapping[str, Any]
    options: LiveOptions
    restarts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_live(self.config)  # a bad config fails before anything exists, even a forkserver
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(preload_modules(self.config))
        # The stage names, checked in a process of its own: that imports every stage's
        # module, and with them numba, which would stay in the supervisor for the whole run
        # (~40 MB, bench/bench_live.py).
        with self._ctx.Pool(1) as pool:
            names = pool.apply(check_graph, (dict(self.config),))
        roles = [r for r in PROCESS_ROLES if r != "lab" or self.options.lab]  # pylsl: if used
        self._entries = {role: load_process(self.config, role) for role in roles}
        self._run_dir = make_run_dir()
        try:
            self.graph: Graph = plan_graph(self.config, self._run_dir, names)
        except ConfigError:
            shutil.rmtree(self._run_dir, ignore_errors=True)
            raise
        self._lifeline = Lifeline(self._ctx)
        self._progress = self._ctx.RawArray("q", 2)  # capture: next frame, frames dropped
        self._origin_ns = 0  # media time 0 of a camera or stream
        self._deadline: float | None = None  # --duration
        self._stages: dict[str, BaseProcess] = {}
        self._ready: dict[str, Any] = {}  # kept alive: a child unpickles it after start()
        self._recent_restarts: list[float] = []
        self._capture: BaseProcess | None = None
        self._sink: BaseProcess | None = None
        self._viewer: BaseProcess | None = None
        self._lab: BaseProcess | None = None
        self._stopping = False
        self._events = zmq.Context.instance().socket(zmq.PUSH)
        self._events.linger = 0
        self._events.sndhwm = 100

    def _start_stage(self, index: int, node: StageNode) -> Any:
        """Start one stage process; returns the event it sets once set up."""
        ready = self._ctx.Event()
        process = self._ctx.Process(
            target=stage_main,
            args=(node, self.config, self.options.lossless, index == 0, ready, self._lifeline),
            name=f"stage-{node.name}",
        )
        process.start()
        self._stages[node.name] = process
        self._ready[node.name] = ready
        return ready

    def start(self) -> None:
        """Start sink, stages and capture (downstream first, so nothing waits on a peer)."""
        opts = self.options
        sink_ready = self._ctx.Event()
        self._sink = self._ctx.Process(
            target=self._entries["sink"],
            args=(
                self.graph,
                self.config,
                opts.record_dir,
                opts.invocation,
                opts.source,
                opts.print_stats,
                opts.stats_path,
                sink_ready,
                self._lifeline,
            ),
            name="sink",
        )
        self._sink.start()
        self._events.connect(self.graph.events)
        self._wait_ready([sink_ready])  # a port in use fails now, before any model loads
        waiting = []
        if opts.viewer:
            self._viewer = self._start_reader("viewer")
            waiting.append(self._ready["viewer"])
        if opts.lab:
            self._lab = self._start_reader("lab")
            waiting.append(self._ready["lab"])
        waiting += [
            self._start_stage(i, node)
            for i, node in enumerate(self.graph.stages)
            if not node.remote  # started on its own host (stream/remote_stage.py)
        ]
        self._wait_ready(waiting)
        self._origin_ns = time.monotonic_ns()
        if opts.duration_s is not None:
            self._deadline = time.monotonic() + opts.duration_s
        self._start_capture()

    def _start_capture(self) -> None:
        """Start (or restart) capture; a file resumes at the frame after the last one sent."""
        opts = self.options
        self._capture = self._ctx.Process(
            target=self._entries["capture"],
            args=(
                opts.source,
                self.graph,
                self.config,
                opts.realtime,
                opts.lossless,
                self._lifeline,
                self._progress,
                self._origin_ns,
            ),
            name="capture",
        )
        self._capture.start()

    def _start_reader(self, role: str) -> BaseProcess:
        """Start (or restart) a process that only reads the public stream: the window
        ("viewer") or the LSL/OSC process ("lab"). Its ready event (set once it is on
        screen or subscribed) is ``self._ready[role]``."""
        ready = self._ctx.Event()
        process = self._ctx.Process(
            target=self._entries[role],
            args=(self.graph, self.config, ready, self._lifeline),
            name=role,
        )
        process.start()
        self._ready[role] = ready
        return process

    def _wait_ready(self, events: list[Any]) -> None:
        """Capture starts only once every stage has loaded its models."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for event in events:
            while not event.wait(WATCH_S * 5):
                dead = [p.name for p in self.processes() if p.exitcode is not None]
                if dead or self._stopping or time.monotonic() > deadline:
                    self._stopping = True
                    self._reap()
                    why = f"{', '.join(dead)} exited" if dead else "interrupted or timed out"
                    raise PipelineError(
                        self._lifeline.failure() or f"pipeline did not start: {why}"
                    )

    def processes(self) -> list[BaseProcess]:
        processes = (self._capture, *self._stages.values(), self._sink, self._viewer, self._lab)
        return [p for p in processes if p is not None]

    def watch(self) -> int:
        """Block until the run ends; restart dead processes (live) or fail (lossless)."""
        assert self._sink is not None and self._capture is not None, "start() first"
        try:
            while self._sink.is_alive():
                self._check_capture()
                for index, node in enumerate(self.graph.stages):
                    process = self._stages.get(node.name)
                    if process is None:  # a remote stage: its host looks after it
                        continue
                    if process.exitcode not in (None, 0) and not self._stopping:
                        self._died(node.name, process.exitcode)
                        self._start_stage(index, node)
                if self._viewer is not None and self._viewer.exitcode is not None:
                    self.stop()  # the window was closed: end the run
                self._check_lab()
                if self._deadline is not None and time.monotonic() >= self._deadline:
                    self.stop()
                time.sleep(WATCH_S)
            self._capture.join(STOP_GRACE_S)  # it ends after its end-of-stream got through
            self._check_capture(restart=False)
            if self._sink.exitcode not in (0, None) and not self._stopping:
                raise PipelineError(f"sink process ended with exit status {self._sink.exitcode}")
            if self._viewer is not None and self._viewer.exitcode not in (0, None):
                raise PipelineError(f"viewer ended with exit status {self._viewer.exitcode}")
            return 0
        finally:
            self._reap()

    def _check_capture(self, restart: bool = True) -> None:
        """Fail on a source error capture reported; restart a capture that crashed."""
        assert self._capture is not None
        exitcode = self._capture.exitcode
        if exitcode == EXIT_REPORTED:
            self.stop()
            raise PipelineError(self._lifeline.failure() or "capture failed")
        if restart and exitcode not in (None, 0) and not self._stopping:
            self._died("capture", exitcode)
            self._start_capture()

    def _check_lab(self) -> None:
        """Fail on an error the lab process reported; restart it if it crashed."""
        if self._lab is None or self._lab.exitcode in (None, 0) or self._stopping:
            return
        if self._lab.exitcode == EXIT_REPORTED:
            self.stop()
            raise PipelineError(self._lifeline.failure() or "lab streaming failed")
        self._died("lab", self._lab.exitcode)
        self._lab = self._start_reader("lab")

    def _died(self, name: str, exitcode: int) -> None:
        """Account for a dead process about to be restarted; fail if it must not be."""
        how = f"signal {-exitcode}" if exitcode < 0 else f"exit status {exitcode}"
        if self.options.lossless:
            self._events.send(pack({"abort": name}))
            self.stop()
            what = {"capture": "capture", "lab": "lab streaming"}.get(name, f"stage '{name}'")
            raise PipelineError(f"{what} died ({how}); lossless run failed")
        now = time.monotonic()
        self._recent_restarts = [t for t in self._recent_restarts if now - t < RESTART_WINDOW_S]
        if len(self._recent_restarts) >= MAX_RESTARTS_IN_WINDOW:
            self.stop()
            raise PipelineError(
                f"{name!r} keeps dying ({how}): {MAX_RESTARTS_IN_WINDOW} restarts "
                f"in {RESTART_WINDOW_S:.0f} s, giving up"
            )
        self._recent_restarts.append(now)
        self.restarts[name] = self.restarts.get(name, 0) + 1
        self._events.send(pack({"restart": name}))

    def stop(self) -> None:
        """Clean shutdown: capture ends the stream, the rest drains and finalizes."""
        if self._stopping:
            return
        self._stopping = True
        if self._capture is not None and self._capture.is_alive():
            self._capture.terminate()  # SIGTERM: capture sends end-of-stream and exits
        # Without capture (still starting) there is no end-of-stream to wait for.
        deadline = time.monotonic() + (STOP_GRACE_S if self._capture is not None else 0.0)
        while self._sink is not None and self._sink.is_alive() and time.monotonic() < deadline:
            time.sleep(WATCH_S)
        if self._sink is not None and self._sink.is_alive():
            self._sink.terminate()  # SIGTERM: the sink finalizes its files and exits
            self._sink.join(0.3)

    def _reap(self) -> None:
        """Nothing outlives the supervisor: terminate, then kill, then remove the run dir."""
        for process in self.processes():
            if process.is_alive():
                process.terminate()
        deadline = time.monotonic() + 0.3
        for process in self.processes():
            grace = {self._viewer: VIEWER_GRACE_S, self._lab: LAB_GRACE_S}.get(process, 0.0)
            process.join(max(0.0, deadline + grace - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(0.2)
        self._events.close(linger=0)
        self._lifeline.close()
        _end_forkserver()
        shutil.rmtree(self._run_dir, ignore_errors=True)


def _end_forkserver() -> None:
    """Stop the forkserver now that its children are gone. Left alone it exits only after
    the supervisor, then spends half a second or more tearing down MediaPipe and friends
    while holding the run's stdout and stderr open. A later start launches a fresh one."""
    pid = getattr(multiprocessing.forkserver._forkserver, "_forkserver_pid", None)
    if pid is not None:
        os.kill(pid, signal.SIGKILL)  # it holds nothing that needs saving
        os.waitpid(pid, 0)


def run_live(config: Mapping[str, Any], options: LiveOptions) -> int:
    """Run until the source ends, ``duration_s`` passes, or Ctrl-C / SIGTERM arrives."""
    supervisor = Supervisor(config, options)

    def on_signal(signum: int, frame: object) -> None:
        supervisor.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        supervisor.start()
        return supervisor.watch()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
