"""Publisher sink: the public ZeroMQ stream other programs subscribe to.

A PUB socket sends multipart ``[topic, msgpack payload]`` (schema in
``transports/schema.py``): ``pose.markers`` and ``pose.angles`` every frame (and ``pose.ik``
with the live ``ik`` stage), ``pose.status`` when the owner calls ``publish_status``, and
``pose.preview`` (a small JPEG of the frame with the 2D landmarks in its pixels) for frames
that carry one, i.e. only while the live viewer is attached (``[detect] preview``). PUB
never blocks: a subscriber that stalls only loses its own messages once its queue
(``SNDHWM``) is full, the pipeline and the other subscribers are not slowed. Binds to
127.0.0.1 unless configured otherwise; with ``security`` options
(``transports.keys.CurveServer``) the stream is encrypted and only known client keys may
subscribe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.packet import Packet
from core.stage import Sink
from transports.queues import Publisher
from transports.schema import ANGLES, IK, MARKERS, PREVIEW, STATUS

SUBSCRIBER_QUEUE = 1000  # messages kept per subscriber before it starts losing them


class StreamPublisher(Sink):
    """Publishes markers and angles of every packet."""

    name = "publish"

    def __init__(
        self, endpoint: str | None = None, security: Mapping[int, int | bytes] | None = None
    ) -> None:
        self.endpoint = endpoint
        self._security = security
        self._publisher: Publisher | None = None

    def setup(self, config: Mapping[str, Any]) -> None:
        if self.endpoint is None:
            self.endpoint = config["live"]["publish"]
        self._publisher = Publisher(self.endpoint, hwm=SUBSCRIBER_QUEUE, security=self._security)

    def _send(self, topic: str, payload: dict[str, Any]) -> None:
        assert self._publisher is not None, "setup() first"
        self._publisher.send(topic, payload)

    def process(self, packet: Packet) -> Packet:
        head = {
            "source_id": packet.source_id,
            "frame_index": packet.frame_index,
            "timestamp_ns": packet.timestamp_ns,
        }
        self._send(
            MARKERS,
            {
                **head,
                "media_time_s": packet.media_time_s,
                "fps": float(packet.meta.get("fps", 0.0)),
                "person": bool(packet.meta.get("person", False)),
                "markers": packet.data["markers_64"],
                "estimated": packet.data["markers_64_estimated"],
                "confidence": packet.data["markers_64_confidence"],
                "swap_repaired": str(packet.meta.get("swap_repaired", "")),
            },
        )
        if "angles" in packet.data:
            confidence = packet.data["angles_confidence"]
            self._send(ANGLES, {**head, "angles": packet.data["angles"], "confidence": confidence})
        if "ik" in packet.data:
            self._send(IK, {**head, **_ik(packet)})
        if "preview_jpeg" in packet.data:
            self._send(PREVIEW, {**head, **_preview(packet)})
        return packet

    def publish_status(self, status: dict[str, Any]) -> None:
        self._send(STATUS, status)

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None


def _ik(packet: Packet) -> dict[str, Any]:
    """The ``ik`` stage's coordinates and marker errors of this frame."""
    rms, largest, used = (float(v) for v in packet.data["ik_errors"])
    return {
        "values": packet.data["ik"],
        "rms_m": rms,
        "max_m": largest,
        "markers": 0 if used != used else int(used),  # NaN: not solved
        "scaled": bool(packet.meta.get("ik_scaled", False)),
        "skipped": int(packet.meta.get("ik_skipped", 0)),
    }


def _preview(packet: Packet) -> dict[str, Any]:
    """The preview image and the 2D landmarks scaled to its pixels, so a client draws both
    without knowing the camera's resolution."""
    width, height = packet.meta["preview_size"]
    scale = width / packet.image_size[0]
    return {
        "person": bool(packet.meta.get("person", False)),
        "jpeg": packet.data["preview_jpeg"].tobytes(),
        "size": [int(width), int(height)],
        "landmarks_2d": packet.data["landmarks_2d"] * scale,
        "visibility": packet.data["visibility"],
    }
