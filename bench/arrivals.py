"""What a subscriber of the public stream sees during a live benchmark run: for every
``pose.markers`` frame its receipt time, index and capture -> receipt latency, collected
by a thread while the run goes on (the benchmarks that start ``run_live.py`` or the web
server's live session share it)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

from transports.queues import Subscriber


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Arrival(NamedTuple):
    received_s: float  # time.monotonic() at receipt
    frame_index: int
    latency_ms: float  # capture -> receipt


class MarkerArrivals:
    """``with MarkerArrivals(endpoint) as arrivals:`` collects ``arrivals.seen`` until the
    block ends. ``on_poll(now)`` runs after every receive attempt (about 10 per second at
    least), for samples taken alongside, such as another process's CPU time."""

    def __init__(self, endpoint: str, on_poll: Callable[[float], None] | None = None) -> None:
        self.seen: list[Arrival] = []
        self._subscriber = Subscriber(endpoint, ("pose.markers",))
        self._on_poll = on_poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._collect, daemon=True)

    def __enter__(self) -> MarkerArrivals:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _collect(self) -> None:
        with self._subscriber:
            while not self._stop.is_set():
                message = self._subscriber.recv(timeout_s=0.1)
                now = time.monotonic()
                if message is not None:
                    payload = message[1]
                    latency_ms = (time.monotonic_ns() - payload["timestamp_ns"]) / 1e6
                    self.seen.append(Arrival(now, int(payload["frame_index"]), latency_ms))
                if self._on_poll is not None:
                    self._on_poll(now)
