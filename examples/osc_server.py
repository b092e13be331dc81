"""Receive the engine's OSC bundles: run it, then ``run_live.py --osc 9000``.

uv run python -m examples.osc_server [--port 9000] [--json]

A python-osc server on 127.0.0.1 (``--host 0.0.0.0`` to accept other hosts) that joins
each bundle's messages back into one frame: ``/monomocap/frame`` starts it, the
``/monomocap/markers/<name>`` and ``/monomocap/angles/<name>`` messages that follow fill
it. It prints the right knee's flexion about once a second, or with ``--json`` every frame
as one JSON object per line (``frame``, ``media_time_s``, ``person``, ``markers``,
``angles``). Ctrl-C or SIGTERM stops it.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from typing import Any

from pythonosc.dispatcher import Dispatcher
from pythonosc.osc_server import BlockingOSCUDPServer

POLL_S = 0.2
Frame = dict[str, Any]


class FrameAssembler:
    """Rebuilds frames from the messages of the engine's bundles, in arrival order."""

    def __init__(self, on_frame: Callable[[Frame], None]) -> None:
        self.on_frame = on_frame
        self.frame: Frame | None = None

    def dispatcher(self) -> Dispatcher:
        dispatcher = Dispatcher()
        dispatcher.map("/monomocap/frame", self._start)
        dispatcher.map("/monomocap/markers/*", self._value, "markers")
        dispatcher.map("/monomocap/angles/*", self._value, "angles")
        return dispatcher

    def _start(self, address: str, index: int, media_time: float, person: int) -> None:
        self.flush()
        self.frame = {"frame": index, "media_time_s": media_time, "person": bool(person)}
        self.frame.update(markers={}, angles={})

    def _value(self, address: str, group: list[str], *values: float) -> None:
        if self.frame is not None:
            name = address.rpartition("/")[2]
            self.frame[group[0]][name] = list(values) if len(values) > 1 else values[0]

    def flush(self) -> None:
        """Hand on the frame being filled (the next /monomocap/frame, or the end)."""
        if self.frame is not None:
            self.on_frame(self.frame)
            self.frame = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=9000, help="UDP port to listen on")
    parser.add_argument("--json", action="store_true", help="every frame as a JSON line")
    args = parser.parse_args()
    shown = [-1.0]

    def show(frame: Frame) -> None:
        if args.json:
            print(json.dumps(frame), flush=True)
        elif frame["media_time_s"] - shown[0] >= 1.0 or frame["media_time_s"] < shown[0]:
            shown[0] = frame["media_time_s"]
            knee = frame["angles"].get("knee_r_flex_deg", float("nan"))
            print(f"frame {frame['frame']:6d}  right knee flexion {knee:6.1f} deg", flush=True)

    assembler = FrameAssembler(show)
    stop = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
    server = BlockingOSCUDPServer((args.host, args.port), assembler.dispatcher())
    server.timeout = POLL_S
    where = f"{args.host}:{server.server_address[1]}"
    line = {"listening": where} if args.json else f"listening on udp {where} (Ctrl-C to stop)"
    print(json.dumps(line) if args.json else line, flush=True)
    try:
        while not stop:
            server.handle_request()
    finally:
        assembler.flush()
        server.server_close()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        pass
    sys.exit(0)
