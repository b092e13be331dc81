"""A real network video source on 127.0.0.1: an HTTP server streaming MJPEG
(``multipart/x-mixed-replace``, as IP cameras do) from the standard library's http.server,
for the tests of dropped and stalled streams and for the soak benchmark.

The frames are encoded once; the server sends them round and round at ``fps`` to every
client until ``stop()``. ``stall()`` keeps connections open but sends nothing more;
``resume()`` sends again; ``drop()`` closes every connection and stops listening (the
camera is gone).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

BOUNDARY = "mmframe"


class MjpegServer:
    """Streams ``frames`` at ``fps`` on ``http://127.0.0.1:<port>/stream.mjpg``."""

    def __init__(self, frames: Sequence[np.ndarray], fps: float, quality: int = 80) -> None:
        params = [cv2.IMWRITE_JPEG_QUALITY, quality]
        self.jpegs = [cv2.imencode(".jpg", f, params)[1].tobytes() for f in frames]
        self.fps = fps
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self.sent = 0  # frames sent, all clients together
        self._stalled = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()

    def serve(self) -> MjpegServer:
        """Listen and stream to every client that connects."""
        self._stalled.clear()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                with owner._lock:
                    owner._connections.add(self.connection)
                try:
                    owner._stream(self)
                except OSError:  # the client went away, or drop() closed the connection
                    pass
                finally:
                    with owner._lock:
                        owner._connections.discard(self.connection)

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        handler.end_headers()
        start, index = time.monotonic(), 0
        while True:
            while self._stalled.is_set():
                time.sleep(0.05)
            jpeg = self.jpegs[index % len(self.jpegs)]
            head = (
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            )
            handler.wfile.write(head.encode() + jpeg + b"\r\n")
            handler.wfile.flush()
            self.sent += 1
            index += 1
            time.sleep(max(0.0, start + index / self.fps - time.monotonic()))

    def stall(self) -> None:
        """Keep every connection open but send nothing (a frozen camera or network)."""
        self._stalled.set()

    def resume(self) -> None:
        self._stalled.clear()

    def drop(self) -> None:
        """Close every connection and stop listening (the camera went away)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        with self._lock:
            for connection in self._connections:
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._stalled.clear()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
