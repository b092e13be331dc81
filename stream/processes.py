"""The life of every live process, and the loop of a stage process.

``stage_main`` is the entry point of each stage's process: it knows nothing about its
stage beyond the contract (it receives a packet, calls the stage, sends the result on).
The capture, sink and viewer processes are named in config.toml ``[pipeline]`` and use the
helpers here. Children ignore Ctrl-C (the supervisor coordinates the shutdown) and
hold the supervisor's ``Lifeline`` so none outlives a killed supervisor; a failure the user
can fix (a port in use, a stream that never came back) goes to the supervisor as one line.
"""

from __future__ import annotations

import ctypes
import errno
import os
import signal
import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import zmq

from stream.graph import StageNode
from stream.lifeline import Lifeline
from stream.pipeline import load_stage_class
from transports.codec import EndOfStream
from transports.queues import PacketReceiver, PacketSender

POLL_S = 0.1  # how often idle loops look at their stop flag
# Capture (decoding) and the first stage (detection) use most of the CPU; at a lower
# priority they never delay the light stages after them, which keeps latency short when
# the machine is saturated. Measured with bench/bench_live.py, 60 fps 1080p input on 2
# cores: capture->publish p99 165 ms at nice 5, 62 ms at nice 10.
HEAVY_NICE = 10
EXIT_ABORTED = 4
VIEWER_NICE = 19  # the window takes only the CPU the pipeline leaves (see viewer/app.py)
T = TypeVar("T")
LINK_PORTS = "[live] tcp_base_port in config.toml"  # how to move the stage links' tcp ports


class StopFlag:
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
    flag = StopFlag() if lifeline else StopFlag((signal.SIGTERM, signal.SIGINT))
    stage = load_stage_class(node.spec)()
    stage.setup(config)
    if first:
        os.nice(HEAVY_NICE)
    # The first stage takes one frame at a time so the capture end drops, not this queue.
    capacity = 1 if first and not lossless else int(config.get("live", {}).get("queue", 2))
    receiver = bind_or_fail(
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


def bind_or_fail(
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


def live_key(key: str) -> str:
    """How to change a public endpoint: its flag or its key in config.toml."""
    return f"--{key} or [live] {key} in config.toml"
