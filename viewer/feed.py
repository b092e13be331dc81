"""The viewer's only link to the engine: the public stream, read like any external client.

A SUB socket is drained without blocking from the window's timer, so the window never
waits for the engine and the engine never waits for the window: when the window is slow,
ZeroMQ drops messages for it alone. The marker and angle names come from one
``{"cmd": "schema"}`` request on the control socket, then the run's provenance (for the
recordings' ``run.json``) from ``{"cmd": "run"}``; each is sent without blocking and sent
again on a fresh socket if the engine did not answer in time (it may still be starting).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack
import zmq

from transports.queues import Subscriber
from transports.schema import ANGLES, IK, MARKERS, PREVIEW, STATUS

TOPICS = (MARKERS, ANGLES, IK, STATUS, PREVIEW)
SCHEMA_RETRY_S = 2.0
RECEIVE_QUEUE = 200  # messages ZeroMQ keeps for a window that is not reading


@dataclass
class FeedUpdate:
    """What arrived since the last poll: every pose, angle and IK message (for recording and
    plots), only the newest status and preview (older ones are never shown)."""

    markers: list[dict[str, Any]] = field(default_factory=list)
    angles: list[dict[str, Any]] = field(default_factory=list)
    ik: list[dict[str, Any]] = field(default_factory=list)
    status: dict[str, Any] | None = None
    preview: dict[str, Any] | None = None

    def __bool__(self) -> bool:
        return bool(self.markers or self.angles or self.ik or self.status or self.preview)

    def add(self, topic: str, payload: dict[str, Any]) -> None:
        """File one published message under its topic (others are ignored)."""
        if topic == MARKERS:
            self.markers.append(payload)
        elif topic == ANGLES:
            self.angles.append(payload)
        elif topic == IK:
            self.ik.append(payload)
        elif topic == STATUS:
            self.status = payload
        elif topic == PREVIEW:
            self.preview = payload


class StreamFeed:
    """Subscribes to the engine's ``pose.*`` topics and asks its control socket once."""

    def __init__(
        self,
        publish: str,
        control: str,
        context: zmq.Context | None = None,
        security: Mapping[int, int | bytes] | None = None,
    ) -> None:
        """``security``: CURVE client options (``transports.keys.ClientKeys.options``)."""
        self._context = context or zmq.Context.instance()
        self._security = dict(security or {})
        self._subscriber = Subscriber(
            publish, TOPICS, context=self._context, security=self._security
        )
        self._subscriber.socket.rcvhwm = RECEIVE_QUEUE
        self._control = control
        self._request: zmq.Socket | None = None
        self._asked_at = 0.0
        self.schema: dict[str, Any] | None = None
        self.run: dict[str, Any] | None = None  # the run's provenance, once answered

    def poll(self, max_messages: int = 1000) -> FeedUpdate:
        """Everything waiting now (at most ``max_messages``), without blocking."""
        if self.schema is None:
            self._ask("schema")
        elif self.run is None:
            self._ask("run")
        update = FeedUpdate()
        for _ in range(max_messages):
            message = self._subscriber.recv(timeout_s=0)
            if message is None:
                break
            update.add(*message)
        return update

    def _ask(self, cmd: str) -> None:
        """Send the request ``cmd``, read its answer into the attribute of that name when
        there is one, ask again once the last request is ``SCHEMA_RETRY_S`` old."""
        now = time.monotonic()
        if self._request is not None and self._request.poll(0):
            reply = msgpack.unpackb(self._request.recv(), raw=False)
            self._close_request()
            if reply.get("ok"):
                setattr(self, cmd, reply[cmd])
                self._asked_at = 0.0  # the next request goes out at once
                return
        if self._asked_at and now - self._asked_at < SCHEMA_RETRY_S:
            return  # an answer (or a retry after a refusal) is not due yet
        self._close_request()
        self._request = self._context.socket(zmq.REQ)
        self._request.linger = 0
        for option, value in self._security.items():
            self._request.setsockopt(option, value)
        self._request.connect(self._control)
        self._asked_at = now
        try:
            self._request.send(msgpack.packb({"cmd": cmd}), zmq.NOBLOCK)
        except zmq.Again:  # no pipe yet: this socket is replaced at the next retry
            pass

    def _close_request(self) -> None:
        if self._request is not None:
            self._request.close(linger=0)
            self._request = None

    def close(self) -> None:
        self._close_request()
        self._subscriber.close()
