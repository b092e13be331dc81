"""The stage contract: the same object runs inline (offline) or in its own process (live).

A stage never knows how packets reach it. ``process`` takes one packet and returns it
(extended) or ``None`` to drop it. Stateful stages keep their state per ``source_id`` and
forget it on ``reset`` (e.g. when a track is lost or a stage process restarts). A packet
with ``meta["track_reset"]`` true starts a new person (detection switched to someone else):
every stage forgets that source's state before handling it.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

from core.packet import Packet


class Stage(ABC):
    """Base class of every processing stage (everything after capture)."""

    name: str = "stage"

    def setup(self, config: Mapping[str, Any]) -> None:
        """Load models and read settings; called once in the process that runs the stage."""

    @abstractmethod
    def process(self, packet: Packet) -> Packet | None:
        """Handle one frame; return the packet to pass it on or ``None`` to drop it."""

    def prepare(self, packet: Packet) -> None:
        """Work on ``packet`` that needs no earlier packet, so that a reader thread may do it
        ahead of ``process`` (offline/pipelined.py); ``process`` gives the same result
        whether it ran or not."""

    def reset(self, source_id: str | None = None) -> None:
        """Forget per-source state (all sources when ``source_id`` is None)."""

    def close(self) -> None:
        """Release models, files and sockets."""

    def __call__(self, packet: Packet) -> Packet | None:
        """Run ``process`` and stamp the packet with this stage's enter/leave times."""
        enter = time.monotonic_ns()
        if packet.meta.get("track_reset", False):
            self.reset(packet.source_id)
        out = self.process(packet)
        if out is not None:
            out.stamp(self.name, enter)
        return out


class Sink(Stage):
    """A stage at the end of the graph that consumes packets (files, sockets, viewer)."""

    def finish(self, source_id: str) -> None:
        """The source has ended: flush and finalize everything written for it."""
