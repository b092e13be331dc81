"""The control socket: a REP server that answers what an external program needs to know.

Requests and replies are msgpack maps. ``{"cmd": "version"}``, ``"schema"``, ``"markers"``,
``"angles"``, ``"ik_coordinates"``, ``"ports"``, ``"status"`` and ``"run"`` (the run's
provenance, as its ``run.json`` holds it, for a client that records the stream) are answered
with ``{"ok": true, ...}``; anything else (unknown command, garbage bytes, a message over
``MAX_REQUEST_BYTES``) gets ``{"ok": false, "error": "..."}`` and the server keeps serving.
ZeroMQ itself drops peers that send more than ``MAX_MESSAGE_BYTES`` so a hostile client
cannot exhaust memory. With CURVE (``transports/keys.py``) only clients with a known key
get an answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import msgpack
import zmq

from transports.schema import API_VERSION, schema

MAX_REQUEST_BYTES = 64 * 1024
MAX_MESSAGE_BYTES = 1024 * 1024


class ControlServer:
    """Answers control requests; call ``poll_once`` from the owning process' loop."""

    def __init__(
        self,
        context: zmq.Context,
        endpoint: str,
        ports: dict[str, str],
        status: Callable[[], dict[str, Any]],
        angle_names: tuple[str, ...] = (),
        security: Mapping[int, int | bytes] | None = None,
        ik_names: tuple[str, ...] = (),
        run: Callable[[], dict[str, Any] | None] | None = None,
    ) -> None:
        """``security``: socket options such as ``CurveServer.options`` (transports/keys.py);
        ``ik_names``: the coordinates of ``pose.ik`` (with --ik); ``run``: the provenance,
        None while it is still being gathered (the reply then says to ask again)."""
        self.socket = context.socket(zmq.REP)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        for option, value in (security or {}).items():
            self.socket.setsockopt(option, value)
        self.socket.bind(endpoint)
        self._ports = ports
        self._status = status
        self._angle_names = angle_names
        self._ik_names = ik_names
        self._run = run

    def poll_once(self) -> bool:
        """Answer one pending request, if any; True when one was answered."""
        try:
            frames = self.socket.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return False
        self.socket.send(msgpack.packb(self.answer(frames), use_bin_type=True))
        return True

    def answer(self, frames: list[bytes]) -> dict[str, Any]:
        """The reply to one request (never raises)."""
        size = sum(len(f) for f in frames)
        if size > MAX_REQUEST_BYTES:
            return _error(f"request of {size} bytes exceeds {MAX_REQUEST_BYTES}")
        if len(frames) != 1:
            return _error(f"expected one frame, got {len(frames)}")
        try:
            request = msgpack.unpackb(frames[0], raw=False)
        except Exception:  # msgpack raises several unrelated types for garbage
            return _error("request is not msgpack: send a map like {'cmd': 'schema'}")
        if not isinstance(request, dict) or not isinstance(request.get("cmd"), str):
            return _error("request must be a map with a string 'cmd'")
        handler = self._handlers().get(request["cmd"])
        if handler is None:
            return _error(f"unknown cmd {request['cmd']!r}; known: {sorted(self._handlers())}")
        reply = handler()
        return reply if "error" in reply else {"ok": True, **reply}

    def _run_reply(self) -> dict[str, Any]:
        if self._run is None:
            return _error("this control socket has no run provenance")
        run = self._run()
        if run is None:
            return _error("the run's provenance is not ready yet (hashing input and models): retry")
        return {"run": run}

    def _handlers(self) -> dict[str, Callable[[], dict[str, Any]]]:
        return {
            "run": self._run_reply,
            "version": lambda: {"version": API_VERSION},
            "schema": lambda: {"schema": schema(self._angle_names, self._ik_names)},
            "markers": lambda: {"markers": schema()["markers"]},
            "angles": lambda: {"angles": list(self._angle_names)},
            "ik_coordinates": lambda: {"ik_coordinates": list(self._ik_names)},
            "ports": lambda: {"ports": dict(self._ports)},
            "status": lambda: {"status": self._status()},
        }

    def close(self) -> None:
        self.socket.close(linger=0)


def _error(message: str) -> dict[str, Any]:
    return {"ok": False, "error": message}
