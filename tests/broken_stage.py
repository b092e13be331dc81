"""A stage that fails on purpose on frame 10, for the tests of failure handling."""

from __future__ import annotations

from core.packet import Packet
from core.stage import Stage


class Broken(Stage):
    name = "broken"

    def process(self, packet: Packet) -> Packet:
        if packet.frame_index == 10:
            raise ValueError("broken on purpose")
        return packet
