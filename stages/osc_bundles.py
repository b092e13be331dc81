"""OSC over UDP fed from the public stream (``run_live.py --osc HOST:PORT``), for Max/MSP,
TouchDesigner, Unity and other creative tools.

One bundle per frame (timetag "immediately"), its messages in this order:

* ``/monomocap/frame <frame_index int32> <media_time_s float32> <person int32 0|1>``
* ``/monomocap/markers/<marker> <x> <y> <z>`` for each of the 64 markers (float32, metres,
  the stream's lab frame, NaN = missing)
* ``/monomocap/angles/<angle> <deg>`` for each angle (float32, degrees, NaN = not computed)

float32 (``f``) is the OSC 1.0 type every receiver reads. The markers and angles of one
frame arrive as two public messages; they are joined by frame before the bundle is sent.
With ``max_rate`` a slow receiver gets at most that many bundles per second: a frame that
comes too soon after the last one sent is skipped, so what arrives is always recent.
UDP never blocks the sender: a receiver that is gone or full only loses bundles.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

from pythonosc.osc_bundle_builder import IMMEDIATELY, OscBundleBuilder
from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.udp_client import UDPClient

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
    try:
        address = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)[0][4][0]
    except socket.gaierror as exc:
        raise OscTargetError(f"--osc: cannot resolve host {host!r} ({exc.strerror})") from None
    return str(address), int(match["port"])


def _message(address: str, values: Sequence[float | int], types: str) -> OscMessage:
    builder = OscMessageBuilder(address)
    for value, kind in zip(values, types, strict=True):
        builder.add_arg(value, kind)
    return builder.build()


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
        self._client = UDPClient(*self.address)
        self._markers = [f"{PREFIX}/markers/{name}" for name in names["markers"]]
        self._angles = [f"{PREFIX}/angles/{name}" for name in names.get("angles", ())]
        self._expected = {MARKERS, ANGLES} if self._angles else {MARKERS}
        self._interval_s = 1.0 / max_rate if max_rate > 0 else 0.0
        self._last_sent = -float("inf")
        self._frame: tuple[str, int] | None = None
        self._parts: dict[str, Mapping[str, Any]] = {}
        self.sent = 0
        self.skipped = 0  # by the rate limit
        self.lost = 0  # the socket refused them (receiver gone, buffer full)

    def push(self, topic: str, payload: Mapping[str, Any]) -> None:
        """Collect one public message; send the frame's bundle once it is complete."""
        if topic not in self._expected:
            return
        frame = (str(payload["source_id"]), int(payload["frame_index"]))
        if frame != self._frame:
            self._flush()  # the previous frame lost a message on the way: send what came
            self._frame = frame
        self._parts[topic] = payload
        if self._parts.keys() >= self._expected:
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
            self._client.send(self.bundle(parts))
        except OSError:
            self.lost += 1
            return
        self._last_sent = now
        self.sent += 1

    def bundle(self, parts: Mapping[str, Mapping[str, Any]]) -> Any:
        """The OSC bundle of one frame from its ``pose.markers`` / ``pose.angles`` payloads."""
        builder = OscBundleBuilder(IMMEDIATELY)
        head = parts.get(MARKERS) or parts[ANGLES]
        person = int(bool(head.get("person", False)))
        media_time = float(head.get("media_time_s", float("nan")))
        builder.add_content(
            _message(f"{PREFIX}/frame", (int(head["frame_index"]), media_time, person), "ifi")
        )
        if MARKERS in parts:
            for address, xyz in zip(self._markers, parts[MARKERS]["markers"].tolist(), strict=True):
                builder.add_content(_message(address, xyz, "fff"))
        if ANGLES in parts:
            for address, value in zip(self._angles, parts[ANGLES]["angles"].tolist(), strict=True):
                builder.add_content(_message(address, (value,), "f"))
        return builder.build()

    def close(self) -> None:
        self._flush()
        self._client.close()
