"""Viewer sink: the on-screen window of a live run, and the TRC replay window.

The live viewer is not in the packet path: it runs in its own process and reads the public
ZeroMQ stream like any external subscriber (see ``viewer/feed.py``), so a slow,
paused or closed window never makes the pipeline wait. Nor does it take the pipeline's CPU:
the process runs at the lowest priority (nice 19) and redraws within ``[viewer]
cpu_budget``. Measured on 2 busy cores without GPU (bench/bench_viewer.py, 1080p at
30 fps): 99% of the headless frame rate with the window open; at nice 10 and 30 redraws
per second it was 92%. Its exit (``q``, Esc, closing the window) is what tells the
supervisor to stop the run cleanly.

Qt and vispy are imported only when a window opens, so headless runs never load them.
Without a display Qt would abort the process with a page of messages; ``display_available``
checks first so the user gets one line instead.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from core.trc import TrcError, read_trc
from stream.graph import Graph
from stream.lifeline import Lifeline
from stream.processes import VIEWER_NICE, become_child
from transports.client import connectable
from transports.keys import ServerKeys

NO_DISPLAY = "no display available for the viewer (DISPLAY is not set or not reachable)"
EXIT_NO_DISPLAY = 5
X_ATTEMPTS = 5


def display_available() -> bool:
    """True when a window can open: a reachable X server or a Wayland session on Linux."""
    if not sys.platform.startswith("linux") or os.environ.get("WAYLAND_DISPLAY"):
        return True
    display = os.environ.get("DISPLAY")
    if not display:
        return False
    try:
        xcb = ctypes.CDLL(ctypes.util.find_library("xcb") or "libxcb.so.1")
    except OSError:  # no X client library: Qt's X backend could not load either
        return False
    xcb.xcb_connect.restype = ctypes.c_void_p
    xcb.xcb_connect.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
    xcb.xcb_connection_has_error.argtypes = [ctypes.c_void_p]
    xcb.xcb_disconnect.argtypes = [ctypes.c_void_p]
    for _ in range(X_ATTEMPTS):  # a connection is now and then refused (seen: 1 in 4 on Xvfb)
        connection = xcb.xcb_connect(display.encode(), None)
        refused = xcb.xcb_connection_has_error(connection)
        xcb.xcb_disconnect(connection)
        if not refused:
            return True
        time.sleep(0.1)
    return False


def _application() -> Any:
    from vispy import app

    return app.use_app("pyside6")


def run_viewer(
    publish: str, control: str, config: Mapping[str, Any], on_ready: Callable[[], None]
) -> int:
    """Show the live window until the user quits or SIGTERM arrives; the exit status."""
    if not display_available():
        print(f"error: {NO_DISPLAY}: run with --no-viewer", file=sys.stderr, flush=True)
        return EXIT_NO_DISPLAY
    application = _application()
    from viewer.feed import StreamFeed
    from viewer.window import LiveWindow

    keys = config["live"].get("curve_keys")  # with CURVE, the window uses the server's keys
    security = ServerKeys.load(keys).as_client().options() if keys else None
    feed = StreamFeed(connectable(publish), connectable(control), security=security)
    window = LiveWindow(feed, config, on_quit=application.quit)
    signal.signal(signal.SIGTERM, lambda signum, frame: window.request_quit())
    window.start()
    application.process_events()
    on_ready()
    application.run()
    window.quit()  # a no-op after q/Esc/close; saves a recording if the loop ended otherwise
    return 0


def replay_trc(path: Path) -> int:
    """Replay a TRC file in the 3D view until the window is closed; the exit status."""
    try:
        trc = read_trc(path)
    except TrcError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not len(trc.xyz):
        print(f"error: {path} has no frames", file=sys.stderr)
        return 2
    if not display_available():
        print(f"error: {NO_DISPLAY}: replay needs a desktop session", file=sys.stderr)
        return 2
    application = _application()
    from viewer.replay import ReplayWindow

    window = ReplayWindow(trc, Path(path), on_quit=application.quit)
    window.start()
    application.run()
    return 0


def viewer_main(graph: Graph, config: Mapping[str, Any], ready: Any, lifeline: Lifeline) -> None:
    """The on-screen viewer: a subscriber of the public stream, at a lower CPU priority."""
    become_child("viewer", lifeline)
    os.nice(VIEWER_NICE)
    sys.exit(run_viewer(graph.publish, graph.control, config, on_ready=ready.set))
