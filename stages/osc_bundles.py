"""OSC over UDP fed from the public stream (``run_live.py --osc HOST:PORT``), for Max/MSP,
TouchDesigner, Unity and other creative tools.

One bundle per frame (timetag "immediately"), its messages in this order:

* ``/monomocap/frame <frame_index int32> <media_time_s float32> <person int32 0|1>``
* ``/monomocap/markers/<marker> <x> <y> <z>`` for each of the 64 markers (float32, metres,
  the stream's lab frame, NaN = missing)
* ``/monomocap/angles/<angle> <deg>`` for each angle (float32, degrees, NaN = not computed)

float32 (``f``) is the OSC 1.0 type every receiver reads. The markers and angles of one
frame arrive as two public messages; they are joined by frame before the bundle is sent.

The bytes are written with python-osc's encoders (``osc_types``), each message's constant
part (size, address, type tags) once at start: python-osc's message and bundle builders
parse every message they build back into an object: 0.84 ms of CPU per frame here, against
0.02 ms this way (the receivers decode it with python-osc in the tests).
With ``max_rate`` a slow receiver gets at most that many bundles per second: a frame that
comes too soon after the last one sent is skipped, so what arrives is always recent.
UDP never blocks the sender: a receiver that is gone or full only loses bundles.
"""

from __future__ import annotations

import re
import socket
import struct
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pythonosc.parsing.osc_types import IMMEDIATELY, write_date, write_int, write_string

from transports.schema import ANGLES, MARKERS

PREFIX = "/monomocap"
LOOPBACK = "127.0.0.1"  # where a bare --osc PORT sends
TARGET = re.compile(r"(?:(?P<host>[^\s:]+):)?(?P<port>\d{1,5})")


class OscTargetError(ValueError):
    """``[osc] target`` is not ``HOST:PORT`` / ``PORT``, or its host cannot be resolved."""


def parse_target(target: str) -> tuple[str, int]:
    """``"HOST:PORT"`` or ``"PORT"`` (loopback) -> (IP address, port); the host is
    resolved once here, not on every send."""
    match = TARGET.fullmatch(target)
    if match is None or not 1 <= int(match["port"]) <= 65535:
        raise OscTargetError(f"--osc must be HOST:PORT or PORT (UDP port 1-65535), got {target!r}")
    host = match["host"] or LOOPBACK
    for family in (socket.AF_INET, socket.AF_UNSPEC):  # IPv4 first: "localhost" -> 127.0.0.1
        try:
            address = socket.getaddrinfo(host, None, family, socket.SOCK_DGRAM)[0][4][0]
            return str(address), int(match["port"])
        except socket.gaierror as exc:
            why = exc.strerror
    raise OscTargetError(f"--osc: cannot resolve host {host!r} ({why})")


BUNDLE_HEAD = write_string("#bundle") + write_date(IMMEDIATELY)
FRAME = struct.Struct(">ifi")  # frame index, media time, person


def element_head(address: str, types: str) -> bytes:
    """What precedes a bundle element's arguments: its size, address and type tags (all
    arguments here are 4 bytes, so the size is known before the values)."""
    head = write_string(address) + write_string("," + types)
    return write_int(len(head) + 4 * len(types)) + head


class OscSender:
    """Joins each frame's markers and angles into one bundle and sends it over UDP."""

    def __init__(
        self,
        target: str,
        names: Mapping[str, Sequence[str]],
        max_rate: float = 0.0,
    ) -> None:
        """``names``: the control socket's schema (``markers``, ``angles`` lists);
        ``max_rate``: bundles per second at most, 0 = every frame."""
        self.address = parse_target(target)
        family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_DGRAM)
        self._socket.setblocking(False)
        self._frame_head = element_head(f"{PREFIX}/frame", "ifi")
        self._markers = [element_head(f"{PREFIX}/markers/{n}", "fff") for n in names["markers"]]
        self._angles = [element_head(f"{PREFIX}/angles/{n}", "f") for n in names.get("angles", ())]
        self.topics = frozenset({MARKERS, ANGLES} if self._angles else {MARKERS})
        self._interval_s = 1.0 / max_rate if max_rate > 0 else 0.0
        self._last_sent = -float("inf")
        self._frame: tuple[str, int] | None = None
        self._parts: dict[str, Mapping[str, Any]] = {}
        self.sent = 0
        self.skipped = 0  # by the rate limit
        self.lost = 0  # the socket refused them (receiver gone, buffer full)

    def push(self, topic: str, payload: Mapping[str, Any]) -> None:
        """Collect one public message; send the frame's bundle once it is complete."""
        if topic not in self.topics:
            return
        frame = (str(payload["source_id"]), int(payload["frame_index"]))
        if frame != self._frame:
            self._flush()  # the previous frame lost a message on the way: send what came
            self._frame = frame
        self._parts[topic] = payload
        if self._parts.keys() >= self.topics:
            self._flush()

    def _flush(self) -> None:
        parts, self._parts = self._parts, {}
        if not parts:
            return
        now = time.monotonic()
        if now - self._last_sent < self._interval_s:
            self.skipped += 1
            return
        try:
            self._socket.sendto(self.bundle(parts), self.address)
        except OSError:
            self.lost += 1
            return
        self._last_sent = now
        self.sent += 1

    def bundle(self, parts: Mapping[str, Mapping[str, Any]]) -> bytes:
        """The OSC bundle of one frame from its ``pose.markers`` / ``pose.angles`` payloads."""
        head = parts.get(MARKERS) or parts[ANGLES]
        person = int(bool(head.get("person", False)))
        media_time = float(head.get("media_time_s", float("nan")))
        pieces = [
            BUNDLE_HEAD,
            self._frame_head,
            FRAME.pack(int(head["frame_index"]), media_time, person),
        ]
        for heads, topic, field, size in (
            (self._markers, MARKERS, "markers", 12),
            (self._angles, ANGLES, "angles", 4),
        ):
            if topic in parts:
                values = _big_endian_float32(parts[topic][field], len(heads) * size // 4)
                for i, element in enumerate(heads):
                    pieces += (element, values[i * size : (i + 1) * size])
        return b"".join(pieces)

    def close(self) -> None:
        self._flush()
        self._socket.close()


def _big_endian_float32(values: Any, count: int) -> bytes:
    """An array as OSC floats (big-endian float32), checked against the names it goes with."""
    array = np.asarray(values, dtype=">f4").ravel()
    if array.size != count:
        raise ValueError(f"{array.size} values for {count} OSC arguments")
    return array.tobytes()
