"""A small client for the public stream, for Python programs that consume poses.

    client = PoseClient("tcp://127.0.0.1:5555", "tcp://127.0.0.1:5556")  # config.toml [live]
    print(client.request("schema"))          # control socket (REQ/REP)
    for topic, msg in client.messages(("pose.markers",)):
        print(msg["frame_index"], msg["markers"][19])   # Hip, metres

With CURVE (``run_live.py --curve-keys DIR``) the client needs the engine's public key
and a keypair of its own whose public half is in the engine's ``DIR/clients``::

    keys = ClientKeys.load("server.key", "laptop.key_secret")
    client = PoseClient("tcp://192.168.1.20:5555", "tcp://192.168.1.20:5556", keys)

A client with a wrong or unknown key is refused silently: it receives nothing.
Other languages need only ZeroMQ and msgpack: subscribe to ``pose.*`` on the publish
endpoint, and send ``{"cmd": "schema"}`` (msgpack) to the control endpoint.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Any

import msgpack
import zmq

from transports.keys import ClientKeys
from transports.queues import Subscriber


def connectable(endpoint: str) -> str:
    """Where to connect for an endpoint the engine binds (``*`` / 0.0.0.0: this host)."""
    return endpoint.replace("://*:", "://127.0.0.1:").replace("://0.0.0.0:", "://127.0.0.1:")


class ControlTimeout(TimeoutError):
    """The engine did not answer the control request in time (is it running?)."""


class PoseClient:
    """Subscribe to the engine's stream and query its control socket."""

    def __init__(
        self,
        publish: str,
        control: str,
        keys: ClientKeys | None = None,
    ) -> None:
        self.publish = publish
        self.control = control
        self._security = keys.options() if keys is not None else {}
        self._context = zmq.Context.instance()

    def request(self, cmd: str, timeout_s: float = 2.0) -> dict[str, Any]:
        """Send ``{"cmd": cmd}`` to the control socket and return the reply map."""
        deadline = time.monotonic() + timeout_s
        socket = self._context.socket(zmq.REQ)
        socket.linger = 0
        # A REQ socket blocks its send while it has no connected peer, which is forever
        # when the server refuses the CURVE handshake: the send has the same deadline.
        socket.sndtimeo = int(timeout_s * 1000)
        for option, value in self._security.items():
            socket.setsockopt(option, value)
        try:
            socket.connect(self.control)
            try:
                socket.send(msgpack.packb({"cmd": cmd}))
            except zmq.Again:
                raise ControlTimeout(self._silent(timeout_s)) from None
            left_ms = max(0, int((deadline - time.monotonic()) * 1000))
            if not socket.poll(left_ms):
                raise ControlTimeout(self._silent(timeout_s))
            return msgpack.unpackb(socket.recv(), raw=False)
        finally:
            socket.close()

    def _silent(self, timeout_s: float) -> str:
        return f"no answer from {self.control} within {timeout_s} s"

    def messages(
        self, topics: Sequence[str] = ("pose.",), timeout_s: float | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yield ``(topic, payload)`` as they arrive; stop after ``timeout_s`` of silence."""
        with Subscriber(
            self.publish, topics, context=self._context, security=self._security
        ) as subscriber:
            while True:
                message = subscriber.recv(timeout_s)
                if message is None:
                    return
                yield message
